"""Benchmarks for PC/SC: BER-TLV parsing, and card reads through a real pcscd with vpcd.

pcscd is started here when none runs (and stopped after); without pcscd and vpcd the live
rows say why they were not run instead of failing the whole benchmark run.
"""

from __future__ import annotations

import functools
import math
import queue
import statistics
import time

from common import Row, measure

from devices.pcsc import SmartCardEvent, SmartCardRemoved, SmartCardSeen, tlv
from devices.pcsc.reader import PcscCardReader, card_present, read_card
from devices.pcsc.virtual_card import VPCD_POLL_SECONDS, PcscDaemon, PcscdError, VirtualCard

TITLE = "PC/SC"
READER = "Virtual PCD 00 00"
BATCH = 100

# A UnionPay record as cards return it: track 2, name, PAN, expiry, sequence number, CDOL1.
RECORD = tlv.encode(
    0x70,
    tlv.encode(0x57, bytes.fromhex("6217000012341234D31082201000000000000F"))
    + tlv.encode(0x5F20, b"ZHANG/SAN                 ")
    + tlv.encode(0x5A, bytes.fromhex("6217000012341234"))
    + tlv.encode(0x5F24, bytes.fromhex("310831"))
    + tlv.encode(0x5F34, b"\x01")
    + tlv.encode(0x9F1F, b"0" * 20)
    + tlv.encode(0x8C, bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F37049F21039F4E14")),
)


def _not_run(what: str, why: str) -> Row:
    return (what, math.nan, math.nan, f"not run: {why}")


def _read(kind: str) -> None:
    event = read_card(READER)
    if not isinstance(event, SmartCardSeen) or event.kind != kind:
        raise RuntimeError(f"expected a {kind}, read {event!r}")


def _wait_present() -> None:
    deadline = time.monotonic() + 10
    while not card_present(READER):
        if time.monotonic() > deadline:
            raise RuntimeError("pcscd never saw the virtual card")
        time.sleep(0.05)


def _live(full: bool) -> list[Row]:
    rows: list[Row] = []
    repeat = 200 if full else 20
    for kind, script, what in (
        ("bank_card", "debit", "UnionPay debit card read: connect, PPSE, GPO, records"),
        ("social_security_card", "social", "Social security card read: SSSE, PSE, T=0 61xx/6Cxx"),
    ):
        card = VirtualCard(script)
        card.insert()
        try:
            _wait_present()
            median, p95 = measure(functools.partial(_read, kind), repeat)
        finally:
            card.remove()
        exchanges = len(card.commands) // (repeat + 1)  # +1: measure() warms up first
        rows.append((what, median, p95, f"through pcscd + vpcd, ~{exchanges} APDUs, n={repeat}"))

    events: queue.Queue[SmartCardEvent] = queue.Queue()
    reader = PcscCardReader(period_s=0.2)
    reader.start(events.put)
    cycles = 10 if full else 3
    times: list[float] = []
    try:
        for _ in range(cycles):
            card = VirtualCard("debit")
            start = time.perf_counter()
            card.insert()
            _next(events, SmartCardSeen)
            times.append((time.perf_counter() - start) * 1000)
            card.remove()
            _next(events, SmartCardRemoved)
            # Outside the timing: vpcd must poll the empty slot before the next card comes.
            time.sleep(VPCD_POLL_SECONDS + 0.25)
    finally:
        reader.stop()
    times.sort()
    rows.append(
        (
            "Card inserted -> SmartCardSeen event (hot-plug path)",
            statistics.median(times),
            times[max(0, int(len(times) * 0.95) - 1)],
            f"0-{VPCD_POLL_SECONDS} s waiting for pcscd to poll vpcd, then the read; n={cycles}",
        )
    )
    return rows


def _next(events: queue.Queue[SmartCardEvent], kind: type) -> None:
    while not isinstance(events.get(timeout=10), kind):
        pass


def run(full: bool) -> list[Row]:
    rows: list[Row] = []
    record_size = len(RECORD)

    def parse_batch() -> None:
        for _ in range(BATCH):
            tlv.parse(RECORD)

    median, p95 = measure(parse_batch, 200 if full else 20)
    rows.append(
        (
            f"BER-TLV parse of a {record_size}-byte UnionPay record, x{BATCH}",
            median,
            p95,
            f"{median * 1000 / BATCH:.1f} µs per record",
        )
    )
    live_rows = ["UnionPay debit card read", "Social security card read", "Card inserted"]
    try:
        with PcscDaemon.ensure() as daemon:
            note = "pcscd started for the run" if daemon.started_here else "the running pcscd"
            print(f"   ({note})", flush=True)
            rows += _live(full)
    except (PcscdError, RuntimeError, queue.Empty) as exc:
        rows += [_not_run(what, str(exc).splitlines()[0]) for what in live_rows]
    return rows
