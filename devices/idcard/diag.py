"""`kiosk diag idcard`: what the ID card reader sees, step by step, with masked card fields.

It opens the reader named by --reader (else devices.id_reader), checks the SAM (status, id),
waits for a card (on the simulated reader it taps the "adult" demo card), then selects, reads
and parses it, timing every step. Only masked fields are printed. Exit status 0 when the SAM
is well and a card was read, 1 when not, 2 for a reader spec that names no reader.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from devices.idcard.codec import IdCardError
from devices.idcard.factory import build_id_reader
from devices.idcard.photo import PhotoDecoder, UnlicensedPhotoDecoder, photo_image
from devices.idcard.reader import (
    KINDS_WITH_ADDRESS,
    ReaderSpecError,
    SamClient,
    SamSerialIdReader,
)
from devices.idcard.text import parse_text
from kiosk.config import Config
from kiosk.identity import IdentityDocument, mask_address, mask_id_number, mask_name
from kiosk.ports import SupportsDemoCards

DEMO_CARD = "adult"
DEFAULT_WAIT_S = 10.0
POLL_S = 0.1
KIND_NAMES = {
    "resident": "resident ID card (居民身份证)",
    "hk_mo_tw_permit": "HK/Macao/Taiwan residence permit (港澳台居民居住证)",
    "foreign_permanent_2017": "foreign permanent residence card, 2017 (外国人永久居留身份证)",
    "foreign_permanent_2023": "foreign permanent residence card, 2023 (外国人永久居留身份证)",
}

T = TypeVar("T")


@dataclass
class Step:
    """One timed step and what came of it."""

    name: str
    ok: bool
    result: str
    ms: float


@dataclass
class Report:
    """Everything `kiosk diag idcard` found out; `as_json()` is the --json object."""

    reader: str
    device: str
    baud: int
    steps: list[Step] = field(default_factory=list)
    sam_ok: bool = False
    sam_id: str | None = None
    card: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """The SAM is well and a card was read."""
        return self.sam_ok and self.card is not None and self.error is None

    def as_json(self) -> dict[str, Any]:
        """The report as one JSON-ready object."""
        return {
            "ok": self.ok,
            "reader": self.reader,
            "device": self.device,
            "baud": self.baud,
            "sam": {"ok": self.sam_ok, "id": self.sam_id},
            "steps": [
                {"step": s.name, "ok": s.ok, "result": s.result, "ms": round(s.ms, 2)}
                for s in self.steps
            ],
            "card": self.card,
            "error": self.error,
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `kiosk diag idcard` (--json, --config, --data-dir come from ui.cli)."""
    parser.add_argument(
        "--reader",
        metavar="SPEC",
        help="reader to test instead of devices.id_reader: 'simulated' or "
        "'serial:///dev/ttyUSB0?baud=115200&fingerprint=0'",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_S,
        metavar="SECONDS",
        help=f"how long to wait for a card on the reader (default {DEFAULT_WAIT_S:g})",
    )


class _Timer:
    def __init__(self, report: Report) -> None:
        self.report = report

    def __call__(self, name: str, action: Callable[[], T], describe: Callable[[T], str]) -> T:
        start = time.perf_counter()
        try:
            value = action()
        except IdCardError as exc:
            self.report.steps.append(Step(name, False, str(exc), _ms(start)))
            raise
        self.report.steps.append(Step(name, True, describe(value), _ms(start)))
        return value


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def masked_card(document: IdentityDocument, decoder: PhotoDecoder) -> dict[str, Any]:
    """The fields a technician may see: kind, masked name and number, validity, photo size."""
    image = photo_image(document.photo, decoder)
    photo = f"{len(document.photo)} bytes of WLT; " + (
        f"decoded by {decoder.name}" if image else f"{decoder.name}: a placeholder is shown"
    )
    return {
        "kind": document.kind,
        "kind_name": KIND_NAMES[document.kind],
        "name": mask_name(document.name),
        "english_name": mask_name(document.english_name),
        "id_number": mask_id_number(document.id_number),
        "address": mask_address(document.address),
        "valid_from": document.valid_from.isoformat(),
        "valid_to": document.valid_to.isoformat() if document.valid_to else "长期",
        "photo": photo,
    }


def diagnose(
    reader: SamSerialIdReader,
    spec: str,
    wait_s: float = DEFAULT_WAIT_S,
    decoder: PhotoDecoder | None = None,
) -> Report:
    """Run the SAM checks and one card read on `reader` (never started: no worker thread)."""
    report = Report(reader=spec, device=reader.device, baud=reader.baud)
    timed = _Timer(report)
    try:
        client = timed("open port", reader.open_client, lambda _c: f"{reader.baud} baud")
    except IdCardError as exc:
        report.error = f"the reader's port cannot be opened: {exc}"
        return report
    with client:
        try:
            timed("SAM status", client.sam_status, lambda _v: "ok")
        except IdCardError as exc:
            report.error = f"the SAM is not ready: {exc}"
            return report
        report.sam_ok = True
        try:
            report.sam_id = timed("SAM id", client.sam_id, str)
        except IdCardError:
            # Shown as a failed step; a SAM whose id cannot be read may still read cards.
            report.sam_id = None
        if isinstance(reader, SupportsDemoCards):
            reader.tap(DEMO_CARD)
        try:
            document = _read_one(reader, client, timed, wait_s)
        except IdCardError as exc:
            report.error = f"the card could not be read: {exc}"
            return report
        if document is None:
            report.error = f"no card was placed on the reader within {wait_s:g} s"
            return report
    report.card = masked_card(document, decoder or UnlicensedPhotoDecoder())
    return report


def _read_one(
    reader: SamSerialIdReader, client: SamClient, timed: _Timer, wait_s: float
) -> IdentityDocument | None:
    deadline = time.monotonic() + wait_s
    polls = 0
    while True:
        polls += 1
        found = timed("find card", client.find_card, lambda f: "card found" if f else "no card")
        if found:
            timed.report.steps[-1].result = f"card found (poll {polls})"
            break
        # Only the last "no card" poll is worth showing.
        timed.report.steps.pop()
        if time.monotonic() >= deadline:
            timed.report.steps.append(Step("find card", False, f"no card after {polls} polls", 0))
            return None
        time.sleep(POLL_S)
    timed("select card", client.select_card, lambda _v: "ok")
    step = "read base info + fingerprint" if reader.fingerprint else "read base info"
    info = timed(
        step,
        lambda: client.read_base(reader.fingerprint),
        lambda i: f"text {len(i.text)}, photo {len(i.photo)}, fingerprint {len(i.fingerprint)}",
    )
    document = timed("parse text", lambda: parse_text(info.text), lambda d: d.kind)
    if reader.appended_address and document.kind in KINDS_WITH_ADDRESS:
        addresses = timed(
            "read appended address",
            client.read_appended_addresses,
            lambda a: f"{len(a)} appended" if a else "none on the card",
        )
        if addresses:
            document = replace(document, address=addresses[-1])
    return replace(document, photo=info.photo)


def _print_text(report: Report) -> None:
    print(f"ID card reader: {report.reader} ({report.device} at {report.baud} baud)")
    width = max((len(s.name) for s in report.steps), default=10)
    for s in report.steps:
        mark = "ok  " if s.ok else "FAIL"
        print(f"  {mark} {s.name:<{width}}  {s.ms:8.1f} ms  {s.result}")
    if report.card is not None:
        card = report.card
        print("Card")
        rows = [
            ("kind", card["kind_name"]),
            ("name", card["name"]),
            ("English name", card["english_name"]),
            ("ID number", card["id_number"]),
            ("address", card["address"]),
            ("valid", f"{card['valid_from']} to {card['valid_to']}"),
            ("photo", card["photo"]),
        ]
        for label, value in rows:
            if value:
                print(f"  {label:<13} {value}")
    if report.ok:
        print("OK: the SAM answers and the card was read.")


def run(args: argparse.Namespace, config: Config) -> int:
    """`kiosk diag idcard`: 0 when the SAM is well and a card was read, else non-zero."""
    spec = args.reader or config.devices.id_reader
    try:
        reader = build_id_reader(spec)
    except ReaderSpecError as exc:
        print(f"kiosk diag idcard: {exc}", file=sys.stderr)
        return 2
    if not isinstance(reader, SamSerialIdReader):
        print(f"kiosk diag idcard: {spec!r} is not a SAM reader", file=sys.stderr)
        return 2
    report = diagnose(reader, spec, args.wait)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        _print_text(report)
    if report.error is not None:
        print(f"kiosk diag idcard: {report.error}", file=sys.stderr)
    return 0 if report.ok else 1
