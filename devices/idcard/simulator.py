"""The SAM reader at the wire level, like OctoPrint's VirtualPrinter, and the demo reader on it.

SimulatedSamDevice is the reader's box: it decodes command frames, answers them as a SAM does
(find → select → read, status codes, the 1295-byte base-info frame) for the card placed on it,
and releases its answer bytes at the speed of the line (10 bits a byte at the configured baud)
unless `realtime=False`. `open()` hands out a SimulatedSerialPort with the pyserial subset
SamSerialIdReader uses, so the real reader code runs against it; SimulatedSamPty puts it behind
a pseudo-terminal for a reader that opens a path with pyserial itself.

Fault triggers: go_silent, answer_noise, answer_garbage, corrupt_checksum, corrupt_length,
fail_next (any SW3), fail_sam (a SAM that stays broken), pull / pull_during_read (card taken
away mid-read), unplug / replug (the port vanishes and returns), and a card whose base-info
frames always carry a bad checksum.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import random
import select
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from devices.idcard.codec import (
    FIND_CARD,
    READ_ADDRESS,
    READ_BASE,
    READ_BASE_FINGERPRINT,
    RESET_SAM,
    SAM_ID,
    SAM_STATUS,
    SELECT_CARD,
    SW3_BAD_CHECKSUM,
    SW3_BAD_COMMAND,
    SW3_BAD_LENGTH,
    SW3_FOUND,
    SW3_NO_CARD,
    SW3_NO_CONTENT,
    SW3_READ_FAILED,
    SW3_SELECT_FAILED,
    SW3_SUCCESS,
    BaseInfo,
    Command,
    CommandFrame,
    FrameChecksumError,
    FrameError,
    decode_command,
    encode_base_info,
    encode_response,
)
from devices.idcard.reader import DEFAULT_BAUD, SamSerialIdReader, StepTimeouts
from devices.idcard.text import encode_appended_addresses, encode_text
from kiosk.demo import DEMO_CARDS
from kiosk.i18n import Text
from kiosk.identity import IdentityDocument

log = logging.getLogger(__name__)

UNREADABLE_KEY = "unreadable"
UNREADABLE_LABEL = Text("损坏的卡（读卡失败）", "Damaged card (read fails)")
# 16 bytes that format as 05.01-20230915-000012345-001234567 (a plausible SAM id).
DEFAULT_SAM_ID = (
    bytes([5, 0, 1, 0])
    + (20230915).to_bytes(4, "little")
    + (12345).to_bytes(4, "little")
    + (1234567).to_bytes(4, "little")
)
# A tapped card stays for one more poll after its read, as a hand lifts it: the reader's
# check after a failed read still finds it, and removal is seen on the poll after that.
FINDS_BEFORE_LIFT = 2
SELECT_DATA = bytes(8)
FIND_DATA = bytes(4)
_CARD_COMMANDS = (SELECT_CARD, READ_BASE, READ_BASE_FINGERPRINT, READ_ADDRESS)


@dataclass(frozen=True)
class SimulatedCard:
    """What a card holds: text block, WLT photo, fingerprints, appended addresses."""

    key: str
    text: bytes = field(repr=False)
    photo: bytes = field(repr=False)
    fingerprint: bytes = field(default=b"", repr=False)
    appended_addresses: tuple[str, ...] = field(default=(), repr=False)
    corrupt: bool = False  # every base-info frame carries a bad checksum (a damaged card)


def _filler(kind: str, key: str, size: int) -> bytes:
    # Stand-ins for WLT photos and fingerprint templates: fixed per card, so tests can compare.
    return hashlib.shake_256(f"{kind}:{key}".encode()).digest(size)


def card_from_document(
    key: str,
    document: IdentityDocument,
    *,
    fingerprint: bool = False,
    appended_addresses: tuple[str, ...] = (),
    corrupt: bool = False,
) -> SimulatedCard:
    """A card carrying `document`, encoded in its kind's layout, with a stand-in photo."""
    return SimulatedCard(
        key=key,
        text=encode_text(document),
        photo=_filler("photo", key, 1024),
        fingerprint=_filler("fingerprint", key, 1024) if fingerprint else b"",
        appended_addresses=appended_addresses,
        corrupt=corrupt,
    )


def demo_sim_cards() -> dict[str, SimulatedCard]:
    """The demo cards of kiosk.demo, and a damaged one whose reads always fail."""
    cards = {key: card_from_document(key, doc) for key, (_label, doc) in DEMO_CARDS.items()}
    cards[UNREADABLE_KEY] = card_from_document(UNREADABLE_KEY, DEMO_CARDS["adult"][1], corrupt=True)
    return cards


@dataclass(frozen=True)
class Exchange:
    """One command and its answer as they crossed the wire (for tests and the benchmark)."""

    cmd: int
    para: int
    sw3: int | None  # None: no frame went back (silence, garbage)
    command_bytes: int
    answer_bytes: int
    at: float


FaultKind = Literal["noise", "garbage", "checksum", "length", "status", "cut"]


@dataclass
class _Fault:
    kind: FaultKind
    command: Command | None
    times: int
    size: int = 0
    sw3: int = 0

    def matches(self, frame: CommandFrame) -> bool:
        return self.command is None or (frame.cmd, frame.para) == self.command[:2]


@dataclass
class _Placed:
    card: SimulatedCard
    lift_after_read: bool
    absent_finds: int = 0  # a swapped card leaves the field empty for one find
    found: bool = False
    selected: bool = False
    read_done: bool = False
    finds_after_read: int = 0


@dataclass
class _Segment:
    start: float
    data: bytes
    card_data: bool
    taken: int = 0


class SimulatedPortGone(OSError):
    """What a vanished simulated port raises, like pyserial's SerialException (an OSError)."""


class SimulatedSerialPort:
    """A port on a SimulatedSamDevice: pyserial's write/read/in_waiting/timeout subset."""

    def __init__(self, device: SimulatedSamDevice, baudrate: int, timeout: float | None) -> None:
        self._device = device
        self.baudrate = baudrate
        self.timeout = timeout
        self._open = True
        self.dead = False
        self._inbound = b""
        self._segments: deque[_Segment] = deque()

    @property
    def is_open(self) -> bool:
        """Whether the port is open."""
        return self._open

    @property
    def in_waiting(self) -> int:
        """Answer bytes already on the wire and not read yet."""
        return self._device._in_waiting(self)

    def write(self, data: bytes, /) -> int:
        """Send command bytes to the device."""
        return self._device._write(self, bytes(data))

    def read(self, size: int = 1, /) -> bytes:
        """Up to `size` bytes, waiting at most `timeout` seconds for them all."""
        return self._device._read(self, size)

    def reset_input_buffer(self) -> None:
        """Drop answer bytes not read yet, including those still on their way."""
        self._device._reset(self)

    def close(self) -> None:
        """Close the port; idempotent."""
        self._device._close(self)


class SimulatedSamDevice:
    """A SAM reader box with a card slot, speaking GA/T 467 frames at a baud rate."""

    def __init__(
        self,
        cards: Iterable[SimulatedCard] = (),
        *,
        baud: int = DEFAULT_BAUD,
        realtime: bool = True,
        sam_id: bytes = DEFAULT_SAM_ID,
        processing_s: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.cards = {card.key: card for card in cards}
        self.baud = baud
        self.realtime = realtime
        self.sam_id = sam_id
        # The SAM's own work per command (RF exchange with the card). Real modules add tens to
        # hundreds of milliseconds here; 0 measures what the reader's code adds to the wire.
        self.processing_s = processing_s
        self._random = random.Random(seed)
        self._cond = threading.Condition()
        self._ports: list[SimulatedSerialPort] = []
        self._placed: _Placed | None = None
        self._faults: list[_Fault] = []
        self._silent = False
        self._sam_failure: int | None = None
        self._plugged = True
        self._exchanges: deque[Exchange] = deque(maxlen=10_000)

    # Wire timing -----------------------------------------------------------------------------

    def byte_seconds(self) -> float:
        """The time one byte takes on the line (0 when not in real time)."""
        return 10 / self.baud if self.realtime else 0.0

    def wire_seconds(self, size: int) -> float:
        """The time `size` bytes take on an 8N1 line at this device's baud rate."""
        return size * 10 / self.baud

    # Cards -----------------------------------------------------------------------------------

    def place(self, key: str, *, lift_after_read: bool = False) -> None:
        """Put card `key` on the reader (taking away any card already there)."""
        card = self.cards.get(key)
        if card is None:
            raise ValueError(f"no simulated card {key!r}")
        with self._cond:
            swapped = self._placed is not None
            self._take_away()
            # Swapping takes a moment in which the field is empty: the reader must see it.
            self._placed = _Placed(card, lift_after_read, absent_finds=1 if swapped else 0)
            self._cond.notify_all()

    def pull(self) -> None:
        """Take the card away now; an answer still on the wire stops where it is."""
        with self._cond:
            self._take_away()
            self._cond.notify_all()

    @property
    def card_key(self) -> str | None:
        """The key of the card on the reader, if any."""
        with self._cond:
            return self._placed.card.key if self._placed else None

    def _take_away(self) -> None:
        if self._placed is None:
            return
        self._placed = None
        now = time.monotonic()
        for port in self._ports:
            kept: deque[_Segment] = deque()
            for seg in port._segments:
                if seg.card_data:
                    # The SAM loses the card: what it has not sent yet never comes.
                    seg.data = seg.data[: max(seg.taken, self._released(seg, now))]
                kept.append(seg)
            port._segments = kept

    # Fault triggers --------------------------------------------------------------------------

    def go_silent(self) -> None:
        """Answer nothing at all until speak()."""
        with self._cond:
            self._silent = True

    def speak(self) -> None:
        """Answer again after go_silent()."""
        with self._cond:
            self._silent = False

    def answer_noise(self, size: int = 16, command: Command | None = None, times: int = 1) -> None:
        """Put `size` noise bytes before the next answers (a reader must skip them)."""
        self._add(_Fault("noise", command, times, size=size))

    def answer_garbage(
        self, size: int = 32, command: Command | None = None, times: int = 1
    ) -> None:
        """Answer the next commands with `size` noise bytes and no frame."""
        self._add(_Fault("garbage", command, times, size=size))

    def corrupt_checksum(self, command: Command | None = None, times: int = 1) -> None:
        """Give the next answers a wrong checksum."""
        self._add(_Fault("checksum", command, times))

    def corrupt_length(self, command: Command | None = None, times: int = 1) -> None:
        """Give the next answers an impossible length field."""
        self._add(_Fault("length", command, times))

    def fail_next(self, sw3: int, command: Command | None = None, times: int = 1) -> None:
        """Answer the next commands with status `sw3` and no data."""
        self._add(_Fault("status", command, times, sw3=sw3))

    def pull_during_read(self, after_bytes: int = 600) -> None:
        """The card leaves after `after_bytes` bytes of the next base-info answer."""
        self._add(_Fault("cut", None, 1, size=after_bytes))

    def fail_sam(self, sw3: int | None) -> None:
        """Answer every command with `sw3` (e.g. 0x60, self-test failed); None repairs it."""
        with self._cond:
            self._sam_failure = sw3

    def unplug(self) -> None:
        """The port vanishes: open ports fail and opening fails until replug()."""
        with self._cond:
            self._plugged = False
            for port in self._ports:
                port.dead = True
            self._cond.notify_all()

    def replug(self) -> None:
        """The port is back (ports opened before stay dead, as after a real unplug)."""
        with self._cond:
            self._plugged = True

    def _add(self, fault: _Fault) -> None:
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        with self._cond:
            self._faults.append(fault)

    # Statistics ------------------------------------------------------------------------------

    @property
    def exchanges(self) -> list[Exchange]:
        """Every command answered so far, oldest first (the last 10,000)."""
        with self._cond:
            return list(self._exchanges)

    # The port side ---------------------------------------------------------------------------

    def open(self, path: str = "simulated", baud: int | None = None) -> SimulatedSerialPort:
        """A new port on this device (`path` is ignored); OSError while unplugged."""
        with self._cond:
            if not self._plugged:
                raise FileNotFoundError(errno.ENOENT, "No such device (simulated, unplugged)", path)
            port = SimulatedSerialPort(self, baud or self.baud, timeout=0.05)
            self._ports.append(port)
            return port

    def _alive(self, port: SimulatedSerialPort) -> None:
        if port.dead:
            raise SimulatedPortGone(errno.EIO, "device disconnected (simulated)")
        if not port.is_open:
            raise SimulatedPortGone(errno.EBADF, "port not open")

    def _close(self, port: SimulatedSerialPort) -> None:
        with self._cond:
            port._open = False
            if port in self._ports:
                self._ports.remove(port)
            self._cond.notify_all()

    def _released(self, seg: _Segment, now: float) -> int:
        step = self.byte_seconds()
        if step == 0:
            return len(seg.data)
        return max(0, min(len(seg.data), int((now - seg.start) / step + 1e-9)))

    def _available(self, port: SimulatedSerialPort, now: float) -> int:
        return sum(self._released(seg, now) - seg.taken for seg in port._segments)

    def _ready_at(self, port: SimulatedSerialPort, size: int) -> float:
        """When the first `size` unread bytes will all have been released (inf: never)."""
        step = self.byte_seconds()
        left = size
        for seg in port._segments:
            pending = len(seg.data) - seg.taken
            if left <= pending:
                return seg.start + (seg.taken + left) * step
            left -= pending
        return float("inf")

    def _in_waiting(self, port: SimulatedSerialPort) -> int:
        with self._cond:
            self._alive(port)
            return self._available(port, time.monotonic())

    def _reset(self, port: SimulatedSerialPort) -> None:
        with self._cond:
            self._alive(port)
            port._segments.clear()

    def _read(self, port: SimulatedSerialPort, size: int) -> bytes:
        with self._cond:
            now = time.monotonic()
            deadline = None if port.timeout is None else now + port.timeout
            while True:
                self._alive(port)
                available = self._available(port, now)
                if available >= size or (deadline is not None and now >= deadline):
                    break
                until = self._ready_at(port, size)
                if deadline is not None:
                    until = min(until, deadline)
                self._cond.wait(None if until == float("inf") else max(0.0, until - now))
                now = time.monotonic()
            out = bytearray()
            want = min(size, available)
            while want and port._segments:
                seg = port._segments[0]
                take = min(want, self._released(seg, now) - seg.taken)
                out += seg.data[seg.taken : seg.taken + take]
                seg.taken += take
                want -= take
                if seg.taken >= len(seg.data):
                    port._segments.popleft()
                elif take == 0:
                    break
            return bytes(out)

    def _write(self, port: SimulatedSerialPort, data: bytes) -> int:
        with self._cond:
            self._alive(port)
            now = time.monotonic()
            if port.baudrate != self.baud:
                # At the wrong speed the SAM sees framing errors, never a command.
                log.debug("simulated SAM: %d bytes at the wrong baud rate ignored", len(data))
                return len(data)
            port._inbound += data
            arrived = now + len(data) * self.byte_seconds()
            while port._inbound:
                try:
                    frame, port._inbound = decode_command(port._inbound)
                except FrameError as exc:
                    port._inbound = exc.remaining
                    status = SW3_BAD_CHECKSUM if isinstance(exc, FrameChecksumError) else None
                    self._send(port, encode_response(0, 0, status or SW3_BAD_LENGTH), arrived)
                    continue
                if frame is None:
                    break
                self._answer(port, frame, len(data), arrived)
            self._cond.notify_all()
            return len(data)

    def _send(self, port: SimulatedSerialPort, data: bytes, at: float, card: bool = False) -> None:
        step = self.byte_seconds()
        start = at + self.processing_s
        if port._segments:
            last = port._segments[-1]
            start = max(start, last.start + len(last.data) * step)
        if data:
            port._segments.append(_Segment(start, data, card))

    def _take_fault(self, frame: CommandFrame) -> _Fault | None:
        for fault in self._faults:
            if fault.kind == "cut" and (frame.cmd, frame.para) not in (
                READ_BASE[:2],
                READ_BASE_FINGERPRINT[:2],
            ):
                continue
            if fault.matches(frame):
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _noise(self, size: int) -> bytes:
        # 0xAA never appears, so noise cannot pass for a preamble.
        return bytes(self._random.choice(range(0x00, 0xAA)) for _ in range(size))

    def _answer(self, port: SimulatedSerialPort, frame: CommandFrame, sent: int, at: float) -> None:
        if self._silent:
            self._log(frame, None, sent, 0, at)
            return
        fault = self._take_fault(frame)
        if fault is not None and fault.kind == "garbage":
            noise = self._noise(fault.size)
            self._send(port, noise, at)
            self._log(frame, None, sent, len(noise), at)
            return
        if fault is not None and fault.kind == "status":
            sw3, data, card = fault.sw3, b"", False
        else:
            sw3, data, card = self._respond(frame)
        answer = encode_response(0, 0, sw3, data)
        placed = self._placed
        base = (frame.cmd, frame.para) in (READ_BASE[:2], READ_BASE_FINGERPRINT[:2])
        corrupt = base and sw3 == SW3_SUCCESS and placed is not None and placed.card.corrupt
        if corrupt or (fault is not None and fault.kind == "checksum"):
            answer = answer[:-1] + bytes([answer[-1] ^ 0x5A])
        if fault is not None and fault.kind == "length":
            answer = answer[:5] + b"\x00\x02" + answer[7:]
        if fault is not None and fault.kind == "noise":
            answer = self._noise(fault.size) + answer
        if fault is not None and fault.kind == "cut":
            answer = answer[: fault.size]
            self._placed = None
        self._send(port, answer, at, card)
        self._log(frame, sw3, sent, len(answer), at)

    def _log(
        self, frame: CommandFrame, sw3: int | None, sent: int, answered: int, at: float
    ) -> None:
        self._exchanges.append(Exchange(frame.cmd, frame.para, sw3, sent, answered, at))

    def _respond(self, frame: CommandFrame) -> tuple[int, bytes, bool]:
        """SW3, data and whether it is card data, for one command."""
        if self._sam_failure is not None:
            return self._sam_failure, b"", False
        command = (frame.cmd, frame.para)
        if command in (RESET_SAM[:2], SAM_STATUS[:2]):
            return SW3_SUCCESS, b"", False
        if command == SAM_ID[:2]:
            return SW3_SUCCESS, self.sam_id, False
        if command == FIND_CARD[:2]:
            return self._find()
        placed = self._placed
        if command == SELECT_CARD[:2]:
            if placed is None or not placed.found:
                return SW3_SELECT_FAILED, b"", False
            placed.selected = True
            return SW3_SUCCESS, SELECT_DATA, True
        if command in (READ_BASE[:2], READ_BASE_FINGERPRINT[:2]):
            if placed is None or not placed.selected:
                return SW3_READ_FAILED, b"", False
            placed.read_done = True
            with_fp = command == READ_BASE_FINGERPRINT[:2]
            card = placed.card
            info = BaseInfo(card.text, card.photo, card.fingerprint)
            return SW3_SUCCESS, encode_base_info(info, with_fingerprint=with_fp), True
        if command == READ_ADDRESS[:2]:
            if placed is None or not placed.selected:
                return SW3_READ_FAILED, b"", False
            if not placed.card.appended_addresses:
                return SW3_NO_CONTENT, b"", False
            return SW3_SUCCESS, encode_appended_addresses(placed.card.appended_addresses), True
        return SW3_BAD_COMMAND, b"", False

    def _find(self) -> tuple[int, bytes, bool]:
        placed = self._placed
        if placed is not None and placed.absent_finds:
            placed.absent_finds -= 1
            return SW3_NO_CARD, b"", False
        if placed is not None and placed.lift_after_read and placed.read_done:
            placed.finds_after_read += 1
            if placed.finds_after_read >= FINDS_BEFORE_LIFT:
                self._placed = placed = None
        if placed is None:
            return SW3_NO_CARD, b"", False
        placed.found = True
        placed.selected = False
        return SW3_FOUND, FIND_DATA, False


class SimulatedSamPty:
    """A SimulatedSamDevice behind a pseudo-terminal at `link`, for pyserial to open by path.

    unplug() closes the terminal and removes the link, as udev does when a USB reader goes;
    replug() makes a new terminal behind the same link.
    """

    def __init__(self, device: SimulatedSamDevice, link: Path) -> None:
        self.device = device
        self.link = link
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._fds: tuple[int, int] | None = None

    def start(self) -> str:
        """Create the terminal and the link; returns the link's path."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the pty is already running")
            import tty  # POSIX only, like pseudo-terminals themselves

            master, slave = os.openpty()
            tty.setraw(slave)  # no echo, no line editing: bytes pass as they are
            self._fds = (master, slave)
            self._stop = threading.Event()
            if self.link.is_symlink() or self.link.exists():
                self.link.unlink()
            self.link.symlink_to(os.ttyname(slave))
            port = self.device.open(str(self.link))
            port.timeout = 0
            self._thread = threading.Thread(
                target=self._pump, args=(master, port, self._stop), name="sim-sam-pty", daemon=True
            )
            self._thread.start()
        return str(self.link)

    def unplug(self) -> None:
        """Close the terminal and remove the link; idempotent."""
        with self._lock:
            thread, fds = self._thread, self._fds
            self._thread, self._fds = None, None
            self._stop.set()
        if thread is not None:
            thread.join()
        if fds is not None:
            for fd in fds:
                os.close(fd)
        if self.link.is_symlink():
            self.link.unlink()

    def replug(self) -> str:
        """A new terminal behind the same link."""
        self.unplug()
        return self.start()

    close = unplug

    @staticmethod
    def _pump(master: int, port: SimulatedSerialPort, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                # Short waits keep the answer bytes flowing at the line's pace.
                ready, _, _ = select.select([master], [], [], 0.002)
                if ready:
                    try:
                        data = os.read(master, 4096)
                    except OSError as exc:
                        log.debug("simulated SAM pty: %s", exc)
                        data = b""
                    if data:
                        port.write(data)
                waiting = port.in_waiting
                if waiting:
                    os.write(master, port.read(waiting))
        finally:
            port.close()


class SimulatedIdCardReader(SamSerialIdReader):
    """The demo's ID card reader: the real SamSerialIdReader on a SimulatedSamDevice.

    Demo cards are tapped from the screen (SupportsDemoCards); faults are set on `.sim`.
    """

    def __init__(
        self,
        *,
        realtime: bool = True,
        baud: int = DEFAULT_BAUD,
        fingerprint: bool = False,
        appended_address: bool = True,
        sim: SimulatedSamDevice | None = None,
        timeouts: StepTimeouts | None = None,
        poll_interval: float = 0.1,
        reconnect_interval: float = 0.5,
        lost_after: int = 3,
    ) -> None:
        self.sim = sim or SimulatedSamDevice(
            demo_sim_cards().values(), baud=baud, realtime=realtime
        )
        super().__init__(
            "simulated",
            baud,
            fingerprint=fingerprint,
            appended_address=appended_address,
            opener=self.sim.open,
            timeouts=timeouts,
            poll_interval=poll_interval,
            reconnect_interval=reconnect_interval,
            lost_after=lost_after,
        )

    def demo_cards(self) -> list[tuple[str, Text]]:
        """(key, bilingual label) of each demo card, the damaged one last."""
        cards = [(key, label) for key, (label, _doc) in DEMO_CARDS.items()]
        return [*cards, (UNREADABLE_KEY, UNREADABLE_LABEL)]

    def tap(self, key: str) -> None:
        """Place demo card `key` on the reader; it is lifted again after the read."""
        if key != UNREADABLE_KEY and key not in DEMO_CARDS:
            raise ValueError(f"no demo card {key!r}")
        self.sim.place(key, lift_after_read=True)

    def pull(self) -> None:
        """Take the card away now, mid-read if a read is going on."""
        self.sim.pull()
