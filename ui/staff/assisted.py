"""Assisted applications on the applicant's screens: the staff bar above them (whose identity
is awaited, manual entry, originals checked at the counter) and the manual identity page."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kiosk.flow import (
    MANUAL_REASONS,
    ApplicantFlow,
    Session,
    Step,
    Who,
    manual_document,
    manual_reason,
)
from kiosk.i18n import Lang
from kiosk.identity import IdNumberError, validate_id_number
from ui.screens.words import ReflowGrid, label, set_text
from ui.staff.common import StaffPage, back_and_ok_row, big_button
from ui.staff.words import s


class AssistBar(QWidget):
    """A strip above the applicant's screens during an assisted application."""

    manual_requested = Signal()
    ended = Signal()

    def __init__(self, flow: ApplicantFlow) -> None:
        super().__init__()
        self.setObjectName("assist_bar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet("#assist_bar { background: #FFF3CD; }")
        self.flow = flow
        row = QHBoxLayout(self)
        row.setContentsMargins(24, 8, 24, 8)
        row.setSpacing(16)
        column = QWidget()
        lines = QVBoxLayout(column)
        lines.setContentsMargins(0, 0, 0, 0)
        self.who = label(name="assist_who")
        self.who.setStyleSheet("color: #5C4400; font-weight: bold;")
        lines.addWidget(self.who)
        self.awaiting = label(name="assist_awaiting")
        self.awaiting.setStyleSheet("color: #5C4400;")
        lines.addWidget(self.awaiting)
        self.originals_title = label(name="originals_title")
        self.originals_title.setStyleSheet("color: #5C4400;")
        lines.addWidget(self.originals_title)
        self.originals = ReflowGrid(min_item_width=240, max_columns=4, spacing=8, fit_widest=True)
        lines.addWidget(self.originals)
        row.addWidget(column, 1)
        self.manual = QPushButton()
        self.manual.setObjectName("manual_entry")
        self.manual.clicked.connect(self.manual_requested.emit)
        row.addWidget(self.manual)
        self.original_buttons: dict[str, QPushButton] = {}
        self.hide()

    def render(self, step: Step, session: Session) -> None:
        assist = session.assist
        if assist is None or step is Step.HOME:
            self.hide()
            return
        lang = session.lang
        key = "assist_bar_agent" if assist.agent else "assist_bar"
        set_text(self.who, s(key, lang, number=assist.staff_number))
        awaiting = self.flow.awaiting
        set_text(self.awaiting, s(f"await_{awaiting}", lang) if awaiting else "")
        self.awaiting.setVisible(awaiting is not None)
        self.manual.setVisible(awaiting is not None)
        self.manual.setText(s("manual_entry", lang))
        showing_materials = step in (Step.MATERIALS, Step.REVIEW)
        self.originals_title.setVisible(showing_materials)
        self.originals.setVisible(showing_materials)
        if showing_materials:
            set_text(self.originals_title, s("originals_title", lang))
            self._show_originals(session, lang)
        self.show()

    def _show_originals(self, session: Session, lang: Lang) -> None:
        assist = session.assist
        assert assist is not None
        needs = self.flow.form.materials(session.answers)
        wanted = [n.id for n in needs]
        for material_id in list(self.original_buttons):
            if material_id not in wanted:
                self.original_buttons.pop(material_id).deleteLater()
        for need in needs:
            button = self.original_buttons.get(need.id)
            if button is None:
                button = QPushButton()
                button.setObjectName(f"original_{need.id}")
                button.setCheckable(True)
                button.toggled.connect(partial(self._on_toggled, need.id))
                self.original_buttons[need.id] = button
            checked = need.id in assist.originals_checked
            button.blockSignals(True)
            button.setChecked(checked)
            button.blockSignals(False)
            name = need.definition.name.get(lang)
            button.setText(
                s("original_checked" if checked else "original_unchecked", lang, name=name)
            )
        self.originals.set_items([self.original_buttons[i] for i in wanted])

    def _on_toggled(self, material_id: str, checked: bool) -> None:
        self.flow.mark_original_checked(material_id, checked)


class ManualIdentityScreen(StaffPage):
    """Type an identity in: the number (GB 11643, check digit included), the name, a reason.

    Emits `entered(document, reason)` once all is well; `back()` to return to the card."""

    entered = Signal(object, str)
    back = Signal()

    def __init__(self) -> None:
        super().__init__("manual_identity")
        self.target: Who = "applicant"
        self.id_label = label(name="manual_id_label")
        self.body.addWidget(self.id_label)
        self.id_number = QLineEdit()
        self.id_number.setObjectName("manual_id")
        self.id_number.setMaxLength(18)
        self.body.addWidget(self.id_number)
        self.name_label = label(name="manual_name_label")
        self.body.addWidget(self.name_label)
        self.name = QLineEdit()
        self.name.setObjectName("manual_name")
        self.name.setMaxLength(40)
        self.body.addWidget(self.name)
        self.reason_label = label(name="manual_reason_label")
        self.body.addWidget(self.reason_label)
        self.reasons: dict[str, QPushButton] = {}
        self.reason_group = QButtonGroup(self)
        grid = ReflowGrid(min_item_width=260, max_columns=4, spacing=12, fit_widest=True)
        for reason in MANUAL_REASONS:
            button = big_button(f"reason_{reason}", 80)
            button.setCheckable(True)
            self.reason_group.addButton(button)
            self.reasons[reason] = button
        grid.set_items(list(self.reasons.values()))
        self.body.addWidget(grid)
        self.other = QLineEdit()
        self.other.setObjectName("manual_other")
        self.other.setMaxLength(100)
        self.body.addWidget(self.other)
        self.hint = label(role="muted", name="manual_hint")
        self.body.addWidget(self.hint)
        self.body.addStretch(1)
        row, self.back_button, self.ok = back_and_ok_row(
            "manual_back", "manual_ok", self._on_back, self._on_ok
        )
        self.outer.addLayout(row)

    def start(self, who: Who) -> None:
        self.target = who
        self.clear()
        self.render()

    def render(self) -> None:
        lang = self.lang
        self.set_title(s(f"manual_title_{self.target}", lang))
        set_text(self.id_label, s("manual_id", lang))
        set_text(self.name_label, s("manual_name", lang))
        set_text(self.reason_label, s("manual_reason", lang))
        for reason, button in self.reasons.items():
            button.setText(s(f"reason_{reason}", lang))
        self.other.setPlaceholderText(s("reason_other_text", lang))
        set_text(self.hint, s("manual_hint", lang))
        self.back_button.setText(s("manual_back", lang))
        self.ok.setText(s("manual_ok", lang))

    def chosen_reason(self) -> str | None:
        for reason, button in self.reasons.items():
            if button.isChecked():
                return reason
        return None

    def _on_ok(self) -> None:
        lang = self.lang
        try:
            validate_id_number(self.id_number.text())
        except IdNumberError as exc:  # the plain-words reason: length, characters, check digit
            self.say(exc.message.render(lang), "error")
            return
        try:
            document = manual_document(self.id_number.text(), self.name.text())
        except ValueError:
            self.say(s("manual_need_name", lang), "error")
            return
        reason = self.chosen_reason()
        if reason is None:
            self.say(s("manual_need_reason", lang), "error")
            return
        try:
            recorded = manual_reason(reason, self.other.text())
        except ValueError:
            self.say(s("manual_need_other", lang), "error")
            return
        self.entered.emit(document, recorded)
        self.clear()

    def _on_back(self) -> None:
        self.clear()
        self.back.emit()

    def clear(self) -> None:
        """Nothing typed may stay in the widgets."""
        self.id_number.clear()
        self.name.clear()
        self.other.clear()
        self.reason_group.setExclusive(False)
        for button in self.reasons.values():
            button.setChecked(False)
        self.reason_group.setExclusive(True)
        self.say("")
