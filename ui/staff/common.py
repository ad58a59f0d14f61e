"""What every staff page shares: a title row, a message line, big buttons."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from kiosk.i18n import Lang
from ui.screens.words import label, set_role, set_text, tall

BUTTON_HEIGHT = 90  # well above the 60 px minimum: staff tap these standing, in a hurry


def big_button(name: str, height: int = BUTTON_HEIGHT, *, primary: bool = False) -> QPushButton:
    button = QPushButton()
    button.setObjectName(name)
    tall(button, height)
    button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    if primary:
        button.setProperty("primary", "true")
    return button


def back_and_ok_row(
    back: str, ok: str, on_back: Callable[[], object], on_ok: Callable[[], object]
) -> tuple[QHBoxLayout, QPushButton, QPushButton]:
    """The foot of a form: a plain 'back' button and a primary 'ok' beside it."""
    row = QHBoxLayout()
    back_button = big_button(back)
    back_button.clicked.connect(on_back)
    ok_button = big_button(ok, primary=True)
    ok_button.clicked.connect(on_ok)
    row.addWidget(back_button)
    row.addWidget(ok_button)
    return row, back_button, ok_button


class StaffPage(QWidget):
    """A full-window staff page: a title, the page's own content, a message line at the foot.

    `lang_toggled` when the language button (top right) is tapped."""

    lang_toggled = Signal()

    def __init__(self, name: str) -> None:
        super().__init__()
        self.setObjectName(name)
        self.setProperty("staff", "true")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.lang: Lang = "zh"
        self.outer = QVBoxLayout(self)
        self.outer.setContentsMargins(40, 32, 40, 32)
        self.outer.setSpacing(20)
        top = QHBoxLayout()
        self.title = label(role="title", name="staff_title")
        top.addWidget(self.title, 1)
        self.who = label(role="muted", wrap=False, name="staff_who")
        top.addWidget(self.who)
        self.lang_button = QPushButton()
        self.lang_button.setObjectName("staff_lang")
        self.lang_button.clicked.connect(self.lang_toggled.emit)
        top.addWidget(self.lang_button)
        self.outer.addLayout(top)
        self.body = QVBoxLayout()
        self.body.setSpacing(16)
        self.outer.addLayout(self.body, 1)
        self.message = label(name="staff_message")
        self.outer.addWidget(self.message)

    def say(self, text: str, role: str | None = None) -> None:
        """Show one line of feedback ("error", "ok" or plain)."""
        set_role(self.message, role)
        set_text(self.message, text)

    def set_title(self, text: str) -> None:
        set_text(self.title, text)

    def set_who(self, text: str) -> None:
        set_text(self.who, text)

    def set_lang(self, lang: Lang) -> None:
        self.lang = lang
        self.lang_button.setText("English" if lang == "zh" else "中文")
