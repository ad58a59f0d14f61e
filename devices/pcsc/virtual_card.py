"""`VirtualCard`: a scripted smart card in vsmartcard's virtual reader (vpcd), and a pcscd for it.

vpcd, a pcscd reader driver, listens on 127.0.0.1:35963 for a card. The card is a socket client:
each frame is a 2-byte big-endian length and a payload. A 1-byte payload is a control (00 power
off, 01 power on, 02 reset, 04 send the ATR); anything longer is a command APDU to answer with
a response APDU. Connecting is inserting the card, disconnecting is removing it. pcscd asks for
the ATR about every 400 ms to see whether the card is still there.

The cards answer from a script: a staff badge, a UnionPay debit card (contactless, PPSE,
qPBOC-style PDOL, GPO format 2), a social security card (contact, T=0 manners: 61xx and 6Cxx,
the SSSE application, PSE, GPO format 1), a card that answers garbage, and a card that leaves
in the middle of the read. All card numbers here are made up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from devices.pcsc import emv, tlv

log = logging.getLogger(__name__)

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963  # 0x8C7B, vpcd's first slot; the reader is "Virtual PCD 00 00"
VPCD_READER_PREFIX = "Virtual PCD"
APT_PACKAGES = ("pcscd", "vsmartcard-vpcd", "libpcsclite-dev")
APT_LINE = "apt-get install -y " + " ".join(APT_PACKAGES)

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_CONDITIONS = b"\x69\x85"
SW_FUNCTION_NOT_SUPPORTED = b"\x6a\x81"
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_RECORD_NOT_FOUND = b"\x6a\x83"
SW_WRONG_P1P2 = b"\x6a\x86"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
SW_CLA_NOT_SUPPORTED = b"\x6e\x00"


def contactless_atr(historical: bytes = b"") -> bytes:
    """The ATR a PC/SC reader makes up for an ISO 14443-4 card (PC/SC Part 3 §3.1.3.2.3)."""
    body = bytes([0x80 | len(historical), 0x80, 0x01]) + historical
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes([tck])


# A MIFARE Classic 1K as a PC/SC reader reports it (PC/SC Part 3 storage card ATR).
BADGE_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
DEBIT_ATR = contactless_atr(b"PBOC")
# A contact card offering T=0 only (TB1, TC1 and 12 historical bytes): illustrative.
SOCIAL_ATR = bytes.fromhex("3B6C0000") + b"CN-SSC-3.0\x90\x00"
GARBAGE_ATR = contactless_atr()


def _split(command: bytes) -> tuple[bytes, int | None]:
    """The data field and Le of a short command APDU."""
    if len(command) <= 5:
        return b"", (command[4] if len(command) == 5 else None)
    lc = command[4]
    data = command[5 : 5 + lc]
    return data, (command[5 + lc] if len(command) > 5 + lc else None)


class ScriptedCard:
    """A card that answers from a script; subclasses add applications. Not thread-safe."""

    atr: bytes = GARBAGE_ATR
    uid: bytes | None = None  # answered to FF CA when set
    t0: bool = False  # answer like a T=0 card: 61xx after SELECT, 6Cxx for a wrong Le

    def __init__(self) -> None:
        self.commands: list[bytes] = []
        self._pending = b""  # what GET RESPONSE hands out
        self.reset()

    def reset(self) -> None:
        """Power on or reset: nothing is selected."""
        self._pending = b""

    def answer(self, command: bytes) -> bytes | None:
        """The response APDU; None means the card leaves now, without answering."""
        self.commands.append(bytes(command))
        if len(command) < 4:
            return SW_WRONG_LENGTH
        cla, ins = command[0], command[1]
        if ins == 0xC0 and cla & 0xFC == 0:
            return self._get_response(_split(command)[1])
        self._pending = b""
        if cla == 0xFF:
            return self._reader_command(command)
        return self.command(command)

    def _reader_command(self, command: bytes) -> bytes:
        if command[1] == 0xCA and command[2] == 0x00:
            if self.uid is None:
                return SW_CLA_NOT_SUPPORTED if self.t0 else SW_FUNCTION_NOT_SUPPORTED
            return self.uid + SW_OK
        return SW_FUNCTION_NOT_SUPPORTED

    def command(self, command: bytes) -> bytes | None:
        """A card command (CLA is not FF); the base card knows none."""
        return SW_INS_NOT_SUPPORTED

    def reply(self, data: bytes, le: int | None) -> bytes:
        """Data and 90 00, or, like a T=0 card, 61 xx now and the data on GET RESPONSE."""
        if self.t0 and data:
            self._pending = data
            return b"\x61" + bytes([len(data) & 0xFF])
        if le and le < len(data):  # more than asked for: the rest waits for GET RESPONSE
            self._pending = data[le:]
            return data[:le] + b"\x61" + bytes([len(self._pending) & 0xFF])
        return data + SW_OK

    def record(self, data: bytes, le: int | None) -> bytes:
        """A record; a T=0 card wants the exact length as Le and says so with 6C xx."""
        if self.t0 and le != len(data) & 0xFF:
            return b"\x6c" + bytes([len(data) & 0xFF])
        return data + SW_OK

    def _get_response(self, le: int | None) -> bytes:
        if not self._pending:
            return SW_CONDITIONS
        size = le or 256  # Le 00 means 256
        chunk, self._pending = self._pending[:size], self._pending[size:]
        if self._pending:
            return chunk + b"\x61" + bytes([len(self._pending) & 0xFF])
        return chunk + SW_OK


class StaffBadge(ScriptedCard):
    """A MIFARE badge: no applications, only the UID the reader reports."""

    atr = BADGE_ATR

    def __init__(self, uid: bytes = bytes.fromhex("04A2246A8B5C80")) -> None:
        self.uid = uid
        super().__init__()

    def command(self, command: bytes) -> bytes | None:
        """A memory card understands no ISO 7816-4 command; the reader says so."""
        return SW_FUNCTION_NOT_SUPPORTED


def _bcd(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)


def _app_template(aid: bytes, label: str, priority: int) -> bytes:
    return tlv.encode(
        emv.APPLICATION_TEMPLATE,
        tlv.encode(emv.AID, aid)
        + tlv.encode(emv.LABEL, label.encode())
        + tlv.encode(emv.PRIORITY, bytes([priority])),
    )


class PbocCard(ScriptedCard):
    """A card with one UnionPay application, found through a PPSE or a PSE."""

    aid = emv.UNIONPAY_AIDS[0]
    label = "PBOC DEBIT"
    directory = "ppse"  # or "pse", or "none" (the AID must be selected directly)
    pdol = b""
    gpo_format = 2
    directory_sfi = 1

    def __init__(self, pan: str, expiry: dt.date) -> None:
        self.pan = pan
        self.expiry = expiry
        self.selected = ""
        self.generate_ac_seen = False
        super().__init__()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({emv.mask_pan(self.pan)})"

    def reset(self) -> None:
        """Nothing selected after power on."""
        super().reset()
        self.selected = ""

    def records(self) -> dict[tuple[int, int], bytes]:
        """(SFI, record) -> record template, as the AFL lists them."""
        track2 = _bcd(f"{self.pan}D{self.expiry:%y%m}2201000000000")
        return {
            (1, 1): tlv.encode(
                emv.RECORD, tlv.encode(emv.TRACK2, track2) + tlv.encode(0x5F20, b"ZHANG/SAN")
            ),
            (2, 1): tlv.encode(
                emv.RECORD,
                tlv.encode(emv.PAN, _bcd(self.pan))
                + tlv.encode(emv.EXPIRY, bytes.fromhex(f"{self.expiry:%y%m%d}"))
                + tlv.encode(0x5F34, b"\x01"),
            ),
            (2, 2): tlv.encode(emv.RECORD, tlv.encode(0x8C, bytes.fromhex("9F02069F03069F1A02"))),
        }

    def afl(self) -> bytes:
        """One entry per SFI covering its records."""
        out = b""
        for sfi in sorted({s for s, _ in self.records()}):
            last = max(r for s, r in self.records() if s == sfi)
            out += bytes([sfi << 3, 1, last, 0])
        return out

    def fci(self) -> bytes:
        """The FCI of the application: its name, label and PDOL."""
        proprietary = tlv.encode(emv.LABEL, self.label.encode()) + tlv.encode(emv.PRIORITY, b"\x01")
        if self.pdol:
            proprietary += tlv.encode(emv.PDOL, self.pdol)
        return tlv.encode(
            emv.FCI, tlv.encode(0x84, self.aid) + tlv.encode(emv.FCI_PROPRIETARY, proprietary)
        )

    def directory_fci(self, name: bytes) -> bytes:
        """The FCI of the PPSE (applications inline) or the PSE (a directory SFI)."""
        if self.directory == "ppse":
            inner = tlv.encode(emv.FCI_ISSUER_DISCRETIONARY, _app_template(self.aid, self.label, 1))
        else:
            inner = tlv.encode(emv.DIRECTORY_SFI, bytes([self.directory_sfi]))
        return tlv.encode(emv.FCI, tlv.encode(0x84, name) + tlv.encode(emv.FCI_PROPRIETARY, inner))

    def select(self, name: bytes, le: int | None) -> bytes:
        """SELECT by name: the directory, the application, or 6A 82."""
        wanted = {"ppse": emv.PPSE_NAME, "pse": emv.PSE_NAME}.get(self.directory)
        if name == wanted:
            self.selected = "directory"
            return self.reply(self.directory_fci(name), le)
        if name == self.aid:
            self.selected = "application"
            return self.reply(self.fci(), le)
        return SW_FILE_NOT_FOUND

    def gpo(self, data: bytes, le: int | None) -> bytes | None:
        """GET PROCESSING OPTIONS: checks the PDOL data's length like a real card does."""
        if self.selected != "application":
            return SW_CONDITIONS
        expected = sum(length for _, length in tlv.parse_dol(self.pdol))
        if data[:1] != b"\x83" or len(data) != 2 + expected or data[1] != expected:
            return SW_WRONG_LENGTH
        aip = bytes.fromhex("7C00")
        if self.gpo_format == 1:
            return self.reply(tlv.encode(emv.GPO_FORMAT_1, aip + self.afl()), le)
        body = tlv.encode(0x82, aip) + tlv.encode(emv.AFL, self.afl())
        return self.reply(tlv.encode(emv.GPO_FORMAT_2, body), le)

    def read(self, sfi: int, number: int, le: int | None) -> bytes:
        """READ RECORD in the selected directory or application."""
        if self.selected == "directory" and self.directory == "pse" and sfi == self.directory_sfi:
            if number != 1:
                return SW_RECORD_NOT_FOUND
            return self.record(tlv.encode(emv.RECORD, _app_template(self.aid, self.label, 1)), le)
        if self.selected != "application":
            return SW_CONDITIONS
        found = self.records().get((sfi, number))
        return SW_RECORD_NOT_FOUND if found is None else self.record(found, le)

    def command(self, command: bytes) -> bytes | None:
        """SELECT, GPO, READ RECORD; GENERATE AC is noted and refused."""
        cla, ins, p1, p2 = command[:4]
        data, le = _split(command)
        if cla == 0x00 and ins == 0xA4:
            return self.select(data, le) if p1 == 0x04 else SW_WRONG_P1P2
        if cla == 0x80 and ins == 0xA8:
            return self.gpo(data, le)
        if cla == 0x00 and ins == 0xB2:
            return self.read(p2 >> 3, p1, le) if p2 & 0x07 == 0x04 else SW_WRONG_P1P2
        if cla == 0x80 and ins == 0xAE:
            self.generate_ac_seen = True
            return SW_CONDITIONS
        return SW_INS_NOT_SUPPORTED


class UnionPayDebitCard(PbocCard):
    """A contactless UnionPay debit card: PPSE, a qPBOC PDOL, GPO format 2."""

    atr = DEBIT_ATR
    pdol = bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704")

    def __init__(
        self,
        pan: str = "6217000012341234",
        expiry: dt.date = dt.date(2031, 8, 31),
        uid: bytes = bytes.fromhex("08A1B2C3"),  # 08: a random UID, as bank cards use
    ) -> None:
        self.uid = uid
        super().__init__(pan, expiry)


class VanishingCard(UnionPayDebitCard):
    """A debit card taken away mid-read: it leaves without answering the GPO."""

    def gpo(self, data: bytes, le: int | None) -> bytes | None:
        """Go away instead of answering."""
        return None


class SocialSecurityCard(PbocCard):
    """A third-generation social security card: the SSSE application and a UnionPay one.

    Contact only, so no PPSE: the PBOC application is found through the PSE. It answers like
    a T=0 card, so the driver's 61xx and 6Cxx handling is exercised.
    """

    atr = SOCIAL_ATR
    t0 = True
    directory = "pse"
    label = "PBOC DEBIT"
    pdol = bytes.fromhex("9F7A019F02065F2A02DF6901")  # seen on contact PBOC cards
    gpo_format = 1

    def __init__(
        self,
        card_number: str = "A12345678",
        pan: str = "6214830012345678903",
        expiry: dt.date = dt.date(2033, 5, 31),
    ) -> None:
        self.card_number = card_number
        super().__init__(pan, expiry)

    def records(self) -> dict[tuple[int, int], bytes]:
        """Contact cards keep the PAN and expiry in 5A/5F24; no track 2 here."""
        return {
            (1, 1): tlv.encode(
                emv.RECORD,
                tlv.encode(emv.PAN, _bcd(self.pan))
                + tlv.encode(emv.EXPIRY, bytes.fromhex(f"{self.expiry:%y%m%d}")),
            ),
        }

    def select(self, name: bytes, le: int | None) -> bytes:
        """The SSSE application as well as the PBOC ones."""
        if name == emv.SSSE_NAME:
            self.selected = "ssse"
            return self.reply(tlv.encode(emv.FCI, tlv.encode(0x84, name)), le)
        return super().select(name, le)

    def read(self, sfi: int, number: int, le: int | None) -> bytes:
        """EF05 of the SSSE: record 07 is the card number; 05 and 06 the issue and end dates."""
        if self.selected != "ssse":
            return super().read(sfi, number, le)
        if sfi != emv.SSSE_CARD_INFO_SFI:
            return SW_FILE_NOT_FOUND
        ef05 = {
            5: bytes.fromhex("20230601"),
            6: bytes.fromhex(f"{self.expiry:%Y%m%d}"),
            7: self.card_number.encode("ascii"),
        }
        value = ef05.get(number)
        return SW_RECORD_NOT_FOUND if value is None else self.record(tlv.encode(number, value), le)


class GarbageCard(ScriptedCard):
    """A card that answers every command with the same malformed bytes and 90 00."""

    atr = GARBAGE_ATR
    junk = bytes.fromhex("6F85010203")  # template 6F with a five-byte length: not BER-TLV

    def answer(self, command: bytes) -> bytes | None:
        """Junk, whatever was asked."""
        self.commands.append(bytes(command))
        return self.junk + SW_OK


CARDS: dict[str, Callable[[], ScriptedCard]] = {
    "badge": StaffBadge,
    "debit": UnionPayDebitCard,
    "social": SocialSecurityCard,
    "garbage": GarbageCard,
    "vanishing": VanishingCard,
}


class VpcdUnavailable(RuntimeError):
    """Nothing listens on vpcd's port: pcscd is not running, or vsmartcard-vpcd is missing."""


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    buf = b""
    while len(buf) < size:
        if _QUICKACK is not None:
            # vpcd writes the length and the payload separately and its socket waits (Nagle)
            # for the first to be acknowledged: a delayed ACK here costs 40 ms per command.
            # Linux clears the flag as it goes, so it is set before every read.
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise EOFError("vpcd closed the connection")
        buf += chunk
    return buf


def _send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">H", len(payload)) + payload)


# vpcd learns that a card left only at pcscd's next presence poll (every 0.4 s). A card that
# connects before that poll is taken for the one that left: pcscd reports no change, and after
# a card that left mid-read (pcscd already marked it absent) it never reports the new one.
# Real hands are slower than that; scripts wait for the poll.
VPCD_POLL_SECONDS = 0.4
_SETTLE_SECONDS = VPCD_POLL_SECONDS + 0.2
_departures_lock = threading.Lock()
_departures: dict[tuple[str, int], float] = {}


def _settle(address: tuple[str, int]) -> None:
    with _departures_lock:
        left = _departures.get(address)
    if left is not None:
        time.sleep(max(0.0, left + _SETTLE_SECONDS - time.monotonic()))


class VirtualCard:
    """A scripted card in vpcd's reader, served on its own thread while inserted.

    Like a real card it stays in the reader when pcscd restarts: it connects again as soon as
    vpcd listens again. It leaves only on remove(), or when its script says so.
    """

    def __init__(
        self, card: ScriptedCard | str, host: str = VPCD_HOST, port: int = VPCD_PORT
    ) -> None:
        self.card = CARDS[card]() if isinstance(card, str) else card
        self._address = (host, port)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._removing = threading.Event()
        self._gone = threading.Event()
        self._gone.set()

    @property
    def inserted(self) -> bool:
        """Whether the card is in the reader (it leaves by itself when scripted to)."""
        return not self._gone.is_set()

    @property
    def commands(self) -> list[bytes]:
        """Every command APDU the card was sent, in order."""
        return list(self.card.commands)

    def insert(self) -> None:
        """Connect to vpcd: pcscd sees a card within its next poll (about 0.4 s)."""
        with self._lock:
            if self.inserted:
                raise RuntimeError("the card is already inserted")
            _settle(self._address)
            try:
                sock = self._connect(timeout=5)
            except OSError as exc:
                raise VpcdUnavailable(
                    f"vpcd does not answer on {self._address[0]}:{self._address[1]} ({exc}); "
                    f"is pcscd running with vsmartcard-vpcd installed? ({APT_LINE})"
                ) from None
            self._removing.clear()
            self._sock = sock
            self._gone.clear()
            self._thread = threading.Thread(
                target=self._run, args=(sock,), name="virtual-card", daemon=True
            )
            self._thread.start()

    def remove(self) -> None:
        """Disconnect from vpcd: pcscd sees the card gone at its next poll; idempotent."""
        self._removing.set()
        with self._lock:
            sock, thread = self._sock, self._thread
            self._sock = self._thread = None
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the other side
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def wait_gone(self, timeout: float) -> bool:
        """Wait until the card has left (after remove(), or by its own script)."""
        return self._gone.wait(timeout)

    def __enter__(self) -> VirtualCard:
        self.insert()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def _connect(self, timeout: float) -> socket.socket:
        sock = socket.create_connection(self._address, timeout=timeout)
        sock.settimeout(None)  # pcscd polls at its own pace; the thread just waits
        # Each answer is one write: Nagle must not hold it back behind an earlier answer
        # (to pcscd's presence poll) that vpcd has not acknowledged yet.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.card.reset()
        return sock

    def _run(self, sock: socket.socket | None) -> None:
        try:
            while sock is not None:
                if self._serve(sock):
                    return
                sock = self._come_back()
        finally:
            with _departures_lock:
                _departures[self._address] = time.monotonic()
            self._gone.set()

    def _come_back(self) -> socket.socket | None:
        # vpcd dropped us without a remove(): pcscd stopped. The card is still in the reader,
        # so it is there again as soon as vpcd listens again.
        while not self._removing.wait(0.1):
            try:
                sock = self._connect(timeout=1)
            except OSError:
                continue
            with self._lock:
                if self._removing.is_set():
                    sock.close()
                    return None
                self._sock = sock
            log.debug("virtual card: back in the reader after vpcd returned")
            return sock
        return None

    def _serve(self, sock: socket.socket) -> bool:
        """Answer vpcd until the connection ends; True when the script made the card leave."""
        try:
            while True:
                (size,) = struct.unpack(">H", _recv_exactly(sock, 2))
                payload = _recv_exactly(sock, size)
                if len(payload) == 1:
                    if payload[0] == 0x04:
                        _send_frame(sock, self.card.atr)
                    elif payload[0] in (0x01, 0x02):  # power on, reset
                        self.card.reset()
                    continue  # 00 power off: nothing to answer
                response = self.card.answer(payload)
                if response is None:
                    log.debug("virtual card: leaving mid-exchange, as scripted")
                    return True
                _send_frame(sock, response)
        except (OSError, EOFError) as exc:
            log.debug("virtual card: connection ended: %s", exc)  # remove(), or pcscd stopped
            return False
        finally:
            sock.close()


# pcscd for the virtual card -----------------------------------------------------------------

PCSCD_PID_FILE = Path("/run/pcscd/pcscd.pid")
VPCD_CONFIG = Path("/etc/reader.conf.d/vpcd")
LOCK_FILE = Path(tempfile.gettempdir()) / "hall-kiosk-vpcd.lock"


class PcscdError(RuntimeError):
    """pcscd or vpcd cannot be used for the virtual card; the message says what to do."""


def pcscd_binary() -> str | None:
    """Where pcscd is (it lives in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("pcscd") or (
        "/usr/sbin/pcscd" if Path("/usr/sbin/pcscd").exists() else None
    )


def missing_packages() -> list[str]:
    """The Debian packages the virtual card needs that are not installed."""
    missing = []
    if pcscd_binary() is None:
        missing.append("pcscd")
    if not VPCD_CONFIG.exists() or not list(Path("/usr/lib/pcsc/drivers").rglob("libifdvpcd*")):
        missing.append("vsmartcard-vpcd")
    return missing


def _vpcd_readers() -> list[str] | None:
    """The vpcd readers pcscd offers; None when pcscd does not answer."""
    from devices.pcsc.reader import PcscUnavailable, list_readers

    try:
        return [r for r in list_readers() if r.startswith(VPCD_READER_PREFIX)]
    except PcscUnavailable:
        return None


def pcscd_pid() -> int | None:
    """The pid in pcscd's pid file (pcscd writes a NUL after it), or None."""
    try:
        text = PCSCD_PID_FILE.read_text(encoding="ascii", errors="replace")
        return int(text.strip("\n\x00 "))
    except (OSError, ValueError):
        return None


_lock_guard = threading.Lock()
_lock_holders = 0
_lock_file: IO[bytes] | None = None


@contextlib.contextmanager
def _vpcd_session(timeout: float) -> Iterator[None]:
    # One virtual card session per machine: two test runs inserting cards into the same vpcd
    # slot, or one stopping the pcscd the other uses, would break each other. flock is per
    # open file, so this process counts its own holders instead of locking twice.
    global _lock_holders, _lock_file
    with _lock_guard:
        if _lock_holders == 0:
            handle = LOCK_FILE.open("a+b")
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        handle.close()
                        raise PcscdError(
                            f"another virtual card session holds {LOCK_FILE} "
                            f"(a test run or `kiosk diag pcsc --virtual`); try again when it ends"
                        ) from None
                    time.sleep(0.1)
            _lock_file = handle
        _lock_holders += 1
    try:
        yield
    finally:
        with _lock_guard:
            _lock_holders -= 1
            if _lock_holders == 0 and _lock_file is not None:
                fcntl.flock(_lock_file, fcntl.LOCK_UN)
                _lock_file.close()
                _lock_file = None


class PcscDaemon:
    """The pcscd the virtual card plugs into: one already running, or one started here."""

    def __init__(self, session: contextlib.ExitStack, started_here: bool) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self._output: Path | None = None
        self._session = session
        self._started_here = started_here

    @property
    def started_here(self) -> bool:
        """Whether stop() stops pcscd (False: it was running before, and stays running)."""
        return self._started_here

    @property
    def pid(self) -> int | None:
        """The pid of pcscd."""
        return self.process.pid if self.process is not None else pcscd_pid()

    @classmethod
    def ensure(cls, timeout: float = 15.0, lock_timeout: float = 120.0) -> PcscDaemon:
        """Use the running pcscd if it has the vpcd reader, else start `pcscd -f`.

        Raises PcscdError saying what to do (install, restart, wait for another session).
        """
        missing = missing_packages()
        if missing:
            raise PcscdError(
                f"not installed: {', '.join(missing)}. Install them as root: "
                f"apt-get install -y {' '.join(missing)}"
            )
        session = contextlib.ExitStack()
        session.enter_context(_vpcd_session(lock_timeout))
        try:
            readers = _vpcd_readers()
            if readers is not None:
                if not readers:
                    raise PcscdError(
                        f"a pcscd is already running (pid {pcscd_pid()}) without the vpcd "
                        "reader, probably started before vsmartcard-vpcd was installed: "
                        "restart it, or stop it and let this start its own"
                    )
                log.info("pcscd: using the running one (pid %s)", pcscd_pid())
                return cls(session, started_here=False)
            daemon = cls(session, started_here=True)
            daemon._start(timeout)
            return daemon
        except BaseException:
            session.close()
            raise

    def _start(self, timeout: float) -> None:
        binary = pcscd_binary()
        if binary is None:  # missing_packages() checked, but the file can go in between
            raise PcscdError(f"pcscd is not installed: {APT_LINE}")
        fd, name = tempfile.mkstemp(prefix="pcscd-", suffix=".log")
        self._output = Path(name)
        with os.fdopen(fd, "wb") as sink:
            process = subprocess.Popen(
                [binary, "-f"], stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.process = process
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = self.output_tail()
                self._stop_process()
                raise PcscdError(
                    f"pcscd -f exited with status {process.returncode}"
                    + (" (not root? it needs /run/pcscd)" if os.geteuid() else "")
                    + f":\n{tail}"
                )
            if _vpcd_readers():
                log.info("pcscd: started (pid %d)", process.pid)
                return
            time.sleep(0.05)
        tail = self.output_tail()
        self._stop_process()
        raise PcscdError(f"pcscd did not offer the vpcd reader within {timeout:.0f} s:\n{tail}")

    def output_tail(self, lines: int = 20) -> str:
        """The last lines pcscd printed, when it was started here."""
        if self._output is None or not self._output.exists():
            return ""
        text = self._output.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _stop_process(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                log.warning("pcscd (pid %d) ignored SIGTERM; killing it", process.pid)
                process.kill()
                process.wait(5)
        if self._output is not None:
            self._output.unlink(missing_ok=True)
            self._output = None

    def restart(
        self, while_stopped: Callable[[], object] | None = None, timeout: float = 15.0
    ) -> None:
        """Stop pcscd and start it again, as after a crash; `while_stopped` runs in between.

        Only a pcscd started here can be restarted.
        """
        if not self._started_here:
            raise PcscdError("this pcscd was running before: not ours to restart")
        self._stop_process()
        if while_stopped is not None:
            while_stopped()
        self._start(timeout)

    def stop(self) -> None:
        """Stop pcscd by its pid if it was started here (SIGTERM, then wait); idempotent."""
        self._stop_process()
        self._session.close()

    def __enter__(self) -> PcscDaemon:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
