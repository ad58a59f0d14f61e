"""The `kiosk` command: run the kiosk in a hall, or a demo on any desktop.

Qt is imported only by the commands that open a window, so other commands start fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from kiosk import __version__
from kiosk.config import Config, ConfigError, load_config
from kiosk.logs import setup_logging

log = logging.getLogger("kiosk")

DESCRIPTION = """\
Self-service kiosk for government service halls (高效办成一件事).

Commands:
  run     the kiosk for a hall: full screen, frameless, devices from the config file
  demo    the kiosk in a window with simulated devices and an embedded reference platform
  diag    every check (devices, platform, storage, versions); `kiosk diag DEVICE` for one
          device; --json for machines; --bundle FILE.zip for a support bundle
  staff   counter staff accounts: add, list, disable, set-pin, set-badge
  audit   the hash-chained audit log: verify, list
  enroll  register this kiosk with the platform once, with a one-time code
  sync    deliver queued applications to the platform (run, once, status)
  simulate  make complete applications through the UI's own core path (tests, benchmarks)
  platform  the reference platform: serve, enrollment-code, list, advance

Every command takes --config FILE (or $KIOSK_CONFIG) and --data-dir DIR, which overrides
the configured data directory. Keys and defaults: docs/config.md.
"""


# Each device package supplies its technician's command: add_arguments(parser) and
# run(args, config) -> exit status. Their modules import no Qt.
# A device whose package is not in the build is not offered (find_spec), but one that fails
# to import is an error, not hidden.
DIAG_COMMANDS: dict[str, tuple[str, str]] = {
    "idcard": ("devices.idcard.diag", "the ID card reader: SAM id, card kind, masked fields"),
    "pcsc": ("devices.pcsc.diag", "PC/SC readers and cards: ATR, UID, masked PAN"),
    "printer": ("devices.printer.diag", "the receipt printer: status and a test page"),
    "camera": (
        "devices.camera_diag",
        "the document camera: picture, frame rate, sharpness, the page it finds",
    ),
}


# Commands whose modules live outside ui/: each module has add_parser(sub, common), which adds
# its command(s) with set_defaults(handler=fn), fn(args, config) -> exit status. No Qt.
COMMAND_MODULES: tuple[str, ...] = ("sync.cli", "sync.platform.cli", "ui.admin_cli")


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package is not there either
        return False


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="TOML config file (default: $KIOSK_CONFIG)"
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="data directory (database, scans, logs); overrides the config",
    )


def _command_word(argv: Sequence[str]) -> str | None:
    """The command named on the command line (top-level options come before it)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _wanted(words: Sequence[str]) -> str | None:
    """The command whose modules the parser needs; None for all of them (help)."""
    if not words or "-h" in words or "--help" in words:
        return None
    return _command_word(words) or "--version"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `command`, only what that command needs (start-up stays lean:
    the device and sync modules import python-escpos, httpx and the like)."""
    want_diag = command in (None, "diag")
    want_others = command not in ("run", "demo", "diag", "--version")
    parser = argparse.ArgumentParser(
        prog="kiosk", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="full-screen kiosk for a hall (devices from the config)",
        description="Start the kiosk full screen and frameless, as in a hall.",
    )
    demo = sub.add_parser(
        "demo",
        help="windowed kiosk with simulated devices",
        description="Start the kiosk in a window with simulated devices (ID reader with demo "
        "cards, camera, printer) and an embedded reference platform on 127.0.0.1 that the "
        "kiosk enrolls with and syncs to. Works headless with QT_QPA_PLATFORM=offscreen.",
    )
    for p in (run, demo):
        _common(p)
        p.add_argument(
            "--exit-after",
            type=float,
            metavar="SECONDS",
            help="quit after this many seconds (smoke tests)",
        )
        p.add_argument(
            "--screenshot",
            metavar="PNG",
            help="with --exit-after: save the window to this file before quitting",
        )
    demo.add_argument(
        "--size",
        default="1080x1920",
        metavar="WxH",
        help="window size, e.g. 1080x1920 (portrait) or 1920x1080 (landscape)",
    )
    diag = sub.add_parser(
        "diag",
        help="device diagnostics for technicians",
        description="Show what a device sees. Each device has its own command.",
    )
    # `kiosk diag [--json] [--bundle FILE.zip]` with no device: every check (ui/diagnostics.py).
    _common(diag)
    if want_diag:
        importlib.import_module("ui.diagnostics").add_overall_arguments(diag)
    devices = diag.add_subparsers(dest="device", metavar="DEVICE")
    for name, (module, summary) in DIAG_COMMANDS.items():
        if not want_diag or not _available(module):
            continue
        p = devices.add_parser(name, help=summary, description=summary)
        _common(p)
        p.add_argument("--json", action="store_true", help="one JSON object, for machines")
        p.set_defaults(diag_module=module)
        importlib.import_module(module).add_arguments(p)
    for module in COMMAND_MODULES:
        if want_others and _available(module):
            importlib.import_module(module).add_parser(sub, _common)
    return parser


def _escpos_cache() -> None:
    # python-escpos parses its 1 MB capabilities file with YAML on every import (~0.2 s) and
    # caches the result in a new temporary directory each time, unless told where to keep it.
    if "ESCPOS_CAPABILITIES_PICKLE_DIR" in os.environ:
        return
    import platformdirs

    cache = Path(platformdirs.user_cache_dir("hall-kiosk", appauthor=False)) / "escpos"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # python-escpos then uses a temporary directory, as it would anyway
    os.environ["ESCPOS_CAPABILITIES_PICKLE_DIR"] = str(cache)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    _escpos_cache()
    parser = build_parser(_wanted(words))
    args = parser.parse_args(words)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        config = load_config(args.config, args.data_dir)
    except ConfigError as exc:
        print(f"kiosk: config error: {exc}", file=sys.stderr)
        return 2
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args, config))
    if args.command == "diag":
        setup_logging(None, logging.WARNING)  # a technician's terminal: only what matters
        if getattr(args, "diag_module", None) is None:
            return int(importlib.import_module("ui.diagnostics").run_overall(args, config))
        return int(importlib.import_module(args.diag_module).run(args, config))
    if args.command == "demo":
        config = _demo_config(config)
    setup_logging(config.data_dir / "logs")
    return _run_gui(config, args, fullscreen=args.command == "run")


def _demo_config(config: Config) -> Config:
    from dataclasses import replace

    devices = replace(
        config.devices, id_reader="simulated", camera="simulated", printer="simulated://"
    )
    # The demo shows the whole round trip: an embedded reference platform on 127.0.0.1 that
    # advances applications on a timer, and a relay with short waits so status flows back
    # while someone watches (a hall uses the defaults of docs/config.md).
    sync = replace(
        config.sync,
        startup_delay_max_s=1.0,
        status_poll_s=5.0,
        backoff_base_s=1.0,
        backoff_cap_s=30.0,
        breaker_open_min_s=5.0,
        breaker_open_max_s=15.0,
    )
    platform = config.platform
    if platform.url == "simulated":  # the default: a configured URL is the user's choice
        platform = replace(platform, url="embedded")
    return replace(config, devices=devices, platform=platform, sync=sync)


def _run_gui(config: Config, args: argparse.Namespace, fullscreen: bool) -> int:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from ui import input_method as keyboard

    if config.ui.virtual_keyboard and QApplication.instance() is None:
        keyboard.enable()  # must precede the QApplication

    from devices.registry import DeviceConfigError
    from kiosk.catalog import CatalogError
    from kiosk.storage import StorageError
    from ui.app import PlatformConfigError, build_kiosk

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    try:
        kiosk = build_kiosk(config, app)
    except (DeviceConfigError, PlatformConfigError, CatalogError) as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:
        log.critical("cannot open the data directory %s: %s", config.data_dir, exc.reason)
        print(
            f"kiosk: cannot open the data directory {config.data_dir}: {exc.reason}",
            file=sys.stderr,
        )
        return 2
    window = kiosk.window
    # The keyboard (Qt Quick) and the camera (OpenCV) come once the home screen is up.
    _log_first_paint(window, kiosk.finish_start)
    quit_app = app.quit
    if fullscreen:
        from ui.lockdown import Lockdown

        window.setWindowFlag(Qt.WindowType.FramelessWindowHint, True)
        lockdown = Lockdown(app, window, config.kiosk_mode, config.calendar)
        lockdown.install()
        quit_app = lockdown.quit  # the window refuses to close for anyone else
        window.showFullScreen()
        window.activateWindow()  # the on-screen keyboard needs the active window's focus
    else:
        width, _, height = str(getattr(args, "size", "1080x1920")).partition("x")
        window.resize(int(width), int(height))
        window.show()
        window.activateWindow()
    log.info(
        "kiosk %s started (%s), data in %s",
        __version__,
        "hall" if fullscreen else "demo",
        config.data_dir,
    )
    # Ctrl+C in a terminal quits cleanly; Qt needs a timer tick to let Python see signals.
    signal.signal(signal.SIGINT, lambda *_: quit_app())
    signal.signal(signal.SIGTERM, lambda *_: quit_app())
    heartbeat = QTimer()
    heartbeat.start(200)
    heartbeat.timeout.connect(lambda: None)
    if args.exit_after is not None:

        def finish() -> None:
            if args.screenshot:
                window.grab().save(args.screenshot)
            quit_app()

        QTimer.singleShot(int(args.exit_after * 1000), finish)
    code = app.exec()
    kiosk.close()
    log.info("kiosk stopped")
    return int(code)


def _process_age_s() -> float:
    """Seconds since this process started (Linux: from /proc; elsewhere since main())."""
    try:
        stat = Path("/proc/self/stat").read_text(encoding="ascii")
        started = int(stat.rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        uptime = float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _MAIN_STARTED
    return uptime - started


def _log_first_paint(window: object, then: Callable[[], object]) -> None:
    """Log once when the first screen has been painted: the start-up time a technician (and
    scripts/cold_start.py) can read. Then run `then` (what can wait until the screen is up)."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    class FirstPaint(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                watched.removeEventFilter(self)
                log.info("home screen painted %.2f s after process start", _process_age_s())
                QTimer.singleShot(0, then)
            return False

    assert isinstance(window, QObject)
    window.installEventFilter(FirstPaint(window))


_MAIN_STARTED = time.monotonic()

if __name__ == "__main__":
    raise SystemExit(main())
