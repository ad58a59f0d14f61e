"""Done: the receipt number, the receipt as printed, whether to take it or photograph it, and
an optional one-tap rating of the service (好差评)."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kiosk.flow import RATING_SCORES, Session, Step
from ui.context import UiContext
from ui.screens.base import Screen
from ui.screens.words import (
    PAGE_MARGIN,
    SPACING,
    ReflowGrid,
    label,
    notice_words,
    set_role,
    set_text,
    w,
)
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
        column.addSpacing(SPACING)
        column.addWidget(self._rating_row())
        column.addStretch(1)
        self._image = FittedImage()
        self._image.setObjectName("receipt_image")
        self._layout.addWidget(words)
        self._layout.addWidget(self._image, 1)

    def _rating_row(self) -> QWidget:
        row = QWidget()
        row.setObjectName("rating")
        box = QVBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(12)
        self._rate_title = label(role="subtitle", name="rate_title")
        self._rate_hint = label(role="muted")
        self._rate_grid = ReflowGrid(min_item_width=140, max_columns=5, spacing=12, fit_widest=True)
        self._rate_buttons: dict[int, QPushButton] = {}
        for score in RATING_SCORES:
            button = QPushButton()
            button.setObjectName(f"rate_{score}")
            # Five across even in half a landscape screen: less side padding than other buttons.
            button.setStyleSheet("QPushButton { min-height: 90px; padding: 0 8px; }")
            button.clicked.connect(partial(self._on_rate_clicked, score))
            self._rate_buttons[score] = button
        self._rate_grid.set_items(list(self._rate_buttons.values()))
        self._rate_thanks = label(role="ok", name="rate_thanks")
        self._rate_notice = label(role="error", name="rate_notice")
        for part in (
            self._rate_title,
            self._rate_hint,
            self._rate_grid,
            self._rate_thanks,
            self._rate_notice,
        ):
            box.addWidget(part)
        self._rate_thanks.hide()
        self._rate_notice.hide()
        return row

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
        self._render_rating(session)

    def _render_rating(self, session: Session) -> None:
        lang = session.lang
        set_text(self._rate_title, w("rate_title", lang))
        set_text(self._rate_hint, w("rate_hint", lang))
        rated = session.rating
        for score, button in self._rate_buttons.items():
            button.setText(w(f"rate_{score}", lang))
            button.setEnabled(rated is None and session.result is not None)
            self._mark_chosen(button, score == rated)
        set_text(self._rate_thanks, w("rate_thanks", lang))
        self._rate_thanks.setVisible(rated is not None)
        notice = notice_words(session.notice, lang) if session.notice else ""
        set_text(self._rate_notice, notice)
        self._rate_notice.setVisible(bool(notice))

    @staticmethod
    def _mark_chosen(button: QPushButton, chosen: bool) -> None:
        # The chosen face stays filled in after all five are disabled (theme: [chosen="true"]).
        value = "true" if chosen else "false"
        if button.property("chosen") != value:
            button.setProperty("chosen", value)
            button.style().unpolish(button)
            button.style().polish(button)

    def _on_rate_clicked(self, score: int) -> None:
        self.ctx.flow.rate(score)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        size = event.size()
        landscape = size.width() > size.height()
        self._layout.setDirection(
            QBoxLayout.Direction.LeftToRight if landscape else QBoxLayout.Direction.TopToBottom
        )
        # Side by side the words get half the width, so the five rating buttons fit one row;
        # stacked, the receipt picture takes whatever height the words leave.
        self._layout.setStretch(0, 1 if landscape else 0)

    def clear(self) -> None:
        self._number.clear()
        self._image.wipe()
        self._image.hide()
        for button in self._rate_buttons.values():
            button.setEnabled(True)
            self._mark_chosen(button, False)
        self._rate_thanks.hide()
        self._rate_notice.clear()
        self._rate_notice.hide()
