# Two commands do all the set-up on a fresh Debian 12 machine: `make demo` and `make test`.
# Both create .venv and install what is missing; as root they also install the Debian
# packages below, otherwise they print the exact apt-get line and stop.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# CJK fonts (Chinese renders as boxes without them); Qt's xcb and GL libraries; pyscard's
# build needs (libpcsclite-dev, swig, python3-dev); pcscd and the vpcd virtual reader for the
# smart-card tests; Xvfb for screenshots of a real window; libpulse0, which the on-screen
# keyboard's QML components link against (key-click sound); xset (x11-xserver-utils), which
# the lock-down uses to keep the screen on and its test checks against Xvfb; the Wayland
# client libraries and speech-dispatcher's, which Qt's wayland and text-to-speech plugins link
# against (`make bundle` copies them into the bundle, for kiosk PCs under cage).
DEBIAN_PACKAGES := fonts-noto-cjk libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 \
	libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-shape0 \
	libxcb-xkb1 libxkbcommon-x11-0 libxkbcommon0 libegl1 libgl1 libfontconfig1 libdbus-1-3 \
	libglib2.0-0 libpcsclite-dev pcscd vsmartcard-vpcd swig python3-dev python3-venv gcc \
	xvfb xauth libpulse0 x11-xserver-utils libwayland-cursor0 libwayland-egl1 libspeechd2

.PHONY: demo test lint bench screenshots system-deps venv clean help bundle bundle-test \
	release cold-start nightly

help:
	@echo "make demo         open the kiosk with simulated devices (sets everything up first)"
	@echo "make test         run the whole suite headless (sets everything up first)"
	@echo "make bench        run the benchmarks, results in benchmarks/results.md"
	@echo "make screenshots  regenerate docs/screenshots/*.png"
	@echo "make bundle       freeze the kiosk into dist/kiosk/ (PyInstaller, about 1-2 min)"
	@echo "make bundle-test  build the bundle, then its smoke test (tests/test_bundle.py)"
	@echo "make release      the bundle, deploy/ and the install guide in one tar.gz"
	@echo "make cold-start   process start to home screen painted, venv and bundle"
	@echo "make nightly      the whole suite, the bundle and its smoke test, cold start"

system-deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian packages: $$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "These Debian packages are missing. Install them as root, then run make again:"; \
			echo "  sudo apt-get install -y $$missing"; \
			exit 1; \
		fi; \
	fi

$(STAMP): pyproject.toml | system-deps
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: system-deps $(STAMP)

demo: venv
	@if [ -z "$$DISPLAY$$WAYLAND_DISPLAY$$QT_QPA_PLATFORM" ]; then \
		echo "No display found: starting headless (QT_QPA_PLATFORM=offscreen). Ctrl+C stops it."; \
		export QT_QPA_PLATFORM=offscreen; \
	fi; \
	$(VENV)/bin/kiosk demo --data-dir "$${KIOSK_DEMO_DATA:-$(CURDIR)/.demo-data}" $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: venv
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/run.py $(ARGS)

screenshots: venv
	QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshots.py docs/screenshots

# The frozen kiosk for a hall PC (docs/deploy.md). `make test` also runs its smoke test when
# dist/kiosk exists (tests/test_bundle.py skips otherwise).
bundle: venv
	@start=$$(date +%s); \
	$(VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN \
		--workpath build/pyinstaller --distpath dist build.spec && \
	echo "bundle: dist/kiosk, $$(du -sh dist/kiosk | cut -f1), built in $$(( $$(date +%s) - start )) s"

# What a technician carries to the hall: the bundle with the deployment files and the guide,
# as dist/hall-kiosk-VERSION-linux-x86_64.tar.gz (unpacks to hall-kiosk-VERSION/).
release: bundle
	@version=$$($(PY) -c 'import kiosk; print(kiosk.__version__)'); \
	name=hall-kiosk-$$version; rm -rf build/release && mkdir -p build/release/$$name/docs && \
	cp -a dist/kiosk/. build/release/$$name/ && cp -a deploy build/release/$$name/ && \
	cp docs/deploy.md docs/config.md build/release/$$name/docs/ && \
	tar -C build/release -czf dist/$$name-linux-x86_64.tar.gz $$name && \
	echo "release: dist/$$name-linux-x86_64.tar.gz, $$(du -h dist/$$name-linux-x86_64.tar.gz | cut -f1)"

bundle-test: bundle
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider tests/test_bundle.py

cold-start: venv
	$(PY) scripts/cold_start.py $(ARGS)

nightly: test bundle-test
	$(PY) scripts/cold_start.py

clean:
	rm -rf $(VENV) .demo-data build dist .mypy_cache .ruff_cache
