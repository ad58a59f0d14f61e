"""Smoke test of the frozen bundle (`make bundle` → dist/kiosk/): what a hall's PC will run.

Skipped, with the reason, when there is no bundle; `make bundle-test` builds one first.
KIOSK_BUNDLE=path/to/kiosk tests another build. Every check runs the bundle's own executable
with the environment a kiosk PC has (no venv, no source tree on the path).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk import __version__

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = Path(os.environ.get("KIOSK_BUNDLE", ROOT / "dist" / "kiosk" / "kiosk"))

pytestmark = pytest.mark.skipif(
    not BUNDLE.is_file(), reason=f"no bundle at {BUNDLE}: `make bundle` builds one"
)

# A portrait hall screen for the offscreen platform (the default offscreen screen is 800×800).
SCREEN = {
    "synchronousWindowSystemEvents": False,
    "windowFrameMargins": False,
    "screens": [{"name": "kiosk", "x": 0, "y": 0, "width": 1080, "height": 1920, "logicalDpi": 96}],
}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # Nothing from the developer's shell: no venv, no PYTHONPATH, no KIOSK_CONFIG.
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "QT_QPA_PLATFORM": "offscreen",
    }
    env.update(extra)
    return env


def kiosk(
    tmp_path: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUNDLE), *args],
        cwd=tmp_path,  # not the source tree: nothing may be found by accident
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _no_crash(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert not re.search(r" (ERROR|CRITICAL) ", result.stderr), result.stderr[-3000:]


def test_version(tmp_path: Path) -> None:
    result = kiosk(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kiosk {__version__}"


def test_id_reader_diag_on_the_simulated_reader(tmp_path: Path) -> None:
    result = kiosk(tmp_path, "diag", "idcard", "--json", "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["sam"]["ok"] is True
    assert all(step["ok"] for step in report["steps"]), report["steps"]


def test_printer_diag_prints_a_test_page_on_the_simulated_printer(tmp_path: Path) -> None:
    result = kiosk(tmp_path, "diag", "printer", "--json", "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["printed"] is True
    assert report["status"]["ready"] is True
    assert report["bytes_written"] > 0


def test_overall_diag_when_the_build_has_it(tmp_path: Path) -> None:
    usage = kiosk(tmp_path, "diag", "--help")
    assert usage.returncode == 0, usage.stderr[-2000:]
    if "--json" not in usage.stdout:
        pytest.skip("this build has no overall `kiosk diag --json` yet (device diags above)")
    # Its data directory is the default one, under this test's HOME.
    result = kiosk(tmp_path, "diag", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert isinstance(json.loads(result.stdout), dict)


def test_headless_start_reaches_the_home_screen_and_exits_cleanly(tmp_path: Path) -> None:
    screen = tmp_path / "screen.json"
    screen.write_text(json.dumps(SCREEN), encoding="utf-8")
    shot = tmp_path / "home.png"
    result = kiosk(
        tmp_path,
        "run",
        "--data-dir",
        str(tmp_path / "d"),
        "--exit-after",
        "3",
        "--screenshot",
        str(shot),
        QT_QPA_PLATFORM=f"offscreen:configfile={screen}",
        QML_IMPORT_TRACE="1",  # shows which QML plugins were found in the bundle
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _no_crash(result)
    log = result.stderr
    assert "home screen painted" in log
    assert "lock-down on" in log  # `kiosk run` is the hall's full-screen mode
    assert log.rstrip().endswith("kiosk stopped"), log[-2000:]
    # The on-screen keyboard loaded, with its pinyin plugin (the dictionary is inside it).
    assert "on-screen keyboard unavailable" not in log
    assert re.search(r"QtQuick\.VirtualKeyboard\.Plugins\.Pinyin", log), "no pinyin plugin"
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1080, 1920)
        # A real screen has text and buttons in several colours, not one flat fill.
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50


def test_demo_with_its_embedded_platform(tmp_path: Path) -> None:
    # uvicorn picks its loop and protocol by import string: a missing hidden import shows here.
    result = kiosk(
        tmp_path, "demo", "--data-dir", str(tmp_path / "d"), "--exit-after", "4", timeout=90
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _no_crash(result)
    assert "platform listening on http://127.0.0.1:" in result.stderr
    assert "home screen painted" in result.stderr
    assert "lock-down on" not in result.stderr  # the demo is a window, not a hall


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The bundle's reference platform over TLS with a test CA, on an ephemeral port."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    data = tmp_path / "platform"
    server = subprocess.Popen(
        [str(BUNDLE), "platform", "serve", "--data-dir", str(data), "--port", "0",
         "--cert", str(cert_file), "--key", str(key_file)],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.search(r"platform listening on (https://\S+)", line)
        assert match, f"the platform did not start: {line!r}"
        yield match.group(1), ca_file
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_enroll_simulate_and_sync_over_tls(tmp_path: Path, platform: tuple[str, Path]) -> None:
    url, ca_file = platform
    code = kiosk(tmp_path, "platform", "enrollment-code", "--data-dir", str(tmp_path / "platform"))
    assert code.returncode == 0, code.stderr[-2000:]
    data = str(tmp_path / "kiosk")
    enrolled = kiosk(
        tmp_path, "enroll", "--platform", url, "--code", code.stdout.strip(),
        "--ca-file", str(ca_file), "--data-dir", data,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr[-2000:]
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[platform]\nurl = "{url}"\nca_file = "{ca_file}"\n', encoding="utf-8")
    common = ("--config", str(config), "--data-dir", data)
    made = kiosk(tmp_path, "simulate", "--applications", "2", *common)  # OpenCV scans, sealing
    assert made.returncode == 0, made.stderr[-2000:]
    sent = kiosk(tmp_path, "sync", "once", *common)
    assert sent.returncode == 0, sent.stderr[-2000:]
    status = kiosk(tmp_path, "sync", "status", "--json", *common)
    assert status.returncode == 0, status.stderr[-2000:]
    report = json.loads(status.stdout)
    assert (report["pending"], report["accepted"], report["enrolled"]) == (0, 2, True)
