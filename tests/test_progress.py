"""The applicant's progress look-up (办件进度查询) and the 好差评 rating: flow and window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import fill_all
from PySide6.QtWidgets import QApplication, QFrame, QLabel, QLineEdit, QPushButton, QWidget

from kiosk.application import Status
from kiosk.catalog import CatalogStore
from kiosk.config import Config, SessionConfig, StorageConfig
from kiosk.demo import DEMO_CARDS, DEMO_LICENCES
from kiosk.flow import ApplicantFlow, Purpose, Step
from kiosk.identity import IdentityDocument, keyed_hash
from kiosk.intake import Intake
from kiosk.ports import CapturedPage
from kiosk.storage import StatusChange, Storage, StorageError
from sync.simulated import SimulatedPlatform
from ui.app import Kiosk, build_kiosk
from ui.driver import DriverError, KioskDriver
from ui.screens.words import w
from ui.theme import MIN_TARGET_PX, MIN_TEXT_PT

ADULT: IdentityDocument = DEMO_CARDS["adult"][1]
ELDERLY: IdentityDocument = DEMO_CARDS["elderly"][1]
FOREIGNER: IdentityDocument = DEMO_CARDS["foreigner"][1]


class Clock:
    """A clock the test moves on, so applications get distinct times."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 27, 9, 0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, minutes: int) -> None:
        self.now += dt.timedelta(minutes=minutes)


def page(n: int) -> CapturedPage:
    return CapturedPage(jpeg=b"\xff\xd8fake-jpeg-%d\xff\xd9" % n, width=10, height=14)


def apply_for(flow: ApplicantFlow, thing_id: str, card: IdentityDocument) -> str:
    """The whole application trip through the flow; returns the application's id."""
    flow.choose_thing(thing_id)
    flow.start()
    flow.card_read(card, frozenset())
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
    flow.agree(True)
    flow.next()
    assert flow.step is Step.RECEIPT, flow.session.notice
    result = flow.session.result
    assert result is not None
    return result.application_id


def deliver(storage: Storage, app_id: str, number: str) -> None:
    """What the relay does when the platform's receipt comes back."""
    item = next(i for i in storage.outbox(None) if i.id == app_id)
    storage.begin_upload(app_id)
    receipt = {
        "application_id": app_id,
        "platform_number": number,
        "payload_sha256": item.payload_sha256,
        "attachments": [p.sha256 for p in item.pages],
    }
    storage.mark_accepted(app_id, receipt, "sig")


def services_of(flow: ApplicantFlow, thing_id: str) -> list[str]:
    return [s.code for s in flow.backend.catalog.thing(thing_id).services]


# The flow, with the real intake and storage ----------------------------------------------------


class Env:
    def __init__(self, tmp: Path) -> None:
        self.clock = Clock()
        self.config = Config(storage=StorageConfig(data_dir=str(tmp)))
        self.storage = Storage(tmp, hall_code="HZ01", kiosk_code="K01", clock=self.clock)
        self.platform = SimulatedPlatform(DEMO_LICENCES)
        self.woken: list[str] = []
        self.intake = Intake(
            self.config,
            self.storage,
            CatalogStore(tmp),
            self.platform,
            self.platform.sealer,
            clock=self.clock,
            on_saved=self.woken.append,
        )
        self.flow = ApplicantFlow(self.intake)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.storage.close()


def test_the_look_up_lists_ones_own_applications_newest_first(env: Env) -> None:
    flow = env.flow
    older = apply_for(flow, "retirement", ADULT)
    flow.finish()
    env.clock.advance(60)
    theirs = apply_for(flow, "newborn", ELDERLY)
    flow.finish()
    env.clock.advance(60)
    newer = apply_for(flow, "social_security_card", ADULT)
    flow.finish()
    deliver(env.storage, older, "BJ-0001")
    first_service = services_of(flow, "retirement")[0]
    env.storage.apply_status_changes(
        [
            StatusChange(
                1, older, "needs_supplement", None, {first_service: "needs_supplement"}, "", "t"
            )
        ],
        1,
    )

    flow.check_progress()
    assert flow.step is Step.IDENTIFY and flow.session.purpose is Purpose.PROGRESS
    flow.card_read(ADULT)
    assert flow.step is Step.PROGRESS and flow.session.notice is None
    found = flow.session.progress
    assert [a.id for a in found] == [newer, older]
    assert [a.status for a in found] == [Status.QUEUED, Status.NEEDS_SUPPLEMENT]
    assert found[1].platform_number == "BJ-0001"
    assert found[1].services[first_service] == "needs_supplement"
    assert found == env.storage.applications_for(keyed_hash(ADULT.id_number, env.intake.id_key))
    flow.back()  # Back from the list is Home: the session is wiped
    assert flow.step is Step.HOME
    assert flow.session.progress == [] and flow.session.identity is None
    assert flow.session.purpose is Purpose.APPLY

    flow.check_progress()
    flow.card_read(ELDERLY)
    assert [a.id for a in flow.session.progress] == [theirs]
    flow.cancel()
    flow.check_progress()
    flow.card_read(FOREIGNER)
    assert flow.step is Step.PROGRESS and flow.session.progress == []


def test_an_expired_card_is_refused_and_back_from_the_card_step_goes_home(env: Env) -> None:
    flow = env.flow
    flow.check_progress()
    flow.card_read(DEMO_CARDS["expired"][1])
    assert flow.step is Step.IDENTIFY and flow.session.identity is None
    assert flow.session.notice is not None and flow.session.notice.key == "id_expired"
    flow.card_failed()
    assert flow.session.notice.key == "read_failed"
    flow.back()
    assert flow.step is Step.HOME and flow.session.purpose is Purpose.APPLY
    assert flow.session.notice is None
    # The application trip is unaffected by an earlier look-up.
    flow.choose_thing("retirement")
    flow.start()
    flow.card_read(ADULT, frozenset())
    assert flow.step is Step.FORM


def test_nothing_but_home_leads_to_the_look_up_and_a_lost_reader_is_said(env: Env) -> None:
    flow = env.flow
    flow.choose_thing("retirement")
    flow.check_progress()  # not from a thing's page
    assert flow.step is Step.THING
    flow.cancel()
    flow.reader_lost()
    flow.check_progress()
    assert flow.step is Step.IDENTIFY
    assert flow.session.notice is not None and flow.session.notice.key == "reader_lost"
    flow.reader_back()
    flow.card_read(ADULT)
    assert flow.step is Step.PROGRESS
    flow.next()  # no "next" on the list
    assert flow.step is Step.PROGRESS


def test_timeout_on_the_list_wipes_it(env: Env) -> None:
    flow = env.flow
    apply_for(flow, "retirement", ADULT)
    flow.finish()
    flow.check_progress()
    flow.card_read(ADULT)
    old = flow.session
    found = old.progress
    assert len(found) == 1
    flow.timeout()
    assert flow.step is Step.HOME and flow.session is not old
    assert found == [] and old.identity is None  # the old session holds nothing either
    assert flow.snapshot()["progress"] == 0


def test_a_storage_failure_during_the_look_up_is_said_plainly(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_id_hash: str) -> Any:
        raise StorageError("disk I/O error")

    monkeypatch.setattr(env.storage, "applications_for", broken)
    flow = env.flow
    flow.check_progress()
    flow.card_read(ADULT)
    assert flow.step is Step.PROGRESS and flow.session.progress == []
    assert flow.session.notice is not None and flow.session.notice.key == "progress_failed"


def test_a_rating_is_stored_once_and_only_at_the_receipt(env: Env) -> None:
    flow = env.flow
    flow.choose_thing("retirement")
    flow.rate(5)  # not at the receipt step: nothing happens
    flow.cancel()
    app_id = apply_for(flow, "retirement", ADULT)
    flow.rate(0)
    flow.rate(6)
    assert flow.session.rating is None
    flow.rate(4)
    assert flow.session.rating == 4
    flow.rate(1)  # a second tap changes nothing
    due = env.storage.ratings_due(None)
    assert [(r.application_id, r.score) for r in due] == [(app_id, 4)]
    assert env.woken[-1] == app_id  # the relay is told at once
    flow.finish()
    assert flow.step is Step.HOME and flow.session.rating is None


def test_a_rating_that_cannot_be_saved_is_a_notice_and_finishing_still_works(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = env.flow
    apply_for(flow, "retirement", ADULT)

    def full(_app_id: str, _score: int) -> str:
        raise StorageError("database or disk is full", "the disk is full")

    with monkeypatch.context() as patch:
        patch.setattr(env.storage, "add_rating", full)
        flow.rate(2)
    assert flow.step is Step.RECEIPT and flow.session.rating is None
    assert flow.session.notice is not None and flow.session.notice.key == "rating_failed"
    flow.rate(3)  # may be tried again once the disk has room
    assert flow.session.rating == 3 and flow.session.notice is None
    assert [r.score for r in env.storage.ratings_due(None)] == [3]
    flow.finish()
    assert flow.step is Step.HOME


# The window, with simulated devices ------------------------------------------------------------


@pytest.fixture
def kiosk(qapp: QApplication, tmp_path: Path) -> Iterator[Kiosk]:
    config = replace(
        Config(),
        storage=StorageConfig(data_dir=str(tmp_path)),
        session=SessionConfig(idle_timeout_s=30, idle_countdown_s=15),
    )
    k = build_kiosk(config, qapp)
    k.window.resize(1080, 1920)
    k.window.show()
    yield k
    k.window.close()
    k.close()


@pytest.fixture
def driver(kiosk: Kiosk) -> KioskDriver:
    return KioskDriver(kiosk.window)


def visible_text(root: QWidget) -> str:
    """Every label and text field, shown or hidden: what the widgets still hold."""
    parts = [w.text() for w in root.findChildren(QLabel)]
    parts += [w.text() for w in root.findChildren(QLineEdit)]
    return "\n".join(parts)


def card_texts(driver: KioskDriver, index: int) -> dict[str, str]:
    """The words of the `index`th application on the list, by label name."""
    frame = driver.find(f"application_{index}", QFrame)
    return {lbl.objectName(): lbl.text() for lbl in frame.findChildren(QLabel) if lbl.objectName()}


def shown_cards(driver: KioskDriver) -> list[str]:
    """The applications on the list a person can see (discarded ones may await deletion)."""
    screen = driver.window.stack.currentWidget()
    return sorted(
        f.objectName()
        for f in screen.findChildren(QFrame)
        if f.objectName().startswith("application_") and f.isVisible()
    )


def assert_big_and_readable(root: QWidget) -> None:
    for widget in [root, *root.findChildren(QWidget)]:
        widget.ensurePolished()
        font = widget.font()
        points = font.pointSizeF() if font.pointSizeF() > 0 else font.pixelSize() * 0.75
        assert points >= MIN_TEXT_PT, f"{widget.objectName() or widget} at {points} pt"
    for button in root.findChildren(QPushButton):
        if button.isVisible():
            assert button.width() >= MIN_TARGET_PX and button.height() >= MIN_TARGET_PX, (
                f"{button.objectName()} is {button.width()}×{button.height()}"
            )


@pytest.fixture
def two_applications(kiosk: Kiosk) -> tuple[str, str, str]:
    """Two applications of the adult (one delivered and moved on) and one of someone else,
    made through the kiosk's own intake off screen."""
    flow = ApplicantFlow(kiosk.intake)
    older = apply_for(flow, "retirement", ADULT)
    flow.finish()
    theirs = apply_for(flow, "newborn", ELDERLY)
    flow.finish()
    newer = apply_for(flow, "social_security_card", ADULT)
    flow.finish()
    storage = kiosk.storage
    deliver(storage, older, "BJ20261127000042")
    deliver(storage, theirs, "BJ20261127000043")
    codes = services_of(flow, "retirement")
    storage.apply_status_changes(
        [
            StatusChange(
                1, older, "in_progress", None, dict.fromkeys(codes, "in_progress"), "", "t"
            ),
            StatusChange(
                2,
                older,
                "needs_supplement",
                None,
                {codes[0]: "completed", codes[1]: "needs_supplement"},
                "缺少材料",
                "t",
            ),
            StatusChange(3, theirs, "completed", None, {}, "", "t"),
        ],
        3,
    )
    return older, newer, theirs


def test_a_person_sees_their_own_applications_and_nothing_of_anyone_else(
    kiosk: Kiosk, driver: KioskDriver, two_applications: tuple[str, str, str]
) -> None:
    older, newer, theirs = two_applications
    storage, window = kiosk.storage, kiosk.window
    older_app, newer_app, their_app = (storage.get(a) for a in (older, newer, theirs))
    driver.check_progress("adult")
    assert driver.find("cancel", QPushButton).text() == "首页"
    assert not driver.find("next", QPushButton).isVisible()
    assert ADULT.masked_name in driver.find("progress_who", QLabel).text()

    newest = card_texts(driver, 0)
    assert newest["app_thing"] == kiosk.flow.backend.catalog.thing("social_security_card").name.zh
    assert newest["app_status"] == "已受理，等待提交"
    assert newest["app_delivery"] == "已保存在本机，联网后自动提交"
    assert newer_app.receipt_number in newest["app_facts"]
    assert "办件编号" not in newest["app_facts"] and "app_supplement" not in newest

    oldest = card_texts(driver, 1)
    codes = services_of(kiosk.flow, "retirement")
    assert oldest["app_status"] == "需要补充材料"
    assert oldest["app_supplement"] == "请携带材料到窗口补正"
    assert oldest["app_delivery"] == "已提交至政务服务平台"
    assert "BJ20261127000042" in oldest["app_facts"]
    assert older_app.receipt_number in oldest["app_facts"]
    assert older_app.created_at.strftime("%Y-%m-%d") in oldest["app_facts"]
    assert oldest[f"service_{codes[0]}"] == "已办结"
    assert oldest[f"service_{codes[1]}"] == "需补正材料"
    assert oldest[f"service_{codes[2]}"] == "办理中"
    assert shown_cards(driver) == ["application_0", "application_1"]
    assert not driver.find("progress_none", QFrame).isVisible()
    assert_big_and_readable(window.stack.currentWidget())

    text = visible_text(window)
    for secret in (ADULT.id_number, ADULT.name, ADULT.address):
        assert secret not in text, secret
    for other in (
        ELDERLY.masked_name,
        ELDERLY.masked_id_number,
        their_app.receipt_number,
        "BJ20261127000043",
    ):
        assert other not in text, other

    driver.press("lang")
    oldest = card_texts(driver, 1)
    assert oldest["app_status"] == "More documents needed"
    assert oldest["app_supplement"] == "Please bring your documents to a service counter"
    assert oldest[f"service_{codes[2]}"] == "In progress"
    assert driver.find("progress_title", QLabel).text() == "My applications"
    assert driver.find("cancel", QPushButton).text() == "Home"
    driver.press("cancel")
    assert kiosk.flow.step is Step.HOME
    text = visible_text(window)
    for gone in (ADULT.masked_name, older_app.receipt_number, "BJ20261127000042"):
        assert gone not in text, gone

    # Someone else sees only their own.
    driver.check_progress("elderly")
    assert card_texts(driver, 0)["app_status"] == "已办结"
    assert shown_cards(driver) == ["application_0"]
    text = visible_text(window)
    for other in (ADULT.masked_name, older_app.receipt_number, newer_app.receipt_number):
        assert other not in text, other
    driver.press("back")
    assert kiosk.flow.step is Step.HOME


def test_no_applications_found_is_said_plainly(
    kiosk: Kiosk, driver: KioskDriver, two_applications: tuple[str, str, str]
) -> None:
    driver.check_progress("hk_permit")
    none = driver.find("progress_none", QFrame)
    assert none.isVisible()
    assert driver.find("progress_none_title", QLabel).text() == w("progress_none", "zh")
    assert shown_cards(driver) == []
    assert not driver.find("progress_count", QLabel).isVisible()


def test_walking_away_from_the_list_wipes_it(
    kiosk: Kiosk, driver: KioskDriver, two_applications: tuple[str, str, str]
) -> None:
    window = kiosk.window
    older_receipt = kiosk.storage.get(two_applications[0]).receipt_number
    driver.check_progress("adult")
    assert older_receipt in visible_text(window)
    window.idle.last_touch -= 31
    driver.wait_until(window.countdown.isVisible, "the countdown")
    window.idle.last_touch -= 60
    driver.wait_until(lambda: kiosk.flow.step is Step.HOME, "the wipe")
    text = visible_text(window)
    for gone in (older_receipt, ADULT.masked_name, ADULT.masked_id_number, "BJ20261127000042"):
        assert gone not in text, gone
    assert kiosk.flow.session.progress == [] and kiosk.flow.session.identity is None
    assert not [
        f
        for f in window.findChildren(QFrame)
        if f.isVisible() and f.objectName().startswith("application_")
    ]


def test_the_card_step_of_the_look_up_leads_home_with_back(
    kiosk: Kiosk, driver: KioskDriver
) -> None:
    driver.check_progress()
    assert driver.find("cancel", QPushButton).text() == "首页"
    driver.tap_card("expired")
    assert kiosk.flow.step is Step.IDENTIFY
    driver.press("back")
    assert kiosk.flow.step is Step.HOME
    driver.choose("retirement")
    driver.start()
    assert driver.find("cancel", QPushButton).text() == "取消办理"


def test_one_tap_rates_the_service_once_and_in_english_too(
    kiosk: Kiosk, driver: KioskDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver.whole_trip("social_security_card")
    result = kiosk.flow.session.result
    assert result is not None
    assert driver.find("rate_title", QLabel).text() == "请评价本次服务"
    labels = [driver.find(f"rate_{n}", QPushButton).text() for n in range(1, 6)]
    assert labels == ["非常不满意", "不满意", "一般", "满意", "非常满意"]
    assert_big_and_readable(kiosk.window.stack.currentWidget())

    # The disk is full for a moment: the applicant is told, and may try again or just go.
    def full(_app_id: str, _score: int) -> str:
        raise StorageError("database or disk is full", "the disk is full")

    with monkeypatch.context() as patch:
        patch.setattr(kiosk.storage, "add_rating", full)
        driver.rate(2)
    assert driver.find("rate_notice", QLabel).isVisible()
    assert driver.find("rate_2", QPushButton).isEnabled()

    driver.press("lang")
    assert driver.find("rate_title", QLabel).text() == "Rate this service"
    assert driver.find("rate_5", QPushButton).text() == "Excellent"
    driver.rate(5)
    assert not driver.find("rate_notice", QLabel).isVisible()
    thanks = driver.find("rate_thanks", QLabel)
    assert thanks.isVisible() and thanks.text() == "Thank you for your rating"
    buttons = [driver.find(f"rate_{n}", QPushButton) for n in range(1, 6)]
    assert not any(b.isEnabled() for b in buttons)
    assert buttons[4].property("chosen") == "true"
    with pytest.raises(DriverError):
        driver.press("rate_1")
    buttons[0].click()  # a disabled button does nothing even if something clicks it
    QApplication.processEvents()
    due = kiosk.storage.ratings_due(None)
    assert [(r.application_id, r.score) for r in due] == [(result.application_id, 5)]

    driver.press("next")  # 完成
    assert kiosk.flow.step is Step.HOME
    assert all(b.isEnabled() and b.property("chosen") == "false" for b in buttons)
    assert not thanks.isVisible()
