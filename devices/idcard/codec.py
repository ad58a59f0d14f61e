"""The SAM serial frame protocol (GA/T 467): command and response frames, status codes.

Command:  AA AA AA 96 69 | Len1 Len2 | CMD PARA | data | CHK
Response: AA AA AA 96 69 | Len1 Len2 | SW1 SW2 SW3 | data | CHK
Len is big-endian and counts every byte after itself, CHK included. CHK is the XOR of every
byte from Len1 to the last data byte. Sources: docs/idcard.md and the reference notes there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
HEADER_SIZE = len(PREAMBLE) + 2  # preamble and the two length bytes
MIN_RESPONSE_LEN = 4  # SW1 SW2 SW3 CHK
MIN_COMMAND_LEN = 3  # CMD PARA CHK
# The longest documented response is the fingerprint read (Len 0x090A, 2321 bytes on the
# wire). A length far beyond it is a corrupt header, and trusting it would make a reader wait
# for tens of kilobytes that never come.
MAX_FRAME_LEN = 0x1000

SW3_SUCCESS = 0x90
SW3_FOUND = 0x9F
SW3_NO_CONTENT = 0x91
SW3_NO_CARD = 0x80
SW3_SELECT_FAILED = 0x81
SW3_READ_FAILED = 0x41
SW3_BAD_CHECKSUM = 0x10
SW3_BAD_LENGTH = 0x11
SW3_BAD_COMMAND = 0x21
SW3_SAM_SELF_TEST_FAILED = 0x60
SW3_SAM_NOT_AUTHORISED = 0x66

# SW3 meanings (softs.im table; HslCommunication GetErrorDescription).
SW3_MEANINGS: dict[int, str] = {
    0x90: "success",
    0x9F: "card found",
    0x91: "the card has no content for this item",
    0x10: "checksum error in the terminal's frame",
    0x11: "length error in the terminal's frame",
    0x21: "command error",
    0x23: "operation not authorised",
    0x24: "unrecognised error",
    0x31: "the card failed to authenticate the SAM",
    0x32: "the SAM failed to authenticate the card",
    0x33: "information verification error",
    0x40: "unrecognised or wrong card type",
    0x41: "reading the card failed",
    0x47: "get-random-number failed",
    0x60: "SAM self-test failed",
    0x66: "SAM not authorised",
    0x80: "no card found",
    0x81: "selecting the card failed",
}


def sw3_meaning(sw3: int) -> str:
    """A technician's description of a SW3 status byte."""
    return SW3_MEANINGS.get(sw3, "unknown status")


class Command(NamedTuple):
    """One SAM command: its CMD and PARA bytes and a name for logs and diagnostics."""

    cmd: int
    para: int
    name: str


RESET_SAM = Command(0x10, 0xFF, "reset SAM")
SAM_STATUS = Command(0x11, 0xFF, "SAM status")
SAM_ID = Command(0x12, 0xFF, "read SAM id")
FIND_CARD = Command(0x20, 0x01, "find card")
SELECT_CARD = Command(0x20, 0x02, "select card")
READ_BASE = Command(0x30, 0x01, "read base info")
READ_ADDRESS = Command(0x30, 0x03, "read additional address")
READ_BASE_FINGERPRINT = Command(0x30, 0x10, "read base info with fingerprint")
COMMANDS: tuple[Command, ...] = (
    RESET_SAM,
    SAM_STATUS,
    SAM_ID,
    FIND_CARD,
    SELECT_CARD,
    READ_BASE,
    READ_ADDRESS,
    READ_BASE_FINGERPRINT,
)


def command_name(cmd: int, para: int) -> str:
    """The name of a known command, else its bytes in hex."""
    for command in COMMANDS:
        if command.cmd == cmd and command.para == para:
            return command.name
    return f"command {cmd:02X} {para:02X}"


# Errors --------------------------------------------------------------------------------------


class IdCardError(Exception):
    """Anything the ID card reader can run into; messages never carry card data."""


class FrameError(IdCardError, ValueError):
    """A corrupt frame. `remaining` holds the bytes after its preamble, to resynchronise on."""

    def __init__(self, message: str, remaining: bytes = b"") -> None:
        super().__init__(message)
        self.remaining = remaining


class FrameLengthError(FrameError):
    """The length field is impossible for a frame of this protocol."""


class FrameChecksumError(FrameError):
    """The XOR checksum does not match the frame's bytes."""


class TruncatedFrame(FrameError):
    """A frame started but its bytes stopped coming before it was complete."""


class NoFrameError(FrameError):
    """Bytes arrived, but none of them started a frame (line noise, wrong baud rate)."""


class UnexpectedResponse(IdCardError):
    """A well-formed frame whose data does not have the shape its command promises."""


# Frames --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded response: the two card status bytes, the SAM status byte and the data."""

    sw1: int
    sw2: int
    sw3: int
    data: bytes = field(repr=False)

    def __repr__(self) -> str:
        # The data may be a card's text block: never let it reach a log through repr().
        return (
            f"Frame(sw1=0x{self.sw1:02X}, sw2=0x{self.sw2:02X}, sw3=0x{self.sw3:02X}, "
            f"data=<{len(self.data)} bytes>)"
        )


@dataclass(frozen=True, slots=True)
class CommandFrame:
    """A decoded command, as the SAM sees it (the simulator's side of the wire)."""

    cmd: int
    para: int
    data: bytes = field(repr=False)


def xor_checksum(data: bytes) -> int:
    """The XOR of all bytes of `data` (0 for no bytes)."""
    # Folding one big integer in halves is about twenty times faster than a byte loop, which
    # matters for the 1295-byte base-info frame (the benchmark's 0.2 ms budget).
    value = int.from_bytes(data, "little")
    size = len(data)
    while size > 1:
        half = (size + 1) // 2
        value = (value & ((1 << (8 * half)) - 1)) ^ (value >> (8 * half))
        size = half
    return value & 0xFF


def _frame(body: bytes) -> bytes:
    if len(body) + 1 > 0xFFFF:
        raise ValueError("frame body too long for a 16-bit length")
    head = (len(body) + 1).to_bytes(2, "big")
    return PREAMBLE + head + body + bytes([xor_checksum(head + body)])


def _byte(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{what} must be a byte (0..255), got {value}")
    return value


def encode_command(cmd: int, para: int, data: bytes = b"") -> bytes:
    """The command frame for CMD, PARA and optional data, with length and checksum."""
    return _frame(bytes([_byte(cmd, "cmd"), _byte(para, "para")]) + bytes(data))


def encode_response(sw1: int, sw2: int, sw3: int, data: bytes = b"") -> bytes:
    """The response frame a SAM sends (used by the simulator and tests)."""
    return _frame(bytes([_byte(sw1, "sw1"), _byte(sw2, "sw2"), _byte(sw3, "sw3")]) + bytes(data))


def _partial_preamble(buf: bytes) -> int:
    """How many bytes at the end of `buf` could be the start of a preamble."""
    for size in range(min(len(PREAMBLE) - 1, len(buf)), 0, -1):
        if buf.endswith(PREAMBLE[:size]):
            return size
    return 0


def _split(buf: bytes, min_len: int) -> tuple[bytes | None, bytes]:
    """The body (Len1…last data byte) of the first complete frame, and what follows it."""
    start = buf.find(PREAMBLE)
    if start < 0:
        keep = _partial_preamble(buf)
        return None, buf[len(buf) - keep :] if keep else b""
    if len(buf) - start < HEADER_SIZE:
        return None, buf[start:]
    length = int.from_bytes(buf[start + 5 : start + 7], "big")
    after_preamble = buf[start + len(PREAMBLE) :]
    if not min_len <= length <= MAX_FRAME_LEN:
        raise FrameLengthError(
            f"frame length {length} outside {min_len}..{MAX_FRAME_LEN}", after_preamble
        )
    end = start + HEADER_SIZE + length
    if len(buf) < end:
        return None, buf[start:]
    body = buf[start + 5 : end - 1]
    if xor_checksum(body) != buf[end - 1]:
        raise FrameChecksumError(
            f"checksum 0x{buf[end - 1]:02X} does not match 0x{xor_checksum(body):02X}",
            after_preamble,
        )
    return body, buf[end:]


def decode_frame(buf: bytes) -> tuple[Frame | None, bytes]:
    """The first complete response frame in `buf` and the bytes after it.

    Leading noise is skipped. Without a complete frame yet: (None, the bytes to keep), which
    start at a preamble or at a partial one. Raises a FrameError for a corrupt frame.
    """
    body, rest = _split(bytes(buf), MIN_RESPONSE_LEN)
    if body is None:
        return None, rest
    return Frame(body[2], body[3], body[4], body[5:]), rest


def decode_command(buf: bytes) -> tuple[CommandFrame | None, bytes]:
    """The first complete command frame in `buf`, like decode_frame (the SAM's side)."""
    body, rest = _split(bytes(buf), MIN_COMMAND_LEN)
    if body is None:
        return None, rest
    return CommandFrame(body[2], body[3], body[4:]), rest


def bytes_wanted(kept: bytes) -> int:
    """How many more bytes complete the frame `kept` starts (kept as decode_frame left it).

    At least 1; when the length field is not in yet, enough to reach it. A reader asks for
    exactly this many so it never reads past a frame and wakes up once per frame, not per byte.
    """
    if len(kept) < HEADER_SIZE or not kept.startswith(PREAMBLE):
        return max(1, HEADER_SIZE - len(kept))
    length = int.from_bytes(kept[5:7], "big")
    return max(1, HEADER_SIZE + length - len(kept))


# Response data -------------------------------------------------------------------------------

TEXT_SIZE = 256
PHOTO_SIZE = 1024
ADDRESS_SIZE = 70
SAM_ID_SIZE = 16


@dataclass(frozen=True, slots=True)
class BaseInfo:
    """The data of a read-base-info answer: text block, WLT photo, fingerprint (or empty)."""

    text: bytes = field(repr=False)
    photo: bytes = field(repr=False)
    fingerprint: bytes = field(default=b"", repr=False)


def parse_base_info(data: bytes, with_fingerprint: bool = False) -> BaseInfo:
    """Split the data of a 30 01 (or 30 10) answer by its length fields."""
    count = 3 if with_fingerprint else 2
    head = 2 * count
    if len(data) < head:
        raise UnexpectedResponse(f"base info of {len(data)} bytes has no length fields")
    lengths = [int.from_bytes(data[2 * i : 2 * i + 2], "big") for i in range(count)]
    if head + sum(lengths) != len(data):
        raise UnexpectedResponse(
            f"base info lengths {lengths} do not add up to its {len(data) - head} bytes"
        )
    text_end = head + lengths[0]
    photo_end = text_end + lengths[1]
    return BaseInfo(
        text=data[head:text_end],
        photo=data[text_end:photo_end],
        fingerprint=data[photo_end:] if with_fingerprint else b"",
    )


def encode_base_info(info: BaseInfo, with_fingerprint: bool = False) -> bytes:
    """The data of a base-info answer (the simulator's side)."""
    parts = [info.text, info.photo] + ([info.fingerprint] if with_fingerprint else [])
    return b"".join(len(p).to_bytes(2, "big") for p in parts) + b"".join(parts)


def format_sam_id(data: bytes) -> str:
    """The SAM id as vendors print it: d0.d2-u32-u32-u32 (little-endian words)."""
    if len(data) != SAM_ID_SIZE:
        raise UnexpectedResponse(f"SAM id of {len(data)} bytes, expected {SAM_ID_SIZE}")
    words = [int.from_bytes(data[i : i + 4], "little") for i in (4, 8, 12)]
    return f"{data[0]:02d}.{data[2]:02d}-{words[0]}-{words[1]:09d}-{words[2]:09d}"
