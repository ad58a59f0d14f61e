"""The base of every screen: render the flow's state, clear applicant data on demand."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from kiosk.flow import Session, Step
from ui.context import UiContext


class Screen(QWidget):
    """A page of the stacked window, shown for one flow step."""

    step: Step

    def __init__(self, ctx: UiContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.setObjectName("screen")
        # Paint the theme's background even when a screen is shown on its own.
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)

    def render(self, session: Session) -> None:
        """Show `session` (called on every flow change while this screen is current)."""
        raise NotImplementedError

    def clear(self) -> None:
        """Remove everything about the applicant from the widgets (idle wipe, cancel)."""
        raise NotImplementedError
