"""The kiosk window: a top bar, one stacked screen per flow step, a fixed navigation bar.

The router maps flow steps to screens; navigation sits in the same place on every screen so
nobody has to hunt for "next". Idle detection watches every touch and key in the application.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QResizeEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kiosk.flow import Purpose, Session, Step
from kiosk.i18n import Lang, Text
from kiosk.idle import IdlePhase, IdleWatch
from kiosk.ports import CapturedPage
from ui.context import UiContext
from ui.countdown import CountdownOverlay
from ui.screens.base import Screen
from ui.screens.form import FormScreen
from ui.screens.home import HomeScreen
from ui.screens.identify import IdentifyScreen
from ui.screens.materials import MaterialsScreen
from ui.screens.progress import ProgressScreen
from ui.screens.receipt import ReceiptScreen
from ui.screens.review import ReviewScreen
from ui.screens.thing import ThingScreen
from ui.strings import t

if TYPE_CHECKING:
    from ui.keyboard import OnScreenKeyboard

log = logging.getLogger(__name__)

NEXT_LABELS: dict[Step, Text] = {
    Step.THING: Text("开始办理", "Start"),
    Step.FORM: Text("下一步：材料", "Next: documents"),
    Step.MATERIALS: Text("下一步：核对", "Next: check"),
    Step.REVIEW: Text("提交申请", "Submit"),
    Step.RECEIPT: Text("完成", "Done"),
}
INPUT_EVENTS = {
    QEvent.Type.MouseButtonPress,
    QEvent.Type.TouchBegin,
    QEvent.Type.KeyPress,
    QEvent.Type.Wheel,
    QEvent.Type.TouchUpdate,
}


class MainWindow(QMainWindow):
    """The whole kiosk UI, driven by the applicant flow."""

    def __init__(self, ctx: UiContext, keyboard: OnScreenKeyboard | None = None) -> None:
        super().__init__()
        self.keyboard = keyboard
        self.ctx = ctx
        self.flow = ctx.flow
        self.setWindowTitle(t("app_title", "zh"))
        central = QWidget()
        root = self._root = QVBoxLayout(central)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        # The applicant's pages, and staff mode's pages beside them (ui.staff): one at a time.
        self.modes = QStackedWidget()
        self.modes.setObjectName("modes")
        root.addWidget(self.modes, 1)
        self.applicant_page = QWidget()
        self.applicant_page.setObjectName("applicant_page")
        page = QVBoxLayout(self.applicant_page)
        page.setContentsMargins(0, 0, 0, 0)
        page.setSpacing(0)
        page.addWidget(self._top_bar())
        self.assist_slot = QVBoxLayout()
        self.assist_slot.setContentsMargins(0, 0, 0, 0)
        page.addLayout(self.assist_slot)
        self.stack = QStackedWidget()
        page.addWidget(self.stack, 1)
        page.addWidget(self._nav_bar())
        self.modes.addWidget(self.applicant_page)
        if keyboard is not None:
            root.addWidget(keyboard)
        self.setCentralWidget(central)

        self.screens: dict[Step, Screen] = {}
        for cls in (
            HomeScreen,
            ThingScreen,
            IdentifyScreen,
            FormScreen,
            MaterialsScreen,
            ReviewScreen,
            ReceiptScreen,
            ProgressScreen,
        ):
            screen = cls(ctx)
            self.screens[cls.step] = screen
            self.stack.addWidget(screen)

        self.countdown = CountdownOverlay(central)
        self.countdown.dismissed.connect(self._on_countdown_dismissed)
        self.idle = IdleWatch(
            ctx.config.session.idle_timeout_s, ctx.config.session.idle_countdown_s, time.monotonic()
        )
        self.idle_timer = QTimer(self)
        self.idle_timer.setInterval(250)
        self.idle_timer.timeout.connect(self._on_idle_tick)
        self.idle_timer.start()
        self.receipt_timer = QTimer(self)
        self.receipt_timer.setSingleShot(True)
        self.receipt_timer.timeout.connect(self._on_receipt_timeout)

        self.flow.subscribe(self._on_flow_changed)
        ctx.bridge.page_captured.connect(self._on_page_captured)
        self._on_flow_changed(self.flow.step, self.flow.session)

    # Layout ---------------------------------------------------------------------------------

    def _top_bar(self) -> QWidget:
        bar = QWidget()
        bar.setObjectName("topbar")
        bar.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        row = QHBoxLayout(bar)
        row.setContentsMargins(24, 12, 24, 12)
        self.title = QLabel()
        self.title.setObjectName("title")
        row.addWidget(self.title, 1)
        # Hidden until the relay reports: a kiosk without a platform connection says nothing.
        self.network = QLabel()
        self.network.setObjectName("network")
        self.network.hide()
        row.addWidget(self.network)
        self.lang_button = QPushButton()
        self.lang_button.setObjectName("lang")
        self.lang_button.clicked.connect(self._on_lang_clicked)
        row.addWidget(self.lang_button)
        return bar

    def _nav_bar(self) -> QWidget:
        bar = QWidget()
        bar.setObjectName("navbar")
        row = QHBoxLayout(bar)
        row.setContentsMargins(24, 12, 24, 24)
        row.setSpacing(24)
        self.back_button = QPushButton()
        self.back_button.setObjectName("back")
        self.back_button.clicked.connect(self.flow.back)
        self.cancel_button = QPushButton()
        self.cancel_button.setObjectName("cancel")
        self.cancel_button.setProperty("danger", "true")
        self.cancel_button.clicked.connect(self.flow.cancel)
        self.next_button = QPushButton()
        self.next_button.setObjectName("next")
        self.next_button.setProperty("primary", "true")
        self.next_button.setMinimumWidth(280)
        self.next_button.clicked.connect(self._on_next_clicked)
        row.addWidget(self.back_button)
        row.addWidget(self.cancel_button)
        row.addStretch(1)
        row.addWidget(self.next_button)
        return bar

    # Flow -----------------------------------------------------------------------------------

    def _on_flow_changed(self, step: Step, session: Session) -> None:
        lang = session.lang
        if self.keyboard is not None:
            self.keyboard.set_language(lang)
        self.title.setText(t("app_title", lang))
        self._show_network(lang)
        self.lang_button.setText(t("switch_lang", lang))
        screen = self.screens[step]
        if self.stack.currentWidget() is not screen:
            previous = self.stack.currentWidget()
            QGuiApplication.inputMethod().hide()  # a new page starts with the keys put away
            if step is Step.HOME and isinstance(previous, Screen):
                # Leaving a session: nothing of the applicant may stay in any screen.
                for other in self.screens.values():
                    other.clear()
            elif step is Step.RECEIPT:
                # The full name and number belong to the review step only, not to a hidden
                # page behind the receipt.
                self.screens[Step.REVIEW].clear()
            self.stack.setCurrentWidget(screen)
            if step is Step.RECEIPT:
                self.receipt_timer.start(self.ctx.config.session.receipt_screen_s * 1000)
            else:
                self.receipt_timer.stop()
        screen.render(session)
        in_session = step is not Step.HOME
        self.back_button.setVisible(in_session and step is not Step.RECEIPT)
        self.cancel_button.setVisible(in_session and step is not Step.RECEIPT)
        self.next_button.setVisible(step in NEXT_LABELS and step is not Step.IDENTIFY)
        self.back_button.setText(t("back", lang))
        # Nothing is being applied for on the progress look-up: leaving it is just "Home".
        looking_up = session.purpose is Purpose.PROGRESS
        self.cancel_button.setText(t("home" if looking_up else "cancel", lang))
        self._set_danger(self.cancel_button, not looking_up)
        if step in NEXT_LABELS:
            self.next_button.setText(NEXT_LABELS[step].get(lang))
        if step is Step.HOME:
            self.countdown.hide()

    @staticmethod
    def _set_danger(button: QPushButton, danger: bool) -> None:
        value = "true" if danger else "false"
        if button.property("danger") != value:
            button.setProperty("danger", value)
            button.style().unpolish(button)
            button.style().polish(button)

    def set_sync_state(self, state: object) -> None:
        """The relay's latest state (sync.relay.SyncState): shown as online or offline."""
        self._online = getattr(state, "online", None)
        self._show_network(self.flow.session.lang)

    def _show_network(self, lang: Lang) -> None:
        online = getattr(self, "_online", None)
        if online is None:
            self.network.hide()
            return
        self.network.setText(t("online" if online else "offline", lang))
        self.network.setProperty("offline", "false" if online else "true")
        self.network.style().unpolish(self.network)
        self.network.style().polish(self.network)
        self.network.show()

    def attach_keyboard(self, keyboard: OnScreenKeyboard) -> None:
        """Dock the on-screen keyboard at the bottom (built after the first screen is up)."""
        if self.keyboard is not None:
            return
        self.keyboard = keyboard
        self._root.addWidget(keyboard)
        keyboard.fit_width(self.width())
        keyboard.set_language(self.flow.session.lang)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.keyboard is not None:
            self.keyboard.fit_width(event.size().width())

    def _on_next_clicked(self) -> None:
        step = self.flow.step
        if step is Step.THING:
            self.flow.start()
        elif step is Step.RECEIPT:
            self.flow.finish()
        else:
            self.flow.next()

    def _on_lang_clicked(self) -> None:
        self.flow.set_language("en" if self.flow.session.lang == "zh" else "zh")

    def _on_page_captured(self, material_id: str, page: object) -> None:
        if isinstance(page, CapturedPage):
            self.flow.add_page(material_id, page)

    # Staff mode's pages ----------------------------------------------------------------------

    def add_page(self, page: QWidget) -> None:
        """A full-window page beside the applicant's (staff mode)."""
        self.modes.addWidget(page)

    def show_page(self, page: QWidget) -> None:
        if self.modes.currentWidget() is not page:
            QGuiApplication.inputMethod().hide()
            self.modes.setCurrentWidget(page)

    def show_applicant(self) -> None:
        self.show_page(self.applicant_page)

    @property
    def showing_applicant(self) -> bool:
        return self.modes.currentWidget() is self.applicant_page

    def add_bar(self, bar: QWidget) -> None:
        """A strip between the top bar and the applicant's screens (the assisted-mode bar)."""
        self.assist_slot.addWidget(bar)

    def refresh(self) -> None:
        """Re-render the current screen (after an asynchronous result such as a print)."""
        self._on_flow_changed(self.flow.step, self.flow.session)

    # Idle -----------------------------------------------------------------------------------

    def touched(self) -> None:
        self.idle.touch(time.monotonic())
        if self.countdown.isVisible():
            self.countdown.hide()

    def _on_countdown_dismissed(self) -> None:
        self.touched()

    def _on_idle_tick(self) -> None:
        if self.flow.step is Step.HOME:
            self.idle.touch(time.monotonic())
            return
        state = self.idle.poll(time.monotonic())
        if state.phase is IdlePhase.COUNTDOWN:
            self.countdown.show_seconds(state.seconds_left, self.flow.session.lang)
        elif state.phase is IdlePhase.EXPIRED:
            self.countdown.hide()
            self.flow.timeout()

    def _on_receipt_timeout(self) -> None:
        if self.flow.step is Step.RECEIPT:
            self.flow.finish()


class InputWatcher(QObject):
    """An application-wide event filter: any touch, click or key counts as presence."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in INPUT_EVENTS:
            self.window.touched()
        return False
