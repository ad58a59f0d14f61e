"""SamSerialIdReader end to end against the wire-level simulator: cards, faults, reconnects."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devices.idcard import FrameError, SamSerialIdReader, SimulatedIdCardReader
from devices.idcard.codec import (
    FIND_CARD,
    READ_ADDRESS,
    READ_BASE,
    SELECT_CARD,
    FrameChecksumError,
    FrameLengthError,
    IdCardError,
    NoFrameError,
    TruncatedFrame,
    decode_frame,
    encode_command,
)
from devices.idcard.factory import build_id_reader
from devices.idcard.reader import (
    PortGone,
    ReaderSpec,
    ReaderSpecError,
    ReaderTimeout,
    SamClient,
    SamStatusError,
    SamUnavailable,
    StepTimeouts,
)
from devices.idcard.simulator import (
    UNREADABLE_KEY,
    SimulatedSamDevice,
    SimulatedSamPty,
    SimulatedSerialPort,
    card_from_document,
    demo_sim_cards,
)
from kiosk.demo import DEMO_CARDS
from kiosk.i18n import Text
from kiosk.ports import (
    CardPlaced,
    CardRead,
    CardRemoved,
    IdDocumentReader,
    ReaderBack,
    ReaderEvent,
    ReaderLost,
    ReadFailed,
    SupportsDemoCards,
)

TIMEOUT = 10.0
ADULT = DEMO_CARDS["adult"][1]
# Short waits between polls keep the suite fast. The step timeouts are cut too: without
# wire timing the simulator answers at once, so only the silence faults ever wait them out.
POLL = 0.005
RECONNECT = 0.01
STEPS = StepTimeouts(base=0.4, fingerprint=0.4, address=0.4)


class Recorder:
    """A reader listener that records events and the thread each one arrived on."""

    def __init__(self, fail_on: type | None = None) -> None:
        self.events: list[ReaderEvent] = []
        self.threads: list[threading.Thread] = []
        self._fail_on = fail_on
        self._changed = threading.Condition()

    def __call__(self, event: ReaderEvent) -> None:
        with self._changed:
            self.events.append(event)
            self.threads.append(threading.current_thread())
            self._changed.notify_all()
        if self._fail_on is not None and isinstance(event, self._fail_on):
            raise RuntimeError("listener bug")

    def wait_for(self, predicate: Callable[[list[ReaderEvent]], bool]) -> list[ReaderEvent]:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.events), timeout=TIMEOUT):
                raise AssertionError(f"timed out; events so far: {self.events}")
            return list(self.events)

    def wait_count(self, count: int) -> list[ReaderEvent]:
        return self.wait_for(lambda events: len(events) >= count)

    def wait_kind(self, kind: type, count: int = 1) -> list[ReaderEvent]:
        return self.wait_for(lambda events: sum(isinstance(e, kind) for e in events) >= count)


def kinds(events: list[ReaderEvent]) -> list[type]:
    return [type(e) for e in events]


def without_photo(event: ReaderEvent) -> object:
    assert isinstance(event, CardRead)
    return dataclasses.replace(event.document, photo=b"")


@pytest.fixture
def sim() -> SimulatedSamDevice:
    cards = demo_sim_cards()
    extra = [
        card_from_document("fingerprint", ADULT, fingerprint=True),
        card_from_document(
            "moved", ADULT, appended_addresses=("甲地 1 号", "浙江省宁波市海曙区 2 号")
        ),
    ]
    return SimulatedSamDevice([*cards.values(), *extra], realtime=False)


@pytest.fixture
def make_reader(sim: SimulatedSamDevice) -> Iterator[Callable[..., SamSerialIdReader]]:
    readers: list[SamSerialIdReader] = []

    def make(baud: int = 115200, fingerprint: bool = False) -> SamSerialIdReader:
        reader = SamSerialIdReader(
            "simulated",
            baud,
            fingerprint=fingerprint,
            opener=sim.open,
            timeouts=STEPS,
            poll_interval=POLL,
            reconnect_interval=RECONNECT,
        )
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        reader.stop()


@pytest.fixture
def running(make_reader: Callable[..., SamSerialIdReader]) -> tuple[SamSerialIdReader, Recorder]:
    reader = make_reader()
    recorder = Recorder()
    reader.start(recorder)
    return reader, recorder


@pytest.fixture
def demo() -> Iterator[SimulatedIdCardReader]:
    reader = SimulatedIdCardReader(
        realtime=False, timeouts=STEPS, poll_interval=POLL, reconnect_interval=RECONNECT
    )
    yield reader
    reader.stop()


# The demo reader: the real reader code on the simulator -------------------------------------


def test_demo_reader_implements_the_ports(demo: SimulatedIdCardReader) -> None:
    assert isinstance(demo, IdDocumentReader)
    assert isinstance(demo, SupportsDemoCards)
    assert isinstance(demo, SamSerialIdReader)
    cards = demo.demo_cards()
    assert [key for key, _ in cards] == [*DEMO_CARDS, UNREADABLE_KEY]
    assert cards[-1][1] == Text("损坏的卡（读卡失败）", "Damaged card (read fails)")
    with pytest.raises(ValueError, match="no demo card"):
        demo.tap("nobody")


@pytest.mark.parametrize("key", list(DEMO_CARDS))
def test_each_demo_card_is_read_end_to_end_on_the_worker(
    demo: SimulatedIdCardReader, key: str
) -> None:
    recorder = Recorder()
    demo.start(recorder)
    demo.tap(key)
    events = recorder.wait_count(3)
    assert kinds(events) == [CardPlaced, CardRead, CardRemoved]
    assert without_photo(events[1]) == DEMO_CARDS[key][1]
    read = events[1]
    assert isinstance(read, CardRead)
    assert read.document.photo == demo.sim.cards[key].photo and len(read.document.photo) == 1024
    assert all(t is not threading.main_thread() for t in recorder.threads)
    # The wire saw the GA/T 467 sequence: find, select, read base info, then the address.
    sequence = [(x.cmd, x.para) for x in demo.sim.exchanges if (x.cmd, x.para) != FIND_CARD[:2]]
    expected = [SELECT_CARD[:2], READ_BASE[:2]]
    if DEMO_CARDS[key][1].kind in ("resident", "hk_mo_tw_permit"):
        expected.append(READ_ADDRESS[:2])
    assert sequence[-len(expected) :] == expected


def test_damaged_card_fails_without_data(demo: SimulatedIdCardReader) -> None:
    recorder = Recorder()
    demo.start(recorder)
    demo.tap(UNREADABLE_KEY)
    events = recorder.wait_count(3)
    assert kinds(events) == [CardPlaced, ReadFailed, CardRemoved]
    failed = events[1]
    assert isinstance(failed, ReadFailed)
    assert "FrameChecksumError" in failed.reason and "read base info" in failed.reason


def test_card_pulled_mid_read_gives_card_removed_and_no_card_read(
    demo: SimulatedIdCardReader,
) -> None:
    recorder = Recorder()
    demo.start(recorder)
    demo.sim.pull_during_read(after_bytes=500)
    demo.tap("adult")
    recorder.wait_kind(CardRemoved)
    demo.tap("elderly")
    events = recorder.wait_count(5)
    assert kinds(events) == [CardPlaced, CardRemoved, CardPlaced, CardRead, CardRemoved]
    assert without_photo(events[3]) == DEMO_CARDS["elderly"][1]


def test_card_pulled_by_hand_during_a_real_time_read() -> None:
    # 9600 baud: the base-info frame takes 1.35 s, so the pull surely lands inside it.
    reader = SimulatedIdCardReader(
        realtime=True, baud=9600, poll_interval=POLL, reconnect_interval=RECONNECT
    )
    recorder = Recorder()
    reader.start(recorder)
    try:
        reader.tap("adult")
        recorder.wait_kind(CardPlaced)
        reader.pull()
        events = recorder.wait_count(2)
        assert kinds(events) == [CardPlaced, CardRemoved]
    finally:
        reader.stop()
    assert not any(isinstance(e, CardRead | ReadFailed) for e in recorder.events)


def test_fingerprint_variant_reads_the_2321_byte_frame(
    sim: SimulatedSamDevice, make_reader: Callable[..., SamSerialIdReader]
) -> None:
    reader = make_reader(fingerprint=True)
    recorder = Recorder()
    reader.start(recorder)
    sim.place("fingerprint", lift_after_read=True)
    events = recorder.wait_count(3)
    assert kinds(events) == [CardPlaced, CardRead, CardRemoved]
    assert without_photo(events[1]) == ADULT
    answer = [x for x in sim.exchanges if (x.cmd, x.para) == (0x30, 0x10)]
    assert [x.answer_bytes for x in answer] == [2321]
    assert "read_fingerprint" in reader.last_timings


def test_the_latest_appended_address_is_the_address(
    sim: SimulatedSamDevice, running: tuple[SamSerialIdReader, Recorder]
) -> None:
    _reader, recorder = running
    sim.place("moved", lift_after_read=True)
    read = recorder.wait_kind(CardRead)[1]
    assert isinstance(read, CardRead)
    assert read.document.address == "浙江省宁波市海曙区 2 号"


def test_a_sam_without_the_address_command_is_not_asked_again(
    sim: SimulatedSamDevice, running: tuple[SamSerialIdReader, Recorder]
) -> None:
    _reader, recorder = running
    sim.fail_next(0x21, READ_ADDRESS)  # command error: this SAM does not know 30 03
    sim.place("moved", lift_after_read=True)
    recorder.wait_kind(CardRemoved)
    sim.place("adult", lift_after_read=True)
    events = recorder.wait_kind(CardRemoved, 2)
    assert kinds(events) == [CardPlaced, CardRead, CardRemoved] * 2
    assert without_photo(events[1]) == ADULT  # the face address, the appended one unknown
    asked = [x for x in sim.exchanges if (x.cmd, x.para) == READ_ADDRESS[:2]]
    assert len(asked) == 1


# Faults --------------------------------------------------------------------------------------

READ_FAULTS: dict[str, tuple[Callable[[SimulatedSamDevice], None], str]] = {
    "checksum": (lambda s: s.corrupt_checksum(READ_BASE), "FrameChecksumError"),
    "length": (lambda s: s.corrupt_length(READ_BASE), "FrameLengthError"),
    "garbage": (lambda s: s.answer_garbage(40, READ_BASE), "NoFrameError"),
    "silence mid-read": (lambda s: s.answer_garbage(0, READ_BASE), "ReaderTimeout"),
    "read failed 41": (lambda s: s.fail_next(0x41, READ_BASE), "reading the card failed"),
    "card auth 31": (lambda s: s.fail_next(0x31, READ_BASE), "failed to authenticate the SAM"),
    "SAM auth 32": (lambda s: s.fail_next(0x32, READ_BASE), "SAM failed to authenticate"),
    "verification 33": (lambda s: s.fail_next(0x33, READ_BASE), "verification"),
    "card type 40": (lambda s: s.fail_next(0x40, READ_BASE), "card type"),
    "random 47": (lambda s: s.fail_next(0x47, READ_BASE), "random"),
    "select 81": (lambda s: s.fail_next(0x81, SELECT_CARD), "selecting the card failed"),
}


@pytest.mark.parametrize("fault", list(READ_FAULTS))
def test_faults_during_a_read_give_read_failed_and_the_next_card_reads(
    sim: SimulatedSamDevice, running: tuple[SamSerialIdReader, Recorder], fault: str
) -> None:
    _reader, recorder = running
    trigger, reason = READ_FAULTS[fault]
    trigger(sim)
    sim.place("adult")
    failed = recorder.wait_kind(ReadFailed)[-1]
    assert isinstance(failed, ReadFailed) and reason in failed.reason
    sim.pull()
    recorder.wait_kind(CardRemoved)
    sim.place("elderly", lift_after_read=True)
    events = recorder.wait_kind(CardRemoved, 2)
    assert kinds(events) == [CardPlaced, ReadFailed, CardRemoved, CardPlaced, CardRead, CardRemoved]
    assert without_photo(events[4]) == DEMO_CARDS["elderly"][1]


def test_noise_before_answers_is_skipped(
    sim: SimulatedSamDevice, running: tuple[SamSerialIdReader, Recorder]
) -> None:
    _reader, recorder = running
    sim.answer_noise(25, FIND_CARD, times=3)
    sim.answer_noise(9, READ_BASE)
    sim.place("adult", lift_after_read=True)
    events = recorder.wait_count(3)
    assert kinds(events) == [CardPlaced, CardRead, CardRemoved]


def test_one_garbled_poll_does_not_lose_the_reader(
    sim: SimulatedSamDevice, running: tuple[SamSerialIdReader, Recorder]
) -> None:
    _reader, recorder = running
    sim.answer_garbage(16, FIND_CARD)
    sim.corrupt_checksum(FIND_CARD)
    sim.place("adult", lift_after_read=True)
    events = recorder.wait_count(3)
    assert kinds(events) == [CardPlaced, CardRead, CardRemoved]


def test_a_silent_reader_is_lost_and_comes_back(
    sim: SimulatedSamDevice, running: tuple[SamSerialIdReader, Recorder]
) -> None:
    _reader, recorder = running
    sim.go_silent()
    lost = recorder.wait_count(1)[0]
    assert isinstance(lost, ReaderLost) and "no answer" in lost.reason
    sim.speak()
    recorder.wait_kind(ReaderBack)
    sim.place("adult", lift_after_read=True)
    events = recorder.wait_count(4)
    assert kinds(events) == [ReaderLost, ReaderBack, CardPlaced, CardRead]


@pytest.mark.parametrize(("sw3", "meaning"), [(0x60, "self-test failed"), (0x66, "not authorised")])
def test_a_failed_sam_is_lost_until_repaired(
    sim: SimulatedSamDevice, running: tuple[SamSerialIdReader, Recorder], sw3: int, meaning: str
) -> None:
    _reader, recorder = running
    sim.fail_sam(sw3)
    lost = recorder.wait_count(1)[0]
    assert isinstance(lost, ReaderLost) and meaning in lost.reason
    sim.fail_sam(None)
    recorder.wait_kind(ReaderBack)
    sim.place("adult", lift_after_read=True)
    assert kinds(recorder.wait_count(4)) == [ReaderLost, ReaderBack, CardPlaced, CardRead]


def test_a_sam_broken_at_start_is_reported_lost_first(
    sim: SimulatedSamDevice, make_reader: Callable[..., SamSerialIdReader]
) -> None:
    sim.fail_sam(0x60)
    reader = make_reader()
    recorder = Recorder()
    reader.start(recorder)
    assert isinstance(recorder.wait_count(1)[0], ReaderLost)
    assert reader.sam_id is None
    sim.fail_sam(None)
    recorder.wait_kind(ReaderBack)
    assert reader.sam_id == "05.01-20230915-000012345-001234567"


def test_port_gone_and_back(
    sim: SimulatedSamDevice, running: tuple[SamSerialIdReader, Recorder]
) -> None:
    _reader, recorder = running
    sim.place("adult", lift_after_read=True)
    recorder.wait_kind(CardRemoved)
    sim.unplug()
    lost = recorder.wait_kind(ReaderLost)[-1]
    assert isinstance(lost, ReaderLost) and "the port failed" in lost.reason
    sim.place("elderly", lift_after_read=True)  # placed while the reader is away
    sim.replug()
    events = recorder.wait_kind(CardRemoved, 2)
    assert kinds(events) == [
        CardPlaced,
        CardRead,
        CardRemoved,
        ReaderLost,
        ReaderBack,
        CardPlaced,
        CardRead,
        CardRemoved,
    ]
    assert without_photo(events[6]) == DEMO_CARDS["elderly"][1]


def test_port_missing_at_start(
    sim: SimulatedSamDevice, make_reader: Callable[..., SamSerialIdReader]
) -> None:
    sim.unplug()
    reader = make_reader()
    recorder = Recorder()
    reader.start(recorder)
    lost = recorder.wait_count(1)[0]
    assert isinstance(lost, ReaderLost) and "cannot open" in lost.reason
    sim.replug()
    recorder.wait_kind(ReaderBack)
    sim.place("adult", lift_after_read=True)
    assert kinds(recorder.wait_count(4)) == [ReaderLost, ReaderBack, CardPlaced, CardRead]


def test_wrong_baud_rate_gets_no_answer(
    sim: SimulatedSamDevice, make_reader: Callable[..., SamSerialIdReader]
) -> None:
    reader = make_reader(baud=9600)
    recorder = Recorder()
    reader.start(recorder)
    lost = recorder.wait_count(1)[0]
    assert isinstance(lost, ReaderLost) and "no answer" in lost.reason


def test_a_listener_that_raises_does_not_kill_the_loop(
    demo: SimulatedIdCardReader, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(fail_on=CardRead)
    demo.start(recorder)
    demo.tap("adult")
    recorder.wait_count(3)
    demo.tap("expired")
    events = recorder.wait_count(6)
    assert kinds(events) == [CardPlaced, CardRead, CardRemoved] * 2
    assert "listener failed" in caplog.text


class FakeBuggyPort:
    """A simulator port whose write raises a non-I/O exception once, like a driver bug."""

    def __init__(self, port: SimulatedSerialPort, fail_on: bytes) -> None:
        self._port = port
        self._fail_on: bytes | None = fail_on
        self.timeout = port.timeout

    @property
    def in_waiting(self) -> int:
        return self._port.in_waiting

    @property
    def is_open(self) -> bool:
        return self._port.is_open

    def write(self, data: bytes, /) -> int:
        if data == self._fail_on:
            self._fail_on = None
            raise RuntimeError("driver bug")
        return self._port.write(data)

    def read(self, size: int = 1, /) -> bytes:
        return self._port.read(size)

    def reset_input_buffer(self) -> None:
        self._port.reset_input_buffer()

    def close(self) -> None:
        self._port.close()


def test_an_unexpected_exception_fails_the_read_and_polling_goes_on(
    sim: SimulatedSamDevice, caplog: pytest.LogCaptureFixture
) -> None:
    buggy: list[FakeBuggyPort] = []

    def opener(path: str, baud: int) -> FakeBuggyPort:
        port = FakeBuggyPort(sim.open(path, baud), encode_command(*READ_BASE[:2]))
        if buggy:
            port._fail_on = None
        buggy.append(port)
        return port

    reader = SamSerialIdReader(
        "simulated", opener=opener, poll_interval=POLL, reconnect_interval=RECONNECT
    )
    recorder = Recorder()
    reader.start(recorder)
    try:
        sim.place("adult", lift_after_read=True)
        events = recorder.wait_count(5)
    finally:
        reader.stop()
    assert kinds(events) == [CardPlaced, ReadFailed, CardPlaced, CardRead, CardRemoved]
    failed = events[1]
    assert isinstance(failed, ReadFailed) and failed.reason == "internal error: RuntimeError"
    assert "worker failed: RuntimeError" in caplog.text
    assert len(buggy) == 2  # the port was reopened


def test_a_card_swapped_without_a_pause_is_seen_as_removed_then_placed(
    sim: SimulatedSamDevice, running: tuple[SamSerialIdReader, Recorder]
) -> None:
    _reader, recorder = running
    sim.place("adult")
    recorder.wait_kind(CardRead)
    sim.place("expired", lift_after_read=True)
    events = recorder.wait_kind(CardRemoved, 2)
    assert kinds(events) == [CardPlaced, CardRead, CardRemoved, CardPlaced, CardRead, CardRemoved]
    assert without_photo(events[4]) == DEMO_CARDS["expired"][1]


def test_logs_never_carry_card_data(
    demo: SimulatedIdCardReader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    recorder = Recorder()
    demo.start(recorder)
    for key in [*DEMO_CARDS, UNREADABLE_KEY]:
        demo.tap(key)
        recorder.wait_kind(CardRemoved, len(recorder.events) // 3 + 1)
    demo.sim.corrupt_length(READ_BASE)
    demo.tap("foreigner")
    recorder.wait_kind(ReadFailed, 2)
    for _label, document in DEMO_CARDS.values():
        for value in (document.id_number, document.name, document.address, document.english_name):
            if value:
                assert value not in caplog.text
        assert document.id_number[6:14] not in caplog.text  # not even the birth date part


def test_stop_is_idempotent_joins_and_allows_a_restart(demo: SimulatedIdCardReader) -> None:
    demo.stop()  # never started
    before = set(threading.enumerate())
    recorder = Recorder()
    demo.start(recorder)
    workers = set(threading.enumerate()) - before
    assert len(workers) == 1
    with pytest.raises(RuntimeError, match="already started"):
        demo.start(recorder)
    demo.stop()
    demo.stop()
    assert not any(w.is_alive() for w in workers)
    demo.start(recorder)
    demo.tap("adult")
    assert kinds(recorder.wait_count(3)) == [CardPlaced, CardRead, CardRemoved]


def test_a_listener_may_stop_the_reader(demo: SimulatedIdCardReader) -> None:
    stopped = threading.Event()

    def listener(event: ReaderEvent) -> None:
        if isinstance(event, CardRead):
            demo.stop()
            stopped.set()

    demo.start(listener)
    demo.tap("adult")
    assert stopped.wait(TIMEOUT)


# The protocol client: one distinct error per kind of failure --------------------------------

CLIENT_FAULTS: dict[str, tuple[Callable[[SimulatedSamDevice], None], type[IdCardError]]] = {
    "silence": (lambda s: s.go_silent(), ReaderTimeout),
    "garbage": (lambda s: s.answer_garbage(20, READ_BASE), NoFrameError),
    "checksum": (lambda s: s.corrupt_checksum(READ_BASE), FrameChecksumError),
    "length": (lambda s: s.corrupt_length(READ_BASE), FrameLengthError),
    "cut off": (lambda s: s.pull_during_read(300), TruncatedFrame),
    "card status": (lambda s: s.fail_next(0x41, READ_BASE), SamStatusError),
    "SAM status": (lambda s: s.fail_next(0x60, READ_BASE), SamUnavailable),
    "unplugged": (lambda s: s.unplug(), PortGone),
}


@pytest.mark.parametrize("fault", list(CLIENT_FAULTS))
def test_each_failure_is_its_own_error_class(sim: SimulatedSamDevice, fault: str) -> None:
    trigger, error = CLIENT_FAULTS[fault]
    sim.place("adult")
    with SamClient(sim.open(), timeouts=StepTimeouts(base=0.3, inter_byte=0.05)) as client:
        assert client.find_card()
        client.select_card()
        trigger(sim)
        with pytest.raises(IdCardError) as caught:
            client.read_base()
    assert type(caught.value) is error
    assert "read base info" in str(caught.value)


def test_the_error_classes_are_distinct() -> None:
    classes = [error for _trigger, error in CLIENT_FAULTS.values()]
    assert len(set(classes)) == len(classes)
    assert all(issubclass(c, FrameError) for c in (NoFrameError, TruncatedFrame))


def test_the_simulated_sam_answers_a_corrupt_command_with_status_10(
    sim: SimulatedSamDevice,
) -> None:
    port = sim.open()
    bad = bytearray(encode_command(0x20, 0x01))
    bad[-1] ^= 0xFF
    port.write(bytes(bad) + encode_command(0x11, 0xFF) + encode_command(0x99, 0x00))
    frames = []
    kept = port.read(100)
    while (decoded := decode_frame(kept))[0] is not None:
        frame, kept = decoded
        assert frame is not None
        frames.append(frame.sw3)
    assert frames == [0x10, 0x90, 0x21]  # checksum error, success, unknown command


def test_the_sam_needs_find_and_select_before_a_read(sim: SimulatedSamDevice) -> None:
    sim.place("adult")
    with SamClient(sim.open()) as client:
        with pytest.raises(SamStatusError, match="41"):
            client.read_base()
        with pytest.raises(SamStatusError, match="81"):
            client.select_card()
        assert client.find_card()
        client.select_card()
        assert len(client.read_base().text) == 256


# Spec strings and the factory ----------------------------------------------------------------


def test_spec_strings() -> None:
    assert ReaderSpec.parse("simulated") == ReaderSpec("simulated")
    assert ReaderSpec.parse("serial:///dev/ttyUSB0?baud=115200&fingerprint=0") == ReaderSpec(
        "serial", "/dev/ttyUSB0"
    )
    assert ReaderSpec.parse(" serial://COM3?baud=9600&fingerprint=1&address=0 ") == ReaderSpec(
        "serial", "COM3", 9600, fingerprint=True, appended_address=False
    )
    assert ReaderSpec.parse("simulated?realtime=0").realtime is False


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/dev/ttyUSB0", "not an ID card reader"),
        ("serial://", "not an ID card reader"),
        ("usb://1", "not an ID card reader"),
        ("serial:///dev/ttyUSB0?baud=12345", "baud must be one of"),
        ("serial:///dev/ttyUSB0?speed=9600", "unknown option 'speed'"),
        ("serial:///dev/ttyUSB0?realtime=0", "unknown option 'realtime'"),
        ("serial:///dev/ttyUSB0?fingerprint=maybe", "fingerprint must be 0 or 1"),
        ("serial:///dev/ttyUSB0?baud=9600&baud=9600", "given twice"),
        ("serial:///dev/ttyUSB0?baud", "options must look like"),
    ],
)
def test_bad_spec_strings_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ReaderSpecError, match=message):
        build_id_reader(spec)


def test_factory_builds_the_real_reader_for_a_serial_spec() -> None:
    reader = build_id_reader("serial:///dev/ttyUSB7?baud=57600&fingerprint=1")
    assert type(reader) is SamSerialIdReader
    assert (reader.device, reader.baud, reader.fingerprint) == ("/dev/ttyUSB7", 57600, True)
    simulated = build_id_reader("simulated")
    assert isinstance(simulated, SimulatedIdCardReader) and simulated.sim.realtime


# A pseudo-terminal: the real pyserial path -----------------------------------------------------


def test_real_pyserial_over_a_pty_reads_loses_and_regains_the_reader(tmp_path: Path) -> None:
    device = SimulatedSamDevice(demo_sim_cards().values(), realtime=False)
    pty = SimulatedSamPty(device, tmp_path / "ttySAM0")
    path = pty.start()
    reader = SamSerialIdReader(path, poll_interval=POLL, reconnect_interval=RECONNECT)
    recorder = Recorder()
    reader.start(recorder)
    try:
        device.place("hk_permit", lift_after_read=True)
        recorder.wait_kind(CardRemoved)
        pty.unplug()
        recorder.wait_kind(ReaderLost)
        pty.replug()
        recorder.wait_kind(ReaderBack)
        device.place("adult", lift_after_read=True)
        events = recorder.wait_kind(CardRemoved, 2)
    finally:
        reader.stop()
        pty.close()
    assert kinds(events) == [
        CardPlaced,
        CardRead,
        CardRemoved,
        ReaderLost,
        ReaderBack,
        CardPlaced,
        CardRead,
        CardRemoved,
    ]
    assert without_photo(events[1]) == DEMO_CARDS["hk_permit"][1]
    assert without_photo(events[6]) == ADULT
