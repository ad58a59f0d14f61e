"""Staff mode: how staff get in (badge tap or hidden long-press, then the PIN), what they see
after login, and how they get out again (sign-out, automatic sign-out, admin exit).

An applicant cannot reach anything here by accident: the long-press is 3 s on one fixed corner,
the PIN pad's only way on is a staff member's PIN, and its Cancel goes back to where they were.
Slow work (PIN hashing, licence look-ups, printing, the diagnostics, the support bundle) runs
off the GUI thread and comes back through StaffBridge's queued signals.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QTimer
from PySide6.QtGui import QMouseEvent, QTouchEvent
from PySide6.QtWidgets import QApplication, QWidget

from devices.registry import Devices
from kiosk.application import TransitionError
from kiosk.catalog import Catalog
from kiosk.config import Config
from kiosk.flow import ApplicantFlow, Session, Step
from kiosk.i18n import Lang
from kiosk.identity import IdentityDocument
from kiosk.ports import (
    Platform,
    PlatformUnavailable,
    PrinterStatus,
    PrintResult,
    SmartCardSeen,
)
from kiosk.receipt import Receipt
from kiosk.staff import LoginRefused, StaffSession, StaffStore
from kiosk.storage import NotVoidable, StorageError, UnknownApplication
from ui.bridge import Bridge
from ui.camera_view import CameraPreview
from ui.main_window import MainWindow
from ui.staff.assisted import AssistBar, ManualIdentityScreen
from ui.staff.bridge import StaffBridge
from ui.staff.common import StaffPage
from ui.staff.desk import NotAllowed, StaffDesk, summarize
from ui.staff.home import StaffHomeScreen, ThingPickerScreen
from ui.staff.pinpad import PinPadScreen
from ui.staff.technician import TechnicianScreen
from ui.staff.today import TodayScreen
from ui.staff.words import s

log = logging.getLogger(__name__)

CORNER_PX = 120  # the hidden long-press corner: top left, under the title
EXIT_RESTART = 0  # systemd's Restart=always starts the kiosk again
EXIT_LEAVE = 3  # the units' RestartPreventExitStatus=3 leave it stopped (kiosk mode left)
PRESS_EVENTS = {QEvent.Type.MouseButtonPress, QEvent.Type.TouchBegin}
RELEASE_EVENTS = {QEvent.Type.MouseButtonRelease, QEvent.Type.TouchEnd, QEvent.Type.TouchCancel}
INPUT_EVENTS = PRESS_EVENTS | {QEvent.Type.KeyPress, QEvent.Type.TouchUpdate, QEvent.Type.Wheel}


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


@dataclass
class StaffDeps:
    """What staff mode needs from the composition root."""

    config: Config
    flow: ApplicantFlow
    store: StaffStore
    desk: StaffDesk
    devices: Devices
    worker: ThreadPoolExecutor  # the device thread: printing goes here
    preview: CameraPreview
    app_bridge: Bridge
    platform: Platform
    catalog: Callable[[], Catalog]
    start_reader: Callable[[], None]  # (re)start the ID reader with the kiosk's listener
    quit: Callable[[int], None]  # leave the application with this exit status


class StaffMode(QObject):
    """The staff pages, the staff session and the ways in and out of it."""

    def __init__(
        self,
        window: MainWindow,
        deps: StaffDeps,
        *,
        clock: Callable[[], dt.datetime] = _local_now,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.deps = deps
        self.flow = deps.flow
        self.config = deps.config
        self._clock = clock
        self.bridge = StaffBridge()
        self.session: StaffSession | None = None
        self.lang: Lang = self.flow.session.lang  # staff pages keep their own language choice
        self._badge_uid: bytes | None = None
        self._pin_started = 0.0
        self._last_report: Any = None
        self._report_running = False
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="staff")

        self.pin = PinPadScreen()
        self.home = StaffHomeScreen()
        self.picker = ThingPickerScreen()
        self.manual = ManualIdentityScreen()
        self.today = TodayScreen()
        self.technician = TechnicianScreen()
        self.pages: list[StaffPage] = [
            self.pin,
            self.home,
            self.picker,
            self.manual,
            self.today,
            self.technician,
        ]
        for page in self.pages:
            window.add_page(page)
            page.lang_toggled.connect(self._on_lang_toggled)
        self.bar = AssistBar(self.flow)
        window.add_bar(self.bar)
        self._return_to: QWidget | None = None

        self.pin.submitted.connect(self._on_pin_submitted)
        self.pin.cancelled.connect(self._on_pin_cancelled)
        self.home.chosen.connect(self.choose)
        self.home.logout.clicked.connect(lambda: self.logout("user"))
        self.picker.picked.connect(self._on_thing_picked)
        self.picker.back.connect(self.show_home)
        self.manual.entered.connect(self._on_manual_entered)
        self.manual.back.connect(self.window.show_applicant)
        self.today.reprint.connect(self._on_reprint)
        self.today.act.connect(self._on_act)
        self.today.back.connect(self.show_home)
        self.technician.run.connect(self.run_diagnostics)
        self.technician.test_page.connect(self._on_test_page)
        self.technician.bundle.connect(self._on_bundle)
        self.technician.back.connect(self._leave_technician)
        self.bar.manual_requested.connect(self._on_manual_requested)
        self.bridge.smart_card_event.connect(self._on_smart_card_event)
        self.bridge.login_done.connect(self._on_login_done)
        self.bridge.check_done.connect(self.technician.add_check)
        self.bridge.report_done.connect(self._on_report_done)
        self.bridge.task_done.connect(self._on_task_done)
        deps.app_bridge.preview_updated.connect(self._on_preview_updated)
        self.flow.subscribe(self._on_flow_changed)

        self._press = QTimer(self)
        self._press.setSingleShot(True)
        self._press.timeout.connect(self._on_long_press)
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self.check_timeouts)
        self._tick.start()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    # Ways in ----------------------------------------------------------------------------------

    def on_smart_card_event(self, event: object) -> None:
        """A SmartCardListener (from the PC/SC threads): only queued on to the GUI thread."""
        self.bridge.smart_card_event.emit(event)

    def _on_smart_card_event(self, event: object) -> None:
        if not (isinstance(event, SmartCardSeen) and event.kind == "staff_badge" and event.uid):
            return
        if self.session is not None:
            return  # already signed in: a second badge changes nothing
        log.info("staff badge seen: PIN pad shown")
        self.open_pin_pad(event.uid)

    def open_pin_pad(self, badge_uid: bytes | None = None) -> None:
        """Show the PIN pad: for a badge (only the PIN asked), or for a staff number."""
        if self.session is not None:
            return
        current = self.window.modes.currentWidget()
        if current is not self.pin:
            self._return_to = current
        self._badge_uid = badge_uid
        self.lang = self.flow.session.lang  # whatever the screen was showing
        self._prepare(self.pin)
        self.pin.start(f"…{badge_uid[-2:].hex().upper()}" if badge_uid else None)
        self._pin_started = self._now_s()
        self.window.show_page(self.pin)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in INPUT_EVENTS:
            self._activity()
        if kind in PRESS_EVENTS and self.session is None and self.window.isVisible():
            point = self._global_point(event)
            if point is not None and self._corner().contains(self.window.mapFromGlobal(point)):
                if not self._press.isActive():
                    self._press.start(int(self.config.staff.long_press_s * 1000))
            else:
                self._press.stop()
        elif kind in RELEASE_EVENTS:
            self._press.stop()
        return False

    @staticmethod
    def _global_point(event: QEvent) -> QPoint | None:
        if isinstance(event, QMouseEvent):
            return event.globalPosition().toPoint()
        if isinstance(event, QTouchEvent) and event.points():
            return event.points()[0].globalPosition().toPoint()
        return None

    def _corner(self) -> QRect:
        return QRect(0, 0, CORNER_PX, CORNER_PX)

    def _on_long_press(self) -> None:
        if self.session is None and self.window.modes.currentWidget() is not self.pin:
            log.info("long-press on the staff corner: PIN pad shown")
            self.open_pin_pad(None)

    def _on_pin_cancelled(self) -> None:
        self._badge_uid = None
        target = self._return_to or self.window.applicant_page
        self._return_to = None
        self.window.show_page(target if target is not self.pin else self.window.applicant_page)

    def _on_pin_submitted(self, number: str, pin: str) -> None:
        self.pin.checking()
        uid = self._badge_uid
        store = self.deps.store

        def check() -> None:
            try:
                result: object = (
                    store.login_with_badge(uid, pin)
                    if uid is not None
                    else store.login_with_pin(number, pin)
                )
            except StorageError as exc:
                result = exc
            self.bridge.login_done.emit(result)

        self._executor.submit(check)

    def _on_login_done(self, result: object) -> None:
        lang = self.pin.lang
        if isinstance(result, StaffSession):
            self._badge_uid = None
            self.pin.clear()
            if self.flow.step is not Step.HOME:
                self.flow.cancel()  # an applicant's unfinished session is not kept for staff
            self.session = result
            self.show_home()
            return
        if isinstance(result, LoginRefused):
            if result.reason == "locked" and result.locked_until is not None:
                left = (result.locked_until - self._clock()).total_seconds()
                text = s("pin_locked", lang, minutes=max(1, math.ceil(left / 60)))
            elif result.reason == "disabled":
                text = s("pin_disabled", lang)
            else:
                text = s("pin_wrong_plain", lang)
        else:
            text = s("pin_failed", lang, reason=getattr(result, "reason", str(result)))
        self.pin.refused(text)
        self._pin_started = self._now_s()

    # Pages ------------------------------------------------------------------------------------

    def _prepare(self, page: StaffPage) -> None:
        """The page in the session's language, with who is signed in at the top."""
        page.set_lang(self.lang)
        session = self.session
        page.set_who(
            ""
            if session is None
            else s(
                "staff_bar",
                page.lang,
                number=session.staff_number,
                role=s(f"role_{session.role}", page.lang),
            )
        )

    def _on_lang_toggled(self) -> None:
        self.lang = "en" if self.lang == "zh" else "zh"
        page = self.window.modes.currentWidget()
        if page is self.pin:
            self._prepare(self.pin)
            self.pin.render()
        elif page is self.home:
            self.show_home()
        elif page is self.picker:
            self._prepare(self.picker)
            self.picker.render(self.deps.catalog())
        elif page is self.manual:
            self._prepare(self.manual)
            self.manual.render()
        elif page is self.today:
            self.show_today()
        elif page is self.technician:
            self._prepare(self.technician)
            self.technician.render()

    # Staying in, and out ----------------------------------------------------------------------

    def _now_s(self) -> float:
        return self._clock().timestamp()

    def _activity(self) -> None:
        if self.session is not None:
            self.session.touch(self._clock())
        elif self.window.modes.currentWidget() is self.pin:
            self._pin_started = self._now_s()

    def check_timeouts(self) -> None:
        """Sign out an idle session; put an untouched PIN pad away."""
        if self.session is not None:
            if self.session.expired(self._clock()) and not self._report_running:
                self.logout("idle")
        elif (
            self.window.modes.currentWidget() is self.pin
            and self._now_s() - self._pin_started >= self.config.staff.pin_pad_timeout_s
        ):
            self.pin.clear()
            self._on_pin_cancelled()

    def logout(self, reason: str = "user") -> None:
        """End the staff session; an assisted application under way is wiped with it."""
        session = self.session
        if session is None:
            return
        self.session = None
        try:
            self.deps.store.logout(session, reason)  # type: ignore[arg-type]
        except StorageError as exc:
            log.error("logout of %s not audited: %s", session.staff_number, exc)
        self.deps.preview.stop()
        for page in (self.today, self.technician, self.manual, self.pin):
            page.clear()
        if self.flow.session.assist is not None or self.flow.step is not Step.HOME:
            self.flow.cancel()
        self._return_to = None
        self.window.show_applicant()
        self.window.refresh()

    # Staff home -------------------------------------------------------------------------------

    def show_home(self) -> None:
        session = self.session
        if session is None:
            self.window.show_applicant()
            return
        self.deps.preview.stop()
        self._prepare(self.home)
        self.home.render(session, self.config.staff.idle_logout_s / 60)
        self.window.show_page(self.home)

    PERMISSION = {
        "assisted": "assisted_application",
        "agent": "agent_application",
        "today": "todays_work",
        "technician": "diagnostics",
        "restart": "restart",
        "exit": "exit",
    }

    def choose(self, action: str) -> None:
        """A staff home button (also for tests): checked against the role first."""
        session = self.session
        if session is None:
            return
        if not session.can(self.PERMISSION[action]):
            log.warning("staff %s (%s) refused: %s", session.staff_number, session.role, action)
            self.home.say(s("not_allowed", self.home.lang), "error")
            return
        if action in ("assisted", "agent"):
            self.picker.agent = action == "agent"
            self._prepare(self.picker)
            self.picker.render(self.deps.catalog())
            self.window.show_page(self.picker)
        elif action == "today":
            self.show_today()
        elif action == "technician":
            self.show_technician()
        else:
            self._leave(action)

    def _leave(self, action: str) -> None:
        session = self.session
        assert session is not None
        code = EXIT_LEAVE if action == "exit" else EXIT_RESTART
        try:
            self.deps.store.audit.append(session.staff_number, action, {"exit_status": code})
        except StorageError as exc:
            # Leaving unrecorded is not allowed: the admin sees why and can try again.
            self.home.say(s("pin_failed", self.home.lang, reason=exc.reason), "error")
            return
        log.warning("staff %s: %s (exit status %d)", session.staff_number, action, code)
        self.logout("exit")
        self.deps.quit(code)

    # Assisted applications --------------------------------------------------------------------

    def _on_thing_picked(self, thing_id: str) -> None:
        session = self.session
        if session is None:
            return
        self.window.show_applicant()
        self.flow.start_assisted(thing_id, session.staff_number, agent=self.picker.agent)
        self.flow.set_language(self.lang)  # the applicant's screens start in the staff's

    def _on_flow_changed(self, step: Step, session: Session) -> None:
        self.bar.render(step, session)
        if step is not Step.HOME or self.session is None:
            return
        if self.window.modes.currentWidget() is self.manual:
            # The applicant's walk-away wipe came while staff were typing: that goes too.
            self.manual.clear()
            self.show_home()
        elif self.window.showing_applicant:
            # The assisted application is done (or given up): back to the staff menu.
            self.show_home()

    def _on_manual_requested(self) -> None:
        who = self.flow.awaiting
        if who is None or self.session is None:
            return
        self._prepare(self.manual)
        self.manual.start(who)
        self.window.show_page(self.manual)

    def _on_manual_entered(self, document: object, reason: str) -> None:
        assert isinstance(document, IdentityDocument)
        who = self.flow.awaiting
        self.window.show_applicant()
        if who == "agent":
            self._apply_manual(self.flow.session, document, reason, None)
            return
        session = self.flow.session
        platform = self.deps.platform

        def ask() -> None:
            held: frozenset[str] | None
            try:
                held = platform.held_licences(document.id_number)
            except PlatformUnavailable as exc:
                log.warning("e-licence look-up unavailable: %s", exc)
                held = None
            except Exception:  # a client bug must not leave staff waiting
                log.exception("e-licence look-up crashed")
                held = None
            self.bridge.task_done.emit(("licences", session, document, reason, held))

        self.deps.worker.submit(ask)

    def _apply_manual(
        self,
        session: Session,
        document: IdentityDocument,
        reason: str,
        held: frozenset[str] | None,
    ) -> None:
        staff = self.session
        if staff is None or session is not self.flow.session:
            log.info("manual identity for an ended session dropped")
            return
        who = self.flow.awaiting
        self.flow.manual_identity(document, reason, held)
        assist = session.assist
        accepted = who is not None and assist is not None and assist.manual.get(who) == reason
        accepted = accepted and (
            session.identity is document
            if who == "applicant"
            else assist is not None and assist.agent_identity is document
        )
        if accepted and who is not None:
            try:
                self.deps.desk.manual_identity(
                    staff, who, reason.split(":")[0], document.masked_id_number
                )
            except (StorageError, NotAllowed) as exc:
                log.error("manual identity not audited: %s", exc)

    # Today's work -----------------------------------------------------------------------------

    def show_today(self, message: str = "", role: str | None = None) -> None:
        self._prepare(self.today)
        try:
            items = self.deps.desk.todays_work(self._clock().date())
        except StorageError as exc:
            items = []
            message, role = s("pin_failed", self.today.lang, reason=exc.reason), "error"
        self.today.show_items(items, summarize(items), self.deps.catalog())
        self.today.say(message, role)
        self.window.show_page(self.today)

    def _on_reprint(self, application_id: str) -> None:
        session = self.session
        if session is None:
            return
        lang = self.today.lang
        try:
            receipt = self.deps.desk.reprint(session, application_id)
        except (LookupError, StorageError, NotAllowed) as exc:
            self.today.say(s("reprint_failed", lang, reason=str(exc)), "error")
            return
        printer = self.deps.devices.printer

        def print_it(doc: Receipt) -> None:
            try:
                result = printer.print_receipt(doc)
            except Exception as exc:  # shown to staff; the stored receipt is untouched
                log.exception("reprint crashed")
                result = PrintResult(False, PrinterStatus(online=False), detail=type(exc).__name__)
            self.bridge.task_done.emit(("reprint", application_id, result))

        self.deps.worker.submit(print_it, receipt)

    def _on_act(self, action: str, application_id: str, reason: str) -> None:
        session = self.session
        if session is None:
            return
        desk = self.deps.desk
        lang = self.today.lang
        try:
            receipt = desk.storage.get(application_id).receipt_number
            if action == "void":
                desk.void(session, application_id, reason)
            elif action == "requeue":
                desk.requeue(session, application_id, reason)
            elif action == "set_aside":
                desk.set_aside(session, application_id, reason)
            else:
                raise ValueError(action)
        except NotVoidable:
            self.show_today(s("action_refused", lang, reason=s("refused_left", lang)), "error")
            return
        except (TransitionError, UnknownApplication):
            self.show_today(s("action_refused", lang, reason=s("refused_state", lang)), "error")
            return
        except NotAllowed:
            self.show_today(s("not_allowed", lang), "error")
            return
        except StorageError as exc:
            self.show_today(s("action_refused", lang, reason=exc.reason), "error")
            return
        self.show_today(s(f"done_{action}", lang, receipt=receipt), "ok")

    # Technician -------------------------------------------------------------------------------

    def show_technician(self) -> None:
        from ui.diagnostics import usb_mounts

        self._prepare(self.technician)
        self.technician.render()
        self.technician.set_destinations(self.config.data_dir, usb_mounts())
        self.window.show_page(self.technician)
        self.deps.preview.start()

    def _leave_technician(self) -> None:
        self.deps.preview.stop()
        self.technician.camera.clear()
        self.show_home()

    def _on_preview_updated(self, update: object) -> None:
        if self.window.modes.currentWidget() is self.technician:
            self.technician.show_frame(update)

    def run_diagnostics(self) -> None:
        """Every check, each shown as it finishes; the ID reader is stopped meanwhile (a
        serial port has one user) and started again afterwards."""
        session = self.session
        if session is None or self._report_running:
            return
        if not session.can("diagnostics"):
            self.technician.say(s("not_allowed", self.technician.lang), "error")
            return
        from ui.diagnostics import check_names, overall_report

        config, devices = self.config, self.deps.devices
        self.technician.begin(check_names(config))
        self._report_running = True
        devices.id_reader.stop()
        actor = session.staff_number

        def run() -> None:
            try:
                result: object = overall_report(
                    config, actor=actor, devices=devices, on_check=self.bridge.check_done.emit
                )
            except Exception as exc:  # shown on the screen; the reader still comes back
                log.exception("the diagnostics run failed")
                result = exc
            self.bridge.report_done.emit(result)

        self._executor.submit(run)

    def _on_report_done(self, result: object) -> None:
        self._report_running = False
        try:
            self.deps.start_reader()
        except Exception:  # the reader's own state machine reports a lost reader
            log.exception("the ID reader did not start again after the diagnostics")
        if isinstance(result, Exception):
            self.technician.finished(None, str(result))
            return
        self._last_report = result
        self.technician.finished(len(result.failed()))  # type: ignore[attr-defined]

    def _on_test_page(self) -> None:
        from ui.diagnostics import print_test_page

        config, printer = self.config, self.deps.devices.printer

        def run() -> None:
            try:
                check: object = print_test_page(config, printer)
            except Exception as exc:
                log.exception("the test page failed")
                check = exc
            self.bridge.task_done.emit(("test_page", check))

        self.deps.worker.submit(run)

    def _on_bundle(self, directory: object) -> None:
        session = self.session
        if session is None or not session.can("support_bundle"):
            self.technician.say(s("not_allowed", self.technician.lang), "error")
            return
        from ui.diagnostics import bundle_file_name, write_support_bundle

        assert isinstance(directory, Path)
        path = directory / bundle_file_name(self.config)
        config, actor, report = self.config, session.staff_number, self._last_report
        self.technician.say(s("tech_bundle_busy", self.technician.lang))

        def run() -> None:
            try:
                result: object = write_support_bundle(config, path, actor=actor, report=report)
            except (OSError, StorageError) as exc:  # a full or pulled USB stick: on the screen
                log.warning("support bundle not written: %s", exc)
                result = exc
            self.bridge.task_done.emit(("bundle", result))

        self._executor.submit(run)

    # Results from the workers -----------------------------------------------------------------

    def _on_task_done(self, result: object) -> None:
        kind, *rest = result  # type: ignore[misc]
        if kind == "licences":
            session, document, reason, held = rest
            self._apply_manual(session, document, reason, held)
        elif kind == "reprint":
            application_id, printed = rest
            self._reprint_done(application_id, printed)
        elif kind == "test_page":
            (check,) = rest
            detail = getattr(check, "detail", str(check))
            self.technician.say(
                s("tech_test_page_done", self.technician.lang, detail=detail),
                "ok" if getattr(check, "ok", False) else "error",
            )
        elif kind == "bundle":
            (summary,) = rest
            lang = self.technician.lang
            if isinstance(summary, Exception):
                self.technician.say(s("tech_bundle_failed", lang, reason=str(summary)), "error")
            else:
                self.technician.say(
                    s(
                        "tech_bundle_done",
                        lang,
                        path=str(summary.path),
                        size=math.ceil(summary.size / 1024),
                    ),
                    "ok",
                )

    def _reprint_done(self, application_id: str, printed: PrintResult) -> None:
        session = self.session
        if session is None:
            return
        lang = self.today.lang
        try:
            times = self.deps.desk.reprint_done(session, application_id, printed.printed)
        except StorageError as exc:
            self.show_today(s("reprint_failed", lang, reason=exc.reason), "error")
            return
        if printed.printed:
            self.show_today(s("reprinted", lang, n=times), "ok")
        else:
            self.show_today(s("reprint_failed", lang, reason=printed.detail), "error")

    def close(self) -> None:
        """Sign out (audited) and stop the staff workers."""
        self.logout("exit")
        self._tick.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self._executor.shutdown(wait=True, cancel_futures=True)
