"""The catalog of 一件事 bundles: things, their services, shared fields and materials.

The catalog is one JSON file (schema in docs/catalog.md). Loading validates it completely and
raises CatalogError with every problem found, each naming where it is; a kiosk that is handed a
broken catalog keeps the last good one (see CatalogStore).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from kiosk.durable import make_dir, write_atomic
from kiosk.i18n import Text

log = logging.getLogger(__name__)

SCHEMA = 1
FieldType = Literal["text", "date", "id_number", "phone", "choice", "yes_no", "number", "address"]
FIELD_TYPES: frozenset[str] = frozenset(
    ["text", "date", "id_number", "phone", "choice", "yes_no", "number", "address"]
)
PREFILL_SOURCES: frozenset[str] = frozenset(
    [
        "id_card.name",
        "id_card.id_number",
        "id_card.sex",
        "id_card.birth_date",
        "id_card.address",
        "id_card.nation",
    ]
)
Audience = Literal["personal", "business"]
MaterialForm = Literal["original", "copy", "electronic"]
Aspect = Literal["a4", "id_card", "free"]
PromiseUnit = Literal["working_days", "days"]


class CatalogError(ValueError):
    """A catalog that cannot be used; `problems` lists each reason with its location."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# Conditions -----------------------------------------------------------------------------------
# A condition is JSON: {"field": id, "equals": v} | {"field": id, "in": [v, ...]} |
# {"field": id, "answered": true} | {"all": [c, ...]} | {"any": [c, ...]} | {"not": c}.


@dataclass(frozen=True)
class Condition:
    op: Literal["equals", "in", "answered", "all", "any", "not"]
    field: str | None = None
    value: Any = None
    children: tuple[Condition, ...] = ()

    def holds(self, answers: Mapping[str, Any]) -> bool:
        if self.op == "all":
            return all(c.holds(answers) for c in self.children)
        if self.op == "any":
            return any(c.holds(answers) for c in self.children)
        if self.op == "not":
            return not self.children[0].holds(answers)
        assert self.field is not None
        answer = answers.get(self.field)
        if self.op == "answered":
            return (answer not in (None, "")) == bool(self.value)
        if self.op == "equals":
            return bool(answer == self.value)
        return answer in self.value

    def fields(self) -> set[str]:
        """Every field id the condition reads."""
        names = {self.field} if self.field else set()
        for child in self.children:
            names |= child.fields()
        return names

    @classmethod
    def parse(cls, raw: Any, where: str) -> Condition:
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: a condition must be an object")
        for op in ("all", "any"):
            if op in raw:
                items = raw[op]
                if not isinstance(items, list) or not items:
                    raise ValueError(f"{where}: '{op}' needs a non-empty list")
                return cls(
                    op,
                    children=tuple(cls.parse(c, f"{where}.{op}[{i}]") for i, c in enumerate(items)),
                )
        if "not" in raw:
            return cls("not", children=(cls.parse(raw["not"], f"{where}.not"),))
        name = raw.get("field")
        if not isinstance(name, str):
            raise ValueError(f"{where}: a condition needs 'field', 'all', 'any' or 'not'")
        if "equals" in raw:
            return cls("equals", name, raw["equals"])
        if "in" in raw:
            if not isinstance(raw["in"], list):
                raise ValueError(f"{where}: 'in' needs a list")
            return cls("in", name, tuple(raw["in"]))
        if "answered" in raw:
            return cls("answered", name, bool(raw["answered"]))
        raise ValueError(f"{where}: condition on '{name}' needs 'equals', 'in' or 'answered'")


# The model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    value: str
    label: Text


@dataclass(frozen=True)
class FieldDef:
    """A question, shared by id across services so that it is asked once."""

    id: str
    type: FieldType
    label: Text
    hint: Text | None = None
    required: bool = True
    prefill: str | None = None  # one of PREFILL_SOURCES: filled from the card and locked
    choices: tuple[Choice, ...] = ()
    min: float | None = None
    max: float | None = None
    max_length: int = 100
    not_future: bool = False  # for dates


@dataclass(frozen=True)
class MaterialDef:
    """A document to hand in, shared by id across services."""

    id: str
    name: Text
    form: MaterialForm
    pages: int  # how many pages a complete scan has (0: cannot be scanned, must be waived)
    aspect: Aspect = "a4"
    id_card_replaces: bool = False  # reading the ID card chip replaces this copy
    e_licence: str | None = None  # the 电子证照 type the platform may hold (免提交)
    note: Text | None = None


@dataclass(frozen=True)
class Ref:
    """A service's use of a field or material, needed only while `when` holds."""

    id: str
    when: Condition | None = None

    def needed(self, answers: Mapping[str, Any]) -> bool:
        return self.when is None or self.when.holds(answers)


@dataclass(frozen=True)
class Promise:
    days: int
    unit: PromiseUnit

    def describe(self, lang: Literal["zh", "en"]) -> str:
        if lang == "en":
            unit = "working day" if self.unit == "working_days" else "day"
            return f"{self.days} {unit}{'' if self.days == 1 else 's'}"
        return f"{self.days} 个{'工作日' if self.unit == 'working_days' else '自然日'}"


@dataclass(frozen=True)
class Service:
    """A single department service (单项事项) with its implementation code (实施编码)."""

    code: str
    name: Text
    department: Text
    promise: Promise
    fee: float
    fields: tuple[Ref, ...]
    materials: tuple[Ref, ...]
    optional: bool = False


@dataclass(frozen=True)
class Thing:
    """One 一件事: several services behind one form, one set of materials, one trip."""

    id: str
    name: Text
    audience: Audience
    category: str  # key into Catalog.categories
    promise: Promise
    guide: Text
    services: tuple[Service, ...]
    keywords: tuple[str, ...] = ()

    @property
    def departments(self) -> tuple[Text, ...]:
        seen: dict[str, Text] = {}
        for s in self.services:
            seen.setdefault(s.department.zh, s.department)
        return tuple(seen.values())

    def field_ids(self) -> list[str]:
        """Each field id once, in first-use order."""
        return list(dict.fromkeys(r.id for s in self.services for r in s.fields))

    def material_ids(self) -> list[str]:
        return list(dict.fromkeys(r.id for s in self.services for r in s.materials))


@dataclass(frozen=True)
class Catalog:
    version: str
    categories: Mapping[str, Text]
    fields: Mapping[str, FieldDef]
    materials: Mapping[str, MaterialDef]
    things: tuple[Thing, ...]

    def thing(self, thing_id: str) -> Thing:
        for t in self.things:
            if t.id == thing_id:
                return t
        raise KeyError(thing_id)

    def browse(
        self, audience: Audience | None = None, category: str | None = None, query: str = ""
    ) -> list[Thing]:
        """Things for an audience and life-event category, or whose name matches `query`."""
        q = query.strip().lower()
        found = []
        for t in self.things:
            if audience and t.audience != audience:
                continue
            if category and t.category != category:
                continue
            if q and not any(q in s.lower() for s in (t.name.zh, t.name.en, *t.keywords)):
                continue
            found.append(t)
        return found


# Loading and validation -----------------------------------------------------------------------


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key '{key}'")
        out[key] = value
    return out


def parse_catalog(text: str | bytes) -> Catalog:
    """Parse and validate a catalog document; raise CatalogError listing every problem."""
    try:
        raw = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatalogError([f"not valid JSON: {exc}"]) from None
    return _Builder(raw).build()


class _Builder:
    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def check(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
        return ok

    def text(self, value: Any, where: str) -> Text | None:
        try:
            return Text.from_json(value, where)
        except ValueError as exc:
            self.problems.append(str(exc))
            return None

    def build(self) -> Catalog:
        raw = self.raw
        if not isinstance(raw, Mapping):
            raise CatalogError(["the catalog must be a JSON object"])
        schema = raw.get("schema")
        if isinstance(schema, bool) or schema != SCHEMA:
            raise CatalogError([f"schema must be {SCHEMA}, got {raw.get('schema')!r}"])
        version = raw.get("version")
        self.check(isinstance(version, str) and bool(version), "version must be a string")
        categories = {}
        for key, value in _mapping(raw.get("categories"), "categories", self).items():
            t = self.text(value, f"categories.{key}")
            if t:
                categories[key] = t
        fields_raw = _mapping(raw.get("fields"), "fields", self)
        materials_raw = _mapping(raw.get("materials"), "materials", self)
        fields = {k: f for k, v in fields_raw.items() if (f := self.field(k, v)) is not None}
        materials = {
            k: m for k, v in materials_raw.items() if (m := self.material(k, v)) is not None
        }
        things_raw: Any = raw.get("things")
        things: list[Thing] = []
        if self.check(
            isinstance(things_raw, list) and bool(things_raw), "things must be a non-empty list"
        ):
            seen_ids: set[str] = set()
            for i, t in enumerate(things_raw):
                # References are checked against every id the file defines, so a malformed
                # definition is reported once, not again at each use.
                thing = self.thing(t, f"things[{i}]", fields_raw, materials_raw, categories)
                if thing is None:
                    continue
                if self.check(thing.id not in seen_ids, f"things[{i}]: duplicate id '{thing.id}'"):
                    seen_ids.add(thing.id)
                    things.append(thing)
        if self.problems:
            raise CatalogError(self.problems)
        return Catalog(str(version), categories, fields, materials, tuple(things))

    def field(self, key: str, raw: Any) -> FieldDef | None:
        where = f"fields.{key}"
        before = len(self.problems)
        if not isinstance(raw, Mapping):
            self.problems.append(f"{where}: must be an object")
            return None
        ftype: Any = raw.get("type")
        if not self.check(
            isinstance(ftype, str) and ftype in FIELD_TYPES, f"{where}: unknown type {ftype!r}"
        ):
            return None
        label = self.text(raw.get("label"), f"{where}.label")
        hint = self.text(raw["hint"], f"{where}.hint") if "hint" in raw else None
        prefill = raw.get("prefill")
        self.check(
            prefill is None or (isinstance(prefill, str) and prefill in PREFILL_SOURCES),
            f"{where}: unknown prefill source {prefill!r}",
        )
        choices: list[Choice] = []
        raw_choices = raw.get("choices", [])
        if not self.check(isinstance(raw_choices, list), f"{where}.choices must be a list"):
            raw_choices = []
        for j, c in enumerate(raw_choices):
            lbl = self.text(
                c.get("label") if isinstance(c, Mapping) else None, f"{where}.choices[{j}].label"
            )
            value = c.get("value") if isinstance(c, Mapping) else None
            ok = self.check(isinstance(value, str), f"{where}.choices[{j}]: value must be a string")
            if ok and lbl:
                choices.append(Choice(str(value), lbl))
        values = [c.value for c in choices]
        self.check(len(values) == len(set(values)), f"{where}: duplicate choice value")
        self.check(ftype != "choice" or len(choices) >= 2, f"{where}: a choice needs 2+ choices")
        bounds = {k: raw.get(k) for k in ("min", "max")}
        for k, v in bounds.items():
            self.check(
                v is None or (isinstance(v, int | float) and not isinstance(v, bool)),
                f"{where}.{k} must be a number",
            )
        max_length = raw.get("max_length", 100)
        self.check(
            isinstance(max_length, int) and max_length > 0,
            f"{where}.max_length must be a positive integer",
        )
        if label is None or len(self.problems) > before:
            return None
        return FieldDef(
            id=key,
            type=ftype,
            label=label,
            hint=hint,
            required=bool(raw.get("required", True)),
            prefill=prefill,
            choices=tuple(choices),
            min=bounds["min"],
            max=bounds["max"],
            max_length=max_length,
            not_future=bool(raw.get("not_future")),
        )

    def material(self, key: str, raw: Any) -> MaterialDef | None:
        where = f"materials.{key}"
        if not isinstance(raw, Mapping):
            self.problems.append(f"{where}: must be an object")
            return None
        name = self.text(raw.get("name"), f"{where}.name")
        form: Any = raw.get("form")
        self.check(form in ("original", "copy", "electronic"), f"{where}: unknown form {form!r}")
        pages: Any = raw.get("pages")
        self.check(_is_int(pages) and pages >= 0, f"{where}: pages must be an integer ≥ 0")
        aspect = raw.get("aspect", "a4")
        self.check(aspect in ("a4", "id_card", "free"), f"{where}: unknown aspect {aspect!r}")
        licence = raw.get("e_licence")
        self.check(
            licence is None or isinstance(licence, str), f"{where}.e_licence must be a string"
        )
        replaces = bool(raw.get("id_card_replaces", False))
        scannable = isinstance(pages, int) and pages > 0 and form != "electronic"
        self.check(
            scannable or bool(licence) or replaces,
            f"{where}: no way to satisfy it (nothing to scan and no waiver)",
        )
        note = self.text(raw["note"], f"{where}.note") if "note" in raw else None
        if name is None:
            return None
        return MaterialDef(
            key, name, form, pages if isinstance(pages, int) else 0, aspect, replaces, licence, note
        )

    def promise(self, raw: Any, where: str) -> Promise | None:
        if not isinstance(raw, Mapping):
            self.problems.append(f"{where}: must be {{days, unit}}")
            return None
        days: Any = raw.get("days")
        unit: Any = raw.get("unit")
        ok = self.check(_is_int(days) and days >= 0, f"{where}.days must be ≥ 0")
        ok &= self.check(unit in ("working_days", "days"), f"{where}.unit unknown: {unit!r}")
        return Promise(days, unit) if ok else None

    def refs(self, raw: Any, where: str, known: Mapping[str, Any], kind: str) -> list[Ref]:
        refs: list[Ref] = []
        if not isinstance(raw, list):
            self.problems.append(f"{where}: must be a list")
            return refs
        seen: set[str] = set()
        for j, r in enumerate(raw):
            item = {"id": r} if isinstance(r, str) else r
            rid = item.get("id") if isinstance(item, Mapping) else None
            if not self.check(isinstance(rid, str), f"{where}[{j}]: needs an id"):
                continue
            assert isinstance(rid, str)
            self.check(rid in known, f"{where}[{j}]: unknown {kind} id '{rid}'")
            self.check(rid not in seen, f"{where}[{j}]: duplicate {kind} id '{rid}'")
            seen.add(rid)
            when = None
            if "when" in item:
                try:
                    when = Condition.parse(item["when"], f"{where}[{j}].when")
                except ValueError as exc:
                    self.problems.append(str(exc))
            refs.append(Ref(rid, when))
        return refs

    def thing(
        self,
        raw: Any,
        where: str,
        fields: Mapping[str, Any],
        materials: Mapping[str, Any],
        categories: Mapping[str, Text],
    ) -> Thing | None:
        if not isinstance(raw, Mapping):
            self.problems.append(f"{where}: must be an object")
            return None
        tid: Any = raw.get("id")
        if not self.check(isinstance(tid, str) and bool(tid), f"{where}: needs an id"):
            return None
        where = f"things[{tid}]"
        name = self.text(raw.get("name"), f"{where}.name")
        guide = self.text(raw.get("guide"), f"{where}.guide")
        audience = raw.get("audience")
        self.check(audience in ("personal", "business"), f"{where}: unknown audience {audience!r}")
        category = raw.get("category")
        self.check(
            isinstance(category, str) and category in categories,
            f"{where}: unknown category {category!r}",
        )
        promise = self.promise(raw.get("promise"), f"{where}.promise")
        services: list[Service] = []
        codes: set[str] = set()
        raw_services: Any = raw.get("services")
        if not self.check(isinstance(raw_services, list), f"{where}.services must be a list"):
            raw_services = []
        for k, s in enumerate(raw_services):
            sw = f"{where}.services[{k}]"
            if not isinstance(s, Mapping):
                self.problems.append(f"{sw}: must be an object")
                continue
            code: Any = s.get("code")
            if not self.check(isinstance(code, str) and bool(code), f"{sw}: needs a code"):
                continue
            self.check(code not in codes, f"{sw}: duplicate service code '{code}'")
            codes.add(code)
            sname = self.text(s.get("name"), f"{sw}.name")
            dept = self.text(s.get("department"), f"{sw}.department")
            sp = self.promise(s.get("promise"), f"{sw}.promise")
            frefs = self.refs(s.get("fields", []), f"{sw}.fields", fields, "field")
            mrefs = self.refs(s.get("materials", []), f"{sw}.materials", materials, "material")
            fee: Any = s.get("fee", 0)
            fee_ok = self.check(
                isinstance(fee, int | float) and not isinstance(fee, bool) and fee >= 0,
                f"{sw}: fee must be ≥ 0",
            )
            if sname and dept and sp:
                services.append(
                    Service(
                        code,
                        sname,
                        dept,
                        sp,
                        float(fee) if fee_ok else 0.0,
                        tuple(frefs),
                        tuple(mrefs),
                        bool(s.get("optional", False)),
                    )
                )
        self.check(len(services) >= 1, f"{where}: needs at least one service")
        # A condition may only read a field that this thing's form asks.
        asked = {r.id for s in services for r in s.fields}
        for s in services:
            for r in (*s.fields, *s.materials):
                if r.when:
                    for f in sorted(r.when.fields() - asked):
                        self.problems.append(
                            f"{where}: condition on '{r.id}' in {s.code} names field '{f}' "
                            "that this thing does not ask"
                        )
        keywords = raw.get("keywords", [])
        self.check(
            isinstance(keywords, list) and all(isinstance(k, str) for k in keywords),
            f"{where}: keywords must be a list of strings",
        )
        if not (name and guide and promise) or audience not in ("personal", "business"):
            return None
        return Thing(
            tid,
            name,
            audience,
            str(category),
            promise,
            guide,
            tuple(services),
            tuple(keywords) if isinstance(keywords, list) else (),
        )


def _mapping(value: Any, where: str, builder: _Builder) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        builder.problems.append(f"{where} must be an object")
        return {}
    return value


def shipped_catalog_text() -> bytes:
    return resources.files("kiosk").joinpath("data/catalog.json").read_bytes()


def load_shipped_catalog() -> Catalog:
    return parse_catalog(shipped_catalog_text())


class CatalogStore:
    """Keeps the catalog in use; a broken update is refused and the last good one stays.

    The last good catalog is kept as a file in the data directory, replaced atomically, so a
    restart after a refused update still starts with a working catalog.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / "catalog.json"
        self.catalog = self._load_initial()

    def _load_initial(self) -> Catalog:
        """The newer of the shipped and the saved catalog; either one alone if the other is
        unusable. Only when neither can be read is the kiosk unable to serve anyone."""
        shipped: Catalog | None = None
        saved: Catalog | None = None
        try:
            shipped = load_shipped_catalog()
        except (CatalogError, OSError) as exc:
            log.critical("the shipped catalog is unusable (a packaging fault): %s", exc)
        if self.path.exists():
            try:
                saved = parse_catalog(self.path.read_bytes())
            except (CatalogError, OSError) as exc:
                fallback = ", using the shipped one" if shipped else ""
                log.error("saved catalog %s refused%s: %s", self.path, fallback, exc)
        candidates = [c for c in (saved, shipped) if c is not None]
        if not candidates:
            raise CatalogError(["neither the shipped nor a saved catalog can be used"])
        return max(candidates, key=lambda c: _version_key(c.version))

    def offer(self, text: bytes) -> Catalog:
        """Adopt a newer catalog document, or raise CatalogError and keep the current one."""
        try:
            catalog = parse_catalog(text)
            if _version_key(catalog.version) < _version_key(self.catalog.version):
                # An older catalog would also lose to the shipped one at the next start-up.
                raise CatalogError(
                    [f"version {catalog.version} is older than {self.catalog.version} in use"]
                )
        except CatalogError as exc:
            log.error(
                "catalog update refused, keeping version %s: %s",
                self.catalog.version,
                "; ".join(exc.problems[:10]),
            )
            raise
        try:
            make_dir(self.path.parent)
            write_atomic(self.path, text)  # a power cut leaves the old catalog or the new one
        except OSError:
            log.error("catalog version %s valid but not saved; still in use", catalog.version)
            raise
        self.catalog = catalog
        log.info("catalog version %s adopted", catalog.version)
        return catalog


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _version_key(version: str) -> tuple[int, ...]:
    parts: Iterable[str] = version.replace("-", ".").split(".")
    return tuple(int(p) if p.isdigit() else 0 for p in parts)
