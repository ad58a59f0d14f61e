"""The whole kiosk, window and all, driven through its widgets with simulated devices."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from devices.idcard import SimulatedIdCardReader
from devices.printer.factory import SimulatedEscposPrinter
from devices.simulated_camera import SimulatedCamera
from kiosk.application import Status
from kiosk.catalog import load_shipped_catalog
from kiosk.config import Config, SessionConfig, StorageConfig
from kiosk.demo import DEMO_CARDS
from kiosk.flow import Step
from kiosk.ports import CardRead, CardRemoved
from sync.simulated import SimulatedPlatform
from ui.app import Kiosk, build_kiosk
from ui.driver import KioskDriver

THINGS = [t.id for t in load_shipped_catalog().things]
ADULT = DEMO_CARDS["adult"][1]


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


def decode_qr(png: bytes) -> str:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(image)
    return str(text)


def visible_text(root: QWidget) -> str:
    """Every label and text field, shown or hidden: what the widgets still hold."""
    parts = [w.text() for w in root.findChildren(QLabel)]
    parts += [w.text() for w in root.findChildren(QLineEdit)]
    return "\n".join(parts)


def shown_text(root: QWidget) -> str:
    """What a person can read on the screen right now."""
    parts = [w.text() for w in root.findChildren(QLabel) if w.isVisible() and w.text()]
    parts += [w.text() for w in root.findChildren(QPushButton) if w.isVisible()]
    parts += [w.text() for w in root.findChildren(QLineEdit) if w.isVisible()]
    return "\n".join(parts)


@pytest.mark.parametrize("thing_id", THINGS)
def test_whole_trip_for_every_bundle(kiosk: Kiosk, driver: KioskDriver, thing_id: str) -> None:
    driver.whole_trip(thing_id)
    flow = kiosk.flow
    result = flow.session.result
    assert result is not None
    stored = kiosk.storage.get(result.application_id)
    assert stored.thing_id == thing_id and stored.status is Status.QUEUED
    assert stored.receipt_number == result.receipt_number
    # Every page the applicant scanned is stored sealed, and opens byte for byte.
    platform = kiosk.platform
    assert isinstance(platform, SimulatedPlatform)
    scanned = {k: [p.jpeg for p in v] for k, v in flow.session.pages.items() if v}
    kept: dict[str, list[bytes]] = {}
    for page in stored.pages:
        sealed = kiosk.storage.page_bytes(page)
        kept.setdefault(page.material_id, []).append(
            platform.open_page(result.application_id, sealed)
        )
    assert kept == scanned
    payload = platform.open_payload(
        result.application_id, kiosk.storage.sealed_payload(result.application_id)
    )
    assert payload["identity"]["id_number"] == ADULT.id_number
    assert payload["answers"] == flow.form.normalize(flow.session.answers)
    # The screen shows the printed receipt; its QR code leads to the progress page.
    printer = kiosk.devices.printer
    assert isinstance(printer, SimulatedEscposPrinter)
    jobs = printer.simulator.jobs
    assert jobs and jobs[-1].data == printer.receipt_job(result.receipt)
    assert kiosk.ctx.receipt_png == printer.render(result.receipt)
    assert result.receipt_number in decode_qr(kiosk.ctx.receipt_png)
    assert kiosk.storage.times_printed(result.application_id) == 1
    # Only the review step ever showed the full number; no hidden page keeps it now.
    assert ADULT.id_number not in visible_text(kiosk.window)
    assert ADULT.name not in visible_text(kiosk.window)
    label = driver.find("receipt_image", QLabel)
    assert not label.pixmap().isNull()
    assert result.receipt_number in driver.find("receipt_number", QLabel).text()
    driver.press("next")  # 完成
    assert flow.step is Step.HOME
    assert ADULT.id_number not in visible_text(kiosk.window)


def test_walk_away_shows_a_countdown_then_wipes_everything(
    kiosk: Kiosk, driver: KioskDriver
) -> None:
    window = kiosk.window
    driver.choose("newborn")
    driver.start()
    driver.tap_card("adult")
    driver.fill_form()
    driver.next(Step.MATERIALS)
    driver.scan_all()
    driver.next(Step.REVIEW)
    assert ADULT.id_number in visible_text(window)  # the review step shows it in full
    # Nobody touches the screen: the countdown appears; a touch cancels it.
    window.idle.last_touch -= 31
    driver.wait_until(window.countdown.isVisible, "the countdown")
    assert "秒" in driver.find("countdown_seconds", QLabel).text()
    driver.press("countdown_stay")
    assert not window.countdown.isVisible() and kiosk.flow.step is Step.REVIEW
    # Nobody again, past the countdown: the session is wiped and the kiosk goes home.
    window.idle.last_touch -= 60
    driver.wait_until(lambda: kiosk.flow.step is Step.HOME, "the wipe")
    text = visible_text(window)
    for secret in (
        ADULT.id_number,
        ADULT.name,
        ADULT.address,
        ADULT.masked_id_number,
        "13800138000",
    ):
        assert secret not in text, secret
    for label in window.findChildren(QLabel):
        if label.objectName().startswith("thumb"):
            assert label.pixmap().isNull()
    assert kiosk.flow.session.identity is None and kiosk.flow.session.pages == {}
    assert kiosk.storage.list_applications() == []  # nothing was saved


def test_language_switch_on_every_step(kiosk: Kiosk, driver: KioskDriver) -> None:
    def switch_and_compare() -> None:
        before = shown_text(kiosk.window)
        driver.press("lang")
        after = shown_text(kiosk.window)
        assert before != after
        driver.press("lang")
        assert shown_text(kiosk.window) == before

    switch_and_compare()
    driver.choose("retirement")
    switch_and_compare()
    driver.start()
    switch_and_compare()
    driver.tap_card("elderly")
    driver.fill_form()
    switch_and_compare()
    driver.next(Step.MATERIALS)
    switch_and_compare()
    driver.scan_all()
    driver.next(Step.REVIEW)
    switch_and_compare()
    driver.press("lang")
    driver.agree_and_submit()
    assert "Application" in shown_text(kiosk.window)
    assert "Application receipt" in "\n".join(kiosk.flow.session.result.receipt.text_lines())  # type: ignore[union-attr]


def test_expired_card_and_card_pulled_mid_read(
    kiosk: Kiosk, driver: KioskDriver, qtbot: QtBot
) -> None:
    driver.choose("retirement")
    driver.start()
    driver.tap_card("expired")
    assert kiosk.flow.step is Step.IDENTIFY
    assert "2020-05-04" in driver.find("notice", QLabel).text()
    reader = kiosk.devices.id_reader
    assert isinstance(reader, SimulatedIdCardReader)
    # The applicant snatches the card back partway through the base-info response.
    reader.sim.pull_during_read(after_bytes=600)
    with qtbot.waitSignal(
        kiosk.bridge.reader_event,
        check_params_cb=lambda event: isinstance(event, CardRemoved | CardRead),
        timeout=10000,
    ) as removed:
        reader.tap("adult")
    assert isinstance(removed.args[0], CardRemoved)
    # A pull noticed mid-frame may also report the failed read; let the reader settle.
    qtbot.wait(1000)
    assert kiosk.flow.step is Step.IDENTIFY and kiosk.flow.session.identity is None
    assert kiosk.flow.session.answers == {}
    driver.tap_card("adult")
    assert kiosk.flow.step is Step.FORM


def test_three_failed_reads_offer_staff_help(kiosk: Kiosk, driver: KioskDriver) -> None:
    driver.choose("retirement")
    driver.start()
    for _ in range(3):
        driver.tap_card("unreadable")
    assert driver.find("ask_staff").isVisible()


def test_out_of_paper_still_shows_the_receipt(kiosk: Kiosk, driver: KioskDriver) -> None:
    printer = kiosk.devices.printer
    assert isinstance(printer, SimulatedEscposPrinter)
    printer.simulator.set_paper_out(True)
    driver.whole_trip("social_security_card")
    assert printer.simulator.all_jobs == []
    assert kiosk.ctx.receipt_printed is False
    result = kiosk.flow.session.result
    assert result is not None and result.receipt_number in decode_qr(kiosk.ctx.receipt_png)
    assert kiosk.storage.times_printed(result.application_id) == 0  # staff can print it later


def test_unplugged_camera_tells_the_applicant_and_recovers(
    kiosk: Kiosk, driver: KioskDriver
) -> None:
    camera = kiosk.devices.camera.camera()
    assert isinstance(camera, SimulatedCamera)
    driver.choose("retirement")
    driver.start()
    driver.tap_card("adult")
    driver.fill_form()
    driver.next(Step.MATERIALS)
    need = kiosk.flow.form.to_scan(kiosk.flow.session.answers)[0]
    camera.unplug()
    window_text = visible_text(kiosk.window)
    driver.press(f"scan_{need.id}")
    driver.wait_until(lambda: visible_text(kiosk.window) != window_text, "the camera message")
    assert "拍摄失败" in visible_text(kiosk.window)
    camera.plug()
    driver.scan_all()
    driver.next(Step.REVIEW)
