"""The visible idle countdown: a full-window overlay a touch dismisses."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from kiosk.i18n import Lang, Text

WORDS = {
    "question": Text("您还在吗？", "Are you still there?"),
    "wipe": Text(
        "{n} 秒后将清除您填写的内容并返回首页",
        "In {n} seconds what you entered will be cleared for your privacy",
    ),
    "stay": Text("我还要继续办理", "I'm still here"),
}


class CountdownOverlay(QWidget):
    """Covers the window during the countdown; any touch on it cancels the wipe."""

    dismissed = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("countdown")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        layout = QVBoxLayout(self)
        layout.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.question = QLabel()
        self.seconds = QLabel()
        self.seconds.setObjectName("countdown_seconds")
        for label in (self.question, self.seconds):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setWordWrap(True)
            layout.addWidget(label)
        self.stay = QPushButton()
        self.stay.setObjectName("countdown_stay")
        self.stay.setProperty("primary", "true")
        self.stay.clicked.connect(self.dismissed.emit)
        layout.addWidget(self.stay, alignment=Qt.AlignmentFlag.AlignCenter)
        self.hide()

    def show_seconds(self, seconds: int, lang: Lang) -> None:
        self.question.setText(WORDS["question"].get(lang))
        self.seconds.setText(WORDS["wipe"].get(lang).format(n=seconds))
        self.stay.setText(WORDS["stay"].get(lang))
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect())
        if not self.isVisible():
            self.show()
            self.raise_()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.dismissed.emit()
        event.accept()
