"""Choosing Qt Virtual Keyboard as the input method, without loading Qt Quick.

`ui.keyboard` holds the keyboard panel itself (a QQuickWidget); the kiosk builds it after the
first screen is painted, so start-up does not wait for Qt Quick and the pinyin engine.
"""

from __future__ import annotations

import os

IM_MODULE = "qtvirtualkeyboard"


def enable() -> None:
    """Choose the virtual keyboard input method; call before creating the QApplication."""
    os.environ["QT_IM_MODULE"] = IM_MODULE
    # Our panel is embedded in the window; the desktop pop-up would be a second keyboard.
    os.environ["QT_VIRTUALKEYBOARD_DESKTOP_DISABLE"] = "1"
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen" or not os.environ.get("DISPLAY"):
        # No GPU on headless machines and many kiosk PCs: draw the panel in software.
        os.environ.setdefault("QT_QUICK_BACKEND", "software")


def enabled() -> bool:
    return os.environ.get("QT_IM_MODULE") == IM_MODULE
