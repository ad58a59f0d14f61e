"""The applicant's trip through the Qt-free flow, with the real intake and storage."""

from __future__ import annotations

import datetime as dt
import errno
import gc
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import fill_all

from kiosk.application import Status
from kiosk.catalog import CatalogStore
from kiosk.config import Config, StorageConfig
from kiosk.demo import DEMO_CARDS, DEMO_LICENCES
from kiosk.flow import ApplicantFlow, Step
from kiosk.intake import Intake
from kiosk.ports import CapturedPage
from kiosk.receipt import receipt_from_json
from kiosk.storage import Storage
from sync.simulated import SimulatedPlatform

NOW = dt.datetime(2026, 11, 27, 10, 30)
CARD = DEMO_CARDS["adult"][1]


def page(n: int = 0) -> CapturedPage:
    return CapturedPage(jpeg=b"\xff\xd8fake-jpeg-%d\xff\xd9" % n, width=10, height=14)


class Env:
    def __init__(self, tmp: Path) -> None:
        self.config = Config(storage=StorageConfig(data_dir=str(tmp)))
        self.storage = Storage(tmp, hall_code="HZ01", kiosk_code="K01", clock=lambda: NOW)
        self.platform = SimulatedPlatform(DEMO_LICENCES)
        self.intake = Intake(
            self.config,
            self.storage,
            CatalogStore(tmp),
            self.platform,
            self.platform.sealer,
            clock=lambda: NOW,
        )
        self.flow = ApplicantFlow(self.intake)
        self.seen: list[Step] = []
        self.flow.subscribe(lambda step, _s: self.seen.append(step))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.storage.close()


def walk_to_review(flow: ApplicantFlow, thing_id: str, card: Any = CARD) -> None:
    flow.choose_thing(thing_id)
    flow.start()
    flow.card_read(card)
    assert flow.step is Step.FORM
    for key, value in fill_all(flow.form, dict(flow.session.answers)).items():
        if not flow.form.is_locked(key):
            flow.set_answer(key, value)
    flow.next()
    assert flow.step is Step.MATERIALS, flow.session.errors
    for n, need in enumerate(flow.form.to_scan(flow.session.answers)):
        for k in range(max(1, need.definition.pages)):
            flow.add_page(need.id, page(n * 10 + k))
    flow.next()
    assert flow.step is Step.REVIEW, flow.session.notice


def test_a_page_taken_by_hand_despite_a_check_tells_the_platform_which(env: Env) -> None:
    """The applicant may take a page the checks did not like (manual capture); the sealed
    payload says which check, so the back office knows to look closer."""
    from kiosk.i18n import Text
    from kiosk.ports import CaptureIssue

    flow = env.flow
    walk_to_review(flow, "newborn")
    flow.back()
    assert flow.step is Step.MATERIALS
    need = flow.form.to_scan(flow.session.answers)[0]
    glare = CaptureIssue("glare", Text("反光", "glare"))
    flow.add_page(need.id, replace(page(99), issues=(glare,)))
    flow.next()
    flow.agree(True)
    flow.next()
    result = flow.session.result
    assert result is not None
    sealed = env.storage.sealed_payload(result.application_id)
    payload = env.platform.open_payload(result.application_id, sealed)
    issues = [(p["material_id"], p["issues"]) for p in payload["pages"]]
    assert (need.id, ["glare"]) in issues
    assert sum(1 for _, found in issues if found) == 1  # every other page passed its checks
    flow.finish()


@pytest.mark.parametrize(
    "thing_id",
    [
        "newborn",
        "retirement",
        "business_deregistration",
        "open_restaurant",
        "social_security_card",
        "veteran_discharge",
        "utilities_joint_connection",
        "open_transport_business",
        "business_info_change",
        "disability_services",
        "school_enrolment",
    ],
)
def test_whole_trip_stores_the_application(env: Env, thing_id: str) -> None:
    flow = env.flow
    walk_to_review(flow, thing_id)
    answers = dict(flow.session.answers)
    pages = {k: [p.jpeg for p in v] for k, v in flow.session.pages.items() if v}
    flow.next()  # not agreed yet
    assert flow.step is Step.REVIEW and flow.session.notice.key == "privacy_not_agreed"  # type: ignore[union-attr]
    flow.agree(True)
    flow.next()
    assert flow.step is Step.RECEIPT
    result = flow.session.result
    assert result is not None
    assert result.receipt_number == "HZ01-K01-20261127-0001"
    stored = env.storage.get(result.application_id)
    assert stored.status is Status.QUEUED and stored.thing_id == thing_id
    # The kiosk keeps only sealed bytes; the platform's key opens them.
    sealed = env.storage.sealed_payload(result.application_id)
    assert CARD.id_number.encode() not in sealed
    payload = env.platform.open_payload(result.application_id, sealed)
    assert payload["identity"]["id_number"] == CARD.id_number
    assert payload["answers"] == flow.form.normalize(answers)
    assert [(p["material_id"], p["sha256"]) for p in payload["pages"]] == [
        (p.material_id, p.sha256) for p in stored.pages
    ]
    stored_pages: dict[str, list[bytes]] = {}
    for p in stored.pages:
        sealed_page = env.storage.page_bytes(p)
        assert all(sealed_page not in v for v in pages.values())
        stored_pages.setdefault(p.material_id, []).append(
            env.platform.open_page(result.application_id, sealed_page)
        )
    assert stored_pages == pages
    # The receipt is kept for reprints and carries only masked identity.
    receipt = receipt_from_json(env.storage.receipt_document(result.application_id) or {})
    text = "\n".join(receipt.text_lines())
    assert result.receipt_number in text and CARD.masked_id_number in text
    assert CARD.id_number not in text and CARD.name not in text and CARD.address not in text
    assert CARD.id_number not in receipt.qr_payload
    flow.finish()
    assert flow.step is Step.HOME and flow.session.identity is None


def test_held_e_licences_are_not_scanned_and_offline_asks_for_paper(env: Env) -> None:
    flow = env.flow
    flow.choose_thing("newborn")
    flow.start()
    flow.card_read(CARD)
    online = {m.id for m in flow.form.to_scan(fill_all(flow.form, dict(flow.session.answers)))}
    assert flow.session.licences_checked
    flow.cancel()
    env.platform.go_offline()
    flow.choose_thing("newborn")
    flow.start()
    flow.card_read(CARD)
    assert not flow.session.licences_checked
    offline = {m.id for m in flow.form.to_scan(fill_all(flow.form, dict(flow.session.answers)))}
    assert online < offline


def test_expired_card_is_refused_and_the_form_stays_empty(env: Env) -> None:
    flow = env.flow
    flow.choose_thing("retirement")
    flow.start()
    flow.card_read(DEMO_CARDS["expired"][1])
    assert flow.step is Step.IDENTIFY
    assert flow.session.identity is None and flow.session.answers == {}
    assert "2020-05-04" in flow.session.notice.render("zh")  # type: ignore[union-attr]


def test_three_failed_reads_offer_staff_help(env: Env) -> None:
    flow = env.flow
    flow.choose_thing("retirement")
    flow.start()
    for _ in range(2):
        flow.card_failed()
        assert not flow.needs_staff
    flow.card_failed()
    assert flow.needs_staff and flow.session.notice.key == "read_failed_staff"  # type: ignore[union-attr]
    flow.card_read(CARD)  # a good read afterwards still works
    assert flow.step is Step.FORM and not flow.needs_staff


def test_invalid_answers_keep_the_applicant_on_the_form(env: Env) -> None:
    flow = env.flow
    flow.choose_thing("newborn")
    flow.start()
    flow.card_read(CARD)
    flow.next()
    assert flow.step is Step.FORM and flow.session.errors
    phone = next(
        f.id for f in flow.form.fields(flow.session.answers) if f.definition.type == "phone"
    )
    flow.set_answer(phone, "123")
    flow.next()
    assert flow.session.errors[phone].key == "bad_phone"
    flow.set_answer(phone, "13800138000")
    assert phone not in flow.session.errors  # a fixed answer clears its message at once


def test_locked_card_fields_cannot_be_changed(env: Env) -> None:
    flow = env.flow
    flow.choose_thing("newborn")
    flow.start()
    flow.card_read(CARD)
    locked = [k for k in flow.session.answers if flow.form.is_locked(k)]
    assert locked
    before = flow.session.answers[locked[0]]
    flow.set_answer(locked[0], "someone else")
    assert flow.session.answers[locked[0]] == before


def test_missing_material_blocks_and_names_it(env: Env) -> None:
    flow = env.flow
    flow.choose_thing("open_restaurant")
    flow.start()
    flow.card_read(CARD)
    for key, value in fill_all(flow.form, dict(flow.session.answers)).items():
        if not flow.form.is_locked(key):
            flow.set_answer(key, value)
    flow.next()
    assert flow.step is Step.MATERIALS
    flow.next()
    assert flow.step is Step.MATERIALS
    assert flow.session.notice is not None and flow.session.notice.key == "material_missing"
    first = flow.form.to_scan(flow.session.answers)[0]
    flow.add_page(first.id, page())
    flow.delete_page(first.id, 0)
    assert flow.session.pages[first.id] == []


def test_back_to_the_card_step_forgets_the_card(env: Env) -> None:
    flow = env.flow
    flow.choose_thing("retirement")
    flow.start()
    flow.card_read(CARD)
    flow.back()
    assert flow.step is Step.IDENTIFY
    assert flow.session.identity is None and flow.session.answers == {}
    flow.back()
    flow.back()
    assert flow.step is Step.HOME and flow.session.thing is None


def _contains(obj: Any, needle: str, seen: set[int], depth: int = 0) -> bool:
    if depth > 8 or id(obj) in seen:
        return False
    seen.add(id(obj))
    if isinstance(obj, str):
        return needle in obj
    if isinstance(obj, bytes):
        return needle.encode() in obj
    if isinstance(obj, dict):
        return any(
            _contains(k, needle, seen, depth + 1) or _contains(v, needle, seen, depth + 1)
            for k, v in obj.items()
        )
    if isinstance(obj, list | tuple | set | frozenset):
        return any(_contains(v, needle, seen, depth + 1) for v in obj)
    if hasattr(obj, "__dict__"):
        return _contains(vars(obj), needle, seen, depth + 1)
    if hasattr(obj, "__dataclass_fields__"):
        return any(
            _contains(getattr(obj, f), needle, seen, depth + 1) for f in obj.__dataclass_fields__
        )
    return False


def test_timeout_wipes_everything_the_flow_holds(env: Env) -> None:
    flow = env.flow
    walk_to_review(flow, "newborn")
    old_session = flow.session
    scans = [p for pages in old_session.pages.values() for p in pages]
    assert scans
    phone = "13800138000"
    assert _contains(flow.session, CARD.id_number, set())
    flow.timeout()
    assert flow.step is Step.HOME
    # Everything the flow holds but its backend (whose simulated platform has a fixture table
    # keyed by the demo ID numbers).
    held = {k: v for k, v in vars(flow).items() if k != "backend"}
    for needle in (CARD.id_number, CARD.name, CARD.address, phone):
        assert not _contains(held, needle, set()), needle
    # The old session object is emptied too, so a stray reference holds nothing.
    assert not _contains(old_session, CARD.id_number, set())
    assert old_session.pages == {} and old_session.answers == {}
    del old_session, scans
    gc.collect()


def test_disk_full_tells_the_applicant_and_keeps_earlier_applications(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = env.flow
    walk_to_review(flow, "retirement")
    flow.agree(True)
    flow.next()
    first = flow.session.result
    assert first is not None
    flow.finish()
    walk_to_review(flow, "newborn")
    flow.agree(True)

    def full(*_a: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.fsync", full)
    flow.next()
    assert flow.step is Step.REVIEW
    assert flow.session.notice is not None and flow.session.notice.key == "submit_disk_full"
    monkeypatch.undo()
    assert env.storage.get(first.application_id).receipt_number.endswith("0001")
    assert len(env.storage.list_applications()) == 1


def test_a_lost_reader_is_explained_at_the_card_step_and_cleared_when_back(env: Env) -> None:
    flow = env.flow
    flow.reader_lost()  # lost while nobody is at the card step
    flow.choose_thing("retirement")
    flow.start()
    assert flow.session.notice is not None and flow.session.notice.key == "reader_lost"
    flow.reader_back()
    assert flow.session.notice is None
    flow.reader_lost()
    assert flow.session.notice is not None and "读卡器" in flow.session.notice.render("zh")
    flow.reader_back()
    flow.card_read(CARD)
    assert flow.step is Step.FORM
