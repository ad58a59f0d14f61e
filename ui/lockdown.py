"""Screen lock-down for `kiosk run` in a hall: nobody leaves the kiosk, the screen stays on.

What the application itself can do, and what only the session around it can (docs/deploy.md):
- Key combinations reach the kiosk only if no window manager or compositor took them first.
  The deployment runs no window manager (a bare X session) or cage, which has no shortcuts of
  its own, so the filter below is what stands between a curious visitor and Alt+F4 or Alt+Tab.
  Ctrl+Alt+Backspace and Ctrl+Alt+F1..F12 are the X server's own: deploy/xorg.conf.d turns
  them off (DontZap, DontVTSwitch); under cage, VT switching is the seat's (logind), also off.
- A close request from anywhere (a window manager, Alt+F4 that got through) is refused unless
  the kiosk is being stopped: `quit()` is the only way out, used for SIGTERM (systemctl stop).
- The screen never blanks during opening hours: under X11, through the X screen saver and
  DPMS settings (`xset`), re-applied every minute. Under cage nothing blanks the screen at all
  (cage has no idle timer), so there is nothing to inhibit; blanking after hours is not
  available there. Offscreen (tests) has no screen.
- The cursor is hidden with an override cursor, which works on every platform plugin.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QCursor, QInputDevice, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QWidget

from kiosk.config import WEEKDAYS, CalendarConfig, KioskModeConfig

log = logging.getLogger(__name__)

_K = Qt.Key
_M = Qt.KeyboardModifier
_CTRL_ALT = _M.ControlModifier | _M.AltModifier

# (key, modifiers that must all be held). Keys that leave, close or switch an application on
# common desktops; the kiosk itself uses none of them.
BLOCKED_SHORTCUTS: tuple[tuple[Qt.Key, Qt.KeyboardModifier], ...] = (
    (_K.Key_F4, _M.AltModifier),  # close window
    (_K.Key_Tab, _M.AltModifier),  # switch window
    (_K.Key_Backtab, _M.AltModifier),  # Alt+Shift+Tab
    (_K.Key_Escape, _M.AltModifier),
    (_K.Key_Escape, _M.ControlModifier),  # start menu
    (_K.Key_Backspace, _CTRL_ALT),  # kill the X server (also off in xorg.conf: DontZap)
    (_K.Key_Delete, _CTRL_ALT),
    (_K.Key_W, _M.ControlModifier),
    (_K.Key_Q, _M.ControlModifier),
    (_K.Key_F11, _M.NoModifier),  # full screen toggle
    *((getattr(_K, f"Key_F{n}"), _CTRL_ALT) for n in range(1, 13)),  # switch VT
)
# Pressed alone or with anything: the desktop's menu and launcher keys.
BLOCKED_KEYS = frozenset({_K.Key_Meta, _K.Key_Super_L, _K.Key_Super_R, _K.Key_Menu})
_MODIFIERS = _M.ShiftModifier | _M.ControlModifier | _M.AltModifier | _M.MetaModifier


def is_blocked(key: int, modifiers: Qt.KeyboardModifier) -> bool:
    """Whether this key press must never reach the kiosk (or the desktop behind it)."""
    if key in BLOCKED_KEYS:
        return True
    held = modifiers & _MODIFIERS
    for blocked_key, needed in BLOCKED_SHORTCUTS:
        if key != blocked_key:
            continue
        if needed == _M.NoModifier or (held & needed) == needed:
            return True
    return False


def is_open(mode: KioskModeConfig, calendar: CalendarConfig, when: dt.datetime) -> bool:
    """Whether the hall is open at `when` (local time): a working day and within the hours."""
    day = when.date()
    if day in calendar.holiday_dates():
        return False
    if day not in calendar.workday_dates() and WEEKDAYS[day.weekday()] not in mode.opening_days:
        return False
    start, end = mode.hours()
    now = when.time()
    return now >= start and (end is None or now < end)


class ScreenSaver(Protocol):
    """What blanks the screen: kept off during opening hours, allowed after them."""

    name: str

    def keep_on(self) -> None: ...

    def allow_blank(self, after_s: int) -> None: ...


class XsetScreenSaver:
    """The X server's screen saver and DPMS timers, set with `xset` (x11-xserver-utils)."""

    name = "xset"

    def __init__(self, display: str, run: Callable[[list[str]], None] | None = None) -> None:
        self.display = display
        self._run = run or self._xset
        self._failed: set[str] = set()

    def keep_on(self) -> None:
        self._apply(["s", "off"], ["s", "noblank"], ["-dpms"])

    def allow_blank(self, after_s: int) -> None:
        if after_s <= 0:
            self.keep_on()
            return
        t = str(after_s)
        self._apply(["s", t, t], ["s", "blank"], ["+dpms"], ["dpms", t, t, t])

    def _apply(self, *commands: list[str]) -> None:
        # Each on its own: a server without DPMS (Xvfb, some VMs) still gets the screen saver.
        for args in commands:
            line = " ".join(args)
            try:
                self._run(args)
            except (OSError, subprocess.SubprocessError) as exc:
                if line not in self._failed:  # once: the minute timer would repeat it all day
                    log.error("cannot set the screen saver (xset %s): %s", line, exc)
                    self._failed.add(line)

    def _xset(self, args: list[str]) -> None:
        exe = shutil.which("xset")
        if exe is None:
            raise FileNotFoundError("xset not found: install x11-xserver-utils")
        env = {**os.environ, "DISPLAY": self.display}
        done = subprocess.run(
            [exe, *args], env=env, capture_output=True, text=True, timeout=5, check=False
        )
        if done.returncode != 0:
            raise subprocess.SubprocessError(done.stderr.strip() or f"exit {done.returncode}")


class NoScreenSaver:
    """A platform where the kiosk has nothing to switch: cage never blanks, offscreen has no
    screen. Said once in the log, so a technician knows what to expect."""

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self._why = why
        self._said = False

    def keep_on(self) -> None:
        self._say()

    def allow_blank(self, after_s: int) -> None:
        self._say()

    def _say(self) -> None:
        if not self._said:
            log.info("screen blanking: %s", self._why)
            self._said = True


def screen_saver_for(platform_name: str) -> ScreenSaver:
    """The screen-saver control for the running Qt platform plugin."""
    if platform_name == "xcb" and os.environ.get("DISPLAY"):
        return XsetScreenSaver(os.environ["DISPLAY"])
    if platform_name.startswith("wayland"):
        return NoScreenSaver(
            "wayland",
            "the compositor decides; cage never blanks the screen, so it stays on at all hours",
        )
    return NoScreenSaver(platform_name, f"the {platform_name} platform has no screen to blank")


def has_touch_screen() -> bool:
    return any(d.type() == QInputDevice.DeviceType.TouchScreen for d in QInputDevice.devices())


class Lockdown(QObject):
    """Keeps the kiosk window full screen and in front, and the screen on in opening hours."""

    CHECK_MS = 60_000

    def __init__(
        self,
        app: QApplication,
        window: QWidget,
        mode: KioskModeConfig,
        calendar: CalendarConfig,
        *,
        saver: ScreenSaver | None = None,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        super().__init__(window)
        self.app = app
        self.window = window
        self.mode = mode
        self.calendar = calendar
        self.saver = saver or screen_saver_for(app.platformName())
        self._clock = clock
        self.exit_requested = False
        self.cursor_hidden = False
        self.open: bool | None = None
        self.blocked = 0  # key presses swallowed, for the log and tests
        self._timer = QTimer(self)
        self._timer.setInterval(self.CHECK_MS)
        self._timer.timeout.connect(self.check_hours)

    def install(self) -> None:
        """Start: filter keys and close requests, hide the cursor, keep the screen on."""
        if self.mode.block_shortcuts:
            self.app.installEventFilter(self)
        self.window.installEventFilter(self)
        hide = self.mode.hide_cursor == "always" or (
            self.mode.hide_cursor == "auto" and has_touch_screen()
        )
        if hide:
            self.app.setOverrideCursor(QCursor(Qt.CursorShape.BlankCursor))
            self.cursor_hidden = True
        self.check_hours()
        self._timer.start()
        log.info(
            "lock-down on: shortcuts %s, cursor %s, screen saver via %s",
            "blocked" if self.mode.block_shortcuts else "allowed",
            "hidden" if hide else "shown",
            self.saver.name,
        )

    def remove(self) -> None:
        """Undo install() (tests, and a kiosk stopping)."""
        self._timer.stop()
        self.app.removeEventFilter(self)
        self.window.removeEventFilter(self)
        if self.cursor_hidden:
            self.app.restoreOverrideCursor()
            self.cursor_hidden = False

    def quit(self) -> None:
        """The one way out: the window may close now, and the application quits."""
        self.exit_requested = True
        self.app.quit()

    def check_hours(self) -> None:
        """Keep the screen on while the hall is open; let it blank after hours."""
        now_open = is_open(self.mode, self.calendar, self._clock())
        if now_open:
            self.saver.keep_on()  # every minute: nothing else may have turned it back on
        elif self.open is not False:
            self.saver.allow_blank(self.mode.blank_after_s)
        if now_open != self.open:
            log.info(
                "hall %s: screen %s",
                "open" if now_open else "closed",
                "kept on"
                if now_open or not self.mode.blank_after_s
                else f"blanks after {self.mode.blank_after_s} s",
            )
        self.open = now_open

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride, QEvent.Type.KeyRelease):
            assert isinstance(event, QKeyEvent)
            if self.mode.block_shortcuts and is_blocked(event.key(), event.modifiers()):
                if kind is QEvent.Type.KeyPress:
                    self.blocked += 1
                    combination = QKeySequence(event.keyCombination()).toString()
                    log.info("blocked a key combination (%s)", combination)
                event.accept()
                return True
            return False
        if watched is self.window:
            if kind is QEvent.Type.Close and not self.exit_requested:
                log.warning("a request to close the kiosk window was refused")
                event.ignore()
                return True
            if (
                kind is QEvent.Type.WindowStateChange
                and not self.exit_requested
                and not self.window.isFullScreen()
            ):
                QTimer.singleShot(0, self.window.showFullScreen)
        return False
