"""Done: the receipt number, the receipt as printed, and whether to take it or photograph it."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import QBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from kiosk.flow import Session, Step
from ui.context import UiContext
from ui.screens.base import Screen
from ui.screens.words import PAGE_MARGIN, SPACING, label, set_role, set_text, w
from ui.theme import MUTED


class FittedImage(QLabel):
    """Shows a picture as large as its space allows, never cropped or stretched."""

    def __init__(self) -> None:
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(200, 200)
        self._original = QPixmap()
        self._png = b""

    def set_png(self, png: bytes) -> None:
        if png == self._png:
            return
        self._png = png
        self._original = QPixmap()
        if png:
            self._original.loadFromData(png)
        self._fit()

    def wipe(self) -> None:
        self._png = b""
        self._original = QPixmap()
        self.clear()

    def has_picture(self) -> bool:
        return not self._original.isNull()

    def sizeHint(self) -> QSize:
        return QSize(400, 600)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self._original.isNull():
            self.clear()
            return
        fitted = self._original.scaled(
            self.size(),
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        # White paper on a white screen needs an edge to look like paper.
        painter = QPainter(fitted)
        painter.setPen(QPen(QColor(MUTED), 2))
        painter.drawRect(fitted.rect().adjusted(1, 1, -1, -1))
        painter.end()
        self.setPixmap(fitted)


class ReceiptScreen(Screen):
    """Application received: side by side in landscape, stacked in portrait."""

    step = Step.RECEIPT

    def __init__(self, ctx: UiContext) -> None:
        super().__init__(ctx)
        self._layout = QBoxLayout(QBoxLayout.Direction.TopToBottom, self)
        self._layout.setContentsMargins(PAGE_MARGIN, PAGE_MARGIN, PAGE_MARGIN, PAGE_MARGIN)
        self._layout.setSpacing(SPACING * 2)
        words = QWidget()
        column = QVBoxLayout(words)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(SPACING)
        self._title = label(role="title", name="receipt_title")
        self._number_label = label(role="muted")
        self._number = label(role="title", name="receipt_number")
        self._number.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self._printed = label(role="subtitle", name="print_status")
        self._progress = label()
        for part in (self._title, self._number_label, self._number, self._printed, self._progress):
            column.addWidget(part)
        column.addStretch(1)
        self._image = FittedImage()
        self._image.setObjectName("receipt_image")
        self._layout.addWidget(words)
        self._layout.addWidget(self._image, 1)

    def render(self, session: Session) -> None:
        lang = session.lang
        set_text(self._title, w("receipt_title", lang))
        set_text(self._number_label, w("receipt_number_label", lang))
        result = session.result
        set_text(self._number, result.receipt_number if result else "")
        self._image.set_png(self.ctx.receipt_png)
        self._image.setVisible(self._image.has_picture())
        if not self.ctx.receipt_png:
            # The printer has not answered yet: neither "take it" nor "it failed" is true.
            status, role = w("receipt_preparing", lang), "muted"
        elif self.ctx.receipt_printed:
            status, role = w("receipt_printed", lang), "ok"
        else:
            status, role = w("receipt_not_printed", lang), "error"
        set_text(self._printed, status)
        set_role(self._printed, role)
        set_text(self._progress, w("receipt_progress", lang))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        size = event.size()
        self._layout.setDirection(
            QBoxLayout.Direction.LeftToRight
            if size.width() > size.height()
            else QBoxLayout.Direction.TopToBottom
        )

    def clear(self) -> None:
        self._number.clear()
        self._image.wipe()
        self._image.hide()
