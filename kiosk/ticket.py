"""The queue ticket (取号) as a document: what devices print when an applicant takes a number."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from kiosk.i18n import Text

TICKET_TITLE = Text("排队号", "Queue number")
TICKET_NOTICE = Text(
    "请留意叫号屏幕和广播，过号请重新取号",
    "Please watch the screen for your number; if it is missed, take a new one",
)


@dataclass(frozen=True)
class TicketRow:
    """One labelled fact on the ticket, in both languages."""

    label: Text
    value: Text


@dataclass(frozen=True)
class QueueTicket:
    """A queue ticket: number, counter group, people ahead and time. Carries no personal data."""

    number: str  # as called out and shown on the hall's screens, e.g. "A023"
    counter_group: Text  # the counters that serve this queue
    people_ahead: int
    issued_at: dt.datetime
    hall: Text

    def __post_init__(self) -> None:
        if not self.number.strip():
            raise ValueError("a queue ticket needs a number")
        if self.people_ahead < 0:
            raise ValueError(f"people_ahead={self.people_ahead}: cannot be negative")

    def rows(self) -> tuple[TicketRow, ...]:
        """The facts under the number, in print order, with bilingual labels."""
        ahead = self.people_ahead
        people = "1 person" if ahead == 1 else f"{ahead} people"
        time = self.issued_at.strftime("%Y-%m-%d %H:%M")
        return (
            TicketRow(Text("办理窗口", "Counters"), self.counter_group),
            TicketRow(Text("前面等候", "Waiting ahead"), Text(f"{ahead} 人", people)),
            TicketRow(Text("取号时间", "Issued"), Text(time, time)),
        )

    def text_lines(self) -> list[str]:
        """The ticket as plain text lines (for tests and accessibility), Chinese then English."""
        out = [self.hall.zh, self.hall.en, f"{TICKET_TITLE.zh} {TICKET_TITLE.en}", self.number]
        for row in self.rows():
            out.append(f"{row.label.zh} {row.label.en}：{row.value.zh}")
            if row.value.en != row.value.zh:
                out.append(row.value.en)
        out.extend((TICKET_NOTICE.zh, TICKET_NOTICE.en))
        return out


def ticket_number(prefix: str, sequence: int) -> str:
    """The called-out form of a queue position: a letter for the queue, three digits ("A023")."""
    if not (len(prefix) == 1 and prefix.isascii() and prefix.isalpha()):
        raise ValueError(f"prefix={prefix!r}: one ASCII letter")
    if not 0 < sequence < 1000:
        raise ValueError(f"sequence={sequence}: 1 to 999")
    return f"{prefix.upper()}{sequence:03d}"
