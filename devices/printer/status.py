"""Printer status through DLE EOT (real-time status transmission), with short timeouts.

A printer answers DLE EOT n with one byte at once, even while offline, out of paper or with the
cover open. The three asked here:
- n = 1, printer status: bit 3 offline.
- n = 2, offline cause: bit 2 cover open, bit 5 stopped at paper end, bit 6 error.
- n = 4, roll paper sensor: bits 2-3 paper near its end, bits 5-6 paper out.
Every answer has bits 0 and 7 clear and bits 1 and 4 set; anything else on the line (an
automatic status block, stale bytes) is skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from kiosk.ports import PrinterStatus

DLE_EOT = b"\x10\x04"
PRINTER, OFFLINE_CAUSE, PAPER = 1, 2, 4

_FIXED_MASK, _FIXED_BITS = 0b1001_0011, 0b0001_0010
_OFFLINE = 0x08
_COVER_OPEN = 0x04
_PAPER_END_STOP = 0x20
_ERROR = 0x40
_NEAR_END = 0x0C
_PAPER_OUT = 0x60

STATUS_TIMEOUT = 0.8  # seconds for one answer: a healthy printer answers in a few ms


class StatusLink(Protocol):
    """What a status query needs from a connection."""

    @property
    def answers(self) -> bool:
        """False for connections that carry nothing back (a file, a CUPS queue)."""

    def send(self, data: bytes) -> None: ...

    def read_reply(self, timeout: float) -> bytes:
        """Bytes the printer sent within `timeout`; b"" if none."""

    def drain(self) -> None:
        """Drop whatever the printer sent that nobody read."""


def request(n: int) -> bytes:
    """The DLE EOT n request."""
    return DLE_EOT + bytes((n,))


def is_status_byte(value: int) -> bool:
    """Whether `value` can be an answer to DLE EOT (fixed bits 0, 1, 4, 7)."""
    return value & _FIXED_MASK == _FIXED_BITS


@dataclass(frozen=True)
class StatusReport:
    """The printer's answers, decoded; `answered` False when it said nothing in time."""

    answered: bool
    online: bool = False
    cover_open: bool = False
    paper_near_end: bool = False
    paper_out: bool = False
    error: bool = False
    queried: bool = True  # False: the connection cannot carry answers (a file, a CUPS queue)

    @property
    def ready(self) -> bool:
        """Whether a job sent now would print."""
        return self.to_port().ready

    def to_port(self) -> PrinterStatus:
        """The kiosk's view of it; a printer that cannot be asked is taken as ready."""
        if not self.queried:
            return PrinterStatus(online=True)
        return PrinterStatus(
            online=self.answered and self.online,
            paper_out=self.paper_out,
            paper_near_end=self.paper_near_end,
            cover_open=self.cover_open,
        )

    def describe(self) -> str:
        """Plain words for the technician: "offline, cover open", "ready", ..."""
        if not self.queried:
            return "status not available on this connection"
        if not self.answered:
            return "no answer to the status query"
        words = [
            text
            for flag, text in (
                (not self.online, "offline"),
                (self.cover_open, "cover open"),
                (self.paper_out, "paper out"),
                (self.error, "error"),
                (self.paper_near_end, "paper near end"),
            )
            if flag
        ]
        return ", ".join(words) or "ready"


UNQUERIED = StatusReport(answered=False, online=True, queried=False)
SILENT = StatusReport(answered=False)


def decode(printer: int, offline_cause: int, paper: int) -> StatusReport:
    """Decode the answers to DLE EOT 1, 2 and 4."""
    return StatusReport(
        answered=True,
        online=not printer & _OFFLINE and not offline_cause & _ERROR,
        cover_open=bool(offline_cause & _COVER_OPEN),
        paper_near_end=bool(paper & _NEAR_END),
        paper_out=bool(paper & _PAPER_OUT or offline_cause & _PAPER_END_STOP),
        error=bool(offline_cause & _ERROR),
    )


def _ask(link: StatusLink, n: int, timeout: float) -> int | None:
    link.send(request(n))
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        reply = link.read_reply(left)
        for value in reversed(reply):
            if is_status_byte(value):
                return value
        if not reply:
            return None  # the read itself waited out the time
    return None


def query(link: StatusLink, timeout: float = STATUS_TIMEOUT) -> StatusReport:
    """Ask DLE EOT 1, 2 and 4; a printer silent on the first is not asked the rest."""
    if not link.answers:
        return UNQUERIED
    link.drain()
    first = _ask(link, PRINTER, timeout)
    if first is None:
        return SILENT
    cause = _ask(link, OFFLINE_CAUSE, timeout)
    paper = _ask(link, PAPER, timeout)
    if cause is None or paper is None:
        return SILENT
    return decode(first, cause, paper)
