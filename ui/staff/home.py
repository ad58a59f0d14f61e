"""Staff home (after login) and the thing picker of an assisted application."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from kiosk.catalog import Catalog
from kiosk.staff import StaffSession
from ui.screens.words import ReflowGrid, label, scroll_page, set_text
from ui.staff.common import StaffPage, big_button
from ui.staff.words import s

# (button, the permission it needs, its hint)
MENU: tuple[tuple[str, str, str | None], ...] = (
    ("assisted", "assisted_application", "assisted_hint"),
    ("agent", "agent_application", "agent_hint"),
    ("today", "todays_work", "today_hint"),
    ("technician", "diagnostics", "technician_hint"),
    ("restart", "restart", None),
    ("exit", "exit", None),
)


class StaffHomeScreen(StaffPage):
    """What the logged-in role may do, one big button each; `chosen(action)` on a tap."""

    chosen = Signal(str)

    def __init__(self) -> None:
        super().__init__("staff_home")
        self.buttons: dict[str, QPushButton] = {}
        self.hints: dict[str, QWidget] = {}
        for key, _permission, hint in MENU:
            button = big_button(f"staff_{key}", 110, primary=key in ("assisted", "agent"))
            if key in ("restart", "exit"):
                button.setProperty("danger", "true")
            button.clicked.connect(partial(self._confirm_or_choose, key))
            self.buttons[key] = button
            self.body.addWidget(button)
            if hint:
                self.hints[key] = label(role="muted", name=f"hint_{key}")
                self.body.addWidget(self.hints[key])
        self.confirm_box = QWidget()
        confirm = QVBoxLayout(self.confirm_box)
        self.confirm_text = label(role="subtitle", name="confirm_text")
        confirm.addWidget(self.confirm_text)
        row = QHBoxLayout()
        self.confirm_yes = big_button("confirm_yes")
        self.confirm_yes.setProperty("danger", "true")
        self.confirm_no = big_button("confirm_no")
        row.addWidget(self.confirm_no)
        row.addWidget(self.confirm_yes)
        confirm.addLayout(row)
        self.confirm_box.hide()
        self.confirm_yes.clicked.connect(self._on_confirmed)
        self.confirm_no.clicked.connect(self.confirm_box.hide)
        self.body.addWidget(self.confirm_box)
        self.body.addStretch(1)
        self.logout = big_button("staff_logout")
        self.outer.addWidget(self.logout)
        self._pending: str | None = None

    def render(self, session: StaffSession, logout_minutes: float) -> None:
        lang = self.lang
        self.set_title(s("home_title", lang))
        self.set_who(
            s("staff_bar", lang, number=session.staff_number, role=s(f"role_{session.role}", lang))
        )
        for key, permission, hint in MENU:
            allowed = session.can(permission)
            self.buttons[key].setText(s(key, lang))
            # Only what this role may do is offered at all.
            self.buttons[key].setVisible(allowed)
            if hint:
                set_text(self.hints[key], s(hint, lang))  # type: ignore[arg-type]
                self.hints[key].setVisible(allowed)
        self.logout.setText(s("logout", lang))
        self.confirm_yes.setText(s("confirm_yes", lang))
        self.confirm_no.setText(s("confirm_no", lang))
        self.say(s("home_logout_in", lang, minutes=f"{logout_minutes:g}"))

    def _confirm_or_choose(self, key: str) -> None:
        if key in ("restart", "exit"):
            self._pending = key
            set_text(self.confirm_text, s(f"confirm_{key}", self.lang))
            self.confirm_box.show()
            return
        self.chosen.emit(key)

    def _on_confirmed(self) -> None:
        self.confirm_box.hide()
        if self._pending is not None:
            key, self._pending = self._pending, None
            self.chosen.emit(key)


class ThingPickerScreen(StaffPage):
    """Every thing of the catalog as a button; `picked(thing_id)` or `back()`."""

    picked = Signal(str)
    back = Signal()

    def __init__(self) -> None:
        super().__init__("thing_picker")
        holder = QWidget()
        page = scroll_page(holder, max_width=None, margins=(0, 0, 0, 0))
        self.grid = ReflowGrid(min_item_width=420, max_columns=3)
        page.addWidget(self.grid)
        page.addStretch(1)
        self.body.addWidget(holder, 1)
        self.back_button = big_button("picker_back")
        self.back_button.clicked.connect(self.back.emit)
        self.outer.addWidget(self.back_button)
        self.buttons: dict[str, QPushButton] = {}
        self._catalog: Catalog | None = None
        self.agent = False

    def render(self, catalog: Catalog) -> None:
        lang = self.lang
        if catalog is not self._catalog:
            for button in self.buttons.values():
                button.deleteLater()
            self.buttons = {}
            for thing in catalog.things:
                button = big_button(f"pick_{thing.id}", 100)
                button.clicked.connect(partial(self.picked.emit, thing.id))
                self.buttons[thing.id] = button
            self.grid.set_items(list(self.buttons.values()))
            self._catalog = catalog
        for thing in catalog.things:
            self.buttons[thing.id].setText(thing.name.get(lang))
        self.set_title(s("pick_agent_title" if self.agent else "pick_title", lang))
        self.back_button.setText(s("back_menu", lang))
