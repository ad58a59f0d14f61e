"""The technician's screen on the running kiosk (simulated devices): checks appear one by one
as they finish, on the GUI thread; the ID reader is stopped for its check and started again;
the live camera view, the test page and the support bundle."""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from kiosk.config import Config, StaffConfig, StorageConfig
from ui.app import Kiosk, build_kiosk
from ui.diagnostics import Check, check_names
from ui.staff.technician import TechnicianScreen
from ui.staff.words import s

pytestmark = pytest.mark.qt


@pytest.fixture
def kiosk(qapp: QApplication, tmp_path: Path) -> Iterator[Kiosk]:
    config = replace(
        Config(),
        storage=StorageConfig(data_dir=str(tmp_path)),
        staff=StaffConfig(idle_logout_s=60),
    )
    k = build_kiosk(config, qapp)
    k.window.resize(1080, 1920)
    k.window.show()
    k.staff_store.add("T001", "王工", "technician", "258147", actor="cli:test")
    yield k
    k.window.close()
    k.close()


def press(root: QWidget, name: str) -> None:
    buttons = [b for b in root.findChildren(QPushButton, name) if b.isVisible()]
    assert buttons, f"no visible button {name!r}"
    buttons[0].click()
    QApplication.processEvents()


def log_in_technician(kiosk: Kiosk, qtbot: QtBot) -> None:
    staff = kiosk.staff
    staff.open_pin_pad(None)
    staff.pin.number.setText("T001")
    press(staff.pin, "pin_ok")
    for digit in "258147":
        press(staff.pin, f"pin_{digit}")
    press(staff.pin, "pin_ok")
    qtbot.waitUntil(lambda: staff.session is not None, timeout=5000)
    home = staff.home
    assert home.buttons["technician"].isVisible() and not home.buttons["today"].isVisible()
    press(home, "staff_technician")
    assert kiosk.window.modes.currentWidget() is staff.technician


def test_checks_appear_as_they_finish_and_the_reader_comes_back(
    kiosk: Kiosk, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_in_technician(kiosk, qtbot)
    screen = kiosk.staff.technician
    reader = kiosk.devices.id_reader
    calls: list[str] = []
    real_stop, real_start = reader.stop, reader.start
    monkeypatch.setattr(reader, "stop", lambda: (calls.append("stop"), real_stop())[1])
    monkeypatch.setattr(
        reader, "start", lambda listener: (calls.append("start"), real_start(listener))[1]
    )
    shown_on: list[str] = []
    real_add = TechnicianScreen.add_check

    def add_check(self: TechnicianScreen, check: Check) -> None:
        shown_on.append(threading.current_thread().name)
        real_add(self, check)

    monkeypatch.setattr(TechnicianScreen, "add_check", add_check)
    # Reconnect so the patched method is the one the signal calls.
    kiosk.staff.bridge.check_done.disconnect()
    kiosk.staff.bridge.check_done.connect(screen.add_check)
    waiting = s("tech_waiting", "zh")
    press(screen, "tech_run")
    names = check_names(kiosk.config)
    assert list(screen.rows) == names
    assert calls == ["stop"]  # the serial port has one user: the check's
    # Some checks (versions, disk) are in while the ID reader's read is still going.
    qtbot.waitUntil(
        lambda: any(mark != waiting for mark in screen.checks_shown().values()), timeout=10000
    )
    partial = screen.checks_shown()
    assert any(mark == waiting for mark in partial.values()), partial
    qtbot.waitUntil(lambda: screen.run_button.isEnabled(), timeout=40000)
    final = screen.checks_shown()
    assert all(mark != waiting for mark in final.values()), final
    assert calls == ["stop", "start"]
    assert set(shown_on) == {threading.main_thread().name}  # widgets touched on the GUI thread
    assert final["idcard.sam"] == s("tech_ok", "zh") and final["versions"] == s("tech_ok", "zh")
    entry = [e for e in kiosk.audit.entries() if e.action == "diagnostics"][-1]
    assert entry.actor == "T001"


def test_live_camera_test_page_and_support_bundle(
    kiosk: Kiosk, qtbot: QtBot, tmp_path: Path
) -> None:
    log_in_technician(kiosk, qtbot)
    screen = kiosk.staff.technician
    # The simulator's page lies still and passes every check: the technician's words, not the
    # applicant's "tap Scan another page".
    qtbot.waitUntil(lambda: screen.camera.status_text() == s("tech_page_ok", "zh"), timeout=15000)
    assert kiosk.preview.running
    press(screen, "tech_test_page")
    qtbot.waitUntil(lambda: "测试页" in screen.message.text(), timeout=15000)
    assert "printed" in screen.message.text()
    press(screen, "bundle_0")  # the data directory
    qtbot.waitUntil(lambda: "已导出" in screen.message.text(), timeout=40000)
    bundles = list(kiosk.config.data_dir.glob("kiosk-support-*.zip"))
    assert len(bundles) == 1
    with zipfile.ZipFile(bundles[0]) as bundle:
        assert "report.json" in bundle.namelist() and "config.toml" in bundle.namelist()
    assert [e.actor for e in kiosk.audit.entries() if e.action == "support_bundle"] == ["T001"]
    press(screen, "tech_back")
    assert not kiosk.preview.running and screen.camera.status_text() == ""


def test_a_technician_may_not_do_counter_work(kiosk: Kiosk, qtbot: QtBot) -> None:
    log_in_technician(kiosk, qtbot)
    staff = kiosk.staff
    staff.show_home()
    for action in ("today", "assisted", "agent", "exit"):
        staff.choose(action)
        assert kiosk.window.modes.currentWidget() is staff.home
    assert "不能" in staff.home.message.text()
