"""The one form (一表申请): every question the bundled services ask, each asked once.

Editors are created once per field and kept while the applicant types; `render` only shows or
hides rows, updates words and errors, and copies values the flow holds into editors whose
value differs (never into the one being typed in, whose value is by then the same).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import partial
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kiosk.catalog import FieldDef
from kiosk.flow import Session, Step
from kiosk.form import Answer, FormField
from kiosk.i18n import Lang
from kiosk.identity import mask_address, mask_id_number, mask_name
from ui.context import UiContext
from ui.screens.base import Screen
from ui.screens.words import (
    ReflowGrid,
    discard,
    label,
    page_area,
    scroll_page,
    set_role,
    set_text,
    tall,
    w,
)

Value = Answer | None

_DATE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")
_COMPACT_DATE = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")


def iso_date(text: str) -> str:
    """2024/5/1, 2024.05.01, 2024年5月1日 and 20240501 all mean 2024-05-01; else unchanged."""
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    if not match:
        return text
    try:
        return dt.date(*(int(g) for g in match.groups())).isoformat()
    except ValueError:
        return text  # not a real day: the flow says so in plain words


def blank(value: Any) -> bool:
    """No answer: the flow drops blank text, so blank and missing are the same to the screen."""
    return value is None or (isinstance(value, str) and not value.strip())


# Editors ---------------------------------------------------------------------------------------
# Each exposes value() and set_value(v) (behaves like the applicant's input: emits `changed`),
# show_value(v) (silent: the screen copies the flow's state in) and retranslate(lang).


class TextEditor(QLineEdit):
    """A line of text: names, addresses, phone and ID numbers, numbers (the flow validates)."""

    changed = Signal(object)

    def __init__(self, definition: FieldDef) -> None:
        super().__init__()
        self.definition = definition
        kind = definition.type
        hints = Qt.InputMethodHint.ImhNone
        if kind == "phone":
            hints = Qt.InputMethodHint.ImhDialableCharactersOnly
        elif kind == "number":
            hints = Qt.InputMethodHint.ImhFormattedNumbersOnly
        elif kind == "id_number":
            hints = (
                Qt.InputMethodHint.ImhPreferNumbers
                | Qt.InputMethodHint.ImhPreferUppercase
                | Qt.InputMethodHint.ImhNoPredictiveText
            )
        elif kind == "date":
            hints = Qt.InputMethodHint.ImhPreferNumbers | Qt.InputMethodHint.ImhNoPredictiveText
        self.setInputMethodHints(hints)
        self.textChanged.connect(self._on_text_changed)

    def value(self) -> str:
        return self.text()

    def set_value(self, value: Value) -> None:
        self.setText("" if value is None else str(value))

    def show_value(self, value: Value) -> None:
        self.blockSignals(True)
        self.set_value(value)
        self.blockSignals(False)

    def retranslate(self, lang: Lang) -> None:
        key = {
            "phone": "phone_placeholder",
            "number": "number_placeholder",
            "id_number": "id_placeholder",
            "date": "date_placeholder",
        }.get(self.definition.type)
        self.setPlaceholderText(w(key, lang) if key else "")

    def _on_text_changed(self, _text: str) -> None:
        self.changed.emit(self.value())


class DateEditor(TextEditor):
    """A date typed as 年-月-日; common other spellings are understood and passed on as ISO."""

    def value(self) -> str:
        return iso_date(self.text())

    def focusOutEvent(self, event: QFocusEvent) -> None:
        # Show the applicant the form we understood once they have finished typing.
        understood = self.value()
        if understood != self.text():
            self.show_value(understood)
        super().focusOutEvent(event)


class ChoiceEditor(QWidget):
    """Big buttons, one per choice, of which one can be chosen."""

    changed = Signal(object)

    def __init__(self, definition: FieldDef) -> None:
        super().__init__()
        self.definition = definition
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self._buttons: dict[str, QPushButton] = {}
        self._grid = ReflowGrid(min_item_width=280, max_columns=3, spacing=12, fit_widest=True)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self._grid)
        for choice in definition.choices:
            button = QPushButton()
            button.setObjectName(f"choice_{definition.id}_{choice.value}")
            button.setCheckable(True)
            self._group.addButton(button)
            self._buttons[choice.value] = button
        self._grid.set_items(list(self._buttons.values()))
        self._group.buttonClicked.connect(self._on_button_clicked)

    def value(self) -> str:
        for value, button in self._buttons.items():
            if button.isChecked():
                return value
        return ""

    def set_value(self, value: Value) -> None:
        self.show_value(value)
        self.changed.emit(self.value())

    def show_value(self, value: Value) -> None:
        button = self._buttons.get(str(value)) if value is not None else None
        if button is not None:
            button.setChecked(True)
            return
        # An exclusive group never lets the last button go; switch that off to clear it.
        self._group.setExclusive(False)
        for b in self._buttons.values():
            b.setChecked(False)
        self._group.setExclusive(True)

    def retranslate(self, lang: Lang) -> None:
        for choice in self.definition.choices:
            self._buttons[choice.value].setText(choice.label.get(lang))
        self._grid.set_items(list(self._buttons.values()))  # longer words may need fewer columns

    def _on_button_clicked(self, _button: QPushButton) -> None:
        self.changed.emit(self.value())


class YesNoEditor(QWidget):
    """Two big buttons, 是 and 否."""

    changed = Signal(object)

    def __init__(self, definition: FieldDef) -> None:
        super().__init__()
        self.definition = definition
        self._group = QButtonGroup(self)
        self._yes = QPushButton()
        self._no = QPushButton()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(16)
        for name, button in (("yes", self._yes), ("no", self._no)):
            button.setObjectName(f"{name}_{definition.id}")
            button.setCheckable(True)
            tall(button, 60, 180)
            self._group.addButton(button)
            row.addWidget(button)
        row.addStretch(1)
        self._group.buttonClicked.connect(self._on_button_clicked)

    def value(self) -> bool | None:
        if self._yes.isChecked():
            return True
        if self._no.isChecked():
            return False
        return None

    def set_value(self, value: Value) -> None:
        self.show_value(value)
        self.changed.emit(self.value())

    def show_value(self, value: Value) -> None:
        if value is True or value is False:
            (self._yes if value else self._no).setChecked(True)
            return
        self._group.setExclusive(False)
        self._yes.setChecked(False)
        self._no.setChecked(False)
        self._group.setExclusive(True)

    def retranslate(self, lang: Lang) -> None:
        self._yes.setText(w("yes", lang))
        self._no.setText(w("no", lang))

    def _on_button_clicked(self, _button: QPushButton) -> None:
        self.changed.emit(self.value())


class LockedEditor(QLineEdit):
    """A value read from the ID card: shown (masked where personal), never edited."""

    changed = Signal(object)  # never emitted: kept so every editor looks the same

    def __init__(self, definition: FieldDef) -> None:
        super().__init__()
        self.definition = definition
        self.setReadOnly(True)
        # No focus: an on-screen keyboard must not pop up for a field that cannot change.
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._lang: Lang = "zh"

    def value(self) -> str:
        return self.text()

    def set_value(self, value: Value) -> None:
        self.setText(self.display(value))

    def show_value(self, value: Value) -> None:
        self.set_value(value)

    def display(self, value: Value) -> str:
        """Name, ID number and address are masked: only the review step shows them whole."""
        text = "" if value is None else str(value)
        source = self.definition.prefill
        if source == "id_card.id_number" or self.definition.type == "id_number":
            return mask_id_number(text)
        if source == "id_card.name":
            return mask_name(text)
        if source == "id_card.address":
            return mask_address(text)
        if source == "id_card.sex" and text in ("男", "女"):
            return w(f"sex_{text}", self._lang)
        return text

    def retranslate(self, lang: Lang) -> None:
        self._lang = lang  # the card's words stay as printed, except 男/女


Editor = TextEditor | ChoiceEditor | YesNoEditor | LockedEditor


def make_editor(definition: FieldDef, locked: bool) -> Editor:
    """The editor for a field's type (a read-only one for card values)."""
    if locked:
        return LockedEditor(definition)
    if definition.type == "choice":
        return ChoiceEditor(definition)
    if definition.type == "yes_no":
        return YesNoEditor(definition)
    if definition.type == "date":
        return DateEditor(definition)
    return TextEditor(definition)


class FieldRow(QFrame):
    """One question: its label and whether it is required, a hint, the editor, the error."""

    def __init__(self, field: FormField) -> None:
        super().__init__()
        self.definition = field.definition
        self.locked = field.locked
        self.setObjectName(f"row_{field.id}")
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 8, 0, 8)
        box.setSpacing(8)
        self.title = label(role="subtitle")
        self.hint = label(role="muted")
        self.editor = make_editor(field.definition, field.locked)
        self.editor.setObjectName(f"field_{field.id}")
        self.lock_note = label(role="muted")
        self.error = label(role="error", name=f"error_{field.id}")
        if field.locked:
            # Card values need no input: one compact line each, so the questions come sooner.
            line = QHBoxLayout()
            line.setSpacing(20)
            words = QVBoxLayout()
            words.setSpacing(0)
            words.addWidget(self.title)
            words.addWidget(self.lock_note)
            line.addLayout(words, 2)
            line.addWidget(self.editor, 3)
            box.addLayout(line)
            box.addWidget(self.error)
            self.hint.hide()
        else:
            for part in (self.title, self.hint, self.editor, self.error):
                box.addWidget(part)
            self.lock_note.hide()
        self.error.hide()
        self._lang: Lang | None = None

    def retranslate(self, lang: Lang) -> None:
        if lang == self._lang:
            return
        self._lang = lang
        d = self.definition
        mark = w("required_mark" if d.required else "optional_mark", lang)
        if self.locked:
            self.title.setText(d.label.get(lang))  # nothing to fill in: "required" would puzzle
        else:
            self.title.setText(
                f"{d.label.get(lang)}（{mark}）"
                if lang == "zh"
                else f"{d.label.get(lang)} ({mark})"
            )
        self.hint.setText(d.hint.get(lang) if d.hint else "")
        self.hint.setVisible(d.hint is not None and not self.locked)
        self.lock_note.setText(w("locked_note", lang))
        self.editor.retranslate(lang)

    def show_answer(self, value: Value) -> None:
        editor = self.editor
        if isinstance(editor, LockedEditor):
            if editor.text() != editor.display(value):
                editor.show_value(value)
            return
        current = editor.value()
        same = current == value or (blank(current) and blank(value))
        if not same:
            editor.show_value(value)

    def show_error(self, message: str) -> None:
        set_text(self.error, message)
        self.error.setVisible(bool(message))

    def wipe(self) -> None:
        """Blank the editor without telling the flow (the session is being wiped)."""
        self.editor.show_value(None)
        self.show_error("")


class FormScreen(Screen):
    """Every visible question of the unified form, in order, with live errors."""

    step = Step.FORM

    def __init__(self, ctx: UiContext) -> None:
        super().__init__(ctx)
        body = scroll_page(self)
        self._title = label(role="title")
        self._hint = label(role="muted")
        self._summary = label(role="subtitle", name="summary")
        for part in (self._title, self._hint, self._summary):
            body.addWidget(part)
        # What the card told us sits together at the top, two across when there is room.
        self._card_values = ReflowGrid(min_item_width=560, max_columns=2, spacing=16)
        self._card_values.hide()
        body.addWidget(self._card_values)
        self._rows_box = QVBoxLayout()
        self._rows_box.setSpacing(12)
        body.addLayout(self._rows_box)
        body.addStretch(1)
        self._rows: dict[str, FieldRow] = {}
        self._order: list[str] = []
        self._built_for: tuple[int, str, int] | None = None
        self._had_errors = False

    # Rendering ------------------------------------------------------------------------------

    def render(self, session: Session) -> None:
        thing = session.thing
        if thing is None:
            self.clear()
            return
        lang = session.lang
        catalog = self.ctx.flow.backend.catalog
        # Locking depends on whether a card was read: a new card means new rows.
        key = (id(catalog), thing.id, id(session.identity))
        if key != self._built_for:
            self._drop_rows()
            self._built_for = key
        fields = self.ctx.flow.form.fields(session.answers)
        for field in fields:
            row = self._rows.get(field.id)
            if row is None:
                row = self._rows[field.id] = FieldRow(field)
                row.editor.changed.connect(partial(self._on_answer_changed, field.id))
            row.retranslate(lang)
            row.show_answer(session.answers.get(field.id))
            error = session.errors.get(field.id)
            row.show_error(error.render(lang) if error else "")
        self._arrange([f.id for f in fields])

        set_text(self._title, w("form_title", lang))
        set_text(self._hint, w("form_hint", lang))
        if session.errors:
            set_text(self._summary, w("errors_summary", lang, n=len(session.errors)))
            set_role(self._summary, "error")
        else:
            empty = sum(
                1
                for f in fields
                if f.definition.required and not f.locked and blank(session.answers.get(f.id))
            )
            set_text(
                self._summary, w("remaining", lang, n=empty) if empty else w("remaining_none", lang)
            )
            set_role(self._summary, "subtitle" if empty else "ok")
        if session.errors and not self._had_errors:
            # Next was refused: bring the first problem into view.
            first = next((f.id for f in fields if f.id in session.errors), None)
            if first is not None:
                QTimer.singleShot(0, partial(self._scroll_to_row, first))
        self._had_errors = bool(session.errors)

    def _arrange(self, visible: list[str]) -> None:
        """Put the visible rows in the layout in order; hide the others (keeping their input)."""
        if visible == self._order:
            return
        locked = [self._rows[i] for i in visible if self._rows[i].locked]
        asked = [i for i in visible if not self._rows[i].locked]
        self._card_values.set_items(locked)
        self._card_values.setVisible(bool(locked))
        for field_id in self._order:
            if not self._rows[field_id].locked:
                self._rows_box.removeWidget(self._rows[field_id])
        for field_id, row in self._rows.items():
            if field_id not in visible:
                row.hide()
        for field_id in asked:
            self._rows_box.addWidget(self._rows[field_id])
            self._rows[field_id].show()
        self._order = list(visible)

    def _scroll_to_row(self, field_id: str) -> None:
        row = self._rows.get(field_id)
        if row is not None and row.isVisible():
            page_area(self).ensureWidgetVisible(row, 0, 80)

    def _drop_rows(self) -> None:
        self._card_values.set_items([])
        self._card_values.hide()
        for row in self._rows.values():
            row.wipe()
            discard(row)
        self._rows = {}
        self._order = []

    # Events ---------------------------------------------------------------------------------

    def _on_answer_changed(self, field_id: str, value: Value) -> None:
        if value is None:
            return  # a yes/no cleared by the screen itself, never by the applicant
        self.ctx.flow.set_answer(field_id, value)

    def clear(self) -> None:
        self._drop_rows()
        self._built_for = None
        self._had_errors = False
        self._summary.clear()
