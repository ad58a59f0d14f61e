"""Command APDUs and one exchange with a card, including the status words that ask for more.

pyscard sends exactly what it is given: after `61 xx` (more data waiting) nobody fetches the
rest, and after `6C xx` (wrong Le) nobody sends the command again. `transmit` does both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

SW_OK = 0x9000
MAX_ROUNDS = 16  # 61xx chains of a real card end in a few rounds; a card looping forever is broken
INS_GENERATE_AC = 0xAE


class CardError(Exception):
    """A card exchange that did not give an answer to use; `reason` is for the technician.

    Reasons never contain card data: they name the command, the status word and offsets.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CardGone(CardError):
    """The card (or its reader) went away during the exchange."""


class CardIOError(CardError):
    """The reader or the card failed the exchange, or answered something that is not an APDU."""


class CardDataError(CardError):
    """The card answered, but not the way the standard says it should."""


class StatusError(CardDataError):
    """A command the read depends on was refused; `sw` is the status word."""

    def __init__(self, reason: str, sw: int) -> None:
        super().__init__(reason)
        self.sw = sw


class Transport(Protocol):
    """One raw exchange: the command goes out, (data, SW1, SW2) comes back; raises CardError."""

    def transmit(self, command: bytes) -> tuple[bytes, int, int]: ...


@dataclass(frozen=True)
class Response:
    """A complete response: data from every GET RESPONSE round, and the last status word."""

    data: bytes = field(repr=False)
    sw1: int
    sw2: int

    @property
    def sw(self) -> int:
        """SW1 and SW2 as one number, e.g. 0x9000."""
        return (self.sw1 << 8) | self.sw2

    @property
    def ok(self) -> bool:
        """The command completed normally (90 00)."""
        return self.sw == SW_OK


def command(
    cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
) -> bytes:
    """A short command APDU (ISO 7816-4 §5.1); `le=0` asks for up to 256 bytes."""
    for name, byte in (("CLA", cla), ("INS", ins), ("P1", p1), ("P2", p2)):
        if not 0 <= byte <= 0xFF:
            raise ValueError(f"{name} must be one byte")
    if len(data) > 255:
        raise ValueError("short APDUs carry at most 255 data bytes")
    if le is not None and not 0 <= le <= 256:
        raise ValueError("Le must be 0..256")
    apdu = bytes([cla, ins, p1, p2])
    if data:
        apdu += bytes([len(data)]) + bytes(data)
    if le is not None:
        apdu += bytes([le & 0xFF])
    return apdu


def select_by_name(name: bytes) -> bytes:
    """SELECT by DF name / AID, first or only occurrence, FCI returned."""
    return command(0x00, 0xA4, 0x04, 0x00, name, le=0)


def read_record(sfi: int, record: int) -> bytes:
    """READ RECORD `record` of the file with short identifier `sfi` (P2 = SFI << 3 | 4)."""
    if not 1 <= sfi <= 30:
        raise ValueError("an SFI is 1..30")
    if not 1 <= record <= 0xFE:
        raise ValueError("a record number is 1..254")
    return command(0x00, 0xB2, record, (sfi << 3) | 0x04, le=0)


def get_response(length: int, cla: int = 0x00) -> bytes:
    """GET RESPONSE for `length` bytes (0 means 256) on the logical channel of `cla`."""
    return command(cla & 0x03, 0xC0, 0x00, 0x00, le=length)


GET_UID = command(0xFF, 0xCA, 0x00, 0x00, le=0)  # PC/SC Part 3 GET DATA: the contactless UID


def with_le(apdu: bytes, le: int) -> bytes:
    """The same command with its Le replaced (or added), as 6C xx asks."""
    apdu = bytes(apdu)
    if len(apdu) < 4:
        raise ValueError("an APDU has at least four bytes")
    if len(apdu) == 4:  # case 1
        return apdu + bytes([le])
    if len(apdu) == 5:  # case 2: header + Le
        return apdu[:4] + bytes([le])
    lc = apdu[4]
    if len(apdu) == 5 + lc:  # case 3: header + Lc + data
        return apdu + bytes([le])
    if len(apdu) == 6 + lc:  # case 4: header + Lc + data + Le
        return apdu[:-1] + bytes([le])
    raise ValueError("not a short APDU: Lc does not match the length")


def describe(apdu: bytes) -> str:
    """The header only, e.g. '00 A4 04 00' (the data field may hold a card number)."""
    return " ".join(f"{b:02X}" for b in apdu[:4])


_NAMES = {
    0xA4: "SELECT",
    0xB2: "READ RECORD",
    0xC0: "GET RESPONSE",
    0xCA: "GET DATA",
    0xA8: "GET PROCESSING OPTIONS",
    0xB0: "READ BINARY",
}


def _df_name(df: bytes) -> str:
    # Directory names are text ("2PAY.SYS.DDF01", the social security one in GBK); AIDs start
    # with a registered RID byte (A0...) and read better in hex.
    if df[:1].isascii() and df[:1].isalnum():
        try:
            text = df.decode("gbk")
        except UnicodeDecodeError:
            text = ""
        if text.isprintable():
            return text
    return df.hex().upper()


def command_name(apdu: bytes) -> str:
    """'GET PROCESSING OPTIONS (80 A8 00 00)': how reasons name a command."""
    return f"{name_of(apdu)} ({describe(apdu)})"


def name_of(apdu: bytes) -> str:
    """What a command is, for a technician: 'SELECT 2PAY.SYS.DDF01', 'READ RECORD 1 of SFI 2'.

    Only names and numbers the terminal chose appear: never anything the card sent.
    """
    if len(apdu) < 4:
        return "?"
    cla, ins, p1, p2 = apdu[:4]
    if cla == 0xFF and ins == 0xCA:
        return "GET UID (PC/SC)" if p1 == 0 else "GET DATA (PC/SC)"
    name = _NAMES.get(ins, f"INS {ins:02X}")
    if ins == 0xA4 and p1 == 0x04 and len(apdu) > 5:
        df = apdu[5 : 5 + apdu[4]]
        return f"{name} {_df_name(df)}"
    if ins == 0xB2 and p2 & 0x07 == 0x04:
        return f"{name} {p1} of SFI {p2 >> 3}"
    return name


def transmit(transport: Transport, apdu: bytes) -> Response:
    """Send `apdu`, fetch the rest after 61 xx and resend once with the right Le after 6C xx."""
    apdu = bytes(apdu)
    if len(apdu) < 4:
        raise ValueError("an APDU has at least four bytes")
    if apdu[1] == INS_GENERATE_AC and apdu[0] & 0x80:
        # A cryptogram request starts a payment transaction; reading a card must never do that.
        raise ValueError("GENERATE AC is never sent by this driver")
    parts: list[bytes] = []
    current = apdu
    resent = False
    for _ in range(MAX_ROUNDS):
        data, sw1, sw2 = transport.transmit(current)
        if sw1 == 0x61:
            parts.append(bytes(data))
            current = get_response(sw2, apdu[0])
            continue
        if sw1 == 0x6C:
            if resent:
                raise CardDataError(f"{command_name(apdu)}: the card asked for another Le twice")
            resent = True
            # No data comes with 6C: the same command (the original, or the GET RESPONSE that
            # asked for too much) goes again with the length the card named.
            current = with_le(current, sw2)
            continue
        parts.append(bytes(data))
        return Response(b"".join(parts), sw1, sw2)
    raise CardDataError(
        f"{command_name(apdu)}: still more data after {MAX_ROUNDS} GET RESPONSE rounds"
    )


def expect_ok(transport: Transport, apdu: bytes, what: str) -> Response:
    """transmit(), raising StatusError unless the card answers 90 00."""
    response = transmit(transport, apdu)
    if not response.ok:
        raise StatusError(f"{what}: the card answered {response.sw:04X}", response.sw)
    return response


@dataclass(frozen=True)
class Exchange:
    """One raw exchange as a technician may see it: header, answer size, status word, time."""

    header: str
    name: str
    length: int
    sw: int
    ms: float


class TracingTransport:
    """A transport that reports each exchange (never its data) to `sink`."""

    def __init__(self, inner: Transport, sink: Callable[[Exchange], None]) -> None:
        self._inner = inner
        self._sink = sink

    def transmit(self, command: bytes) -> tuple[bytes, int, int]:
        """Pass the command on and report how it went."""
        start = time.perf_counter()
        data, sw1, sw2 = self._inner.transmit(command)
        ms = (time.perf_counter() - start) * 1000
        self._sink(Exchange(describe(command), name_of(command), len(data), (sw1 << 8) | sw2, ms))
        return data, sw1, sw2
