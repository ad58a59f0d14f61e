"""The PIN pad: a staff number (after the hidden long-press) or a badge, then a 6-digit PIN.

Big digit keys, 删除 and 取消; the PIN is never shown, only as dots. Cancel goes back to the
applicant's screen: nothing here leads out of the kiosk."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLineEdit, QPushButton

from kiosk.staff import PIN_LENGTH
from ui.screens.words import label, set_text
from ui.staff.common import StaffPage, big_button
from ui.staff.words import s

KEY_SIZE = 120


class PinPadScreen(StaffPage):
    """Emits `submitted(staff_number or "", pin)` and `cancelled()`; shows what it is told."""

    submitted = Signal(str, str)
    cancelled = Signal()

    def __init__(self) -> None:
        super().__init__("pin_pad")
        self.badge_hint: str | None = None  # set: a badge was read, only the PIN is asked
        self._pin = ""
        self._phase = "number"
        self.prompt = label(role="subtitle", name="pin_prompt")
        self.body.addWidget(self.prompt)
        self.number = QLineEdit()
        self.number.setObjectName("staff_number")
        self.number.setMaxLength(20)
        self.body.addWidget(self.number)
        self.dots = label(role="title", name="pin_dots")
        self.dots.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.body.addWidget(self.dots)
        grid = QGridLayout()
        grid.setSpacing(16)
        self.keys: dict[str, QPushButton] = {}
        layout = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "delete", "0", "ok"]
        for i, key in enumerate(layout):
            button = QPushButton(key if key.isdigit() else "")
            button.setObjectName(f"pin_{key}")
            # Bigger digits than the theme's buttons: a PIN is typed standing, quickly.
            button.setStyleSheet(
                f"QPushButton {{ min-height: {KEY_SIZE}px; min-width: {KEY_SIZE}px;"
                " font-size: 30pt; }"
            )
            if key.isdigit():
                button.clicked.connect(partial(self._on_digit, key))
            elif key == "delete":
                button.clicked.connect(self._on_delete)
            else:
                button.setProperty("primary", "true")
                button.clicked.connect(self._on_ok)
            self.keys[key] = button
            grid.addWidget(button, i // 3, i % 3)
        self.body.addLayout(grid)
        self.body.addStretch(1)
        self.cancel = big_button("pin_cancel")
        self.cancel.setProperty("danger", "true")
        self.cancel.clicked.connect(self._on_cancel)
        self.outer.addWidget(self.cancel)
        self.busy = False

    # State ------------------------------------------------------------------------------------

    def start(self, badge_hint: str | None) -> None:
        """Begin again: for a badge (its hint shown) only the PIN, else the number first."""
        self.badge_hint = badge_hint
        self.number.clear()
        self._pin = ""
        self._phase = "pin" if badge_hint is not None else "number"
        self.busy = False
        self.say("")
        self.render()

    @property
    def phase(self) -> str:
        return self._phase

    def render(self) -> None:
        lang = self.lang
        self.set_title(s("pin_title", lang))
        if self.badge_hint is not None:
            set_text(self.prompt, s("pin_badge", lang, hint=self.badge_hint))
        else:
            set_text(self.prompt, s("pin_number", lang))
        self.number.setPlaceholderText(s("pin_number_label", lang))
        self.number.setVisible(self.badge_hint is None)
        self.number.setReadOnly(self._phase != "number")
        shown = "●" * len(self._pin) + "○" * (PIN_LENGTH - len(self._pin))
        set_text(self.dots, f"{s('pin_label', lang)}  {shown}" if self._phase == "pin" else "")
        self.keys["delete"].setText(s("pin_delete", lang))
        self.keys["ok"].setText(s("pin_ok" if self._phase == "pin" else "pin_next", lang))
        self.cancel.setText(s("pin_cancel", lang))
        for button in self.keys.values():
            button.setEnabled(not self.busy)

    def refused(self, text: str) -> None:
        """The login failed: say why and take a new PIN."""
        self.busy = False
        self._pin = ""
        self.say(text, "error")
        self.render()

    def checking(self) -> None:
        self.busy = True
        self.say(s("pin_checking", self.lang))
        self.render()

    def clear(self) -> None:
        """Forget what was typed (on leaving)."""
        self._pin = ""
        self.number.clear()
        self.say("")

    # Keys -------------------------------------------------------------------------------------

    def _on_digit(self, digit: str) -> None:
        if self.busy:
            return
        if self._phase == "number":
            self.number.setText(self.number.text() + digit)
        elif len(self._pin) < PIN_LENGTH:
            self._pin += digit
        self.render()

    def _on_delete(self) -> None:
        if self._phase == "number":
            self.number.setText(self.number.text()[:-1])
        else:
            self._pin = self._pin[:-1]
        self.render()

    def _on_ok(self) -> None:
        if self.busy:
            return
        if self._phase == "number":
            if self.number.text().strip():
                self._phase = "pin"
                self.say("")
            self.render()
            return
        if len(self._pin) == PIN_LENGTH:
            pin, self._pin = self._pin, ""
            self.submitted.emit(
                "" if self.badge_hint is not None else self.number.text().strip(), pin
            )

    def _on_cancel(self) -> None:
        self.clear()
        self.cancelled.emit()
