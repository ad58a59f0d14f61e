"""The on-screen keyboard: Qt Virtual Keyboard with pinyin, docked at the window's bottom.

A hall kiosk has no physical keyboard, so without this nobody could type a name or a phone
number. The keyboard's QML panel lives inside the window (a QQuickWidget) rather than in the
desktop pop-up window Qt uses by default, which kiosk compositors do not place reliably. It
needs QT_IM_MODULE=qtvirtualkeyboard set before the QApplication exists (see enable()).
"""

from __future__ import annotations

import logging
from importlib import resources

from PySide6.QtCore import SLOT, Qt, QUrl, Slot
from PySide6.QtQml import QQmlProperty
from PySide6.QtQuickWidgets import QQuickWidget
from PySide6.QtWidgets import QWidget

from ui.input_method import IM_MODULE as IM_MODULE
from ui.input_method import enable as enable
from ui.input_method import enabled as enabled

log = logging.getLogger(__name__)


class OnScreenKeyboard(QQuickWidget):
    """Shown while a text field is being edited; follows the session's language."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("keyboard")
        # A key press must leave focus in the text field being typed into.
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_AcceptTouchEvents, True)
        self.setResizeMode(QQuickWidget.ResizeMode.SizeRootObjectToView)
        qml = resources.files("ui").joinpath("keyboard.qml")
        self.setSource(QUrl.fromLocalFile(str(qml)))
        self.ok = not self.errors() and self.rootObject() is not None
        if not self.ok:
            # The kiosk keeps working (a USB keyboard still types); the technician is told.
            log.error(
                "on-screen keyboard unavailable: %s",
                "; ".join(e.toString() for e in self.errors()) or "no root object",
            )
            self.hide()
            return
        self._active = QQmlProperty(self.rootObject(), "active")
        self._active.connectNotifySignal(self, SLOT("_on_active_changed()"))
        self._height = 300
        # Collapsed rather than hidden: a hidden QQuickWidget never lets the panel turn active
        # on X11.
        self.setFixedHeight(0)

    @property
    def showing(self) -> bool:
        return self.ok and self.height() > 0

    def fit_width(self, width: int) -> None:
        """Size the keys for a window `width` wide (the layout is about 0.36 as tall as wide)."""
        self._height = max(300, int(width * 0.36))
        if self.showing:
            self.setFixedHeight(self._height)

    def set_language(self, lang: str) -> None:
        if self.ok:
            self.rootObject().setProperty("locale", "en_US" if lang == "en" else "zh_CN")

    @Slot()
    def _on_active_changed(self) -> None:
        self.setFixedHeight(self._height if self._active.read() else 0)
