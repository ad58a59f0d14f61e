"""Screen lock-down for `kiosk run`: opening hours, blocked shortcuts, refused closes, cursor,
and the X screen saver kept off (against a real Xvfb when one is installed)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kiosk.config import CalendarConfig, ConfigError, KioskModeConfig, parse_config
from ui.lockdown import Lockdown, NoScreenSaver, XsetScreenSaver, is_blocked, is_open

K = Qt.Key
M = Qt.KeyboardModifier
MONDAY = dt.date(2026, 11, 23)
MODIFIER_KEYS = {K.Key_Alt, K.Key_Control, K.Key_Shift, K.Key_Meta}


def at(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm))


# --- opening hours --------------------------------------------------------------------------


def test_open_on_working_days_within_the_hours() -> None:
    mode = KioskModeConfig(opening_hours="08:30-17:30")
    calendar = CalendarConfig()
    assert not is_open(mode, calendar, at(MONDAY, 8, 29))
    assert is_open(mode, calendar, at(MONDAY, 8, 30))
    assert is_open(mode, calendar, at(MONDAY, 17, 29))
    assert not is_open(mode, calendar, at(MONDAY, 17, 30))
    saturday = MONDAY + dt.timedelta(days=5)
    assert not is_open(mode, calendar, at(saturday, 10))
    weekend_hall = KioskModeConfig(opening_days=("sat", "sun"))
    assert is_open(weekend_hall, calendar, at(saturday, 10))
    assert not is_open(weekend_hall, calendar, at(MONDAY, 10))


def test_holidays_close_and_extra_workdays_open() -> None:
    mode = KioskModeConfig()
    sunday = MONDAY - dt.timedelta(days=1)
    calendar = CalendarConfig(holidays=(MONDAY.isoformat(),), extra_workdays=(sunday.isoformat(),))
    assert not is_open(mode, calendar, at(MONDAY, 10))
    assert is_open(mode, calendar, at(sunday, 10))


def test_all_day_opening_runs_to_midnight() -> None:
    mode = KioskModeConfig(opening_hours="00:00-24:00")
    assert is_open(mode, CalendarConfig(), at(MONDAY, 0))
    assert is_open(mode, CalendarConfig(), at(MONDAY, 23, 59))


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('opening_hours = "8:30-17:30"', "opening_hours"),
        ('opening_hours = "18:00-08:00"', "opening_hours"),
        ('opening_hours = "08:00-24:30"', "opening_hours"),
        ('opening_days = ["monday"]', "opening_days"),
        ("blank_after_s = -1", "blank_after_s"),
        ('hide_cursor = "sometimes"', "hide_cursor"),
        ('block_shortcuts = "yes"', "block_shortcuts"),
    ],
)
def test_bad_kiosk_mode_values_name_the_key(toml: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"kiosk_mode.{key}"):
        parse_config(f"[kiosk_mode]\n{toml}\n")


def test_kiosk_mode_from_toml() -> None:
    config = parse_config(
        '[kiosk_mode]\nopening_days = ["mon", "sat"]\nopening_hours = "09:00-12:00"\n'
        'blank_after_s = 0\nhide_cursor = "never"\n'
    )
    assert config.kiosk_mode.opening_days == ("mon", "sat")
    assert config.kiosk_mode.hours() == (dt.time(9), dt.time(12))
    assert config.kiosk_mode.blank_after_s == 0


# --- shortcuts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "mods"),
    [
        (K.Key_F4, M.AltModifier),
        (K.Key_Tab, M.AltModifier),
        (K.Key_Backtab, M.AltModifier | M.ShiftModifier),
        (K.Key_Backspace, M.ControlModifier | M.AltModifier),
        (K.Key_Delete, M.ControlModifier | M.AltModifier),
        (K.Key_F2, M.ControlModifier | M.AltModifier),
        (K.Key_Escape, M.ControlModifier),
        (K.Key_Q, M.ControlModifier),
        (K.Key_Super_L, M.NoModifier),
        (K.Key_Meta, M.MetaModifier),
        (K.Key_F11, M.NoModifier),
    ],
)
def test_leaving_shortcuts_are_blocked(key: Qt.Key, mods: M) -> None:
    assert is_blocked(key, mods)


@pytest.mark.parametrize(
    ("key", "mods"),
    [
        (K.Key_A, M.NoModifier),
        (K.Key_A, M.ShiftModifier),
        (K.Key_Backspace, M.NoModifier),  # deleting a typed character
        (K.Key_Tab, M.NoModifier),  # next field
        (K.Key_F4, M.NoModifier),
        (K.Key_Return, M.NoModifier),
        (K.Key_Escape, M.NoModifier),
    ],
)
def test_typing_is_not_blocked(key: Qt.Key, mods: M) -> None:
    assert not is_blocked(key, mods)


# --- the lock-down on a window ---------------------------------------------------------------


class KeyRecorder(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.keys: list[int] = []
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() not in MODIFIER_KEYS:  # QTest presses Alt, Ctrl... on their own first
            self.keys.append(event.key())


class FakeSaver:
    name = "fake"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def keep_on(self) -> None:
        self.calls.append("keep_on")

    def allow_blank(self, after_s: int) -> None:
        self.calls.append(f"blank {after_s}")


@pytest.fixture
def locked(qtbot: QtBot) -> Iterator[tuple[Lockdown, KeyRecorder, FakeSaver]]:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    window = KeyRecorder()  # closed below: pytest-qt's own close would be refused
    saver = FakeSaver()
    lockdown = Lockdown(
        app,
        window,
        KioskModeConfig(hide_cursor="always"),
        CalendarConfig(),
        saver=saver,
        clock=lambda: at(MONDAY, 10),
    )
    lockdown.install()
    window.showFullScreen()
    qtbot.waitExposed(window)
    yield lockdown, window, saver
    lockdown.exit_requested = True
    lockdown.remove()
    window.close()
    window.deleteLater()


def test_blocked_keys_never_reach_the_window(
    locked: tuple[Lockdown, KeyRecorder, FakeSaver],
) -> None:
    lockdown, window, _ = locked
    QTest.keyClick(window, K.Key_F4, M.AltModifier)
    QTest.keyClick(window, K.Key_Tab, M.AltModifier)
    QTest.keyClick(window, K.Key_Backspace, M.ControlModifier | M.AltModifier)
    QTest.keyClick(window, K.Key_A)
    QTest.keyClick(window, K.Key_Backspace)
    assert window.keys == [K.Key_A, K.Key_Backspace]
    assert lockdown.blocked == 3


def test_the_window_refuses_to_close_until_the_kiosk_is_stopped(
    locked: tuple[Lockdown, KeyRecorder, FakeSaver], qtbot: QtBot
) -> None:
    lockdown, window, _ = locked
    assert not window.close()
    assert window.isVisible()
    lockdown.exit_requested = True  # what quit() sets before it asks the application to quit
    assert window.close()


def test_the_window_goes_back_to_full_screen(
    locked: tuple[Lockdown, KeyRecorder, FakeSaver], qtbot: QtBot
) -> None:
    _, window, _ = locked
    assert window.isFullScreen()
    window.showNormal()
    qtbot.waitUntil(window.isFullScreen, timeout=2000)


def test_cursor_hidden_and_restored(locked: tuple[Lockdown, KeyRecorder, FakeSaver]) -> None:
    lockdown, _, _ = locked
    cursor = QApplication.overrideCursor()
    assert cursor is not None and cursor.shape() == Qt.CursorShape.BlankCursor
    lockdown.remove()
    assert QApplication.overrideCursor() is None


def test_no_cursor_hiding_without_a_touch_screen(qtbot: QtBot) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    window = QWidget()
    qtbot.addWidget(window)
    lockdown = Lockdown(app, window, KioskModeConfig(), CalendarConfig(), saver=FakeSaver())
    lockdown.install()  # "auto", and the offscreen platform has no touch screen
    assert QApplication.overrideCursor() is None
    lockdown.exit_requested = True
    lockdown.remove()


def test_screen_kept_on_in_opening_hours_and_allowed_to_blank_after(qtbot: QtBot) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    window = QWidget()
    qtbot.addWidget(window)
    now = [at(MONDAY, 10)]
    saver = FakeSaver()
    lockdown = Lockdown(
        app,
        window,
        KioskModeConfig(blank_after_s=300),
        CalendarConfig(),
        saver=saver,
        clock=lambda: now[0],
    )
    lockdown.check_hours()
    lockdown.check_hours()
    assert saver.calls == ["keep_on", "keep_on"]  # re-applied: nothing may turn it back on
    now[0] = at(MONDAY, 19)
    lockdown.check_hours()
    lockdown.check_hours()
    assert saver.calls[2:] == ["blank 300"]  # once: re-setting would restart the X timer
    now[0] = at(MONDAY + dt.timedelta(days=1), 8)
    lockdown.check_hours()
    assert saver.calls[-1] == "keep_on"


def test_xset_commands() -> None:
    ran: list[list[str]] = []
    saver = XsetScreenSaver(":9", run=ran.append)
    saver.keep_on()
    assert ran == [["s", "off"], ["s", "noblank"], ["-dpms"]]
    ran.clear()
    saver.allow_blank(300)
    assert ran == [["s", "300", "300"], ["s", "blank"], ["+dpms"], ["dpms", "300", "300", "300"]]
    ran.clear()
    saver.allow_blank(0)
    assert ran == [["s", "off"], ["s", "noblank"], ["-dpms"]]


def test_a_failing_xset_is_logged_once_and_the_rest_still_applied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[list[str]] = []

    def run(args: list[str]) -> None:
        if args == ["-dpms"]:
            raise subprocess.SubprocessError("server does not have extension for -dpms option")
        ran.append(args)

    saver = XsetScreenSaver(":9", run=run)
    saver.keep_on()
    saver.keep_on()
    assert ran == [["s", "off"], ["s", "noblank"]] * 2
    assert [r.getMessage() for r in caplog.records if "xset -dpms" in r.getMessage()] == [
        "cannot set the screen saver (xset -dpms): server does not have extension for -dpms option"
    ]


def test_no_screen_saver_says_why_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    saver = NoScreenSaver("wayland", "cage never blanks the screen")
    saver.keep_on()
    saver.allow_blank(60)
    assert sum("cage never blanks" in r.getMessage() for r in caplog.records) == 1


@pytest.fixture
def xvfb(tmp_path: Path) -> Iterator[str]:
    xvfb_exe, xset = shutil.which("Xvfb"), shutil.which("xset")
    if xvfb_exe is None or xset is None:
        pytest.skip("needs Xvfb and xset (Debian: xvfb, x11-xserver-utils; `make test` installs)")
    read, write = os.pipe()
    # -noreset: with no client left between two xset calls the server would reset its settings.
    server = subprocess.Popen(
        [
            xvfb_exe,
            "-displayfd",
            str(write),
            "-noreset",
            "-nolisten",
            "tcp",
            "-screen",
            "0",
            "640x480x24",
        ],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    try:
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _saver_timeout(display: str) -> int:
    out = subprocess.run(
        ["xset", "q"],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    line = next(line for line in out.splitlines() if "timeout:" in line)
    return int(line.split()[1])


def test_xset_really_switches_the_x_screen_saver(xvfb: str) -> None:
    saver = XsetScreenSaver(xvfb)
    saver.keep_on()
    assert _saver_timeout(xvfb) == 0
    saver.allow_blank(300)
    assert _saver_timeout(xvfb) == 300
    saver.keep_on()
    assert _saver_timeout(xvfb) == 0
