"""PcscCardReader against a real pcscd, vsmartcard's vpcd reader and the project's VirtualCard.

The timeouts below only bound how long a test waits for an event that must come; nothing is
asserted about how fast it comes (that is benchmarks/bench_pcsc.py's business).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pcsc_service import pcscd  # noqa: F401 - the fixture, used by name below

from devices.pcsc import (
    SmartCardEvent,
    SmartCardFailed,
    SmartCardReaderAdded,
    SmartCardReaderRemoved,
    SmartCardRemoved,
    SmartCardSeen,
    apdu,
    diag,
)
from devices.pcsc.reader import PcscCardReader, card_present
from devices.pcsc.virtual_card import (
    BADGE_ATR,
    DEBIT_ATR,
    PcscDaemon,
    ScriptedCard,
    SocialSecurityCard,
    StaffBadge,
    UnionPayDebitCard,
    VirtualCard,
)
from kiosk.config import Config
from ui.cli import build_parser

pytestmark = pytest.mark.usefixtures("pcscd")

VPCD = "Virtual PCD 00 00"
WAIT = 10.0
ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """The listener: keeps every event, and lets a test wait for the next one it expects."""

    def __init__(self) -> None:
        self.events: list[SmartCardEvent] = []
        self._queue: queue.Queue[SmartCardEvent] = queue.Queue()
        self.threads: set[str] = set()

    def __call__(self, event: SmartCardEvent) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append(event)
        self._queue.put(event)

    def next(self, *kinds: type, reader: str = VPCD) -> SmartCardEvent:
        """The next event of one of `kinds` for `reader`, skipping others; fails after WAIT s."""
        while True:
            try:
                event = self._queue.get(timeout=WAIT)
            except queue.Empty:
                pytest.fail(f"no {[k.__name__ for k in kinds]} for {reader}; got {self.events}")
            if isinstance(event, kinds) and event.reader == reader:
                return event


@pytest.fixture
def vcard() -> Iterator[Callable[[ScriptedCard | str], VirtualCard]]:
    """Make virtual cards that are taken out at the end of the test, whatever happened."""
    made: list[VirtualCard] = []

    def make(card: ScriptedCard | str) -> VirtualCard:
        made.append(VirtualCard(card))
        return made[-1]

    yield make
    for card in made:
        card.remove()
    if made:  # the next test starts with pcscd knowing the slot is empty
        wait_until_present(VPCD, present=False)


MakeCard = Callable[[ScriptedCard | str], VirtualCard]


@pytest.fixture
def events() -> Iterator[Recorder]:
    """A started PcscCardReader whose listener records; the vpcd reader already announced."""
    wait_until_present(VPCD, present=False)  # no card left over from elsewhere
    recorder = Recorder()
    reader = PcscCardReader(period_s=0.2)
    reader.start(recorder)
    try:
        recorder.next(SmartCardReaderAdded)
        yield recorder
    finally:
        reader.stop()


def insert_and_read(card: VirtualCard, events: Recorder) -> SmartCardSeen | SmartCardFailed:
    card.insert()
    result = events.next(SmartCardSeen, SmartCardFailed)
    assert isinstance(result, SmartCardSeen | SmartCardFailed)
    return result


def remove(card: VirtualCard, events: Recorder) -> None:
    card.remove()
    events.next(SmartCardRemoved)


def test_staff_badge_in_and_out(events: Recorder, vcard: MakeCard) -> None:
    card = vcard(StaffBadge(uid=bytes.fromhex("04A2246A8B5C80")))
    seen = insert_and_read(card, events)
    assert seen == SmartCardSeen(VPCD, BADGE_ATR, bytes.fromhex("04A2246A8B5C80"), "staff_badge")
    remove(card, events)
    assert [type(e) for e in events.events].count(SmartCardRemoved) == 1
    assert "MainThread" not in events.threads  # called on pyscard's threads


def test_debit_card_gives_only_a_masked_pan(
    events: Recorder, vcard: MakeCard, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    script = UnionPayDebitCard(
        pan="6217000012341234", expiry=dt.date(2031, 8, 31), uid=bytes.fromhex("08A1B2C3")
    )
    card = vcard(script)
    seen = insert_and_read(card, events)
    remove(card, events)
    assert isinstance(seen, SmartCardSeen)
    assert (seen.kind, seen.atr, seen.uid) == ("bank_card", DEBIT_ATR, b"")
    assert (seen.masked_pan, seen.expiry) == ("6217 **** **** 1234", dt.date(2031, 8, 31))
    # Not in the logs, not in the event: the PAN (plain or as BCD hex), track 2, the UID.
    text = caplog.text + repr(events.events)
    for secret in ("6217000012341234", "08A1B2C3", "3108220"):
        assert secret not in text.upper()
    assert "bank_card" in caplog.text  # the logs were captured: the check above means something
    assert [apdu.name_of(c) for c in card.commands] == [
        "GET UID (PC/SC)",
        "SELECT sx1.sh.社会保障",
        "SELECT 2PAY.SYS.DDF01",
        "SELECT A000000333010101",
        "GET PROCESSING OPTIONS",
        "READ RECORD 1 of SFI 1",
        "READ RECORD 1 of SFI 2",
    ]
    assert not script.generate_ac_seen


def test_social_security_card_through_61xx_and_6cxx(events: Recorder, vcard: MakeCard) -> None:
    script = SocialSecurityCard(card_number="A12345678", pan="6214830012345678903")
    card = vcard(script)
    seen = insert_and_read(card, events)
    remove(card, events)
    assert isinstance(seen, SmartCardSeen)
    assert seen.kind == "social_security_card"
    assert (seen.masked_card_number, seen.masked_pan) == ("A******78", "6214 **** **** *** 8903")
    sent = card.commands
    assert bytes.fromhex("00B2072C00") in sent and bytes.fromhex("00B2072C0B") in sent  # 6C0B
    assert sum(c[:2] == b"\x00\xc0" for c in sent) >= 3  # GET RESPONSE after each 61xx
    assert "SELECT 1PAY.SYS.DDF01" in [apdu.name_of(c) for c in sent]  # PSE after no PPSE


def test_garbage_card_is_reported_and_the_reader_carries_on(
    events: Recorder, vcard: MakeCard
) -> None:
    card = vcard("garbage")
    failed = insert_and_read(card, events)
    assert isinstance(failed, SmartCardFailed)
    assert "not BER-TLV" in failed.reason
    remove(card, events)
    badge = vcard("badge")
    assert insert_and_read(badge, events).reader == VPCD
    remove(badge, events)


def test_card_leaving_mid_read_is_reported_then_removed(events: Recorder, vcard: MakeCard) -> None:
    card = vcard("vanishing")
    failed = insert_and_read(card, events)
    assert isinstance(failed, SmartCardFailed)
    assert "GET PROCESSING OPTIONS" in failed.reason and "removed" in failed.reason
    events.next(SmartCardRemoved)  # the card left by itself
    assert not card.inserted
    debit = vcard("debit")  # vpcd must have noticed the departure first: insert() waits
    seen = insert_and_read(debit, events)
    assert isinstance(seen, SmartCardSeen) and seen.kind == "bank_card"
    remove(debit, events)


def test_a_card_already_there_is_reported_at_start() -> None:
    card = VirtualCard("badge")
    card.insert()
    try:
        wait_until_present(VPCD)
        recorder = Recorder()
        reader = PcscCardReader()
        reader.start(recorder)
        try:
            seen = recorder.next(SmartCardSeen)
            assert isinstance(seen, SmartCardSeen) and seen.kind == "staff_badge"
            added = [e for e in recorder.events if isinstance(e, SmartCardReaderAdded)]
            assert recorder.events.index(added[0]) < recorder.events.index(seen)
        finally:
            reader.stop()
    finally:
        remove_and_wait(card)


def test_stop_is_idempotent_silences_the_listener_and_ends_pyscards_threads() -> None:
    recorder = Recorder()
    reader = PcscCardReader(period_s=0.2)
    reader.start(recorder)
    recorder.next(SmartCardReaderAdded)
    reader.stop()
    reader.stop()
    before = len(recorder.events)
    card = VirtualCard("badge")
    card.insert()
    wait_until_present(VPCD)
    remove_and_wait(card)
    assert len(recorder.events) == before
    names = [t.name for t in threading.enumerate()]
    assert "smartcard.ReaderMonitoringThread" not in names
    from smartcard.CardMonitoring import CardMonitoringThread

    assert CardMonitoringThread.instance is None
    # and a new reader can start in the same process
    again = Recorder()
    second = PcscCardReader()
    second.start(again)
    try:
        again.next(SmartCardReaderAdded)
    finally:
        second.stop()


def test_a_listener_that_raises_does_not_stop_the_reader(
    vcard: MakeCard, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()

    def clumsy(event: SmartCardEvent) -> None:
        recorder(event)
        if isinstance(event, SmartCardReaderAdded):
            raise RuntimeError("a bug in the listener")

    reader = PcscCardReader(period_s=0.2)
    reader.start(clumsy)
    try:
        recorder.next(SmartCardReaderAdded)
        card = vcard("badge")
        card.insert()
        seen = recorder.next(SmartCardSeen, SmartCardFailed)
        assert isinstance(seen, SmartCardSeen) and seen.kind == "staff_badge"
        remove(card, recorder)
    finally:
        reader.stop()
    assert "the smart card listener failed on SmartCardReaderAdded" in caplog.text


def test_stop_from_inside_the_listener() -> None:
    stopped = threading.Event()
    reader = PcscCardReader(period_s=0.2)

    def stop_at_once(event: SmartCardEvent) -> None:
        reader.stop()
        stopped.set()

    reader.start(stop_at_once)
    assert stopped.wait(WAIT)
    # pyscard's threads end just after; then another reader can start in this process
    again = Recorder()
    other = PcscCardReader(period_s=0.2)
    deadline = threading.Event()
    timer = threading.Timer(WAIT, deadline.set)
    timer.start()
    try:
        while True:
            try:
                other.start(again)
                break
            except RuntimeError:
                if deadline.wait(0.05):
                    raise
        again.next(SmartCardReaderAdded)
    finally:
        timer.cancel()
        other.stop()


def test_pcscd_restart_is_survived(request: pytest.FixtureRequest, vcard: MakeCard) -> None:
    daemon: PcscDaemon = request.getfixturevalue("pcscd")
    if not daemon.started_here:
        pytest.skip("pcscd was already running when the tests began: not ours to restart")
    recorder = Recorder()
    reader = PcscCardReader(period_s=0.2)
    reader.start(recorder)
    try:
        recorder.next(SmartCardReaderAdded)
        badge = vcard("badge")
        badge.insert()
        recorder.next(SmartCardSeen)
        daemon.restart(while_stopped=lambda: recorder.next(SmartCardReaderRemoved))
        recorder.next(SmartCardReaderAdded)
        seen = recorder.next(SmartCardSeen, SmartCardFailed)  # the badge, seen afresh
        assert isinstance(seen, SmartCardSeen) and seen.kind == "staff_badge"
        removed = [e for e in recorder.events if isinstance(e, SmartCardRemoved)]
        assert removed == [SmartCardRemoved(VPCD)], recorder.events  # while pcscd was away
        badge.remove()
        recorder.next(SmartCardRemoved)
        debit = vcard("debit")
        debit.insert()
        seen = recorder.next(SmartCardSeen, SmartCardFailed)
        assert isinstance(seen, SmartCardSeen) and seen.kind == "bank_card"
    finally:
        reader.stop()


def wait_until_present(name: str, present: bool = True) -> None:
    """Until pcscd has noticed the card in `name` come (or go): it polls vpcd every 0.4 s."""
    deadline = threading.Event()
    timer = threading.Timer(WAIT, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            if card_present(name) == present:
                return
            deadline.wait(0.05)
    finally:
        timer.cancel()
    pytest.fail(f"pcscd never saw the card in {name} {'come' if present else 'go'}")


def remove_and_wait(card: VirtualCard) -> None:
    """Take the card out with no reader running, and wait until pcscd knows (for the next test)."""
    card.remove()
    wait_until_present(VPCD, present=False)


# kiosk diag pcsc ------------------------------------------------------------------------------


def run_diag(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    args = build_parser().parse_args(["diag", "pcsc", *argv])
    status = diag.run(args, Config())
    out, err = capsys.readouterr()
    return status, out, err


def test_diag_virtual_debit_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_diag(["--virtual", "debit", "--json"], capsys)
    assert status == 0
    report = json.loads(out)
    card = report["readers"][0]["card"]
    assert card["kind"] == "bank_card" and card["masked_pan"] == "6217 **** **** 1234"
    assert card["expiry"] == "2031-08-31" and card["uid"] == ""
    assert [s["what"] for s in card["steps"]][-1].startswith("READ RECORD")
    assert [e["event"] for e in report["events"]][-2:] == ["SmartCardSeen", "SmartCardRemoved"]
    assert "6217000012341234" not in out


def test_diag_virtual_garbage_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_diag(["--virtual", "garbage"], capsys)
    assert status == diag.EXIT_UNREADABLE
    assert "card NOT read" in out and "not BER-TLV" in out


def test_diag_reads_the_card_present(capsys: pytest.CaptureFixture[str]) -> None:
    card = VirtualCard("social")
    card.insert()
    try:
        wait_until_present(VPCD)
        status, out, _ = run_diag(["--json"], capsys)
    finally:
        remove_and_wait(card)
    assert status == 0
    readers = {r["name"]: r["card"] for r in json.loads(out)["readers"]}
    assert readers[VPCD]["kind"] == "social_security_card"
    assert readers[VPCD]["masked_card_number"] == "A******78"
    assert readers["Virtual PCD 00 01"] is None


def test_diag_says_plainly_when_pcscd_is_not_there() -> None:
    # The PC/SC client library looks for pcscd where this variable says: nowhere.
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": "/nonexistent/pcscd.comm"}
    result = subprocess.run(
        [sys.executable, "-c", "from ui.cli import main; raise SystemExit(main(['diag', 'pcsc']))"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == diag.EXIT_NO_SERVICE
    assert "pcscd is not running" in result.stderr
    assert "Traceback" not in result.stderr
