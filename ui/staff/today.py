"""今日办件: this kiosk's applications of the day, filters, a summary and the actions on each."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kiosk.application import Status
from kiosk.catalog import Catalog
from kiosk.i18n import Lang
from ui.screens.words import ReflowGrid, card, empty_layout, label, scroll_page, set_text
from ui.staff.common import StaffPage, back_and_ok_row, big_button
from ui.staff.desk import (
    REQUEUE_REASONS,
    SET_ASIDE_REASONS,
    SYNC_STATES,
    VOID_REASONS,
    Summary,
    WorkFilter,
    WorkItem,
    channel_of,
    reason_text,
)
from ui.staff.words import s

ACTION_REASONS = {"void": VOID_REASONS, "requeue": REQUEUE_REASONS, "set_aside": SET_ASIDE_REASONS}
STATUS_FILTERS = (Status.QUEUED, Status.QUARANTINED, Status.ACCEPTED, Status.VOIDED)


def status_words(status: Status, lang: Lang) -> str:
    """A status in the counter's short words (the applicant's are longer and plainer)."""
    return s(f"st_{status.value}", lang)


class ReasonPanel(QWidget):
    """Pick a reason (and words for "other"), then confirm: `confirmed(action, id, reason)`."""

    confirmed = Signal(str, str, str)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("reason_panel")
        box = QVBoxLayout(self)
        self.title = label(role="subtitle", name="reason_title")
        box.addWidget(self.title)
        self.grid = ReflowGrid(min_item_width=260, max_columns=4, spacing=12, fit_widest=True)
        box.addWidget(self.grid)
        self.other = QLineEdit()
        self.other.setObjectName("reason_other")
        box.addWidget(self.other)
        self.error = label(role="error", name="reason_error")
        box.addWidget(self.error)
        row, self.cancel, self.ok = back_and_ok_row(
            "reason_cancel", "reason_confirm", self.close_panel, self._on_ok
        )
        box.addLayout(row)
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QPushButton] = {}
        self.action = ""
        self.application_id = ""
        self.lang: Lang = "zh"
        self.hide()

    def open_for(self, action: str, item: WorkItem, lang: Lang) -> None:
        self.action, self.application_id, self.lang = action, item.id, lang
        for button in self.buttons.values():
            self.group.removeButton(button)
            button.deleteLater()
        self.buttons = {}
        for reason in ACTION_REASONS[action]:
            button = big_button(f"why_{reason}", 80)
            button.setCheckable(True)
            button.setText(s(f"reason_{reason}", lang))
            self.group.addButton(button)
            self.buttons[reason] = button
        self.grid.set_items(list(self.buttons.values()))
        set_text(self.title, s(f"reason_title_{action}", lang, receipt=item.receipt_number))
        self.other.clear()
        self.other.setPlaceholderText(s("reason_other_text", lang))
        set_text(self.error, "")
        self.cancel.setText(s("reason_cancel", lang))
        self.ok.setText(s("reason_confirm", lang))
        self.show()

    def close_panel(self) -> None:
        self.other.clear()
        self.hide()

    def _on_ok(self) -> None:
        chosen = next((r for r, b in self.buttons.items() if b.isChecked()), None)
        if chosen is None:
            set_text(self.error, s("manual_need_reason", self.lang))
            return
        try:
            reason = reason_text(chosen, self.other.text())
        except ValueError:
            set_text(self.error, s("manual_need_other", self.lang))
            return
        self.close_panel()
        self.confirmed.emit(self.action, self.application_id, reason)


class WorkRow(QWidget):
    """One application: numbers, masked applicant, thing, status, delivery state, actions."""

    def __init__(self, item: WorkItem, thing: str, lang: Lang, parent_screen: TodayScreen) -> None:
        super().__init__()
        self.setObjectName(f"work_{item.id}")
        frame, box = card()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(frame)
        platform = item.platform_number or s("item_no_platform", lang)
        box.addWidget(
            label(
                s("item_numbers", lang, receipt=item.receipt_number, platform=platform),
                role="subtitle",
            )
        )
        box.addWidget(
            label(s("item_who", lang, name=item.masked_name, id=item.masked_id_number, thing=thing))
        )
        channel = s(f"channel_{channel_of(item.channel)}", lang)
        if channel_of(item.channel) == "assisted":
            channel += " " + item.channel.removeprefix("assisted:")
        box.addWidget(
            label(
                s("item_channel", lang, time=f"{item.created_at:%H:%M}", channel=channel)
                + " · "
                + s("item_printed", lang, n=item.times_printed),
                role="muted",
            )
        )
        status = status_words(item.status, lang)
        sync = s(f"sync_{item.sync}", lang)
        # "Set aside · Set aside" says nothing twice: one word when both say the same.
        words = status if status == sync else s("item_state", lang, status=status, sync=sync)
        state = label(words, name="work_state")
        role = {"set_aside": "error", "delivered": "ok", "voided": "muted"}.get(item.sync)
        if role:
            state.setProperty("role", role)
        box.addWidget(state)
        if item.reason:
            box.addWidget(label(s("item_reason", lang, reason=item.reason), role="muted"))
        actions = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        offered = ["reprint"]
        if item.sync == "set_aside":
            offered.append("requeue")
        if item.status is Status.QUEUED:
            offered.append("set_aside")
        if item.voidable:
            offered.append("void")
        for action in offered:
            button = big_button(f"{action}_{item.id}", 70)
            button.setText(s(action, lang))
            if action == "void":
                button.setProperty("danger", "true")
            button.clicked.connect(partial(parent_screen.action_requested, action, item))
            self.buttons[action] = button
            actions.addWidget(button)
        box.addLayout(actions)


class TodayScreen(StaffPage):
    """Emits `reprint(id)` and `act(action, id, reason)`; `back()` to the menu."""

    reprint = Signal(str)
    act = Signal(str, str, str)
    back = Signal()

    def __init__(self) -> None:
        super().__init__("today")
        self.summary = label(role="subtitle", name="today_summary")
        self.body.addWidget(self.summary)
        self.by_thing = label(role="muted", name="today_by_thing")
        self.body.addWidget(self.by_thing)
        self.filter_buttons: dict[str, QPushButton] = {}
        self._groups: list[QButtonGroup] = []
        self.filter = WorkFilter()
        for kind, values in (
            ("status", [None, *(st.value for st in STATUS_FILTERS)]),
            ("sync", [None, *SYNC_STATES]),
            ("channel", [None, "self", "assisted"]),
        ):
            row = QHBoxLayout()
            row.addWidget(label(name=f"filter_{kind}_label", wrap=False))
            group = QButtonGroup(self)
            self._groups.append(group)
            for value in values:
                key = f"filter_{kind}_{value or 'all'}"
                button = QPushButton()
                button.setObjectName(key)
                button.setCheckable(True)
                button.setChecked(value is None)
                button.clicked.connect(partial(self._on_filter, kind, value))
                group.addButton(button)
                self.filter_buttons[key] = button
                row.addWidget(button)
            row.addStretch(1)
            self.body.addLayout(row)
        self.reasons = ReasonPanel()
        self.reasons.confirmed.connect(self.act.emit)
        self.body.addWidget(self.reasons)
        holder = QWidget()
        self.list = scroll_page(holder, max_width=None, margins=(0, 0, 0, 0))
        self.body.addWidget(holder, 1)
        self.back_button = big_button("today_back")
        self.back_button.clicked.connect(self._on_back)
        self.outer.addWidget(self.back_button)
        self.items: list[WorkItem] = []
        self.rows: dict[str, WorkRow] = {}
        self._catalog: Catalog | None = None

    def show_items(self, items: list[WorkItem], summary: Summary, catalog: Catalog) -> None:
        self.items, self._catalog = items, catalog
        lang = self.lang
        self.set_title(s("today_title", lang))
        set_text(
            self.summary,
            s(
                "today_summary",
                lang,
                total=summary.total,
                assisted=summary.assisted,
                **summary.by_sync,
            )
            if summary.total
            else s("today_none", lang),
        )
        things = ("、" if lang == "zh" else ", ").join(
            f"{self._thing_name(t)} {n}" for t, n in sorted(summary.by_thing.items())
        )
        set_text(self.by_thing, s("today_by_thing", lang, things=things) if things else "")
        for key, button in self.filter_buttons.items():
            value = key.split("_", 2)[2]
            if value == "all":
                button.setText(s("filter_all", lang))
            elif key.startswith("filter_status"):
                button.setText(status_words(Status(value), lang))
            elif key.startswith("filter_sync"):
                button.setText(s(f"sync_{value}", lang))
            else:
                button.setText(s(f"channel_{value}", lang))
        for kind in ("status", "sync", "channel"):
            widget = self.findChild(QWidget, f"filter_{kind}_label")
            if widget is not None:
                set_text(widget, s(f"filter_{kind}", lang))  # type: ignore[arg-type]
        self.back_button.setText(s("back_menu", lang))
        self._show_rows()

    def _thing_name(self, thing_id: str) -> str:
        catalog = self._catalog
        if catalog is not None:
            for thing in catalog.things:
                if thing.id == thing_id:
                    return thing.name.get(self.lang)
        return thing_id

    def _show_rows(self) -> None:
        empty_layout(self.list)
        self.rows = {}
        shown = [item for item in self.items if self.filter.matches(item)]
        for item in shown:
            row = WorkRow(item, self._thing_name(item.thing_id), self.lang, self)
            self.rows[item.id] = row
            self.list.addWidget(row)
        if not shown:
            self.list.addWidget(
                label(
                    s("today_none_match" if self.items else "today_none", self.lang),
                    role="subtitle",
                )
            )
        self.list.addStretch(1)

    def _on_filter(self, kind: str, value: str | None) -> None:
        if kind == "status":
            self.filter = WorkFilter(
                Status(value) if value else None, self.filter.sync, self.filter.channel
            )
        elif kind == "sync":
            self.filter = WorkFilter(self.filter.status, value, self.filter.channel)  # type: ignore[arg-type]
        else:
            self.filter = WorkFilter(self.filter.status, self.filter.sync, value)  # type: ignore[arg-type]
        self._show_rows()

    def action_requested(self, action: str, item: WorkItem) -> None:
        if action == "reprint":
            self.say(s("reprinting", self.lang))
            self.reprint.emit(item.id)
            return
        self.reasons.open_for(action, item, self.lang)

    def _on_back(self) -> None:
        self.reasons.close_panel()
        self.back.emit()

    def reset_filters(self) -> None:
        self.filter = WorkFilter()
        for key, button in self.filter_buttons.items():
            button.setChecked(key.endswith("_all"))

    def clear(self) -> None:
        """Nothing of today's list stays in the widgets after logout."""
        self.items = []
        self.reasons.close_panel()
        empty_layout(self.list)
        self.rows = {}
        set_text(self.summary, "")
        set_text(self.by_thing, "")
        self.say("")
