"""SamSerialIdReader: the resident ID card reader on a serial port (SAM protocol, GA/T 467).

One worker thread owns the port. It checks the SAM (status, id), then polls find card; a new
card is selected and read (base info, or base info with fingerprints, then the appended
address), and the listener hears CardPlaced, CardRead or ReadFailed, and CardRemoved. A port
that disappears (USB unplugged) or a SAM that stops answering gives ReaderLost; the worker
keeps trying to reopen it and says ReaderBack when it answers again. Every failure is one of
the IdCardError classes below, and none of them leaves the worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Protocol
from urllib.parse import parse_qsl

from devices.idcard.codec import (
    FIND_CARD,
    PREAMBLE,
    READ_ADDRESS,
    READ_BASE,
    READ_BASE_FINGERPRINT,
    RESET_SAM,
    SAM_ID,
    SAM_STATUS,
    SELECT_CARD,
    SW3_BAD_COMMAND,
    SW3_FOUND,
    SW3_NO_CARD,
    SW3_NO_CONTENT,
    SW3_SAM_NOT_AUTHORISED,
    SW3_SAM_SELF_TEST_FAILED,
    SW3_SUCCESS,
    BaseInfo,
    Command,
    Frame,
    FrameError,
    IdCardError,
    NoFrameError,
    TruncatedFrame,
    bytes_wanted,
    decode_frame,
    encode_command,
    format_sam_id,
    parse_base_info,
    sw3_meaning,
)
from devices.idcard.text import parse_appended_addresses, parse_text
from kiosk.identity import IdentityDocument
from kiosk.ports import (
    CardPlaced,
    CardRead,
    CardRemoved,
    ReaderBack,
    ReaderEvent,
    ReaderListener,
    ReaderLost,
    ReadFailed,
)

log = logging.getLogger(__name__)

DEFAULT_BAUD = 115200
SUPPORTED_BAUDS = (9600, 19200, 38400, 57600, 115200)  # what CMD 60 can switch a SAM to
BITS_PER_BYTE = 10  # 8N1: start bit, eight data bits, stop bit
# How long one port.read() may block. Short, so the worker notices stop() and gaps quickly;
# long enough that a 1295-byte answer costs a handful of wake-ups, not one per byte.
READ_SLICE_S = 0.05
KINDS_WITH_ADDRESS = ("resident", "hk_mo_tw_permit")


# Errors (the frame errors live in codec.py, CardDataError in text.py) -----------------------


class PortGone(IdCardError):
    """The serial port cannot be opened, or failed under us (USB unplugged)."""


class ReaderTimeout(IdCardError):
    """Not one byte of an answer arrived within the step's timeout."""


class ReaderNotAnswering(IdCardError):
    """Several polls in a row got no usable answer: the reader is treated as lost."""


class ReaderStopped(IdCardError):
    """stop() was called while a step was waiting for its answer."""


class SamStatusError(IdCardError):
    """The SAM answered with a status (SW3) that is not success for this command."""

    def __init__(self, command: Command, sw3: int) -> None:
        super().__init__(f"{command.name}: SAM status {sw3:02X} ({sw3_meaning(sw3)})")
        self.command = command
        self.sw3 = sw3


class SamUnavailable(SamStatusError):
    """The SAM failed its self-test or is not authorised: it reads no card at all."""


class ReaderSpecError(ValueError):
    """A devices.id_reader value that does not name a reader; the message says what is wrong."""


# The port ------------------------------------------------------------------------------------


class SerialPort(Protocol):
    """The part of pyserial's Serial the reader uses (the simulator implements the same)."""

    timeout: float | None

    @property
    def in_waiting(self) -> int:
        """Bytes received and not read yet."""

    @property
    def is_open(self) -> bool:
        """Whether the port is open."""

    def write(self, data: bytes, /) -> int | None:
        """Send bytes."""

    def read(self, size: int = 1, /) -> bytes:
        """Up to `size` bytes, waiting at most `timeout` seconds for them."""

    def reset_input_buffer(self) -> None:
        """Drop received bytes not read yet."""

    def close(self) -> None:
        """Close the port."""


PortOpener = Callable[[str, int], SerialPort]


def open_serial_port(device: str, baud: int) -> SerialPort:
    """Open a real serial port with pyserial, 8N1 (raises OSError if it is not there)."""
    import serial  # pyserial is needed only when a real port is opened

    port: SerialPort = serial.Serial(
        device,
        baudrate=baud,
        bytesize=serial.EIGHTBITS,
        parity=serial.PARITY_NONE,
        stopbits=serial.STOPBITS_ONE,
        timeout=READ_SLICE_S,
        write_timeout=1.0,
        exclusive=True,  # a second program on the same reader would interleave frames
    )
    return port


def wire_seconds(size: int, baud: int) -> float:
    """How long `size` bytes take on an 8N1 line at `baud`."""
    return size * BITS_PER_BYTE / baud


@dataclass(frozen=True)
class StepTimeouts:
    """How long each step waits for its answer, in seconds.

    find, select, base, fingerprint and address are the values YinanSoft's reader uses. The
    SAM commands have no published value; 0.5 s is ample for a module that answers in
    milliseconds. The wire time of the longest answer at the port's speed is added on top, so
    a SAM switched to 9600 baud (1.35 s for base info alone) still works.
    """

    sam: float = 0.5
    find: float = 0.1
    select: float = 0.1
    base: float = 2.0
    fingerprint: float = 3.0
    address: float = 1.5
    # A frame that has started but then pauses this long was cut off (card pulled, cable
    # fault): waiting out the rest of a 2 s step timeout would only delay the message.
    inter_byte: float = 0.2


# The longest answer each command can get, for the wire-time part of its timeout.
_LONGEST_ANSWER = {
    SAM_STATUS: 11,
    RESET_SAM: 11,
    SAM_ID: 27,
    FIND_CARD: 15,
    SELECT_CARD: 19,
    READ_BASE: 1295,
    READ_BASE_FINGERPRINT: 2321,
    READ_ADDRESS: 11 + 4 * 70,
}


class SamClient:
    """One open port to a SAM: send a command, wait for its answer, check its status."""

    def __init__(
        self,
        port: SerialPort,
        baud: int = DEFAULT_BAUD,
        timeouts: StepTimeouts | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._port = port
        self._baud = baud
        self._timeouts = timeouts or StepTimeouts()
        self._stop = stop
        self._clock = clock
        self.bytes_sent = 0
        self.bytes_received = 0

    def close(self) -> None:
        """Close the port; errors from an already vanished port are of no interest."""
        try:
            self._port.close()
        except OSError as exc:
            log.debug("closing the port: %s", exc)

    def __enter__(self) -> SamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Steps -----------------------------------------------------------------------------------

    def sam_status(self) -> None:
        """Raise SamStatusError (SamUnavailable for a broken SAM) unless the SAM is well."""
        self._check(SAM_STATUS, self.exchange(SAM_STATUS, self._timeouts.sam), SW3_SUCCESS)

    def reset_sam(self) -> None:
        """Reset the SAM module."""
        self._check(RESET_SAM, self.exchange(RESET_SAM, self._timeouts.sam), SW3_SUCCESS)

    def sam_id(self) -> str:
        """The SAM's id as vendors print it (05.01-…)."""
        frame = self.exchange(SAM_ID, self._timeouts.sam)
        self._check(SAM_ID, frame, SW3_SUCCESS)
        return format_sam_id(frame.data)

    def find_card(self) -> bool:
        """Whether a card is in the field."""
        frame = self.exchange(FIND_CARD, self._timeouts.find)
        self._check(FIND_CARD, frame, SW3_FOUND, SW3_NO_CARD)
        return frame.sw3 == SW3_FOUND

    def select_card(self) -> None:
        """Select the card just found (required before reading)."""
        self._check(SELECT_CARD, self.exchange(SELECT_CARD, self._timeouts.select), SW3_SUCCESS)

    def read_base(self, fingerprint: bool = False) -> BaseInfo:
        """Text block and photo (and the fingerprint templates with `fingerprint`)."""
        command = READ_BASE_FINGERPRINT if fingerprint else READ_BASE
        timeout = self._timeouts.fingerprint if fingerprint else self._timeouts.base
        frame = self.exchange(command, timeout)
        self._check(command, frame, SW3_SUCCESS)
        return parse_base_info(frame.data, with_fingerprint=fingerprint)

    def read_appended_addresses(self) -> tuple[str, ...]:
        """The addresses the police appended to the card since it was issued, oldest first."""
        frame = self.exchange(READ_ADDRESS, self._timeouts.address)
        self._check(READ_ADDRESS, frame, SW3_SUCCESS, SW3_NO_CONTENT)
        if frame.sw3 == SW3_NO_CONTENT:
            return ()
        return parse_appended_addresses(frame.data)

    # Wire ------------------------------------------------------------------------------------

    def exchange(self, command: Command, timeout: float) -> Frame:
        """Send `command` and return its answer frame, whatever its status."""
        frame = encode_command(command.cmd, command.para)
        try:
            # Bytes still in the buffer belong to an answer given up on; they would be read
            # as the start of this one.
            self._port.reset_input_buffer()
            self._port.write(frame)
        except OSError as exc:
            raise PortGone(f"{command.name}: the port failed ({exc})") from exc
        self.bytes_sent += len(frame)
        budget = timeout + wire_seconds(len(frame) + _LONGEST_ANSWER[command], self._baud)
        return self._receive(command, self._clock() + budget, timeout)

    def _receive(self, command: Command, deadline: float, timeout: float) -> Frame:
        kept = b""
        received = 0
        last_byte_at = 0.0
        while True:
            if self._stop is not None and self._stop.is_set():
                raise ReaderStopped(f"{command.name}: stopped")
            try:
                chunk = self._port.read(bytes_wanted(kept))
            except OSError as exc:
                raise PortGone(f"{command.name}: the port failed ({exc})") from exc
            now = self._clock()
            if chunk:
                received += len(chunk)
                self.bytes_received += len(chunk)
                last_byte_at = now
                try:
                    frame, kept = decode_frame(kept + chunk)
                except FrameError as exc:
                    raise type(exc)(f"{command.name}: {exc}", exc.remaining) from None
                if frame is not None:
                    return frame
            started = kept.startswith(PREAMBLE)
            gap = started and now - last_byte_at >= self._timeouts.inter_byte
            if now < deadline and not gap:
                continue
            if started:
                raise TruncatedFrame(f"{command.name}: the frame stopped after {len(kept)} bytes")
            if received:
                raise NoFrameError(f"{command.name}: {received} bytes without a frame")
            raise ReaderTimeout(f"{command.name}: no answer within {timeout * 1000:.0f} ms")

    @staticmethod
    def _check(command: Command, frame: Frame, *ok: int) -> None:
        if frame.sw3 in ok:
            return
        if frame.sw3 in (SW3_SAM_SELF_TEST_FAILED, SW3_SAM_NOT_AUTHORISED):
            raise SamUnavailable(command, frame.sw3)
        raise SamStatusError(command, frame.sw3)


# Spec strings --------------------------------------------------------------------------------

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class ReaderSpec:
    """A parsed devices.id_reader value: `simulated[?opts]` or `serial://DEVICE[?opts]`.

    Options: baud (115200), fingerprint (0), address (1); realtime (1) for the simulator only.
    """

    kind: Literal["simulated", "serial"]
    device: str = ""
    baud: int = DEFAULT_BAUD
    fingerprint: bool = False
    appended_address: bool = True
    realtime: bool = True

    @classmethod
    def parse(cls, spec: str) -> ReaderSpec:
        """Parse a spec string; raises ReaderSpecError naming what is wrong."""
        head, _, query = spec.strip().partition("?")
        if head == "simulated":
            kind: Literal["simulated", "serial"] = "simulated"
            device = ""
        elif head.startswith("serial://") and len(head) > len("serial://"):
            kind, device = "serial", head[len("serial://") :]
        else:
            raise ReaderSpecError(
                f"{spec!r} is not an ID card reader: use 'simulated' or "
                "'serial:///dev/ttyUSB0?baud=115200&fingerprint=0'"
            )
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            raise ReaderSpecError(f"{spec!r}: options must look like baud=115200") from None
        options = {"baud": str(DEFAULT_BAUD), "fingerprint": "0", "address": "1", "realtime": "1"}
        allowed = set(options) - ({"realtime"} if kind == "serial" else set())
        seen: set[str] = set()
        for key, value in pairs:
            if key not in allowed:
                raise ReaderSpecError(
                    f"{spec!r}: unknown option {key!r} (known: {', '.join(sorted(allowed))})"
                )
            if key in seen:
                raise ReaderSpecError(f"{spec!r}: option {key!r} given twice")
            seen.add(key)
            options[key] = value.strip().lower()
        if not options["baud"].isdigit() or int(options["baud"]) not in SUPPORTED_BAUDS:
            raise ReaderSpecError(
                f"{spec!r}: baud must be one of {', '.join(map(str, SUPPORTED_BAUDS))}"
            )
        flags = {}
        for key in ("fingerprint", "address", "realtime"):
            if options[key] not in _TRUE + _FALSE:
                raise ReaderSpecError(f"{spec!r}: {key} must be 0 or 1")
            flags[key] = options[key] in _TRUE
        return cls(
            kind=kind,
            device=device,
            baud=int(options["baud"]),
            fingerprint=flags["fingerprint"],
            appended_address=flags["address"],
            realtime=flags["realtime"],
        )


# The reader ----------------------------------------------------------------------------------


class SamSerialIdReader:
    """A resident ID card reader with a SAM on a serial port; events on its own thread."""

    def __init__(
        self,
        device: str,
        baud: int = DEFAULT_BAUD,
        *,
        fingerprint: bool = False,
        appended_address: bool = True,
        opener: PortOpener = open_serial_port,
        timeouts: StepTimeouts | None = None,
        poll_interval: float = 0.1,
        reconnect_interval: float = 1.0,
        lost_after: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if baud not in SUPPORTED_BAUDS:
            raise ValueError(f"baud must be one of {SUPPORTED_BAUDS}")
        if poll_interval < 0 or reconnect_interval < 0 or lost_after < 1:
            raise ValueError("intervals must not be negative and lost_after must be ≥ 1")
        self.device = device
        self.baud = baud
        self.fingerprint = fingerprint
        self.appended_address = appended_address
        self._opener = opener
        self._timeouts = timeouts or StepTimeouts()
        self._poll_interval = poll_interval
        self._reconnect_interval = reconnect_interval
        self._lost_after = lost_after
        self._clock = clock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self._sam_id: str | None = None
        self._last_timings: dict[str, float] = {}
        # Worker state: touched only by the worker thread while it runs.
        self._client: SamClient | None = None
        self._listener: ReaderListener | None = None
        self._lost = False
        self._card_present = False
        self._failed_polls = 0
        self._address_supported = True

    @classmethod
    def from_spec(cls, spec: str) -> SamSerialIdReader:
        """The reader a `serial://DEVICE?baud=…&fingerprint=…&address=…` spec names."""
        parsed = ReaderSpec.parse(spec)
        if parsed.kind != "serial":
            raise ReaderSpecError(f"{spec!r} is not a serial:// reader")
        return cls(
            parsed.device,
            parsed.baud,
            fingerprint=parsed.fingerprint,
            appended_address=parsed.appended_address,
        )

    # What a technician may ask ---------------------------------------------------------------

    @property
    def sam_id(self) -> str | None:
        """The SAM id read at the last (re)connection, None before or when it failed."""
        with self._lock:
            return self._sam_id

    @property
    def last_timings(self) -> dict[str, float]:
        """Milliseconds per step of the last successful card read."""
        with self._lock:
            return dict(self._last_timings)

    def open_client(self, stop: threading.Event | None = None) -> SamClient:
        """A client on a freshly opened port, for one-off use (diagnostics); raises PortGone."""
        try:
            port = self._opener(self.device, self.baud)
        except (OSError, ValueError) as exc:
            # pyserial raises SerialException (an OSError) for a missing device and
            # ValueError for settings the port refuses.
            raise PortGone(f"cannot open {self.device}: {exc}") from exc
        return SamClient(port, self.baud, self._timeouts, stop, self._clock)

    # Port ------------------------------------------------------------------------------------

    def start(self, listener: ReaderListener) -> None:
        """Start the worker; `listener` is called from it, never from the caller's thread."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the reader is already started")
            stop = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(stop, listener), name="id-reader", daemon=True
            )
            self._stop, self._thread = stop, thread
        thread.start()

    def stop(self) -> None:
        """Stop the worker, wait for it and close the port; idempotent."""
        with self._lock:
            thread, stop = self._thread, self._stop
            self._thread = self._stop = None
        if thread is None or stop is None:
            return
        stop.set()
        # A listener may call stop() from the worker itself; it exits after that event.
        if thread is not threading.current_thread():
            thread.join()

    # Worker ----------------------------------------------------------------------------------

    def _run(self, stop: threading.Event, listener: ReaderListener) -> None:
        self._listener = listener
        self._lost = False
        self._card_present = False
        self._failed_polls = 0
        log.info("ID card reader starting on %s at %d baud", self.device, self.baud)
        try:
            while not stop.is_set():
                wait = self._poll_interval
                try:
                    if self._client is None and not self._connect(stop):
                        wait = self._reconnect_interval
                    else:
                        self._poll(stop)
                except ReaderStopped:
                    break
                except (PortGone, SamUnavailable, ReaderNotAnswering) as exc:
                    self._drop_client()
                    self._set_lost(str(exc))
                    wait = 0.0  # try to reopen at once: a USB reader may already be back
                except Exception as exc:
                    # A bug here must not end polling: the kiosk would silently stop reading
                    # cards. The port is reopened in case it was left in a bad state.
                    log.exception("ID card reader worker failed: %s", type(exc).__name__)
                    self._drop_client()
                    if self._card_present:
                        self._emit(ReadFailed(f"internal error: {type(exc).__name__}"))
                    wait = self._reconnect_interval
                stop.wait(wait)
        finally:
            self._drop_client()
            log.info("ID card reader stopped")

    def _connect(self, stop: threading.Event) -> bool:
        try:
            client = self.open_client(stop)
        except PortGone as exc:
            self._set_lost(str(exc))
            return False
        try:
            try:
                client.sam_status()
            except SamStatusError as exc:
                # A SAM that reports trouble gets one reset before it is given up on.
                log.warning("%s; resetting the SAM", exc)
                client.reset_sam()
                client.sam_status()
            try:
                sam_id: str | None = client.sam_id()
            except (PortGone, ReaderStopped):
                raise
            except IdCardError as exc:
                # The id is for the technician; a SAM that reads cards is still usable.
                log.warning("SAM id not read: %s", exc)
                sam_id = None
        except ReaderStopped:
            client.close()
            return False
        except IdCardError as exc:
            client.close()
            self._set_lost(str(exc))
            return False
        with self._lock:
            self._sam_id = sam_id
        self._client = client
        self._failed_polls = 0
        self._card_present = False
        log.info("ID card reader ready on %s, SAM %s", self.device, sam_id or "id unknown")
        if self._lost:
            self._lost = False
            self._emit(ReaderBack())
        return True

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _set_lost(self, reason: str) -> None:
        # A reader that stopped answering cannot tell whether the card left: a card on it is
        # forgotten and is read afresh when the reader is back.
        self._card_present = False
        if not self._lost:
            self._lost = True
            log.warning("ID card reader lost: %s", reason)
            self._emit(ReaderLost(reason))

    def _poll(self, stop: threading.Event) -> None:
        client = self._client
        assert client is not None
        started = self._clock()
        try:
            found = client.find_card()
        except (PortGone, SamUnavailable, ReaderStopped):
            raise
        except IdCardError as exc:
            self._failed_polls += 1
            log.info("find card failed (%d in a row): %s", self._failed_polls, exc)
            if self._failed_polls >= self._lost_after:
                raise ReaderNotAnswering(
                    f"{self._failed_polls} polls without a usable answer; last: {exc}"
                ) from exc
            return
        self._failed_polls = 0
        if not found:
            if self._card_present:
                self._card_present = False
                log.info("card removed")
                self._emit(CardRemoved())
            return
        if self._card_present:
            return  # the card already read (or failed) is still lying there
        self._card_present = True
        log.info("card placed")
        self._emit(CardPlaced())
        self._read_card(client, started)

    def _read_card(self, client: SamClient, started: float) -> None:
        timings = {"find": (self._clock() - started) * 1000}
        try:
            document = self._read_document(client, timings)
        except (PortGone, SamUnavailable, ReaderStopped):
            raise
        except IdCardError as exc:
            if self._card_left(client):
                self._card_present = False
                log.info("card removed during the read (%s)", type(exc).__name__)
                self._emit(CardRemoved())
                return
            reason = f"{exc} ({type(exc).__name__})"
            log.warning("card read failed: %s", reason)
            self._emit(ReadFailed(reason))
            return
        elapsed_ms = (self._clock() - started) * 1000
        with self._lock:
            self._last_timings = timings
        log.info("card read in %.0f ms: %s", elapsed_ms, document.kind)
        self._emit(CardRead(document, elapsed_ms))

    def _read_document(self, client: SamClient, timings: dict[str, float]) -> IdentityDocument:
        """Select, read and parse the card; every failure is an IdCardError."""
        t = self._clock()
        client.select_card()
        timings["select"] = (self._clock() - t) * 1000
        t = self._clock()
        info = client.read_base(self.fingerprint)
        timings["read_fingerprint" if self.fingerprint else "read_base"] = (
            self._clock() - t
        ) * 1000
        t = self._clock()
        document = parse_text(info.text)
        timings["parse"] = (self._clock() - t) * 1000
        wants_address = self.appended_address and self._address_supported
        if wants_address and document.kind in KINDS_WITH_ADDRESS:
            t = self._clock()
            addresses = self._appended_addresses(client)
            timings["read_address"] = (self._clock() - t) * 1000
            if addresses:
                # The police append the new address when a holder moves: the latest one is
                # where the person lives now; the face of the card shows the old one.
                document = replace(document, address=addresses[-1])
        return replace(document, photo=info.photo)

    def _appended_addresses(self, client: SamClient) -> tuple[str, ...]:
        try:
            return client.read_appended_addresses()
        except SamStatusError as exc:
            if exc.sw3 != SW3_BAD_COMMAND:
                raise
            # Older SAMs do not know 30 03; asking again on every card would only cost time.
            log.info("this SAM has no appended-address command; not asking again")
            self._address_supported = False
            return ()

    def _card_left(self, client: SamClient) -> bool:
        """After a failed step: is the card gone (pulled mid-read) rather than unreadable?"""
        try:
            return not client.find_card()
        except (PortGone, SamUnavailable, ReaderStopped):
            raise
        except IdCardError as exc:
            log.info("find after a failed read: %s", exc)
            return False

    def _emit(self, event: ReaderEvent) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            listener(event)
        except Exception:
            # The listener belongs to someone else; its bug must not take the reader down.
            log.exception("reader listener failed on %s", type(event).__name__)
