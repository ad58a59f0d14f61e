"""The technician's screen: every check appearing as it finishes, the live camera view, a test
page and the support bundle. The work runs elsewhere (ui.staff.mode); this only shows it."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton

from ui.camera_view import CameraView, PreviewUpdate
from ui.screens.words import empty_layout, label, set_role, set_text
from ui.staff.common import StaffPage, big_button
from ui.staff.words import s

if TYPE_CHECKING:  # `kiosk run` starts without the diagnostics module
    from ui.diagnostics import Check


class TechnicianScreen(StaffPage):
    """Emits `run()`, `test_page()`, `bundle(path)` and `back()`."""

    run = Signal()
    test_page = Signal()
    bundle = Signal(object)  # a directory Path
    back = Signal()

    def __init__(self) -> None:
        super().__init__("technician")
        top = QHBoxLayout()
        self.run_button = big_button("tech_run", primary=True)
        self.run_button.clicked.connect(self.run.emit)
        self.test_button = big_button("tech_test_page")
        self.test_button.clicked.connect(self.test_page.emit)
        top.addWidget(self.run_button)
        top.addWidget(self.test_button)
        self.body.addLayout(top)
        self.status = label(role="subtitle", name="tech_status")
        self.body.addWidget(self.status)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(16)
        self.body.addLayout(self.grid)
        self.rows: dict[str, tuple[QLabel, QLabel, QLabel]] = {}
        self.camera_title = label(role="subtitle", name="tech_camera_title")
        self.body.addWidget(self.camera_title)
        self.camera = CameraView()
        self.camera.setMaximumHeight(420)
        self.body.addWidget(self.camera)
        self.bundle_title = label(name="tech_bundle_title")
        self.body.addWidget(self.bundle_title)
        self.bundle_row = QHBoxLayout()
        self.body.addLayout(self.bundle_row)
        self.bundle_buttons: dict[str, QPushButton] = {}
        self.body.addStretch(1)
        self.back_button = big_button("tech_back")
        self.back_button.clicked.connect(self.back.emit)
        self.outer.addWidget(self.back_button)

    def render(self) -> None:
        lang = self.lang
        self.set_title(s("tech_title", lang))
        self.run_button.setText(s("tech_run", lang))
        self.test_button.setText(s("tech_test_page", lang))
        set_text(self.camera_title, s("tech_camera", lang))
        set_text(self.bundle_title, s("tech_bundle", lang))
        self.back_button.setText(s("back_menu", lang))

    def set_destinations(self, data_dir: Path, usb: list[Path]) -> None:
        """The places a bundle can go: the data directory, then each USB stick."""
        while self.bundle_row.count():
            item = self.bundle_row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.bundle_buttons = {}
        for index, (text, path) in enumerate(
            [(s("tech_bundle_data", self.lang), data_dir)]
            + [(s("tech_bundle_usb", self.lang, name=p.name), p) for p in usb]
        ):
            button = big_button(f"bundle_{index}")
            button.setText(text)
            button.clicked.connect(partial(self.bundle.emit, path))
            self.bundle_buttons[str(path)] = button
            self.bundle_row.addWidget(button)

    # Checks -----------------------------------------------------------------------------------

    def begin(self, names: list[str]) -> None:
        """A run starts: one row per check, each waiting."""
        for row in self.rows.values():
            for widget in row:
                widget.deleteLater()
        self.rows = {}
        for i, name in enumerate(names):
            self._add_row(i, name, s("tech_waiting", self.lang))
        self.grid.setColumnStretch(2, 1)
        self.run_button.setEnabled(False)
        self.say("")
        set_text(self.status, s("tech_running", self.lang))

    def add_check(self, check: Check) -> None:
        """One check's result, as soon as it is known."""
        if check.name not in self.rows:  # a check the layout did not expect: a row at the end
            self._add_row(len(self.rows), check.name, "")
        mark, _title, detail = self.rows[check.name]
        set_text(mark, s("tech_ok" if check.ok else "tech_fail", self.lang))
        set_role(mark, "ok" if check.ok else "error")
        set_text(detail, check.detail)

    def _add_row(self, row: int, name: str, mark_text: str) -> None:
        mark = label(mark_text, wrap=False, name=f"check_mark_{name}")
        title = label(name, wrap=False, name=f"check_name_{name}")
        detail = label("", role="muted", name=f"check_detail_{name}")
        self.grid.addWidget(mark, row, 0)
        self.grid.addWidget(title, row, 1)
        self.grid.addWidget(detail, row, 2)
        self.rows[name] = (mark, title, detail)

    def finished(self, failed: int | None, error: str = "") -> None:
        self.run_button.setEnabled(True)
        if failed is None:
            set_text(self.status, s("tech_failed", self.lang, reason=error))
        elif failed:
            set_text(self.status, s("tech_done", self.lang, failed=failed))
        else:
            set_text(self.status, s("tech_done_ok", self.lang))

    def checks_shown(self) -> dict[str, str]:
        """check name → its mark as shown now (for tests)."""
        return {name: row[0].text() for name, row in self.rows.items()}

    # Camera -----------------------------------------------------------------------------------

    def show_frame(self, update: object) -> None:
        if isinstance(update, PreviewUpdate):
            # A page that passes every check: the technician's words, not the applicant's
            # "tap Scan another page" (there is nothing to take here).
            passes = not update.lost and update.corners is not None and not update.issues
            text = s("tech_page_ok", self.lang) if passes else None
            self.camera.show_update(update, self.lang, auto=False, text=text)
        else:
            self.camera.clear()

    def clear(self) -> None:
        self.camera.clear()
        self.say("")
        empty_layout(self.grid)
        self.rows = {}
        set_text(self.status, "")
