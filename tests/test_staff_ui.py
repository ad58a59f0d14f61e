"""Staff mode on the kiosk's own screen, the whole kiosk built by the composition root with
simulated devices: getting in (long-press, badge), the lockout, automatic sign-out, manual
identity, an agent's application end to end, today's work and the admin-only exit."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pcsc_service import pcscd  # noqa: F401 - the fixture, asked for by name below
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QPushButton, QWidget
from pytestqt.qtbot import QtBot

import ui.app
from devices.registry import Devices
from kiosk.application import Status
from kiosk.audit import AuditLog
from kiosk.config import Config, SessionConfig, StaffConfig, StorageConfig
from kiosk.demo import DEMO_CARDS
from kiosk.flow import POWER_OF_ATTORNEY, Step
from kiosk.identity import check_digit, mask_id_number
from kiosk.ports import SmartCardListener, SmartCardSeen
from kiosk.staff import StaffSession
from ui.app import Kiosk, build_kiosk
from ui.driver import KioskDriver
from ui.staff.mode import EXIT_LEAVE, EXIT_RESTART

pytestmark = pytest.mark.qt

ROOT = Path(__file__).resolve().parent.parent
PIN = "246810"
BADGE = bytes.fromhex("04A2246A8B5C80")
APPLICANT = DEMO_CARDS["elderly"][1]  # 王秀英, 83
AGENT = DEMO_CARDS["adult"][1]  # 李明
GOOD_ID = "11010519491231002" + check_digit("11010519491231002")
BAD_ID = GOOD_ID[:-1] + ("1" if GOOD_ID[-1] != "1" else "2")


class FakeSmartCardReader:
    """The PC/SC port, driven by the test: `seen()` calls the listener from another thread,
    as pyscard would."""

    def __init__(self) -> None:
        self.listener: SmartCardListener | None = None

    def start(self, listener: SmartCardListener) -> None:
        self.listener = listener

    def stop(self) -> None:
        self.listener = None

    def seen(self, uid: bytes, kind: str = "staff_badge") -> None:
        listener = self.listener
        assert listener is not None, "the kiosk did not start the smart card reader"
        event = SmartCardSeen("Virtual PCD 00 00", b"\x3b\x8f", uid, kind)  # type: ignore[arg-type]
        thread = threading.Thread(target=listener, args=(event,), name="pcsc-fake")
        thread.start()
        thread.join()


@pytest.fixture
def badge_reader(monkeypatch: pytest.MonkeyPatch) -> FakeSmartCardReader:
    reader = FakeSmartCardReader()
    real = ui.app.build_devices

    def with_reader(config: Config, data_dir: Path) -> Devices:
        devices = real(config, data_dir)
        devices.smart_card = reader
        return devices

    monkeypatch.setattr(ui.app, "build_devices", with_reader)
    return reader


@pytest.fixture
def kiosk(qapp: QApplication, tmp_path: Path, badge_reader: FakeSmartCardReader) -> Iterator[Kiosk]:
    config = replace(
        Config(),
        storage=StorageConfig(data_dir=str(tmp_path)),
        session=SessionConfig(idle_timeout_s=120, idle_countdown_s=15),
        staff=StaffConfig(idle_logout_s=60, long_press_s=1.0),
    )
    k = build_kiosk(config, qapp)
    k.window.resize(1080, 1920)
    k.window.show()
    store = k.staff_store
    store.add("S001", "张三", "staff", PIN, badge_uid=BADGE, actor="cli:test")
    store.add("A001", "李四", "admin", "135790", actor="cli:test")
    yield k
    k.window.close()
    k.close()


@pytest.fixture
def driver(kiosk: Kiosk) -> KioskDriver:
    return KioskDriver(kiosk.window)


def current(kiosk: Kiosk) -> QWidget:
    return kiosk.window.modes.currentWidget()


def press(root: QWidget, name: str) -> None:
    buttons = [b for b in root.findChildren(QPushButton, name) if b.isVisible()]
    assert buttons, f"no visible button {name!r}"
    buttons[0].click()
    QApplication.processEvents()


def type_pin(kiosk: Kiosk, pin: str) -> None:
    for digit in pin:
        press(kiosk.staff.pin, f"pin_{digit}")
    press(kiosk.staff.pin, "pin_ok")


def log_in(kiosk: Kiosk, qtbot: QtBot, number: str = "S001", pin: str = PIN) -> StaffSession:
    kiosk.staff.open_pin_pad(None)
    for ch in number:
        if ch.isdigit():
            press(kiosk.staff.pin, f"pin_{ch}")
        else:
            pad = kiosk.staff.pin.number
            pad.setText(pad.text() + ch)
    press(kiosk.staff.pin, "pin_ok")
    type_pin(kiosk, pin)
    qtbot.waitUntil(lambda: kiosk.staff.session is not None, timeout=5000)
    session = kiosk.staff.session
    assert session is not None
    return session


def shown_text(root: QWidget) -> str:
    parts = [w.text() for w in root.findChildren(QLabel) if w.isVisible()]
    parts += [w.text() for w in root.findChildren(QPushButton) if w.isVisible()]
    return "\n".join(parts)


def audit_actions(kiosk: Kiosk) -> list[tuple[str, str]]:
    return [(e.actor, e.action) for e in kiosk.audit.entries()]


# Getting in -------------------------------------------------------------------------------------


def test_a_long_press_on_the_corner_opens_the_pin_pad_and_a_pin_the_staff_home(
    kiosk: Kiosk, qtbot: QtBot
) -> None:
    window = kiosk.window
    corner = QPoint(30, 30)
    # A quick tap on the corner, or a long press elsewhere, opens nothing.
    QTest.mousePress(window, Qt.MouseButton.LeftButton, pos=corner)
    qtbot.wait(300)
    QTest.mouseRelease(window, Qt.MouseButton.LeftButton, pos=corner)
    QTest.mousePress(window, Qt.MouseButton.LeftButton, pos=QPoint(540, 900))
    qtbot.wait(1300)
    QTest.mouseRelease(window, Qt.MouseButton.LeftButton, pos=QPoint(540, 900))
    assert window.showing_applicant
    QTest.mousePress(window, Qt.MouseButton.LeftButton, pos=corner)
    qtbot.waitUntil(lambda: current(kiosk) is kiosk.staff.pin, timeout=3000)
    QTest.mouseRelease(window, Qt.MouseButton.LeftButton, pos=corner)
    pad = kiosk.staff.pin
    assert pad.phase == "number"
    for ch in "S001":
        pad.number.setText(pad.number.text() + ch) if not ch.isdigit() else press(pad, f"pin_{ch}")
    press(pad, "pin_ok")
    assert pad.phase == "pin"
    for digit in PIN:
        press(pad, f"pin_{digit}")
    # The PIN is never shown: only dots, and in no text field.
    assert PIN not in shown_text(window)
    assert all(PIN not in edit.text() for edit in window.findChildren(QLineEdit))
    assert "●●●●●●" in pad.dots.text()
    press(pad, "pin_ok")
    qtbot.waitUntil(lambda: current(kiosk) is kiosk.staff.home, timeout=5000)
    home = kiosk.staff.home
    assert "S001" in home.who.text()
    # Counter staff see their work, not the technician's or the admin's.
    assert home.buttons["assisted"].isVisible() and home.buttons["today"].isVisible()
    assert not home.buttons["technician"].isVisible()
    assert not home.buttons["exit"].isVisible() and not home.buttons["restart"].isVisible()
    assert ("S001", "login") in audit_actions(kiosk)
    press(home, "staff_logout")
    assert kiosk.staff.session is None and window.showing_applicant
    assert audit_actions(kiosk)[-1] == ("S001", "logout")


def test_a_badge_tap_anywhere_asks_only_for_the_pin(
    kiosk: Kiosk, qtbot: QtBot, badge_reader: FakeSmartCardReader, driver: KioskDriver
) -> None:
    driver.choose("newborn")  # an applicant is mid-way: the badge still works
    badge_reader.seen(BADGE[:4], kind="bank_card")  # not a badge: nothing happens
    QApplication.processEvents()
    assert kiosk.window.showing_applicant
    badge_reader.seen(BADGE)
    qtbot.waitUntil(lambda: current(kiosk) is kiosk.staff.pin, timeout=3000)
    pad = kiosk.staff.pin
    assert pad.phase == "pin" and "…5C80" in pad.prompt.text()
    assert not pad.number.isVisible()
    type_pin(kiosk, PIN)
    qtbot.waitUntil(lambda: kiosk.staff.session is not None, timeout=5000)
    session = kiosk.staff.session
    assert session is not None and session.method == "badge"
    assert kiosk.flow.step is Step.HOME  # the unfinished session was not kept
    login = [e for e in kiosk.audit.entries() if e.action == "login"][-1]
    assert login.actor == "S001" and login.details["method"] == "badge"


def test_cancel_on_the_pin_pad_goes_back_to_where_the_applicant_was(
    kiosk: Kiosk, driver: KioskDriver
) -> None:
    driver.choose("newborn")
    kiosk.staff.open_pin_pad(None)
    press(kiosk.staff.pin, "pin_cancel")
    assert kiosk.window.showing_applicant and kiosk.flow.step is Step.THING
    assert kiosk.staff.session is None


def test_five_wrong_pins_lock_the_account_and_say_for_how_long(
    kiosk: Kiosk, qtbot: QtBot, badge_reader: FakeSmartCardReader
) -> None:
    badge_reader.seen(BADGE)
    qtbot.waitUntil(lambda: current(kiosk) is kiosk.staff.pin, timeout=3000)
    pad = kiosk.staff.pin
    for attempt in range(5):
        type_pin(kiosk, "975310")
        qtbot.waitUntil(lambda: not pad.busy, timeout=5000)
        if attempt < 4:
            assert "工号或密码不对" in pad.message.text()
    assert "锁定" in pad.message.text() and "5 分钟" in pad.message.text()
    type_pin(kiosk, PIN)  # the right PIN, but locked: not even checked
    qtbot.waitUntil(lambda: not pad.busy, timeout=5000)
    assert kiosk.staff.session is None and "锁定" in pad.message.text()
    failed = [e for e in kiosk.audit.entries() if e.action == "login_failed"]
    assert [e.details["reason"] for e in failed] == ["wrong_pin"] * 4 + ["locked"] * 2


def test_an_idle_staff_session_signs_itself_out(kiosk: Kiosk, qtbot: QtBot) -> None:
    session = log_in(kiosk, qtbot)
    kiosk.staff.choose("assisted")
    press(kiosk.staff.picker, "pick_newborn")
    assert kiosk.flow.step is Step.IDENTIFY and kiosk.flow.session.assist is not None
    session.last_activity = session.last_activity.replace(year=session.last_activity.year - 1)
    qtbot.waitUntil(lambda: kiosk.staff.session is None, timeout=3000)
    assert kiosk.window.showing_applicant and kiosk.flow.step is Step.HOME
    assert kiosk.flow.session.assist is None  # the assisted application went with it
    logout = [e for e in kiosk.audit.entries() if e.action == "logout"][-1]
    assert logout.details["reason"] == "idle"


# Assisted applications ----------------------------------------------------------------------


def test_a_typed_in_identity_takes_sex_birth_and_kind_from_the_number() -> None:
    from kiosk.flow import manual_document, manual_reason
    from kiosk.identity import IdNumberError

    document = manual_document(GOOD_ID.lower(), "  赵  桂兰 ")
    assert document.id_number == GOOD_ID and document.name == "赵 桂兰"
    assert document.birth_date.isoformat() == "1949-12-31" and document.sex == "女"
    assert document.kind == "resident" and document.valid_to is None
    permit = "81000019920607004X"
    assert manual_document(permit, "陈嘉欣").kind == "hk_mo_tw_permit"
    with pytest.raises(IdNumberError) as bad:
        manual_document(BAD_ID, "赵桂兰")
    assert bad.value.message.key == "id_checksum"
    with pytest.raises(ValueError):
        manual_document(GOOD_ID, "   ")
    assert manual_reason("hukou_only") == "hukou_only"
    assert manual_reason("other", " 卡 在  外地 ") == "other: 卡 在 外地"
    with pytest.raises(ValueError):
        manual_reason("other", "")
    with pytest.raises(ValueError):
        manual_reason("lost_it")


def test_manual_identity_refuses_a_bad_check_digit_and_takes_a_good_one_with_a_reason(
    kiosk: Kiosk, qtbot: QtBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    log_in(kiosk, qtbot)
    kiosk.staff.choose("assisted")
    press(kiosk.staff.picker, "pick_newborn")
    bar = kiosk.staff.bar
    assert bar.isVisible() and "S001" in bar.who.text()
    press(kiosk.window, "manual_entry")
    page = kiosk.staff.manual
    assert current(kiosk) is page
    page.id_number.setText(BAD_ID)
    page.name.setText("赵桂兰")
    press(page, "reason_card_damaged")
    press(page, "manual_ok")
    assert "校验不通过" in page.message.text() and current(kiosk) is page
    page.id_number.setText(GOOD_ID)
    page.reasons["card_damaged"].setChecked(False)
    page.reason_group.setExclusive(False)
    for button in page.reasons.values():
        button.setChecked(False)
    page.reason_group.setExclusive(True)
    press(page, "manual_ok")
    assert "请选择原因" in page.message.text()  # a reason is required
    press(page, "reason_other")
    press(page, "manual_ok")
    assert "其他原因" in page.message.text()
    page.other.setText("只带了户口簿复印件")
    press(page, "manual_ok")
    qtbot.waitUntil(lambda: kiosk.flow.step is Step.FORM, timeout=5000)
    session = kiosk.flow.session
    assert session.identity is not None and session.identity.id_number == GOOD_ID
    assert session.assist is not None
    assert session.assist.manual == {"applicant": "other: 只带了户口簿复印件"}
    # A typed-in identity waives no ID-card copy: no chip was read.
    needs = {n.id: n for n in kiosk.flow.form.materials(session.answers)}
    if "id_card_copy" in needs:
        assert needs["id_card_copy"].to_scan
    entry = [e for e in kiosk.audit.entries() if e.action == "manual_identity"][-1]
    assert entry.actor == "S001" and entry.details["reason"] == "other"
    assert entry.details["masked"] == mask_id_number(GOOD_ID)
    assert all(GOOD_ID not in r.getMessage() for r in caplog.records)


def test_an_agent_application_end_to_end(
    kiosk: Kiosk, qtbot: QtBot, driver: KioskDriver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    log_in(kiosk, qtbot)
    kiosk.staff.choose("agent")
    press(kiosk.staff.picker, "pick_social_security_card")
    flow = kiosk.flow
    assert flow.step is Step.IDENTIFY and flow.awaiting == "applicant"
    driver.press("demo_card_elderly")  # the applicant's card (the person the card is for)
    qtbot.waitUntil(lambda: flow.awaiting == "agent", timeout=5000)
    identify = kiosk.window.screens[Step.IDENTIFY]
    assert "代办人" in shown_text(identify) and "代办人" in kiosk.staff.bar.awaiting.text()
    driver.tap_card("elderly")  # the same person again is not an agent
    assert flow.step is Step.IDENTIFY and flow.session.notice is not None
    assert flow.session.notice.key == "agent_is_applicant"
    driver.tap_card("adult")  # the agent's card
    assert flow.step is Step.FORM
    assist = flow.session.assist
    assert assist is not None and assist.agent_identity is not None
    assert flow.session.identity is not None and flow.session.identity.name == APPLICANT.name
    assert flow.form.is_locked("applying_for_self")  # the identity is the applicant's own
    driver.fill_form()
    driver.next(Step.MATERIALS)
    to_scan = [n.id for n in flow.form.to_scan(flow.session.answers)]
    assert POWER_OF_ATTORNEY in to_scan  # the 委托书 is required
    driver.press("next")
    assert flow.step is Step.MATERIALS and flow.session.notice is not None  # not without it
    driver.scan_all()
    press(kiosk.window, f"original_{POWER_OF_ATTORNEY}")
    assert POWER_OF_ATTORNEY in assist.originals_checked
    driver.next(Step.REVIEW)
    driver.agree_and_submit()
    result = flow.session.result
    assert result is not None
    stored = kiosk.storage.get(result.application_id)
    assert stored.channel == "assisted:S001" and stored.status is Status.QUEUED
    receipt = "\n".join(result.receipt.text_lines())
    assert "帮办工号：S001" in receipt and "张三" not in receipt
    assert f"代办人：{AGENT.masked_name} {AGENT.masked_id_number}" in receipt
    assert "原件已核验" in receipt
    assert AGENT.id_number not in receipt and APPLICANT.id_number not in receipt
    driver.press("next")  # Done: back to the staff menu, still signed in
    qtbot.waitUntil(lambda: current(kiosk) is kiosk.staff.home, timeout=3000)
    entry = [e for e in kiosk.audit.entries() if e.action == "assisted_submission"][-1]
    assert entry.actor == "S001" and entry.details["application_id"] == stored.id
    assert entry.details["agent"] is True
    assert entry.details["originals_checked"] == [POWER_OF_ATTORNEY]
    # Privacy: no full ID number in the log records or anywhere in the audit log.
    everything = "\n".join(r.getMessage() for r in caplog.records)
    audit_bytes = (kiosk.config.data_dir / "audit.db").read_bytes()
    for number in (AGENT.id_number, APPLICANT.id_number):
        assert number not in everything and number.encode() not in audit_bytes
        assert number not in str(stored.summary)
    assert kiosk.audit.verify() is None
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ui.cli",
            "audit",
            "verify",
            "--data-dir",
            str(kiosk.config.data_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


# Today's work and leaving ------------------------------------------------------------------------


def test_todays_work_reprints_and_voids_from_the_screen(
    kiosk: Kiosk, qtbot: QtBot, driver: KioskDriver
) -> None:
    driver.whole_trip("newborn")
    app_id = kiosk.flow.session.result.application_id  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: kiosk.storage.times_printed(app_id) == 1, timeout=5000)
    driver.press("next")
    log_in(kiosk, qtbot)
    press(kiosk.staff.home, "staff_today")
    today = kiosk.staff.today
    assert current(kiosk) is today and app_id in today.rows
    assert "共 1 件" in today.summary.text()
    assert "330106198503120036" not in shown_text(today)
    press(today, f"reprint_{app_id}")
    qtbot.waitUntil(lambda: kiosk.storage.times_printed(app_id) == 2, timeout=5000)
    qtbot.waitUntil(lambda: "第 2 次打印" in today.message.text(), timeout=3000)
    press(today, "filter_sync_set_aside")
    assert app_id not in today.rows
    press(today, "filter_sync_all")
    press(today, f"void_{app_id}")
    press(today.reasons, "reason_confirm")
    assert "请选择原因" in today.reasons.error.text()
    press(today.reasons, "why_duplicate")
    press(today.reasons, "reason_confirm")
    assert kiosk.storage.get(app_id).status is Status.VOIDED
    assert "已作废" in today.message.text()
    actions = audit_actions(kiosk)
    assert ("S001", "reprint") in actions and ("S001", "void") in actions


def test_only_an_admin_may_leave_the_kiosk(
    kiosk: Kiosk, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    exits: list[int] = []
    monkeypatch.setattr(kiosk.staff.deps, "quit", exits.append)
    log_in(kiosk, qtbot)
    kiosk.staff.choose("exit")  # not offered to counter staff, and refused if asked anyway
    kiosk.staff.choose("restart")
    assert exits == [] and "不能" in kiosk.staff.home.message.text()
    assert not any(action in ("exit", "restart") for _, action in audit_actions(kiosk))
    press(kiosk.staff.home, "staff_logout")
    log_in(kiosk, qtbot, "A001", "135790")
    home = kiosk.staff.home
    press(home, "staff_exit")
    assert exits == []  # asked to confirm first
    press(home, "confirm_yes")
    assert exits == [EXIT_LEAVE] and kiosk.staff.session is None
    assert audit_actions(kiosk)[-2:] == [("A001", "exit"), ("A001", "logout")]
    log_in(kiosk, qtbot, "A001", "135790")
    press(home, "staff_restart")
    press(home, "confirm_yes")
    assert exits == [EXIT_LEAVE, EXIT_RESTART]
    with AuditLog(kiosk.config.data_dir) as audit:
        assert audit.verify() is None


# The badge through a real pcscd and the virtual card --------------------------------------------


def test_a_virtual_badge_through_pcscd_opens_the_pin_pad(
    qapp: QApplication, tmp_path: Path, qtbot: QtBot, request: pytest.FixtureRequest
) -> None:
    from devices.pcsc.virtual_card import StaffBadge, VirtualCard

    request.getfixturevalue("pcscd")  # started only for this test
    config = replace(
        Config(),
        storage=StorageConfig(data_dir=str(tmp_path)),
        devices=replace(Config().devices, smart_card="pcsc"),
    )
    k = build_kiosk(config, qapp)
    card = VirtualCard(StaffBadge(uid=BADGE))
    try:
        k.window.resize(1080, 1920)
        k.window.show()
        k.staff_store.add("S001", "张三", "staff", PIN, badge_uid=BADGE, actor="cli:test")
        card.insert()
        qtbot.waitUntil(lambda: k.window.modes.currentWidget() is k.staff.pin, timeout=10000)
        assert k.staff.pin.phase == "pin" and "…5C80" in k.staff.pin.prompt.text()
        type_pin(k, PIN)
        qtbot.waitUntil(lambda: k.staff.session is not None, timeout=5000)
        assert k.staff.session is not None and k.staff.session.method == "badge"
    finally:
        card.remove()
        k.window.close()
        k.close()


LEAVE_SCRIPT = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
from kiosk.config import Config
from ui.app import _quit_application
from ui.lockdown import Lockdown, NoScreenSaver
app = QApplication([])
window = QMainWindow()
window.show()
config = Config()
lockdown = Lockdown(app, window, config.kiosk_mode, config.calendar, saver=NoScreenSaver("t", "t"))
lockdown.install()
window.close()  # refused: the lock-down alone lets the window go
assert window.isVisible()
QTimer.singleShot(50, lambda: _quit_application(window, int(sys.argv[1])))
sys.exit(app.exec())
"""


@pytest.mark.parametrize("status", [EXIT_LEAVE, EXIT_RESTART])
def test_leaving_goes_through_the_lockdown_with_its_exit_status(status: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LEAVE_SCRIPT, str(status)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == status, done.stderr


def test_every_staff_page_has_large_text_and_targets_in_both_languages(
    kiosk: Kiosk, qtbot: QtBot, driver: KioskDriver
) -> None:
    from ui.theme import MIN_TARGET_PX, MIN_TEXT_PT

    driver.whole_trip("newborn")
    driver.press("next")
    kiosk.staff_store.add("T002", "王工", "admin", "258147", actor="cli:test")
    log_in(kiosk, qtbot, "T002", "258147")
    staff = kiosk.staff

    def check(page: QWidget) -> None:
        assert current(kiosk) is page
        QApplication.processEvents()
        for widget in page.findChildren(QLabel) + page.findChildren(QPushButton):
            if not widget.isVisible() or not widget.text():
                continue
            widget.ensurePolished()
            font = widget.font()
            points = font.pointSizeF() if font.pointSizeF() > 0 else font.pixelSize() * 0.75
            assert points >= MIN_TEXT_PT, f"{widget.objectName() or widget.text()} at {points} pt"
        for button in page.findChildren(QPushButton):
            if button.isVisible():
                assert min(button.width(), button.height()) >= MIN_TARGET_PX, (
                    f"{button.objectName()} is {button.width()}×{button.height()}"
                )
        for edit in page.findChildren(QLineEdit):
            if edit.isVisible():
                assert edit.height() >= MIN_TARGET_PX, edit.objectName()

    for lang in ("zh", "en"):
        if staff.lang != lang:
            press(current(kiosk), "staff_lang")
        staff.show_home()
        check(staff.home)
        assert staff.home.title.text() == ("工作人员菜单" if lang == "zh" else "Staff menu")
        staff.choose("today")
        check(staff.today)
        staff.today.action_requested("void", staff.today.items[0])
        check(staff.today)
        staff.choose("technician")
        check(staff.technician)
        staff.show_home()
        staff.choose("agent")
        check(staff.picker)
        press(staff.picker, "pick_newborn")
        assert kiosk.flow.session.lang == lang  # the applicant's screens follow the staff's
        press(kiosk.window, "manual_entry")
        check(staff.manual)
        press(staff.manual, "manual_back")
        driver.press("cancel")
        qtbot.waitUntil(lambda: current(kiosk) is staff.home, timeout=3000)
        staff.logout()
        kiosk.flow.set_language(lang)
        staff.open_pin_pad(None)
        check(staff.pin)
        assert staff.pin.title.text() == ("工作人员登录" if lang == "zh" else "Staff sign-in")
        press(staff.pin, "pin_cancel")
        log_in(kiosk, qtbot, "T002", "258147")
