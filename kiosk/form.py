"""The unified form and material list: the union over a thing's services, each item once.

A field or material is needed while ANY service that uses it needs it (its condition holds on
the current answers). Materials the ID card read replaces, or that the government already holds
as an e-licence, are waived (免提交) and listed as such, so the applicant sees why.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kiosk.catalog import Catalog, FieldDef, MaterialDef, Service, Thing
from kiosk.i18n import Message
from kiosk.identity import IdentityDocument, IdNumberError, validate_id_number

Answer = str | bool | int | float
Waiver = Literal["id_card", "e_licence"]

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")


@dataclass(frozen=True)
class FormField:
    definition: FieldDef
    services: tuple[Service, ...]  # the services that ask it (now)
    locked: bool  # prefilled from the card: shown, not editable

    @property
    def id(self) -> str:
        return self.definition.id


@dataclass(frozen=True)
class MaterialNeed:
    definition: MaterialDef
    services: tuple[Service, ...]
    waiver: Waiver | None

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def to_scan(self) -> bool:
        return self.waiver is None


@dataclass(frozen=True)
class Savings:
    services: int
    materials_separately: int  # sum over the services, as if applied for one by one
    materials_unified: int

    @property
    def saved(self) -> int:
        return self.materials_separately - self.materials_unified


def savings(thing: Thing) -> Savings:
    """How much bundling saves: "N 个事项，一次办结，少交 M 份材料"."""
    separately = sum(len(s.materials) for s in thing.services)
    return Savings(len(thing.services), separately, len(thing.material_ids()))


def prefill_value(source: str, identity: IdentityDocument) -> Answer:
    attribute = source.removeprefix("id_card.")
    value = getattr(identity, attribute)
    return value.isoformat() if isinstance(value, dt.date) else str(value)


class UnifiedForm:
    """One thing's form for one applicant: which fields and materials, validation, waivers."""

    def __init__(
        self,
        catalog: Catalog,
        thing: Thing,
        identity: IdentityDocument | None = None,
        held_licences: frozenset[str] = frozenset(),
    ) -> None:
        self.catalog = catalog
        self.thing = thing
        self.identity = identity
        self.held_licences = held_licences

    # Fields ---------------------------------------------------------------------------------

    def prefilled(self) -> dict[str, Answer]:
        """Answers that come from the card: filled in and locked."""
        if self.identity is None:
            return {}
        out: dict[str, Answer] = {}
        for fid in self.thing.field_ids():
            definition = self.catalog.fields[fid]
            if definition.prefill:
                value = prefill_value(definition.prefill, self.identity)
                if value != "":
                    out[fid] = value
        return out

    def is_locked(self, field_id: str) -> bool:
        """Filled from the card, so not editable; a value the card lacks (a foreigner's
        民族, say) stays an ordinary question."""
        source = self.catalog.fields[field_id].prefill
        if self.identity is None or source is None:
            return False
        return prefill_value(source, self.identity) != ""

    def fields(self, answers: Mapping[str, Any]) -> list[FormField]:
        """The fields to show for these answers, each once, in first-use order."""
        users: dict[str, list[Service]] = {}
        for service in self.thing.services:
            for ref in service.fields:
                if ref.needed(answers):
                    users.setdefault(ref.id, []).append(service)
        return [
            FormField(self.catalog.fields[fid], tuple(svcs), self.is_locked(fid))
            for fid, svcs in users.items()
        ]

    def clean(self, answers: Mapping[str, Any]) -> dict[str, Answer]:
        """Only the answers to visible fields (a hidden field's old answer is not submitted).

        Hiding can cascade (an answer hidden makes another condition false), so repeat until
        the set is stable.
        """
        current = dict(answers)
        while True:
            visible = {f.id for f in self.fields(current)}
            kept = {k: v for k, v in current.items() if k in visible}
            if kept == current:
                return kept
            current = kept

    def validate(self, answers: Mapping[str, Any], today: dt.date) -> dict[str, Message]:
        """A plain-words message per visible field whose answer is wrong or missing."""
        errors: dict[str, Message] = {}
        for f in self.fields(answers):
            message = validate_answer(f.definition, answers.get(f.id), today)
            if message is not None:
                errors[f.id] = message
        return errors

    def normalize(self, answers: Mapping[str, Any]) -> dict[str, Answer]:
        """Typed answers for storage: numbers as numbers, ID numbers upper-case, text trimmed."""
        out: dict[str, Answer] = {}
        for fid, value in self.clean(answers).items():
            out[fid] = normalize_answer(self.catalog.fields[fid], value)
        return out

    # Materials ------------------------------------------------------------------------------

    def materials(self, answers: Mapping[str, Any]) -> list[MaterialNeed]:
        users: dict[str, list[Service]] = {}
        for service in self.thing.services:
            for ref in service.materials:
                if ref.needed(answers):
                    users.setdefault(ref.id, []).append(service)
        return [
            MaterialNeed(
                self.catalog.materials[mid], tuple(svcs), self.waiver(self.catalog.materials[mid])
            )
            for mid, svcs in users.items()
        ]

    def waiver(self, material: MaterialDef) -> Waiver | None:
        if material.id_card_replaces and self.identity is not None:
            return "id_card"
        if material.e_licence and material.e_licence in self.held_licences:
            return "e_licence"
        return None

    def to_scan(self, answers: Mapping[str, Any]) -> list[MaterialNeed]:
        return [m for m in self.materials(answers) if m.to_scan]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def validate_answer(field: FieldDef, value: Any, today: dt.date) -> Message | None:
    """None if `value` is a good answer to `field`, else what is wrong in plain words."""
    if _blank(value):
        return Message("required") if field.required else None
    kind = field.type
    if kind == "yes_no":
        return None if isinstance(value, bool) else Message("bad_yes_no")
    text = str(value).strip()
    if kind in ("text", "address"):
        if len(text) > field.max_length:
            return Message("too_long", {"max": field.max_length})
        if kind == "address" and len(text) < 6:
            return Message("address_too_short")
        return None
    if kind == "choice":
        return None if text in {c.value for c in field.choices} else Message("bad_choice")
    if kind == "id_number":
        try:
            validate_id_number(text)
        except IdNumberError as exc:
            return exc.message
        return None
    if kind == "phone":
        digits = text.replace(" ", "")
        return None if _MOBILE.match(digits) or _LANDLINE.match(digits) else Message("bad_phone")
    if kind == "date":
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            return Message("bad_date")
        if field.not_future and day > today:
            return Message("date_in_future")
        return None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return Message("bad_number")
        if field.min is not None and number < field.min:
            return Message("number_too_small", {"min": _num(field.min)})
        if field.max is not None and number > field.max:
            return Message("number_too_large", {"max": _num(field.max)})
        return None
    raise AssertionError(f"unhandled field type {kind}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def normalize_answer(field: FieldDef, value: Any) -> Answer:
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if field.type == "number":
        number = float(text)
        return int(number) if number.is_integer() else number
    if field.type == "id_number":
        return validate_id_number(text)
    if field.type == "phone":
        return text.replace(" ", "")
    return text
