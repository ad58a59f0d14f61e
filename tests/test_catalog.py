"""The shipped catalog, the catalog validator and the catalog store (no Qt needed)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from kiosk.catalog import (
    Catalog,
    CatalogError,
    CatalogStore,
    Condition,
    Thing,
    load_shipped_catalog,
    parse_catalog,
    shipped_catalog_text,
)
from kiosk.demo import DEMO_CARDS, sample_answers
from kiosk.form import UnifiedForm
from kiosk.i18n import Text

SHIPPED_VERSION = "2026.11.1"

# 实施编码: <14-char basic code>-<12-digit region>-000-<18-char social credit code>-1-00
CODE_RE = re.compile(r"^[0-9A-Z]{14}-\d{12}-000-([0-9A-HJ-NPQRTUWXY]{18})-1-00$")
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
CJK = re.compile(r"[\u3400-\u9fff]")

REQUIRED_THINGS = {
    "newborn": "personal",
    "retirement": "personal",
    "business_deregistration": "business",
    "open_restaurant": "business",
    "social_security_card": "personal",
    "veteran_discharge": "personal",
    "utilities_joint_connection": "personal",
    "open_transport_business": "business",
    "business_info_change": "business",
    "disability_services": "personal",
    "school_enrolment": "personal",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_shipped_catalog()


@pytest.fixture()
def shipped_raw() -> dict[str, Any]:
    return json.loads(shipped_catalog_text())


def encode(raw: Any) -> bytes:
    return json.dumps(raw, ensure_ascii=False).encode()


def saving(thing: Thing) -> int:
    """The '少交 M 份材料' figure: material refs over all services minus the unified list."""
    return sum(len(s.materials) for s in thing.services) - len(thing.material_ids())


def needed_materials(thing: Thing, answers: Mapping[str, Any]) -> set[str]:
    """Materials the unified form asks for: any service needing one with its condition true."""
    return {r.id for s in thing.services for r in s.materials if r.needed(answers)}


def needed_fields(thing: Thing, answers: Mapping[str, Any]) -> set[str]:
    return {r.id for s in thing.services for r in s.fields if r.needed(answers)}


def texts(catalog: Catalog) -> Iterator[tuple[str, Text]]:
    """Every user-facing bilingual text in the catalog, with where it is."""
    for key, name in catalog.categories.items():
        yield f"categories.{key}", name
    for f in catalog.fields.values():
        yield f"fields.{f.id}.label", f.label
        if f.hint:
            yield f"fields.{f.id}.hint", f.hint
        for c in f.choices:
            yield f"fields.{f.id}.choices.{c.value}", c.label
    for m in catalog.materials.values():
        yield f"materials.{m.id}.name", m.name
        if m.note:
            yield f"materials.{m.id}.note", m.note
    for t in catalog.things:
        yield f"{t.id}.name", t.name
        yield f"{t.id}.guide", t.guide
        for s in t.services:
            yield f"{s.code}.name", s.name
            yield f"{s.code}.department", s.department


def conditions(thing: Thing) -> Iterator[Condition]:
    def walk(c: Condition) -> Iterator[Condition]:
        yield c
        for child in c.children:
            yield from walk(child)

    for s in thing.services:
        for r in (*s.fields, *s.materials):
            if r.when:
                yield from walk(r.when)


# The shipped catalog ---------------------------------------------------------------------------


def test_shipped_catalog_parses(catalog: Catalog) -> None:
    assert catalog.version == SHIPPED_VERSION
    assert json.loads(shipped_catalog_text())["schema"] == 1
    assert parse_catalog(shipped_catalog_text()) == catalog


def test_shipped_catalog_has_the_required_things(catalog: Catalog) -> None:
    assert len(catalog.things) >= 10
    assert sum(t.audience == "business" for t in catalog.things) >= 3
    for thing_id, audience in REQUIRED_THINGS.items():
        assert catalog.thing(thing_id).audience == audience


def test_every_thing_bundles_services_and_saves_materials(catalog: Catalog) -> None:
    for t in catalog.things:
        assert len(t.services) >= 2, t.id
        assert len(t.departments) >= 2, t.id
        assert saving(t) > 0, t.id
        assert t.category in catalog.categories, t.id
        assert t.keywords, t.id
        assert any(CJK.search(k) for k in t.keywords), t.id
        assert any(not CJK.search(k) for k in t.keywords), t.id


def test_every_text_is_in_chinese_and_english(catalog: Catalog) -> None:
    for where, text in texts(catalog):
        assert text.zh.strip() and CJK.search(text.zh), where
        assert text.en.strip() and not CJK.search(text.en), where
        assert text.en == text.en.strip(), where


def test_service_codes_are_implementation_codes(catalog: Catalog) -> None:
    codes = [s.code for t in catalog.things for s in t.services]
    assert len(codes) == len(set(codes)), "service codes must be unique across the catalog"
    for code in codes:
        match = CODE_RE.match(code)
        assert match, code
        credit_code = match.group(1)
        total = sum(
            USCC_CHARS.index(c) * w for c, w in zip(credit_code[:17], USCC_WEIGHTS, strict=True)
        )
        assert USCC_CHARS[(31 - total % 31) % 31] == credit_code[-1], code


def test_bundle_promise_covers_every_service(catalog: Catalog) -> None:
    for t in catalog.things:
        for s in t.services:
            assert s.fee >= 0
            if s.promise.unit == t.promise.unit:
                assert s.promise.days <= t.promise.days, (t.id, s.code)


def test_every_field_and_material_is_used(catalog: Catalog) -> None:
    used_fields = {f for t in catalog.things for f in t.field_ids()}
    used_materials = {m for t in catalog.things for m in t.material_ids()}
    assert used_fields == set(catalog.fields)
    assert used_materials == set(catalog.materials)


def test_condition_values_fit_the_field(catalog: Catalog) -> None:
    """A condition comparing a yes/no with "yes" or a choice with a missing value never holds."""
    for t in catalog.things:
        for c in conditions(t):
            if c.op not in ("equals", "in"):
                continue
            assert c.field is not None
            field = catalog.fields[c.field]
            values = [c.value] if c.op == "equals" else list(c.value)
            if field.type == "yes_no":
                assert all(isinstance(v, bool) for v in values), (t.id, c)
            elif field.type == "choice":
                allowed = {ch.value for ch in field.choices}
                assert set(values) <= allowed, (t.id, c)


def test_prefilled_fields_come_from_the_card(catalog: Catalog) -> None:
    prefill = {f.id: f.prefill for f in catalog.fields.values() if f.prefill}
    assert prefill == {
        "applicant_name": "id_card.name",
        "applicant_id_number": "id_card.id_number",
        "applicant_sex": "id_card.sex",
        "applicant_birth_date": "id_card.birth_date",
        "applicant_nation": "id_card.nation",
        "household_address": "id_card.address",
    }
    assert catalog.fields["applicant_id_number"].type == "id_number"
    assert catalog.fields["baby_birth_date"].not_future
    assert catalog.fields["unified_social_credit_code"].max_length == 18
    assert catalog.fields["seating_capacity"].min == 1
    assert not catalog.fields["mailing_address"].required


def test_every_demo_card_can_complete_every_form(catalog: Catalog) -> None:
    """A field filled from the card is locked, so a card without it must not leave it required:
    foreigners' permits carry no 民族 and no address."""
    today = dt.date(2026, 11, 27)
    for _label, card in DEMO_CARDS.values():
        for t in catalog.things:
            form = UnifiedForm(catalog, t, card)
            for yes in (True, False):
                answers = sample_answers(form, form.prefilled(), yes)
                assert form.validate(answers, today) == {}, (card.kind, t.id, yes)
    assert not catalog.fields["applicant_nation"].required
    assert not catalog.fields["household_address"].required


def test_material_waivers(catalog: Catalog) -> None:
    m = catalog.materials
    assert m["id_card_copy"].id_card_replaces
    assert m["id_card_copy"].aspect == "id_card"
    licences = {
        "marriage_certificate": "marriage_certificate",
        "household_register": "household_register",
        "birth_certificate": "birth_certificate",
        "business_licence": "business_licence",
        "discharge_certificate": "discharge_certificate",
        "disability_certificate": "disability_certificate",
        "property_certificate": "property_certificate",
    }
    for material_id, licence in licences.items():
        assert m[material_id].e_licence == licence, material_id
    for material_id in ("power_of_attorney", "hospital_diagnosis", "bank_card", "shopfront_photo"):
        assert not m[material_id].e_licence and not m[material_id].id_card_replaces, material_id
        assert m[material_id].pages >= 1, material_id
    for material in m.values():
        assert 0 < material.pages <= 4, material.id


def test_newborn_bundle(catalog: Catalog) -> None:
    t = catalog.thing("newborn")
    names = {s.name.zh for s in t.services}
    assert {
        "出生医学证明签发",
        "出生登记（报户口）",
        "城乡居民医保参保登记",
        "社会保障卡申领",
    } <= names
    assert t.promise.days == 5 and t.promise.unit == "working_days"
    married = {"marital_status": "married", "applicant_relation": "mother"}
    assert "marriage_certificate" in needed_materials(t, married)
    assert "non_marital_statement" not in needed_materials(t, married)
    assert {"father_name", "father_id_number"} <= needed_fields(t, married)
    assert "mother_name" not in needed_fields(t, married)
    unmarried = {"marital_status": "not_married", "applicant_relation": "father"}
    assert "marriage_certificate" not in needed_materials(t, unmarried)
    assert "non_marital_statement" in needed_materials(t, unmarried)
    assert "mother_name" in needed_fields(t, unmarried)


def test_retirement_asks_only_what_applies(catalog: Catalog) -> None:
    t = catalog.thing("retirement")
    plain = {
        "retirement_type": "normal",
        "household_registration_place": "local",
        "has_only_child_certificate": False,
        "has_housing_fund": False,
    }
    assert needed_materials(t, plain) == {"id_card_copy", "bank_card"}
    assert "wanted_retirement_date" not in needed_fields(t, plain)
    assert "bank_card_number" in needed_fields(t, plain)  # the pension account: always
    early = {
        **plain,
        "retirement_type": "early_illness",
        "household_registration_place": "other_province",
        "has_only_child_certificate": True,
    }
    assert {"hospital_diagnosis", "household_register", "only_child_certificate"} <= (
        needed_materials(t, early)
    )
    assert "special_job_proof" not in needed_materials(t, early)
    assert "wanted_retirement_date" in needed_fields(t, {**plain, "retirement_type": "flexible"})


def test_business_conditions(catalog: Catalog) -> None:
    shop = catalog.thing("open_restaurant")
    assert next(s for s in shop.services if s.department.zh == "市烟草专卖局").optional
    bare = {"sells_tobacco": False, "has_outdoor_sign": False, "premises_owned": True}
    assert "shopfront_photo" not in needed_materials(shop, bare)
    assert "lease_contract" not in needed_materials(shop, bare)
    assert "sign_text" not in needed_fields(shop, bare)
    full = {"sells_tobacco": True, "has_outdoor_sign": True, "premises_owned": False}
    assert {"shopfront_photo", "sign_design", "lease_contract"} <= needed_materials(shop, full)
    assert {"sign_text", "sign_area"} <= needed_fields(shop, full)

    close = catalog.thing("business_deregistration")
    departments = " ".join(d.zh for d in close.departments)
    for word in ("市场监督", "税务", "海关", "人力资源", "医疗保障", "公积金", "人民银行", "公安"):
        assert word in departments, word
    quiet = {
        "has_customs_registration": False,
        "has_outstanding_tax": False,
        "has_housing_fund": True,
        "deregistration_type": "simple",
    }
    assert "customs_registration" not in needed_materials(close, quiet)
    assert "investors_commitment" in needed_materials(close, quiet)
    assert "liquidation_report" not in needed_materials(close, quiet)
    busy = {
        **quiet,
        "has_customs_registration": True,
        "has_outstanding_tax": True,
        "deregistration_type": "general",
    }
    assert {"customs_registration", "tax_payment_receipts", "liquidation_report"} <= (
        needed_materials(close, busy)
    )


def test_utilities_follow_what_is_wanted(catalog: Catalog) -> None:
    t = catalog.thing("utilities_joint_connection")
    gas_only = {
        "need_water": False,
        "need_power": False,
        "need_gas": True,
        "need_network": False,
        "is_property_owner": False,
    }
    assert "gas_appliances" in needed_fields(t, gas_only)
    assert "power_capacity_kw" not in needed_fields(t, gas_only)
    assert needed_materials(t, gas_only) == {"id_card_copy", "lease_contract"}
    nothing = dict.fromkeys(("need_water", "need_power", "need_gas", "need_network"), False)
    assert needed_materials(t, nothing) == set()


# Conditions ------------------------------------------------------------------------------------


def test_condition_operators() -> None:
    c = Condition.parse(
        {
            "all": [
                {"field": "a", "in": ["x", "y"]},
                {"not": {"field": "b", "equals": True}},
                {"any": [{"field": "c", "answered": True}, {"field": "d", "equals": 3}]},
            ]
        },
        "test",
    )
    assert c.fields() == {"a", "b", "c", "d"}
    assert c.holds({"a": "x", "b": False, "c": "hello"})
    assert c.holds({"a": "y", "d": 3})
    assert not c.holds({"a": "z", "c": "hello"})
    assert not c.holds({"a": "x", "b": True, "c": "hello"})
    assert not c.holds({"a": "x", "c": ""})
    with pytest.raises(
        ValueError, match=r"^w: condition on 'a' needs 'equals', 'in' or 'answered'$"
    ):
        Condition.parse({"field": "a"}, "w")


# Validation of broken catalogs -----------------------------------------------------------------


def tx(zh: str, en: str) -> dict[str, str]:
    return {"zh": zh, "en": en}


def service(code: str, fields: list[Any], materials: list[Any]) -> dict[str, Any]:
    return {
        "code": code,
        "name": tx("单项", "One service"),
        "department": tx("市公安局", "Police"),
        "promise": {"days": 1, "unit": "working_days"},
        "fee": 0,
        "fields": fields,
        "materials": materials,
    }


def thing(thing_id: str = "t") -> dict[str, Any]:
    return {
        "id": thing_id,
        "name": tx("一件事", "One thing"),
        "audience": "personal",
        "category": "c",
        "promise": {"days": 1, "unit": "working_days"},
        "guide": tx("说明", "Guide"),
        "keywords": ["k"],
        "services": [
            service("S1", ["name", "pet"], ["id_copy"]),
            service(
                "S2",
                ["name"],
                ["id_copy", {"id": "letter", "when": {"field": "pet", "equals": True}}],
            ),
        ],
    }


@pytest.fixture()
def minimal() -> dict[str, Any]:
    return {
        "schema": 1,
        "version": "1.0",
        "categories": {"c": tx("类别", "Category")},
        "fields": {
            "name": {"type": "text", "label": tx("姓名", "Name")},
            "pet": {"type": "yes_no", "label": tx("养宠物吗", "Any pets?")},
            "other": {"type": "text", "label": tx("其他", "Other")},
        },
        "materials": {
            "id_copy": {
                "name": tx("身份证复印件", "ID copy"),
                "form": "copy",
                "pages": 2,
                "aspect": "id_card",
                "id_card_replaces": True,
            },
            "letter": {"name": tx("信", "Letter"), "form": "original", "pages": 1},
        },
        "things": [thing()],
    }


def problems(raw: Any) -> list[str]:
    text = raw if isinstance(raw, bytes) else encode(raw)
    with pytest.raises(CatalogError) as exc:
        parse_catalog(text)
    assert str(exc.value) == "; ".join(exc.value.problems)
    return exc.value.problems


def test_minimal_catalog_is_valid(minimal: dict[str, Any]) -> None:
    cat = parse_catalog(encode(minimal))
    t = cat.thing("t")
    assert t.field_ids() == ["name", "pet"]
    assert t.material_ids() == ["id_copy", "letter"]
    assert saving(t) == 1


def test_unknown_field_id(minimal: dict[str, Any]) -> None:
    minimal["things"][0]["services"][0]["fields"].append("nope")
    assert problems(minimal) == ["things[t].services[0].fields[2]: unknown field id 'nope'"]


def test_unknown_material_id(minimal: dict[str, Any]) -> None:
    minimal["things"][0]["services"][1]["materials"][0] = "nope"
    assert problems(minimal) == ["things[t].services[1].materials[0]: unknown material id 'nope'"]


def test_duplicate_thing_id(minimal: dict[str, Any]) -> None:
    minimal["things"].append(thing("t"))
    assert problems(minimal) == ["things[1]: duplicate id 't'"]


def test_duplicate_json_key() -> None:
    text = b'{"schema": 1, "version": "1", "version": "2", "things": []}'
    assert problems(text) == ["not valid JSON: duplicate key 'version'"]


def test_duplicate_json_key_deep_inside(minimal: dict[str, Any]) -> None:
    text = encode(minimal).replace(b'"pages": 1', b'"pages": 1, "pages": 0')
    assert problems(text) == ["not valid JSON: duplicate key 'pages'"]


def test_duplicate_service_code(minimal: dict[str, Any]) -> None:
    minimal["things"][0]["services"][1]["code"] = "S1"
    assert problems(minimal) == ["things[t].services[1]: duplicate service code 'S1'"]


def test_condition_on_a_field_the_thing_does_not_ask(minimal: dict[str, Any]) -> None:
    minimal["things"][0]["services"][1]["materials"][1]["when"] = {"field": "other", "equals": "x"}
    assert problems(minimal) == [
        "things[t]: condition on 'letter' in S2 names field 'other' that this thing does not ask"
    ]


def test_condition_deep_inside_on_an_unknown_field(minimal: dict[str, Any]) -> None:
    minimal["things"][0]["services"][1]["fields"][0] = {
        "id": "name",
        "when": {
            "any": [{"field": "pet", "equals": True}, {"not": {"field": "ghost", "answered": True}}]
        },
    }
    assert problems(minimal) == [
        "things[t]: condition on 'name' in S2 names field 'ghost' that this thing does not ask"
    ]


def test_malformed_condition(minimal: dict[str, Any]) -> None:
    minimal["things"][0]["services"][1]["materials"][1]["when"] = {"all": []}
    assert problems(minimal) == [
        "things[t].services[1].materials[1].when: 'all' needs a non-empty list"
    ]


def test_material_with_no_way_to_satisfy_it(minimal: dict[str, Any]) -> None:
    minimal["materials"]["letter"]["pages"] = 0
    assert problems(minimal) == [
        "materials.letter: no way to satisfy it (nothing to scan and no waiver)"
    ]


def test_electronic_material_needs_a_waiver(minimal: dict[str, Any]) -> None:
    minimal["materials"]["letter"]["form"] = "electronic"
    assert problems(minimal) == [
        "materials.letter: no way to satisfy it (nothing to scan and no waiver)"
    ]
    minimal["materials"]["letter"]["e_licence"] = "letter"
    minimal["materials"]["letter"]["pages"] = 0
    assert parse_catalog(encode(minimal)).materials["letter"].e_licence == "letter"


@pytest.mark.parametrize(("schema", "shown"), [(2, "2"), (None, "None"), ("1", "'1'")])
def test_bad_schema_number(minimal: dict[str, Any], schema: Any, shown: str) -> None:
    minimal["schema"] = schema
    assert problems(minimal) == [f"schema must be 1, got {shown}"]


def test_missing_schema(minimal: dict[str, Any]) -> None:
    del minimal["schema"]
    assert problems(minimal) == ["schema must be 1, got None"]


def test_not_json_at_all() -> None:
    assert problems(b"<html>502 Bad Gateway</html>") == [
        "not valid JSON: Expecting value: line 1 column 1 (char 0)"
    ]
    assert problems(b"\xff\xfe\x00garbage")[0].startswith("not valid JSON: ")
    assert problems(b"[1, 2]") == ["the catalog must be a JSON object"]


def test_missing_en_label(minimal: dict[str, Any]) -> None:
    del minimal["fields"]["pet"]["label"]["en"]
    # Reported once, where it is defined, not again at each service that uses the field.
    assert problems(minimal) == ["fields.pet.label: both zh and en must be non-empty strings"]


def test_blank_en_thing_name(minimal: dict[str, Any]) -> None:
    minimal["things"][0]["name"]["en"] = "  "
    assert problems(minimal) == ["things[t].name: both zh and en must be non-empty strings"]


def test_every_problem_is_reported_at_once(minimal: dict[str, Any]) -> None:
    minimal["version"] = ""
    minimal["fields"]["pet"]["type"] = "boolean"
    minimal["materials"]["letter"]["aspect"] = "a3"
    minimal["things"][0]["audience"] = "everyone"
    minimal["things"][0]["category"] = "nowhere"
    minimal["things"][0]["promise"] = {"days": -1, "unit": "weeks"}
    assert problems(minimal) == [
        "version must be a string",
        "fields.pet: unknown type 'boolean'",
        "materials.letter: unknown aspect 'a3'",
        "things[t]: unknown audience 'everyone'",
        "things[t]: unknown category 'nowhere'",
        "things[t].promise.days must be ≥ 0",
        "things[t].promise.unit unknown: 'weeks'",
    ]


def test_a_broken_shipped_catalog_copy_is_refused(shipped_raw: dict[str, Any]) -> None:
    """A realistic slip in the real file: a renamed field that a service still uses."""
    shipped_raw["fields"]["has_tobacco"] = shipped_raw["fields"].pop("sells_tobacco")
    found = problems(shipped_raw)
    assert "things[open_restaurant].services[4].fields[0]: unknown field id 'sells_tobacco'" in (
        found
    )
    assert all("open_restaurant" in p for p in found)


@pytest.mark.parametrize(
    ("section", "key", "attr", "value", "problem"),
    [
        (
            "fields",
            "name",
            "max_length",
            "twenty",
            "fields.name.max_length must be a positive integer",
        ),
        ("fields", "name", "max_length", None, "fields.name.max_length must be a positive integer"),
        ("fields", "name", "min", "1", "fields.name.min must be a number"),
        ("fields", "pet", "choices", 5, "fields.pet.choices must be a list"),
        ("fields", "pet", "type", ["yes_no"], "fields.pet: unknown type ['yes_no']"),
        (
            "fields",
            "pet",
            "prefill",
            ["id_card.name"],
            "fields.pet: unknown prefill source ['id_card.name']",
        ),
        ("materials", "letter", "e_licence", 5, "materials.letter.e_licence must be a string"),
        ("things", 0, "category", ["c"], "things[t]: unknown category ['c']"),
    ],
)
def test_wrongly_typed_values_are_catalog_errors(
    minimal: dict[str, Any], section: str, key: Any, attr: str, value: Any, problem: str
) -> None:
    minimal[section][key][attr] = value
    assert problems(minimal) == [problem]


def test_services_must_be_a_list(minimal: dict[str, Any]) -> None:
    minimal["things"][0]["services"] = 5
    assert problems(minimal) == [
        "things[t].services must be a list",
        "things[t]: needs at least one service",
    ]


@pytest.mark.parametrize("fee", ["free", None, [0], True])
def test_non_numeric_fee_is_a_catalog_error(minimal: dict[str, Any], fee: Any) -> None:
    minimal["things"][0]["services"][0]["fee"] = fee
    assert problems(minimal) == ["things[t].services[0]: fee must be ≥ 0"]


def test_true_is_not_a_number_of_days(minimal: dict[str, Any]) -> None:
    minimal["things"][0]["promise"]["days"] = True
    assert problems(minimal) == ["things[t].promise.days must be ≥ 0"]


# The catalog store -----------------------------------------------------------------------------


def test_an_older_catalog_is_refused_so_a_restart_cannot_switch_back(
    tmp_path: Path, shipped_raw: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    store = CatalogStore(tmp_path)
    older = copy.deepcopy(shipped_raw)
    older["version"] = "2025.1.1"
    with pytest.raises(CatalogError, match="older than"):
        store.offer(encode(older))
    assert store.catalog.version == SHIPPED_VERSION
    assert not (tmp_path / "catalog.json").exists()
    assert "refused" in caplog.text


def test_store_starts_with_the_shipped_catalog(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path)
    assert store.catalog.version == SHIPPED_VERSION
    assert not (tmp_path / "catalog.json").exists()


def test_broken_offer_is_refused_and_the_last_good_catalog_stays(
    tmp_path: Path, shipped_raw: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    store = CatalogStore(tmp_path)
    before = store.catalog
    broken = copy.deepcopy(shipped_raw)
    broken["version"] = "2027.1.1"
    broken["materials"]["bank_card"]["pages"] = 0
    with caplog.at_level(logging.ERROR, logger="kiosk.catalog"), pytest.raises(CatalogError) as exc:
        store.offer(encode(broken))
    assert exc.value.problems == [
        "materials.bank_card: no way to satisfy it (nothing to scan and no waiver)"
    ]
    assert store.catalog is before
    assert not (tmp_path / "catalog.json").exists()
    assert not (tmp_path / "catalog.tmp").exists()
    messages = [r.getMessage() for r in caplog.records if r.name == "kiosk.catalog"]
    assert messages == [
        f"catalog update refused, keeping version {SHIPPED_VERSION}: "
        "materials.bank_card: no way to satisfy it (nothing to scan and no waiver)"
    ]
    assert CatalogStore(tmp_path).catalog.version == SHIPPED_VERSION


def test_good_offer_is_adopted_and_survives_a_restart(
    tmp_path: Path, shipped_raw: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    store = CatalogStore(tmp_path)
    newer = copy.deepcopy(shipped_raw)
    newer["version"] = "2026.12.1"
    newer["things"][0]["promise"]["days"] = 7
    with caplog.at_level(logging.INFO, logger="kiosk.catalog"):
        adopted = store.offer(encode(newer))
    assert adopted.version == "2026.12.1"
    assert store.catalog is adopted
    assert "catalog version 2026.12.1 adopted" in caplog.messages
    assert not (tmp_path / "catalog.tmp").exists()

    restarted = CatalogStore(tmp_path)
    assert restarted.catalog.version == "2026.12.1"
    assert restarted.catalog.thing(newer["things"][0]["id"]).promise.days == 7

    # A broken update after that keeps the newer catalog, on disk too.
    with pytest.raises(CatalogError):
        restarted.offer(b"{")
    assert restarted.catalog.version == "2026.12.1"
    assert CatalogStore(tmp_path).catalog.version == "2026.12.1"


def test_corrupt_saved_catalog_falls_back_to_the_shipped_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "catalog.json").write_bytes(b'{"schema": 1, "version": "2099.1.1", "thi')
    with caplog.at_level(logging.ERROR, logger="kiosk.catalog"):
        store = CatalogStore(tmp_path)
    assert store.catalog.version == SHIPPED_VERSION
    assert len(store.catalog.things) >= 10
    assert any(
        r.levelno == logging.ERROR
        and "saved catalog" in r.getMessage()
        and "using the shipped one" in r.getMessage()
        and "not valid JSON" in r.getMessage()
        for r in caplog.records
    )


def test_saved_catalog_with_a_wrongly_typed_value_falls_back(
    tmp_path: Path, shipped_raw: dict[str, Any]
) -> None:
    shipped_raw["version"] = "2099.1.1"
    shipped_raw["fields"]["phone"]["max_length"] = "eleven"
    (tmp_path / "catalog.json").write_bytes(encode(shipped_raw))
    assert CatalogStore(tmp_path).catalog.version == SHIPPED_VERSION


def test_saved_catalog_older_than_the_shipped_one_is_ignored(
    tmp_path: Path, shipped_raw: dict[str, Any]
) -> None:
    older = copy.deepcopy(shipped_raw)
    older["version"] = "2025.1.1"
    (tmp_path / "catalog.json").write_bytes(encode(older))
    assert CatalogStore(tmp_path).catalog.version == SHIPPED_VERSION


# Browsing --------------------------------------------------------------------------------------


def ids(things: list[Thing]) -> list[str]:
    return [t.id for t in things]


def test_browse_by_audience_and_category(catalog: Catalog) -> None:
    assert ids(catalog.browse()) == ids(list(catalog.things))
    business = catalog.browse(audience="business")
    assert len(business) >= 3
    assert all(t.audience == "business" for t in business)
    assert "open_restaurant" in ids(business)
    assert "newborn" not in ids(business)
    assert ids(catalog.browse(category="birth")) == ["newborn"]
    assert set(ids(catalog.browse(category="business_start"))) == {
        "open_restaurant",
        "open_transport_business",
    }
    assert catalog.browse(audience="personal", category="business_exit") == []


def test_browse_search(catalog: Catalog) -> None:
    assert ids(catalog.browse(query="新生儿出生")) == ["newborn"]  # zh name
    assert ids(catalog.browse(query="  having a BABY ")) == ["newborn"]  # en name, any case
    assert ids(catalog.browse(query="户口")) == ["newborn"]  # zh keyword
    assert ids(catalog.browse(query="pension")) == ["retirement"]  # en keyword
    assert ids(catalog.browse(query="注销")) == ["business_deregistration"]
    assert ids(catalog.browse(audience="personal", query="注销")) == []
    assert "social_security_card" in ids(catalog.browse(query="社保卡"))
    assert catalog.browse(query="no such thing at all") == []


def test_a_broken_shipped_catalog_is_survived_with_a_saved_one(
    tmp_path: Path, shipped_raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    newer = copy.deepcopy(shipped_raw)
    newer["version"] = "2099.1.1"
    CatalogStore(tmp_path).offer(encode(newer))

    def broken() -> Any:
        raise CatalogError(["things must be a non-empty list"])

    monkeypatch.setattr("kiosk.catalog.load_shipped_catalog", broken)
    assert CatalogStore(tmp_path).catalog.version == "2099.1.1"
    (tmp_path / "catalog.json").unlink()
    with pytest.raises(CatalogError, match="neither"):
        CatalogStore(tmp_path)
