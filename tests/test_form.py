"""The unified form and material list, on every shipped bundle: the heart of the product."""

from __future__ import annotations

import pytest
from helpers import TODAY, fill_all, valid_answer

from kiosk.catalog import Catalog, load_shipped_catalog, parse_catalog
from kiosk.demo import DEMO_CARDS
from kiosk.form import UnifiedForm, savings, validate_answer

CATALOG = load_shipped_catalog()
THINGS = [t.id for t in CATALOG.things]
ADULT = DEMO_CARDS["adult"][1]


@pytest.fixture(params=THINGS)
def thing_id(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_each_field_and_material_appears_once(thing_id: str) -> None:
    thing = CATALOG.thing(thing_id)
    form = UnifiedForm(CATALOG, thing, ADULT)
    for yes in (True, False):
        answers = fill_all(form, form.prefilled(), yes)
        ids = [f.id for f in form.fields(answers)]
        assert len(ids) == len(set(ids))
        mids = [m.id for m in form.materials(answers)]
        assert len(mids) == len(set(mids))
        # A field used by several services is asked once and names every one of them.
        for f in form.fields(answers):
            users = [
                s
                for s in thing.services
                if any(r.id == f.id and r.needed(answers) for r in s.fields)
            ]
            assert f.services == tuple(users)


def test_filled_form_validates_and_empty_form_lists_required_fields(thing_id: str) -> None:
    thing = CATALOG.thing(thing_id)
    form = UnifiedForm(CATALOG, thing, ADULT)
    prefilled = form.prefilled()
    assert all(form.is_locked(k) for k in prefilled)
    errors = form.validate(prefilled, TODAY)
    for f in form.fields(prefilled):
        if f.definition.required and f.id not in prefilled:
            assert errors[f.id].key == "required"
        else:
            assert f.id not in errors
    answers = fill_all(form, dict(prefilled))
    assert form.validate(answers, TODAY) == {}
    normalized = form.normalize(answers)
    assert set(normalized) <= set(answers)


def test_savings_are_positive_for_every_bundle(thing_id: str) -> None:
    s = savings(CATALOG.thing(thing_id))
    assert s.services == len(CATALOG.thing(thing_id).services) >= 2
    assert s.saved > 0
    assert s.materials_unified == len(CATALOG.thing(thing_id).material_ids())


def test_conditions_show_and_hide_and_hidden_answers_are_dropped() -> None:
    # Every thing with a yes/no-controlled field: answering yes shows more than answering no.
    checked = 0
    for thing in CATALOG.things:
        form = UnifiedForm(CATALOG, thing, ADULT)
        yes = fill_all(form, form.prefilled(), yes=True)
        no = fill_all(form, form.prefilled(), yes=False)
        conditional = {r.id for s in thing.services for r in (*s.fields, *s.materials) if r.when}
        if not conditional:
            continue
        shown_yes = {f.id for f in form.fields(yes)} | {m.id for m in form.materials(yes)}
        shown_no = {f.id for f in form.fields(no)} | {m.id for m in form.materials(no)}
        assert shown_yes != shown_no, thing.id
        # Switch every yes to no: answers to the fields that disappear are not submitted.
        flipped = {k: (False if v is True else v) for k, v in yes.items()}
        cleaned = form.clean(flipped)
        visible = {f.id for f in form.fields(cleaned)}
        assert set(cleaned) <= visible
        checked += 1
    assert checked >= 5


def test_id_card_read_waives_the_copy_and_held_licences_are_not_asked_for() -> None:
    waived_any = False
    for thing in CATALOG.things:
        without = UnifiedForm(CATALOG, thing, None)
        answers = fill_all(without, {})
        for need in without.materials(answers):
            assert need.waiver is None
        held = frozenset(m.e_licence for m in CATALOG.materials.values() if m.e_licence)
        with_card = UnifiedForm(CATALOG, thing, ADULT, held)
        for need in with_card.materials(answers):
            d = need.definition
            if d.id_card_replaces:
                assert need.waiver == "id_card"
            elif d.e_licence:
                assert need.waiver == "e_licence"
            else:
                assert need.waiver is None
            waived_any |= need.waiver is not None
        assert {m.id for m in with_card.to_scan(answers)} <= {
            m.id for m in without.to_scan(answers)
        }
    assert waived_any


def test_answer_validation_in_plain_words() -> None:
    fields = CATALOG.fields
    phone = next(f for f in fields.values() if f.type == "phone")
    assert validate_answer(phone, "13800138000", TODAY) is None
    assert validate_answer(phone, "0571-87654321", TODAY) is None
    bad = validate_answer(phone, "12345", TODAY)
    assert bad is not None and bad.key == "bad_phone"
    date = next(f for f in fields.values() if f.type == "date" and f.not_future)
    assert validate_answer(date, "2027-01-01", TODAY).key == "date_in_future"  # type: ignore[union-attr]
    assert validate_answer(date, "2026-02-30", TODAY).key == "bad_date"  # type: ignore[union-attr]
    idf = next(f for f in fields.values() if f.type == "id_number")
    assert validate_answer(idf, "110105194912310021", TODAY).key == "id_checksum"  # type: ignore[union-attr]
    number = next(f for f in fields.values() if f.type == "number" and f.min is not None)
    assert validate_answer(number, "abc", TODAY).key == "bad_number"  # type: ignore[union-attr]
    assert validate_answer(number, str(number.min - 1), TODAY).key == "number_too_small"  # type: ignore[operator,union-attr]
    choice = next(f for f in fields.values() if f.type == "choice")
    assert validate_answer(choice, "not-an-option", TODAY).key == "bad_choice"  # type: ignore[union-attr]
    assert validate_answer(choice, valid_answer(choice), TODAY) is None
    yes_no = next(f for f in fields.values() if f.type == "yes_no")
    assert validate_answer(yes_no, "yes", TODAY).key == "bad_yes_no"  # type: ignore[union-attr]


def _tiny_catalog() -> Catalog:
    return parse_catalog("""{
      "schema": 1, "version": "1", "categories": {"c": {"zh": "类", "en": "Cat"}},
      "fields": {
        "a": {"type": "yes_no", "label": {"zh": "甲", "en": "A"}},
        "b": {"type": "yes_no", "label": {"zh": "乙", "en": "B"},
              "required": false},
        "c": {"type": "text", "label": {"zh": "丙", "en": "C"}}
      },
      "materials": {"m": {"name": {"zh": "材料", "en": "Doc"}, "form": "copy", "pages": 1}},
      "things": [{"id": "t", "name": {"zh": "事", "en": "Thing"}, "audience": "personal",
        "category": "c", "promise": {"days": 1, "unit": "days"},
        "guide": {"zh": "说明", "en": "Guide"},
        "services": [
          {"code": "S1", "name": {"zh": "一", "en": "One"}, "department": {"zh": "部", "en": "D"},
           "promise": {"days": 1, "unit": "days"},
           "fields": ["a", {"id": "b", "when": {"field": "a", "equals": true}}],
           "materials": [{"id": "m", "when": {"field": "c", "answered": true}}]},
          {"code": "S2", "name": {"zh": "二", "en": "Two"}, "department": {"zh": "部", "en": "D"},
           "promise": {"days": 1, "unit": "days"},
           "fields": [{"id": "c", "when": {"field": "b", "equals": true}}],
           "materials": ["m"]}
        ]}]}""")


def test_hiding_cascades_and_a_material_is_needed_if_any_service_needs_it() -> None:
    catalog = _tiny_catalog()
    form = UnifiedForm(catalog, catalog.thing("t"))
    answers = {"a": True, "b": True, "c": "x"}
    assert [f.id for f in form.fields(answers)] == ["a", "b", "c"]
    # a → False hides b, which hides c: both answers go.
    assert form.clean({**answers, "a": False}) == {"a": False}
    # S2 needs the material unconditionally, so S1's condition does not hide it.
    need = form.materials({})
    assert [m.id for m in need] == ["m"] and [s.code for s in need[0].services] == ["S2"]
    assert [s.code for s in form.materials({"c": "x"})[0].services] == ["S1", "S2"]


def test_a_card_field_the_card_leaves_empty_stays_an_ordinary_question() -> None:
    # A 2023 foreigner's permanent residence card has no 民族 and no address.
    foreigner = DEMO_CARDS["foreigner"][1]
    thing = next(
        t
        for t in CATALOG.things
        if any(CATALOG.fields[f].prefill == "id_card.address" for f in t.field_ids())
    )
    form = UnifiedForm(CATALOG, thing, foreigner)
    address_fields = [
        f for f in thing.field_ids() if CATALOG.fields[f].prefill == "id_card.address"
    ]
    for fid in address_fields:
        assert not form.is_locked(fid)
        assert fid not in form.prefilled()
    name_field = next(f for f in thing.field_ids() if CATALOG.fields[f].prefill == "id_card.name")
    assert form.is_locked(name_field) and form.prefilled()[name_field] == foreigner.name
