"""The kiosk side of sync on the command line: `kiosk enroll`, `kiosk sync run|once|status`,
`kiosk simulate`. ui/cli.py adds these through `add_parser`; no Qt is imported here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiosk.application import Status
from kiosk.catalog import CatalogError, CatalogStore
from kiosk.config import Config
from kiosk.logs import setup_logging
from kiosk.storage import Storage, StorageError
from sync.enrollment import Enrollment, EnrollmentError, enroll, load_enrollment

if TYPE_CHECKING:
    from sync.client import HttpPlatform

log = logging.getLogger(__name__)

Common = Callable[[argparse.ArgumentParser], None]

NOT_ENROLLED = (
    "kiosk: this kiosk is not enrolled with a platform; run "
    "`kiosk enroll --platform URL --code CODE` with a one-time code from the platform"
)


def add_parser(sub: Any, common: Common) -> None:
    """Add `enroll`, `sync` (run, once, status) and `simulate` to the `kiosk` command."""
    p = sub.add_parser(
        "enroll",
        help="register this kiosk with the platform (one-time code)",
        description="Generate this kiosk's key pair and register it with the platform using a "
        "one-time enrollment code. Keys go to DATA/keys/.",
    )
    common(p)
    p.add_argument("--platform", required=True, metavar="URL", help="the platform's https URL")
    p.add_argument("--code", required=True, help="the one-time enrollment code")
    p.add_argument(
        "--ca-file", metavar="PEM", help="CA the platform's certificate must chain to (pinned)"
    )
    p.set_defaults(handler=_enroll)

    sync = sub.add_parser(
        "sync",
        help="deliver queued applications to the platform",
        description="Deliver queued applications and ratings to the platform, pull status "
        "changes and catalog updates.",
    )
    actions = sync.add_subparsers(dest="sync_action", metavar="ACTION", required=True)
    p = actions.add_parser("run", help="deliver continuously until stopped (Ctrl+C, SIGTERM)")
    common(p)
    p.set_defaults(handler=_run)
    p = actions.add_parser("once", help="one pass; exit 0 when nothing is left to deliver")
    common(p)
    p.set_defaults(handler=_once)
    p = actions.add_parser("status", help="what is pending, accepted and set aside")
    common(p)
    p.add_argument("--json", action="store_true", help="one JSON object, for machines")
    p.set_defaults(handler=_status)

    p = sub.add_parser(
        "simulate",
        help="make complete applications through the core path (tests, benchmarks)",
        description="Create applications as the UI would (sealed, queued in the outbox).",
    )
    common(p)
    p.add_argument("--applications", type=int, required=True, metavar="N")
    p.set_defaults(handler=_simulate)


# Helpers --------------------------------------------------------------------------------------


def _open_storage(config: Config) -> Storage:
    # Orphan collection belongs to the kiosk's own start-up: here it could delete the files of
    # an application the kiosk is saving at this very moment.
    return Storage(
        config.data_dir,
        hall_code=config.hall.code,
        kiosk_code=config.hall.kiosk_code,
        collect_orphans=False,
        synchronous="NORMAL",  # what the relay writes is redone if a power cut undoes it
    )


def _logging(config: Config) -> None:
    setup_logging(config.data_dir / "logs")
    # httpx logs every request at INFO: a line per 256 KiB chunk drowns what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _storage_or_message(config: Config) -> Storage | None:
    try:
        return _open_storage(config)
    except StorageError as exc:
        print(
            f"kiosk: cannot open the data directory {config.data_dir}: {exc.reason}",
            file=sys.stderr,
        )
        return None


def _enrollment_or_message(config: Config) -> Enrollment | None:
    enrollment = load_enrollment(config.data_dir)
    if enrollment is None:
        print(NOT_ENROLLED, file=sys.stderr)
    return enrollment


def _catalogs(config: Config) -> CatalogStore | None:
    try:
        return CatalogStore(config.data_dir)
    except CatalogError as exc:
        log.error("no usable catalog; catalog updates are not applied: %s", exc)
        return None


# Handlers -------------------------------------------------------------------------------------


def _enroll(args: argparse.Namespace, config: Config) -> int:
    _logging(config)
    try:
        enrollment = enroll(config, args.platform, args.code, ca_file=args.ca_file)
    except EnrollmentError as exc:
        print(f"kiosk: enrollment failed: {exc}", file=sys.stderr)
        return 1
    print(f"enrolled as {enrollment.kiosk_id} with {enrollment.url}")
    return 0


def _relay_parts(config: Config) -> tuple[Storage, HttpPlatform] | None:
    """(storage, platform) for a sync command, or None after printing why not."""
    # httpx and the crypto stack load only for the commands that talk to the platform.
    from sync.client import HttpPlatform

    enrollment = _enrollment_or_message(config)
    if enrollment is None:
        return None
    storage = _storage_or_message(config)
    if storage is None:
        return None
    return storage, HttpPlatform(config, enrollment)


def _once(args: argparse.Namespace, config: Config) -> int:
    from sync.relay import Relay

    _logging(config)
    parts = _relay_parts(config)
    if parts is None:
        return 2
    storage, platform = parts
    try:
        relay = Relay(config, storage, platform, catalogs=_catalogs(config))
        result = relay.run_once(ignore_schedule=True)
        counts = storage.sync_counts()
    except StorageError as exc:
        print(f"kiosk: sync failed: {exc.reason}", file=sys.stderr)
        return 1
    finally:
        platform.close()
        storage.close()
    print(
        f"delivered {result.uploaded}, failed {result.failed}, set aside {result.quarantined}; "
        f"pending {counts['pending']}, accepted {counts['accepted']}, "
        f"quarantined {counts['quarantined']}" + (f" ({result.stopped})" if result.stopped else "")
    )
    if result.unauthenticated:
        print(f"kiosk: {relay.state().last_error}", file=sys.stderr)
        return 2
    return 0 if counts["pending"] == 0 else 1


def _run(args: argparse.Namespace, config: Config) -> int:
    from sync.relay import Relay

    _logging(config)
    parts = _relay_parts(config)
    if parts is None:
        return 2
    storage, platform = parts
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    relay = Relay(config, storage, platform, catalogs=_catalogs(config))
    try:
        relay.start()
        log.info("sync running for %s at %s", platform.enrollment.kiosk_id, platform.url)
        # Wake often enough for Python to run the signal handler; the relay does the work.
        while not stop.wait(0.5):
            if not relay.running:
                break
    finally:
        relay.stop(timeout=config.platform.request_timeout_s + 5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        platform.close()
        if not relay.running:
            storage.close()
    if not stop.is_set():
        print(f"kiosk: sync stopped: {relay.state().last_error}", file=sys.stderr)
        return 2
    log.info("sync stopped")
    return 0


def _status(args: argparse.Namespace, config: Config) -> int:
    setup_logging(None, logging.WARNING)
    storage = _storage_or_message(config)
    if storage is None:
        return 2
    try:
        counts = storage.sync_counts()
        oldest = storage.oldest_pending()
        set_aside = [
            {
                "id": app.id,
                "receipt_number": app.receipt_number,
                "reason": storage.quarantine_reason(app.id),
            }
            for app in storage.list_applications()
            if app.status is Status.QUARANTINED
        ]
        last_success = storage.get_meta("last_success_at")
        last_error = storage.get_meta("last_error") or ""
    except StorageError as exc:
        print(f"kiosk: cannot read the outbox: {exc.reason}", file=sys.stderr)
        return 1
    finally:
        storage.close()
    enrollment = load_enrollment(config.data_dir)
    report: dict[str, Any] = {
        "pending": counts["pending"],
        "accepted": counts["accepted"],
        "quarantined": counts["quarantined"],
        "oldest_pending": oldest.isoformat() if oldest else None,
        "enrolled": enrollment is not None,
        "kiosk_id": enrollment.kiosk_id if enrollment else None,
        "platform": enrollment.url if enrollment else None,
        "last_success_at": _iso(last_success),
        "last_error": last_error,
        "set_aside": set_aside,
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(
        f"pending      {report['pending']}"
        + (f" (oldest {oldest:%Y-%m-%d %H:%M})" if oldest else "")
    )
    print(f"accepted     {report['accepted']}")
    print(f"quarantined  {report['quarantined']}")
    for item in set_aside:
        print(f"  {item['receipt_number']}  {item['id']}  {item['reason']}")
    if enrollment is None:
        print("enrolled     no (kiosk enroll --platform URL --code CODE)")
    else:
        print(f"enrolled     {enrollment.kiosk_id} at {enrollment.url}")
    print(f"last contact {report['last_success_at'] or 'never'}")
    if last_error:
        print(f"last error   {last_error}")
    return 0


def _iso(unix: str | None) -> str | None:
    if not unix:
        return None
    try:
        return dt.datetime.fromtimestamp(float(unix)).astimezone().isoformat(timespec="seconds")
    except (ValueError, OverflowError, OSError):
        return None


def _simulate(args: argparse.Namespace, config: Config) -> int:
    from sync.simulate import simulate_applications

    _logging(config)
    if args.applications < 0:
        print("kiosk: --applications must be 0 or more", file=sys.stderr)
        return 2
    try:
        ids = simulate_applications(config, args.applications)
    except StorageError as exc:
        print(f"kiosk: cannot save applications: {exc.reason}", file=sys.stderr)
        return 1
    for app_id in ids:
        print(app_id)
    return 0
