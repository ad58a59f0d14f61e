"""Shared test helpers: valid answers for any field, a recording fake backend."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kiosk.catalog import FieldDef
from kiosk.form import Answer, UnifiedForm

TODAY = dt.date(2026, 11, 27)


def valid_answer(field: FieldDef, yes: bool = True) -> Answer:
    """A plausible, valid answer for `field` (yes/no answered `yes` to open conditional parts)."""
    kind = field.type
    if kind == "yes_no":
        return yes
    if kind == "choice":
        return field.choices[-1].value if yes else field.choices[0].value
    if kind == "date":
        return "2026-11-20" if field.not_future else "2026-12-15"
    if kind == "id_number":
        return "110105201501010033"
    if kind == "phone":
        return "13800138000"
    if kind == "number":
        low = field.min if field.min is not None else 1
        high = field.max if field.max is not None else low + 10
        return str(int(min(max(low, 3), high)))
    if kind == "address":
        return "浙江省杭州市西湖区文三路 90 号"
    return "测试内容"[: max(1, field.max_length)]


def fill_all(form: UnifiedForm, answers: dict[str, Any], yes: bool = True) -> dict[str, Any]:
    """Answer every visible unlocked field, repeating while answers reveal new fields."""
    for _ in range(10):
        added = False
        for f in form.fields(answers):
            if f.locked or f.id in answers:
                continue
            answers[f.id] = valid_answer(f.definition, yes)
            added = True
        if not added:
            return answers
    raise AssertionError("the form kept growing")
