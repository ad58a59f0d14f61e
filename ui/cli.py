"""The `kiosk` command: run the kiosk in a hall, or a demo on any desktop.

Qt is imported only by the commands that open a window, so other commands start fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import signal
import sys
from collections.abc import Sequence

from kiosk import __version__
from kiosk.config import Config, ConfigError, load_config
from kiosk.logs import setup_logging

log = logging.getLogger("kiosk")

DESCRIPTION = """\
Self-service kiosk for government service halls (高效办成一件事).

Commands:
  run     the kiosk for a hall: full screen, frameless, devices from the config file
  demo    the kiosk in a window with simulated devices and an embedded reference platform
  diag    what a device sees, for technicians (see `kiosk diag --help`); --json for machines
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
}


# Commands whose modules live outside ui/: each module has add_parser(sub, common), which adds
# its command(s) with set_defaults(handler=fn), fn(args, config) -> exit status. No Qt.
COMMAND_MODULES: tuple[str, ...] = ("sync.cli", "sync.platform.cli")


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


def build_parser() -> argparse.ArgumentParser:
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
    devices = diag.add_subparsers(dest="device", metavar="DEVICE")
    for name, (module, summary) in DIAG_COMMANDS.items():
        if not _available(module):
            continue
        p = devices.add_parser(name, help=summary, description=summary)
        _common(p)
        p.add_argument("--json", action="store_true", help="one JSON object, for machines")
        p.set_defaults(diag_module=module)
        importlib.import_module(module).add_arguments(p)
    for module in COMMAND_MODULES:
        if _available(module):
            importlib.import_module(module).add_parser(sub, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
        if getattr(args, "diag_module", None) is None:
            parser.parse_args(["diag", "--help"])
        setup_logging(None, logging.WARNING)  # a technician's terminal: only what matters
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

    from ui import keyboard

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
    if fullscreen:
        window.setWindowFlag(Qt.WindowType.FramelessWindowHint, True)
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
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    heartbeat = QTimer()
    heartbeat.start(200)
    heartbeat.timeout.connect(lambda: None)
    if args.exit_after is not None:

        def finish() -> None:
            if args.screenshot:
                window.grab().save(args.screenshot)
            app.quit()

        QTimer.singleShot(int(args.exit_after * 1000), finish)
    code = app.exec()
    kiosk.close()
    log.info("kiosk stopped")
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
