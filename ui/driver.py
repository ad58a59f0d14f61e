"""Drive the kiosk window as a person would: by pressing its buttons and typing in its fields.

Used by the trip tests, the screenshot script and smoke checks, so all of them exercise the
same widgets an applicant touches, never the flow behind them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QApplication, QPushButton, QWidget

from kiosk.demo import sample_answer
from kiosk.flow import Step
from ui.main_window import MainWindow


class DriverError(AssertionError):
    """The window did not offer what a person would need to go on."""


class KioskDriver:
    def __init__(self, window: MainWindow, timeout_s: float = 10.0) -> None:
        self.window = window
        self.flow = window.flow
        self.timeout_s = timeout_s

    # Basics ---------------------------------------------------------------------------------

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise DriverError(f"timed out waiting for {what} (step {self.flow.step})")
            QApplication.processEvents()
            time.sleep(0.005)
        QApplication.processEvents()

    def find(self, name: str, cls: type[QWidget] = QWidget) -> Any:
        """The widget called `name` that a person would see: on the current screen first,
        then in the window's bars and overlays; a shown one before a hidden one."""
        screen = self.window.stack.currentWidget()
        for root in (screen, self.window):
            found = root.findChildren(cls, name)
            if found:
                shown = [w for w in found if w.isVisible()]
                return (shown or found)[0]
        raise DriverError(f"no widget named {name!r} at step {self.flow.step}")

    def press(self, name: str) -> None:
        button = self.find(name, QPushButton)
        if not button.isVisible() or not button.isEnabled():
            raise DriverError(f"button {name!r} is not available at step {self.flow.step}")
        button.click()
        QApplication.processEvents()

    # The trip -------------------------------------------------------------------------------

    def choose(self, thing_id: str) -> None:
        """Pick a thing from the home screen, switching to its audience (个人/企业) first."""
        audience = self.flow.backend.catalog.thing(thing_id).audience
        self.press(f"audience_{audience}")
        self.press("category_all")
        self.press(f"thing_{thing_id}")
        self.wait_until(lambda: self.flow.step is Step.THING, "the thing's page")

    def start(self) -> None:
        self.press("next")
        self.wait_until(lambda: self.flow.step is Step.IDENTIFY, "the card step")

    def tap_card(self, key: str = "adult") -> None:
        """Tap a demo card and wait for its outcome: the form, or a new notice."""
        before = self.flow.session.notice
        self.press(f"demo_card_{key}")
        self.wait_until(
            lambda: (
                self.flow.step is not Step.IDENTIFY
                or (self.flow.session.notice is not None and self.flow.session.notice is not before)
            ),
            f"the card read ({key})",
        )

    def fill_form(self, yes: bool = True) -> None:
        """Answer every visible editable field through its editor, as the applicant would."""
        for _ in range(10):
            pending = [
                f
                for f in self.flow.form.fields(self.flow.session.answers)
                if not f.locked and f.id not in self.flow.session.answers
            ]
            if not pending:
                return
            for f in pending:
                editor = self.find(f"field_{f.id}")
                editor.set_value(sample_answer(f.definition, yes))
                QApplication.processEvents()
        raise DriverError("the form kept growing")

    def next(self, expect: Step) -> None:
        self.press("next")
        self.wait_until(lambda: self.flow.step is expect, f"step {expect}")

    def scan_all(self) -> None:
        """Press each material's scan button until it has its expected pages."""
        for need in self.flow.form.to_scan(self.flow.session.answers):
            for _ in range(max(1, need.definition.pages)):
                before = len(self.flow.session.pages.get(need.id, []))
                self.press(f"scan_{need.id}")
                self.wait_until(
                    lambda n=need.id, b=before: len(self.flow.session.pages.get(n, [])) > b,
                    f"a page of {need.id}",
                )

    def agree_and_submit(self) -> None:
        box = self.find("agree")
        box.setChecked(True)
        QApplication.processEvents()
        self.next(Step.RECEIPT)
        self.wait_until(lambda: bool(self.window.ctx.receipt_png), "the receipt image")

    def whole_trip(self, thing_id: str, card: str = "adult") -> None:
        self.choose(thing_id)
        self.start()
        self.tap_card(card)
        self.fill_form()
        self.next(Step.MATERIALS)
        self.scan_all()
        self.next(Step.REVIEW)
        self.agree_and_submit()

    # The progress look-up and the rating -------------------------------------------------

    def check_progress(self, card: str | None = None) -> None:
        """Press 查询办理进度 on the home screen; with `card`, tap it and wait for the list."""
        self.press("check_progress")
        self.wait_until(lambda: self.flow.step is Step.IDENTIFY, "the card step")
        if card is not None:
            self.tap_card(card)
            if self.flow.step is not Step.PROGRESS:
                raise DriverError(f"the card {card!r} did not lead to the progress list")

    def rate(self, score: int) -> None:
        """Tap one of the five rating buttons on the receipt screen; wait for its outcome."""
        before = self.flow.session.notice
        self.press(f"rate_{score}")
        self.wait_until(
            lambda: (
                self.flow.session.rating is not None
                or (self.flow.session.notice is not None and self.flow.session.notice is not before)
            ),
            f"the rating {score}",
        )
