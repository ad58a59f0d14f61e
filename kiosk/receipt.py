"""The receipt (回执) as a document: what devices render to paper and to the screen."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from kiosk.catalog import Promise


@dataclass(frozen=True)
class ReceiptLine:
    """A line of the receipt: a label and a value, or a heading, or plain text."""

    text: str
    value: str = ""
    style: Literal["heading", "pair", "text", "small"] = "pair"


@dataclass(frozen=True)
class Receipt:
    """Everything printed, in print order. Holds only masked personal data."""

    title: str
    subtitle: str
    number: str  # the local receipt number, also printed as a barcode
    qr_payload: str
    lines: tuple[ReceiptLine, ...]
    footer: tuple[str, ...]
    issued_at: dt.datetime

    def text_lines(self) -> list[str]:
        """The receipt as plain text lines (for tests, logs of layout and accessibility)."""
        out = [self.title, self.subtitle, self.number]
        for line in self.lines:
            out.append(f"{line.text}：{line.value}" if line.value else line.text)
        out.extend(self.footer)
        return out


def add_working_days(
    start: dt.date,
    days: int,
    holidays: Iterable[dt.date] = (),
    extra_workdays: Iterable[dt.date] = (),
) -> dt.date:
    """The date `days` working days after `start` (weekends and listed holidays skipped;
    `extra_workdays` are the weekend days officially worked, 调休)."""
    off = set(holidays)
    on = set(extra_workdays)
    current = start
    remaining = days
    while remaining > 0:
        current += dt.timedelta(days=1)
        workday = (current.weekday() < 5 or current in on) and current not in off
        if workday:
            remaining -= 1
    return current


def promised_date(
    start: dt.date,
    promise: Promise,
    holidays: Iterable[dt.date] = (),
    extra_workdays: Iterable[dt.date] = (),
) -> dt.date:
    if promise.unit == "days":
        return start + dt.timedelta(days=promise.days)
    return add_working_days(start, promise.days, holidays, extra_workdays)


def _is_zh(receipt: Receipt) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in receipt.title)


def reprinted(receipt: Receipt, at: dt.datetime, copy_number: int) -> Receipt:
    """The stored receipt marked as a reprint (补打): the title says so, and a line gives when
    and which print this is, so a reprint is never taken for the original."""
    zh = _is_zh(receipt)
    mark = "（补打）" if zh else " (REPRINT 补打)"
    line = ReceiptLine(
        "补打" if zh else "Reprint 补打",
        f"{at:%Y-%m-%d %H:%M} · 第 {copy_number} 次打印"
        if zh
        else f"{at:%Y-%m-%d %H:%M} · print no. {copy_number}",
    )
    return Receipt(
        title=receipt.title + mark,
        subtitle=receipt.subtitle,
        number=receipt.number,
        qr_payload=receipt.qr_payload,
        lines=(line, *receipt.lines),
        footer=receipt.footer,
        issued_at=receipt.issued_at,
    )


def receipt_to_json(receipt: Receipt) -> dict[str, object]:
    """A JSON-ready form, stored for reprints."""
    return {
        "title": receipt.title,
        "subtitle": receipt.subtitle,
        "number": receipt.number,
        "qr_payload": receipt.qr_payload,
        "issued_at": receipt.issued_at.isoformat(),
        "lines": [[ln.text, ln.value, ln.style] for ln in receipt.lines],
        "footer": list(receipt.footer),
    }


def receipt_from_json(raw: dict[str, object]) -> Receipt:
    lines = raw["lines"]
    footer = raw["footer"]
    assert isinstance(lines, list) and isinstance(footer, list)
    return Receipt(
        title=str(raw["title"]),
        subtitle=str(raw["subtitle"]),
        number=str(raw["number"]),
        qr_payload=str(raw["qr_payload"]),
        issued_at=dt.datetime.fromisoformat(str(raw["issued_at"])),
        lines=tuple(ReceiptLine(str(t), str(v), s) for t, v, s in lines),
        footer=tuple(str(f) for f in footer),
    )
