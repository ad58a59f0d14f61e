"""`kiosk staff add|list|disable|set-pin|set-badge` and `kiosk audit verify|list`.

ui/cli.py adds these through `add_parser(sub, common)`; no Qt is imported here. Every change
to an account is written to the audit log with the actor "cli:<OS user>": whoever may run
commands in the kiosk's data directory administers it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from collections.abc import Callable
from typing import Any

from kiosk.audit import AuditEntry, AuditError, AuditLog
from kiosk.config import Config
from kiosk.staff import ROLES, StaffError, StaffStore, UnknownStaff, WeakPin, check_pin
from kiosk.storage import StorageError

Common = Callable[[argparse.ArgumentParser], None]

EXIT_OK = 0
EXIT_FAILED = 1  # the audit log does not verify; a refused staff request
EXIT_USAGE = 2


def cli_actor() -> str:
    """The audit actor for a command typed at this machine: "cli:<OS user>"."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "cli"
    cleaned = "".join(c for c in user if c.isalnum() or c in "._-")[:59]
    return f"cli:{cleaned}" if cleaned else "cli"


def add_parser(sub: Any, common: Common) -> None:
    """Add `staff` and `audit` to the `kiosk` command."""
    staff = sub.add_parser(
        "staff",
        help="staff accounts: add, list, disable, set-pin, set-badge",
        description="Accounts of counter staff, technicians and administrators. PINs are 6 "
        "digits, kept only as argon2id hashes; every change is audited.",
    )
    actions = staff.add_subparsers(dest="staff_action", metavar="ACTION", required=True)

    p = actions.add_parser("add", help="create an account (asks the PIN twice)")
    common(p)
    p.add_argument("--number", required=True, metavar="N", help="staff number (工号)")
    p.add_argument("--name", required=True, help="the person's name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--badge", metavar="UID", help="badge UID in hex, as `kiosk diag pcsc` shows")
    _pin_source(p)
    p.set_defaults(handler=_add)

    p = actions.add_parser("list", help="every account (never PINs)")
    common(p)
    p.add_argument("--json", action="store_true", help="one JSON object, for machines")
    p.set_defaults(handler=_list)

    p = actions.add_parser("disable", help="stop an account from logging in")
    common(p)
    p.add_argument("number", metavar="N")
    p.set_defaults(handler=_disable)

    p = actions.add_parser("set-pin", help="give an account a new PIN (also unlocks it)")
    common(p)
    p.add_argument("number", metavar="N")
    _pin_source(p)
    p.set_defaults(handler=_set_pin)

    p = actions.add_parser("set-badge", help="give an account a badge, or take it away")
    common(p)
    p.add_argument("number", metavar="N")
    badge = p.add_mutually_exclusive_group(required=True)
    badge.add_argument("--uid", metavar="UID", help="badge UID in hex")
    badge.add_argument("--clear", action="store_true", help="the account has no badge")
    p.set_defaults(handler=_set_badge)

    audit = sub.add_parser(
        "audit",
        help="the hash-chained audit log: verify, list",
        description="Every staff and technician action, hash-chained (DATA/audit.db, with "
        "the latest hash also in DATA/audit.head).",
    )
    actions = audit.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    p = actions.add_parser(
        "verify", help="exit 0 when the chain holds, 1 naming the first bad entry"
    )
    common(p)
    p.add_argument("--json", action="store_true", help="one JSON object, for machines")
    p.set_defaults(handler=_verify)
    p = actions.add_parser("list", help="the entries, oldest first")
    common(p)
    p.add_argument("--json", action="store_true", help="one JSON object, for machines")
    p.add_argument(
        "--since", metavar="DATE", type=_since, help="only entries from this date or time on"
    )
    p.set_defaults(handler=_audit_list)


def _pin_source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pin-stdin",
        action="store_true",
        help="read the PIN from the first line of standard input instead of asking twice",
    )


def _since(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (2026-05-01) or time (2026-05-01T08:30)"
        ) from None
    return value if value.tzinfo else value.astimezone()


def _read_pin(args: argparse.Namespace, number: str) -> str | None:
    """The new PIN, checked; None (after saying why on stderr) when there is none to use."""
    if args.pin_stdin:
        pin = sys.stdin.readline().strip()
    else:
        pin = getpass.getpass("New PIN (6 digits): ")
        if getpass.getpass("The same PIN again: ") != pin:
            print("kiosk staff: the two PINs differ; nothing changed", file=sys.stderr)
            return None
    try:
        check_pin(pin, number)
    except WeakPin as exc:
        print(f"kiosk staff: PIN refused: {exc}; nothing changed", file=sys.stderr)
        return None
    return pin


class _Stores:
    """The audit log and the staff store of the configured data directory."""

    def __init__(self, config: Config) -> None:
        self.audit = AuditLog(config.data_dir)
        try:
            self.staff = StaffStore(config.data_dir, audit=self.audit, config=config.staff)
        except BaseException:
            self.audit.close()
            raise

    def __enter__(self) -> _Stores:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.staff.close()
        self.audit.close()


def _staff_command(action: Callable[[_Stores], int]) -> Callable[[argparse.Namespace, Config], int]:
    """Run `action` on the stores, turning refusals and disk trouble into messages."""

    def run(args: argparse.Namespace, config: Config) -> int:
        del args
        try:
            with _Stores(config) as stores:
                return action(stores)
        except UnknownStaff as exc:
            print(f"kiosk staff: no staff number {exc.args[0]}", file=sys.stderr)
        except StaffError as exc:
            print(f"kiosk staff: {exc}; nothing changed", file=sys.stderr)
        except StorageError as exc:
            print(f"kiosk staff: {exc}", file=sys.stderr)
        return EXIT_FAILED

    return run


def _add(args: argparse.Namespace, config: Config) -> int:
    pin = _read_pin(args, args.number)
    if pin is None:
        return EXIT_FAILED

    def add(stores: _Stores) -> int:
        account = stores.staff.add(
            args.number, args.name, args.role, pin, badge_uid=args.badge, actor=cli_actor()
        )
        badge = f", badge {account.badge_hint}" if account.has_badge else ""
        print(f"added {account.staff_number} ({account.role}{badge})")
        return EXIT_OK

    return _staff_command(add)(args, config)


def _list(args: argparse.Namespace, config: Config) -> int:
    def show(stores: _Stores) -> int:
        now = dt.datetime.now().astimezone()
        accounts = stores.staff.list()
        if args.json:
            print(json.dumps({"staff": [a.as_json(now) for a in accounts]}, ensure_ascii=False))
            return EXIT_OK
        if not accounts:
            print("no staff accounts yet: `kiosk staff add --number N --name NAME --role R`")
        for a in accounts:
            state = "enabled" if a.enabled else "DISABLED"
            if a.locked(now) and a.locked_until is not None:
                state += f", locked until {a.locked_until:%H:%M:%S}"
            badge = a.badge_hint or "no badge"
            print(f"{a.staff_number:<12} {a.role:<10} {state:<32} {badge:<8} {a.name}")
        return EXIT_OK

    return _staff_command(show)(args, config)


def _disable(args: argparse.Namespace, config: Config) -> int:
    def disable(stores: _Stores) -> int:
        stores.staff.disable(args.number, actor=cli_actor())
        print(f"disabled {args.number}")
        return EXIT_OK

    return _staff_command(disable)(args, config)


def _set_pin(args: argparse.Namespace, config: Config) -> int:
    def exists(stores: _Stores) -> int:
        stores.staff.get(args.number)
        return EXIT_OK

    # Say "no such number" before asking for a PIN twice.
    if _staff_command(exists)(args, config) != EXIT_OK:
        return EXIT_FAILED
    pin = _read_pin(args, args.number)
    if pin is None:
        return EXIT_FAILED

    def set_pin(stores: _Stores) -> int:
        stores.staff.set_pin(args.number, pin, actor=cli_actor())
        print(f"new PIN set for {args.number}")
        return EXIT_OK

    return _staff_command(set_pin)(args, config)


def _set_badge(args: argparse.Namespace, config: Config) -> int:
    def set_badge(stores: _Stores) -> int:
        stores.staff.set_badge(args.number, None if args.clear else args.uid, actor=cli_actor())
        account = stores.staff.get(args.number)
        print(
            f"{args.number}: "
            + (f"badge {account.badge_hint}" if account.has_badge else "no badge")
        )
        return EXIT_OK

    return _staff_command(set_badge)(args, config)


def _verify(args: argparse.Namespace, config: Config) -> int:
    try:
        with AuditLog(config.data_dir) as audit:
            problem = audit.verify()
            count = audit.count() if problem is None or problem.kind != "unreadable" else 0
    except AuditError as exc:
        print(f"kiosk audit: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(
            json.dumps(
                {
                    "ok": problem is None,
                    "entries": count,
                    "problem": None if problem is None else problem.as_json(),
                }
            )
        )
    elif problem is None:
        print(f"audit log ok: {count} entries, chain and head verified")
    else:
        print(f"kiosk audit: the audit log does not verify: {problem}", file=sys.stderr)
    return EXIT_OK if problem is None else EXIT_FAILED


def _entry_line(entry: AuditEntry) -> str:
    details = " ".join(f"{k}={v}" for k, v in sorted(entry.details.items()))
    return f"{entry.seq:>6} {entry.at[:19]} {entry.actor:<16} {entry.action:<20} {details}"


def _audit_list(args: argparse.Namespace, config: Config) -> int:
    try:
        with AuditLog(config.data_dir) as audit:
            entries = audit.entries(since=args.since)
    except AuditError as exc:
        print(f"kiosk audit: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps({"entries": [e.as_json() for e in entries]}, ensure_ascii=False))
    else:
        for entry in entries:
            print(_entry_line(entry))
    return EXIT_OK
