"""Ask for the ID card, with a drawing of where it goes; help when reading keeps failing."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import QBoxLayout, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from kiosk.flow import Session, Step
from kiosk.i18n import Lang, Text
from ui.context import UiContext
from ui.screens.base import Screen
from ui.screens.words import (
    CONTENT_MAX_WIDTH,
    card,
    empty_layout,
    label,
    scroll_page,
    set_text,
    tall,
    w,
)
from ui.theme import INK, MUTED, PRIMARY, SURFACE


class CardOnReader(QWidget):
    """A plain drawing: an ID card held over the reader pad, with an arrow pointing down."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("card_illustration")
        self.setMinimumSize(360, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(320)

    def sizeHint(self) -> QSize:
        return QSize(520, 320)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        # Draw on a 520×320 canvas, scaled to fit and centred.
        scale = min(self.width() / 520, self.height() / 320)
        painter.translate((self.width() - 520 * scale) / 2, (self.height() - 320 * scale) / 2)
        painter.scale(scale, scale)

        # The reader: a dark pad with the contactless mark.
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(INK))
        painter.drawRoundedRect(QRectF(60, 210, 400, 100), 24, 24)
        painter.setBrush(QColor(MUTED))
        painter.drawRoundedRect(QRectF(110, 225, 300, 70), 16, 16)
        waves = QPen(QColor("white"), 6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        painter.setPen(waves)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for radius in (14, 26, 38):
            painter.drawArc(
                QRectF(260 - radius, 260 - radius, 2 * radius, 2 * radius), -45 * 16, 90 * 16
            )

        # The card, hovering just above, in the reader's footprint.
        painter.setPen(QPen(QColor(PRIMARY), 4))
        painter.setBrush(QColor("#DBEAFE"))
        painter.drawRoundedRect(QRectF(120, 20, 280, 170), 18, 18)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(SURFACE))
        painter.drawRoundedRect(QRectF(300, 45, 78, 100), 8, 8)  # the photo
        painter.setBrush(QColor("#9CA3AF"))
        painter.drawEllipse(QPointF(339, 80), 18, 18)
        painter.drawRoundedRect(QRectF(315, 104, 48, 36), 14, 14)
        painter.setBrush(QColor(PRIMARY))
        for y, length in ((55, 150), (85, 120), (115, 150), (150, 240)):
            painter.drawRoundedRect(QRectF(140, y, length, 12), 6, 6)  # printed lines

        # An arrow from the card down to the pad.
        painter.setPen(
            QPen(
                QColor("#B45309"),
                8,
                Qt.PenStyle.SolidLine,
                Qt.PenCapStyle.RoundCap,
                Qt.PenJoinStyle.RoundJoin,
            )
        )
        path = QPainterPath(QPointF(470, 60))
        path.lineTo(470, 200)
        path.moveTo(450, 178)
        path.lineTo(470, 200)
        path.lineTo(490, 178)
        painter.drawPath(path)
        painter.end()


class IdentifyScreen(Screen):
    """Place the ID card; the reader's result moves the flow on (or sets a notice)."""

    step = Step.IDENTIFY

    def __init__(self, ctx: UiContext) -> None:
        super().__init__(ctx)
        body = scroll_page(self, max_width=None)
        # Portrait: the demo cards under the instructions; landscape: beside them, in view.
        self._split = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        self._split.setSpacing(40)
        body.addLayout(self._split)
        main = QWidget()
        main.setMaximumWidth(CONTENT_MAX_WIDTH)
        column = QVBoxLayout(main)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(20)
        self._split.addWidget(main, 1)
        self._title = label(role="title")
        self._title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self._picture = CardOnReader()
        self._hint = label(role="subtitle")
        self._hint.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self._other = label(role="muted")
        self._other.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self._notice = label(role="error", name="notice")
        self._notice.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self._ask_staff = QPushButton()
        self._ask_staff.setObjectName("ask_staff")
        self._ask_staff.setProperty("primary", "true")
        tall(self._ask_staff, 90)
        self._ask_staff.clicked.connect(self._on_ask_staff_clicked)
        self._staff_message = label(role="subtitle", name="staff_message")
        self._staff_message.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        for part in (
            self._title,
            self._picture,
            self._hint,
            self._other,
            self._notice,
            self._ask_staff,
            self._staff_message,
        ):
            column.addWidget(part)
        column.addStretch(1)

        self._demo_panel, self._demo_box = card("demo_panel")
        self._demo_title = label(role="subtitle")
        self._demo_hint = label(role="muted")
        self._demo_box.addWidget(self._demo_title)
        self._demo_box.addWidget(self._demo_hint)
        self._demo_list = QVBoxLayout()
        self._demo_list.setSpacing(12)
        self._demo_box.addLayout(self._demo_list)
        self._demo_buttons: dict[str, QPushButton] = {}
        side = QWidget()
        side.setMaximumWidth(CONTENT_MAX_WIDTH)
        side_column = QVBoxLayout(side)
        side_column.setContentsMargins(0, 0, 0, 0)
        side_column.addWidget(self._demo_panel)
        side_column.addStretch(1)  # the panel keeps its own height beside a taller column
        self._split.addWidget(side, 1)
        body.addStretch(1)
        self._notice.hide()
        self._ask_staff.hide()
        self._staff_message.hide()
        self._demo_panel.hide()

    def render(self, session: Session) -> None:
        lang = session.lang
        # An agent's application (代办) reads two cards: the applicant's, then the agent's.
        agent_next = self.ctx.flow.awaiting == "agent"
        set_text(self._title, w("identify_agent_title" if agent_next else "identify_title", lang))
        set_text(self._hint, w("identify_hint", lang))
        set_text(self._other, w("identify_other_documents", lang))
        notice = session.notice.render(lang) if session.notice else ""
        set_text(self._notice, notice)
        self._notice.setVisible(bool(notice))
        needs_staff = self.ctx.flow.needs_staff
        self._ask_staff.setText(w("ask_staff", lang))
        self._ask_staff.setVisible(needs_staff)
        set_text(self._staff_message, w("staff_called", lang))
        if not needs_staff:
            self._staff_message.hide()
        self._render_demo(lang)

    def _render_demo(self, lang: Lang) -> None:
        cards = dict(self.ctx.demo_cards)
        if list(cards) != list(self._demo_buttons):
            empty_layout(self._demo_list)
            self._demo_buttons = {}
            for key in cards:
                button = QPushButton()
                button.setObjectName(f"demo_card_{key}")
                button.clicked.connect(partial(self._on_demo_card_clicked, key))
                self._demo_list.addWidget(button)
                self._demo_buttons[key] = button
        set_text(self._demo_title, w("demo_title", lang))
        set_text(self._demo_hint, w("demo_hint", lang))
        for key, button in self._demo_buttons.items():
            text = cards[key]
            button.setText(text.get(lang) if isinstance(text, Text) else str(text))
        self._demo_panel.setVisible(bool(cards))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        size = event.size()
        self._split.setDirection(
            QBoxLayout.Direction.LeftToRight
            if size.width() > size.height()
            else QBoxLayout.Direction.TopToBottom
        )

    def _on_ask_staff_clicked(self) -> None:
        # No staff-call device yet: say plainly what to do instead.
        self._staff_message.show()

    def _on_demo_card_clicked(self, key: str) -> None:
        if self.ctx.tap_card is not None:
            self.ctx.tap_card(key)

    def clear(self) -> None:
        self._notice.clear()
        self._notice.hide()
        self._ask_staff.hide()
        self._staff_message.hide()
