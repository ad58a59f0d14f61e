"""`kiosk diag pcsc`: the PC/SC readers, and for a card in one: ATR, UID, kind, masked PAN.

`--virtual KIND` starts pcscd when none runs, inserts a virtual card through vpcd and shows
what the kiosk's reader reports, end to end (hot-plug events included).

Exit status: 0 read, 1 pcscd or no reader, 3 a card was there but could not be read.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time
from typing import Any

from devices.pcsc import (
    SmartCardEvent,
    SmartCardFailed,
    SmartCardReaderAdded,
    SmartCardRemoved,
    SmartCardSeen,
)
from devices.pcsc.apdu import Exchange
from devices.pcsc.virtual_card import CARDS
from kiosk.config import Config

EXIT_OK = 0
EXIT_NO_SERVICE = 1
EXIT_UNREADABLE = 3
WAIT_SECONDS = 10.0
KIND_NAMES = {
    "staff_badge": "staff badge",
    "bank_card": "bank card",
    "social_security_card": "social security card",
    "unknown": "unknown card",
}
VIRTUAL_KINDS = tuple(CARDS)
# pyscard is imported inside run(): every `kiosk` command loads this module to build its help.


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `kiosk diag pcsc`."""
    parser.add_argument(
        "--virtual",
        metavar="KIND",
        choices=VIRTUAL_KINDS,
        help="start pcscd if needed and insert a virtual card through vpcd: "
        + ", ".join(VIRTUAL_KINDS),
    )


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


def _card(event: SmartCardSeen | SmartCardFailed | None, steps: list[Exchange]) -> Any:
    if event is None:
        return None
    out: dict[str, Any] = {"atr": _hex(event.atr)}
    if isinstance(event, SmartCardFailed):
        out |= {"read": False, "reason": event.reason}
    else:
        out |= {
            "read": True,
            "kind": event.kind,
            "uid": _hex(event.uid),
            "masked_pan": event.masked_pan,
            "expiry": event.expiry.isoformat() if event.expiry else None,
            "masked_card_number": event.masked_card_number,
            "elapsed_ms": round(event.elapsed_ms, 1),
        }
    out["steps"] = [
        {
            "command": s.header,
            "what": s.name,
            "sw": f"{s.sw:04X}",
            "bytes": s.length,
            "ms": round(s.ms, 2),
        }
        for s in steps
    ]
    return out


def _event(event: SmartCardEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"event": type(event).__name__, "reader": event.reader}
    if isinstance(event, SmartCardSeen):
        out["kind"] = event.kind
    if isinstance(event, SmartCardFailed):
        out["reason"] = event.reason
    return out


def _print_text(report: dict[str, Any]) -> None:
    pcscd = report["pcscd"]
    note = " (started for this run, stopped after)" if pcscd.get("started_here") else ""
    print(f"pcscd: running, pid {pcscd.get('pid') or '?'}{note}")
    if report.get("virtual"):
        print(f"virtual card: {report['virtual']}")
    print(f"readers: {len(report['readers'])}")
    for reader in report["readers"]:
        card = reader["card"]
        if card is None:
            print(f"  {reader['name']}: no card")
            continue
        if not card["read"]:
            print(f"  {reader['name']}: card NOT read: {card['reason']}")
        else:
            print(
                f"  {reader['name']}: {KIND_NAMES[card['kind']]}, read in {card['elapsed_ms']} ms"
            )
        print(f"    ATR          {card['atr']}")
        if card.get("uid"):
            print(f"    UID          {card['uid']}")
        if card.get("masked_pan"):
            print(f"    PAN          {card['masked_pan']}, expires {card['expiry'] or '?'}")
        if card.get("masked_card_number"):
            print(f"    card number  {card['masked_card_number']}")
        for step in card["steps"]:
            print(
                f"      {step['command']} -> {step['sw']} {step['bytes']:>4} B "
                f"{step['ms']:7.2f} ms  {step['what']}"
            )
    for event in report.get("events", []):
        detail = event.get("kind") or event.get("reason") or ""
        print(f"  event: {event['event']} {event['reader']} {detail}".rstrip())


def _fail(args: argparse.Namespace, message: str, status: int) -> int:
    if args.json:
        print(json.dumps({"ok": False, "error": message}, ensure_ascii=False))
    else:
        print(f"kiosk diag pcsc: {message}", file=sys.stderr)
    return status


def run(args: argparse.Namespace, config: Config) -> int:
    """Report what the PC/SC readers see; with --virtual, insert a virtual card first."""
    del config  # PC/SC needs no settings: pcscd finds the readers
    if args.virtual:
        return _run_virtual(args)
    from devices.pcsc.reader import PcscUnavailable, list_readers, read_card
    from devices.pcsc.virtual_card import pcscd_pid

    try:
        names = list_readers()
    except PcscUnavailable:
        return _fail(
            args,
            "pcscd is not running. Start it (as root: `systemctl start pcscd`, or `pcscd -f`), "
            "or try `kiosk diag pcsc --virtual debit`.",
            EXIT_NO_SERVICE,
        )
    if not names:
        return _fail(args, "pcscd runs but sees no reader: is one plugged in?", EXIT_NO_SERVICE)
    report: dict[str, Any] = {"ok": True, "pcscd": {"pid": pcscd_pid()}, "readers": []}
    status = EXIT_OK
    for name in names:
        steps: list[Exchange] = []
        event = read_card(name, trace=steps.append)
        if isinstance(event, SmartCardFailed):
            status = EXIT_UNREADABLE
        report["readers"].append({"name": name, "card": _card(event, steps)})
    _output(args, report)
    return status


def _output(args: argparse.Namespace, report: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_text(report)


def _run_virtual(args: argparse.Namespace) -> int:
    from devices.pcsc.reader import PcscCardReader, PcscUnavailable, card_present, list_readers
    from devices.pcsc.virtual_card import (
        VPCD_READER_PREFIX,
        PcscDaemon,
        PcscdError,
        VirtualCard,
        VpcdUnavailable,
    )

    try:
        daemon = PcscDaemon.ensure(lock_timeout=WAIT_SECONDS)
    except PcscdError as exc:
        return _fail(args, str(exc), EXIT_NO_SERVICE)
    with daemon:
        try:
            reader_name = next(r for r in list_readers() if r.startswith(VPCD_READER_PREFIX))
            # A card that just left may still count as present for up to one pcscd poll; the
            # card monitor would report it. Start with the slot empty.
            deadline = time.monotonic() + WAIT_SECONDS
            while card_present(reader_name):
                if time.monotonic() > deadline:
                    return _fail(args, f"{reader_name} holds a card already", EXIT_NO_SERVICE)
                time.sleep(0.05)
        except (PcscUnavailable, StopIteration) as exc:
            return _fail(args, f"the vpcd reader went away: {exc}", EXIT_NO_SERVICE)
        events: queue.Queue[SmartCardEvent] = queue.Queue()
        seen: list[dict[str, Any]] = []
        steps: list[Exchange] = []
        reader = PcscCardReader(trace=steps.append)
        card = VirtualCard(args.virtual)

        def wait_for(*kinds: type[Any]) -> SmartCardEvent | None:
            try:
                while True:
                    event = events.get(timeout=WAIT_SECONDS)
                    seen.append(_event(event))
                    wanted = isinstance(event, kinds)  # not narrowing `event` to Any
                    if wanted and event.reader == reader_name:
                        return event
            except queue.Empty:
                return None

        reader.start(events.put)
        try:
            if wait_for(SmartCardReaderAdded) is None:
                return _fail(args, f"the reader {reader_name} was not reported", EXIT_NO_SERVICE)
            try:
                card.insert()
            except VpcdUnavailable as exc:
                return _fail(args, str(exc), EXIT_NO_SERVICE)
            result = wait_for(SmartCardSeen, SmartCardFailed)
            card.remove()
            wait_for(SmartCardRemoved)
        finally:
            card.remove()
            reader.stop()
        if not isinstance(result, SmartCardSeen | SmartCardFailed):
            return _fail(args, "the virtual card was not reported", EXIT_NO_SERVICE)
        report = {
            "ok": True,
            "pcscd": {"pid": daemon.pid, "started_here": daemon.started_here},
            "virtual": args.virtual,
            "readers": [{"name": reader_name, "card": _card(result, steps)}],
            "events": seen,
        }
    _output(args, report)
    return EXIT_UNREADABLE if isinstance(result, SmartCardFailed) else EXIT_OK
