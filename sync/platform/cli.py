"""`kiosk platform ...`: run and operate the reference platform.

serve, enrollment-code, list, advance and publish-catalog all work on the platform's data
directory (--data-dir), so the operator commands work while `serve` runs (one SQLite file).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.catalog import CatalogError
from kiosk.config import Config
from kiosk.logs import setup_logging
from kiosk.storage import StorageError
from sync.platform.errors import Refused
from sync.platform.store import AdvanceRefused, PlatformStore, UnknownApplication
from sync.protocol import PLATFORM_STATUSES, ProtocolError

log = logging.getLogger("sync.platform")

Common = Callable[[argparse.ArgumentParser], None]


def add_parser(sub: Any, common: Common) -> None:
    """Add `platform` and its subcommands to the `kiosk` command's subparsers."""
    platform = sub.add_parser(
        "platform",
        help="the reference platform: serve, enrollment-code, list, advance, export, "
        "publish-catalog",
        description="The reference government-service platform the kiosks sync with "
        "(docs/platform.md). Every subcommand needs --data-dir, the PLATFORM's data directory.",
    )
    # No options here: `kiosk platform` alone prints its help.
    platform.set_defaults(handler=_usage(platform), config=None, data_dir=None)
    commands = platform.add_subparsers(dest="platform_command", metavar="SUBCOMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve the platform until SIGINT/SIGTERM",
        description="Serve the platform. Prints 'platform listening on URL' once it accepts "
        "connections.",
    )
    common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="move committed applications accepted → in_progress → completed every 5 s",
    )
    serve.add_argument(
        "--demo-interval", type=float, default=5.0, metavar="SECONDS", help=argparse.SUPPRESS
    )
    serve.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="admit at most R signed requests per second (429 with a random Retry-After)",
    )
    serve.add_argument("--cert", metavar="PEM", help="TLS certificate chain (serve HTTPS)")
    serve.add_argument("--key", metavar="PEM", help="TLS private key")
    serve.set_defaults(handler=_serve)

    code = commands.add_parser(
        "enrollment-code",
        help="print a one-time enrollment code (valid 24 h)",
        description="Print a one-time code for `kiosk enroll`; valid for 24 hours.",
    )
    common(code)
    code.set_defaults(handler=_enrollment_code)

    listing = commands.add_parser(
        "list",
        help="the committed applications",
        description="The committed applications in commit order: id, 办件编号, hashes.",
    )
    common(listing)
    listing.add_argument("--json", action="store_true", help="a JSON list, for machines")
    listing.set_defaults(handler=_list)

    advance = commands.add_parser(
        "advance",
        help="record a decision on an application (status feed)",
        description="Append a status change for an application. Statuses: "
        + ", ".join(PLATFORM_STATUSES)
        + ". Completed or rejected applications do not go back.",
    )
    common(advance)
    advance.add_argument("application_id", metavar="APP_ID")
    advance.add_argument("status", metavar="STATUS", choices=PLATFORM_STATUSES)
    advance.add_argument("--note", default="", help="a note the applicant sees")
    advance.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="SID=STATUS",
        help="a per-service status (service id from the catalog); repeatable",
    )
    advance.set_defaults(handler=_advance)

    export = commands.add_parser(
        "export",
        help="write a committed application's form and one PDF per material",
        description="Open a committed application (by id or 办件编号) and write "
        "OUT/<办件编号>/application.json and one PDF per material, its pages as scanned. "
        "The files hold personal data: they are readable by this user only.",
    )
    common(export)
    export.add_argument("key", metavar="APP_ID_OR_NUMBER")
    export.add_argument("--out", required=True, metavar="DIR", help="where to write")
    export.set_defaults(handler=_export)

    publish = commands.add_parser(
        "publish-catalog",
        help="validate a catalog file and serve it to the kiosks",
        description="Validate a catalog JSON file and install it atomically; the kiosks fetch "
        "it at their next poll (ETag).",
    )
    common(publish)
    publish.add_argument("file", metavar="FILE")
    publish.set_defaults(handler=_publish_catalog)


def _usage(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace, Config], int]:
    def show(args: argparse.Namespace, config: Config) -> int:
        parser.print_help()
        return 2

    return show


def _data_dir(args: argparse.Namespace) -> Path | None:
    if not args.data_dir:
        print(
            "kiosk platform: --data-dir DIR (the platform's data directory) is required",
            file=sys.stderr,
        )
        return None
    return Path(args.data_dir).expanduser()


def _open_store(args: argparse.Namespace) -> PlatformStore | None:
    data_dir = _data_dir(args)
    if data_dir is None:
        return None
    try:
        return PlatformStore(data_dir)
    except StorageError as exc:
        print(f"kiosk platform: cannot open {data_dir}: {exc}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace, config: Config) -> int:
    from sync.platform.server import PlatformServer

    data_dir = _data_dir(args)
    if data_dir is None:
        return 2
    if (args.cert is None) != (args.key is None):
        print("kiosk platform serve: give both --cert and --key", file=sys.stderr)
        return 2
    setup_logging(data_dir / "logs")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server = PlatformServer(
            data_dir,
            args.host,
            args.port,
            demo=args.demo,
            demo_interval_s=args.demo_interval,
            rate=args.rate,
            certfile=args.cert,
            keyfile=args.key,
        )
        server.start()
    except (StorageError, OSError, RuntimeError, ValueError) as exc:
        print(f"kiosk platform serve: {exc}", file=sys.stderr)
        return 1
    print(f"platform listening on {server.url}", flush=True)
    try:
        while not stop.wait(0.5):
            if not server.running:
                log.error("the platform server stopped by itself")
                return 1
    finally:
        server.stop()
    log.info("platform stopped")
    return 0


def _enrollment_code(args: argparse.Namespace, config: Config) -> int:
    store = _open_store(args)
    if store is None:
        return 2
    try:
        print(store.new_enrollment_code())
    finally:
        store.close()
    return 0


def _list(args: argparse.Namespace, config: Config) -> int:
    store = _open_store(args)
    if store is None:
        return 2
    try:
        committed = store.list_committed()
    finally:
        store.close()
    if args.json:
        print(json.dumps([app.as_json() for app in committed], ensure_ascii=False, indent=1))
        return 0
    if not committed:
        print("no committed applications")
        return 0
    print(f"{'application id':28} {'办件编号':16} {'kiosk':12} {'status':16} pages")
    for app in committed:
        print(
            f"{app.id:28} {app.platform_number:20} {app.kiosk_id:12} {app.status:16} "
            f"{len(app.attachments)}"
        )
    return 0


def _advance(args: argparse.Namespace, config: Config) -> int:
    services: dict[str, str] = {}
    for item in args.service:
        service_id, sep, status = item.partition("=")
        if not sep or not service_id or status not in PLATFORM_STATUSES:
            print(
                f"kiosk platform advance: --service wants SID=STATUS with STATUS one of "
                f"{', '.join(PLATFORM_STATUSES)}; got {item!r}",
                file=sys.stderr,
            )
            return 2
        services[service_id] = status
    store = _open_store(args)
    if store is None:
        return 2
    try:
        change = store.advance(args.application_id, args.status, args.note, services or None)
    except UnknownApplication:
        print(
            f"kiosk platform advance: no committed application {args.application_id}",
            file=sys.stderr,
        )
        return 1
    except AdvanceRefused as exc:
        print(f"kiosk platform advance: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(
        f"{change.application_id} ({change.platform_number}) is {change.status}, seq {change.seq}"
    )
    return 0


def _export(args: argparse.Namespace, config: Config) -> int:
    from sync.platform.export import export_application

    store = _open_store(args)
    if store is None:
        return 2
    try:
        done = export_application(store, args.key, Path(args.out).expanduser())
    except UnknownApplication:
        print(f"kiosk platform export: no committed application {args.key}", file=sys.stderr)
        return 1
    except (Refused, ProtocolError) as exc:
        print(f"kiosk platform export: {args.key} cannot be opened: {exc}", file=sys.stderr)
        return 1
    except (StorageError, OSError) as exc:
        print(f"kiosk platform export: cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    pages = ", ".join(f"{m} {n}" for m, n in done.pages.items()) or "no pages"
    print(f"{done.application_id} ({done.platform_number}) → {done.directory} ({pages})")
    return 0


def _publish_catalog(args: argparse.Namespace, config: Config) -> int:
    try:
        text = Path(args.file).read_bytes()
    except OSError as exc:
        print(
            f"kiosk platform publish-catalog: cannot read {args.file}: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
    store = _open_store(args)
    if store is None:
        return 2
    try:
        catalog = store.publish_catalog(text)
        _, etag = store.catalog()
    except CatalogError as exc:
        print("kiosk platform publish-catalog: the catalog is refused:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"kiosk platform publish-catalog: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f'catalog version {catalog.version} published (ETag "{etag}")')
    return 0
