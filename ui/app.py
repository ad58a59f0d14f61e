"""The composition root: the only place that wires concrete classes together."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from PySide6.QtWidgets import QApplication

from devices.registry import Devices, build_devices
from kiosk.audit import AuditLog
from kiosk.catalog import CatalogStore
from kiosk.config import Config
from kiosk.flow import ApplicantFlow, Purpose, Session, Step
from kiosk.form import MaterialNeed
from kiosk.intake import Intake
from kiosk.ports import (
    CameraBack,
    CameraError,
    CameraLost,
    CardPlaced,
    CardRead,
    CardRemoved,
    Platform,
    PlatformUnavailable,
    PrinterStatus,
    PrintResult,
    ReaderBack,
    ReaderEvent,
    ReaderLost,
    ReadFailed,
    SupportsDemoCards,
)
from kiosk.receipt import Receipt
from kiosk.staff import StaffStore
from kiosk.storage import Storage
from sync.connect import Connection, NotEnrolled, connect
from ui.bridge import Bridge
from ui.camera_view import CameraPreview
from ui.context import UiContext
from ui.input_method import enabled as keyboard_enabled
from ui.main_window import InputWatcher, MainWindow
from ui.staff.desk import StaffDesk
from ui.staff.mode import StaffDeps, StaffMode
from ui.theme import apply_theme

log = logging.getLogger(__name__)


class PlatformConfigError(ValueError):
    """The platform cannot be used as configured (e.g. the kiosk is not enrolled)."""


@dataclass
class Kiosk:
    """Everything a running kiosk holds, for the CLI and for tests."""

    config: Config
    storage: Storage
    catalogs: CatalogStore
    devices: Devices
    platform: Platform
    intake: Intake
    flow: ApplicantFlow
    bridge: Bridge
    ctx: UiContext
    window: MainWindow
    worker: ThreadPoolExecutor
    input_watcher: InputWatcher
    preview: CameraPreview
    connection: Connection
    audit: AuditLog
    staff_store: StaffStore
    staff: StaffMode

    def finish_start(self) -> None:
        """What waits until the home screen is up: the on-screen keyboard (here, on the GUI
        thread) and the camera (OpenCV, on a background thread)."""
        if self.config.ui.virtual_keyboard and keyboard_enabled() and self.window.keyboard is None:
            from ui.keyboard import OnScreenKeyboard  # Qt Quick: loaded now, not at start

            self.window.attach_keyboard(OnScreenKeyboard())
        self.devices.camera.warm_up()

    def close(self) -> None:
        """Stop devices and workers, release the window; the QApplication stays usable."""
        self.connection.close()
        if self.devices.smart_card is not None:
            self.devices.smart_card.stop()
        self.staff.close()
        self.devices.id_reader.stop()
        self.preview.shutdown()
        self.worker.shutdown(wait=True, cancel_futures=True)
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self.input_watcher)
        self.window.close()
        self.window.deleteLater()
        self.devices.close()
        self.staff_store.close()
        self.audit.close()
        self.storage.close()


def _quit_application(window: MainWindow, status: int) -> None:
    """Leave through the lock-down's quit() when `kiosk run` installed one (it alone may close
    the window), else plainly; `status` becomes the process's exit status."""
    from ui.lockdown import Lockdown

    app = QApplication.instance()
    lockdown = window.findChild(Lockdown)
    if lockdown is not None:
        lockdown.quit()
    elif app is not None:
        app.quit()
    if app is not None:
        app.exit(status)


def build_kiosk(config: Config, app: QApplication) -> Kiosk:
    """Wire the kiosk from its config; the caller shows the window."""
    apply_theme(app, config.ui.font_family, config.ui.base_font_pt)
    data_dir = config.data_dir
    storage = Storage(data_dir, hall_code=config.hall.code, kiosk_code=config.hall.kiosk_code)
    catalogs = CatalogStore(data_dir)
    bridge = Bridge()
    try:
        connection = connect(config, catalogs, on_state=bridge.sync_state.emit)
    except NotEnrolled as exc:
        storage.close()
        raise PlatformConfigError(str(exc)) from exc
    except BaseException:
        storage.close()
        raise
    try:
        devices = build_devices(config, data_dir)
    except BaseException:
        connection.close()
        storage.close()
        raise
    platform = connection.platform
    try:
        audit = AuditLog(data_dir)
        staff_store = StaffStore(data_dir, audit=audit, config=config.staff)
    except BaseException:
        devices.close()
        connection.close()
        storage.close()
        raise
    intake = Intake(
        config,
        storage,
        catalogs,
        platform,
        connection.sealer,
        on_saved=lambda _id: connection.wake(),
        audit=audit,
    )
    intake.seal_legacy()
    flow = ApplicantFlow(intake, default_lang="en" if config.session.language == "en" else "zh")
    # All device I/O runs on one dedicated thread, never on the GUI thread. The camera's live
    # preview is the exception: it has its own thread (ui.camera_view), and the camera
    # serialises the two itself.
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devices")
    preview = CameraPreview(devices.camera, bridge)

    def request_capture(need: MaterialNeed) -> None:
        label = need.definition.name.get(flow.session.lang)
        preview.captured()  # whatever lies on the table now is being taken: not again
        future = worker.submit(devices.camera.capture, need.id, need.definition.aspect, label)

        def done(f: Future[object]) -> None:
            try:
                bridge.page_captured.emit(need.id, f.result())
            except CameraError as exc:
                log.error("capture of %s failed: %s", need.id, exc)
                bridge.capture_failed.emit(need.id, str(exc))
            except Exception as exc:  # a driver bug must not leave the applicant waiting
                log.exception("capture of %s crashed", need.id)
                bridge.capture_failed.emit(need.id, f"internal error: {type(exc).__name__}")

        future.add_done_callback(done)

    reader = devices.id_reader
    demo_cards = list(reader.demo_cards()) if isinstance(reader, SupportsDemoCards) else []
    ctx = UiContext(
        flow=flow,
        config=config,
        bridge=bridge,
        request_capture=request_capture,
        demo_cards=demo_cards,
        tap_card=reader.tap if isinstance(reader, SupportsDemoCards) else None,
    )
    # The on-screen keyboard (Qt Quick, the pinyin engine) comes after the first screen is
    # painted: Kiosk.finish_start(). No one types on the home screen.
    window = MainWindow(ctx)
    input_watcher = InputWatcher(window)
    app.installEventFilter(input_watcher)

    def on_reader_event(event: ReaderEvent) -> None:
        if isinstance(event, CardPlaced):
            flow.card_placed()
        elif isinstance(event, CardRead):
            log.info("card read in %.0f ms", event.elapsed_ms)
            if flow.step is not Step.IDENTIFY:
                # Nobody is asked for a card (a card left on the reader after the technician's
                # check, say): nothing to look up for it either.
                log.info("card read outside the identify step ignored")
            elif flow.session.purpose is Purpose.PROGRESS or flow.awaiting == "agent":
                # Only this kiosk's own records are shown, or it is an agent's card: no need
                # to ask the platform for anything.
                flow.card_read(event.document, None)
            else:
                look_up_licences(event)
        elif isinstance(event, ReadFailed):
            log.warning("card read failed: %s", event.reason)
            flow.card_failed()
        elif isinstance(event, CardRemoved):
            log.info("card removed")
        elif isinstance(event, ReaderLost):
            log.error("ID card reader lost: %s", event.reason)
            flow.reader_lost()
        elif isinstance(event, ReaderBack):
            log.info("ID card reader back")
            flow.reader_back()

    def look_up_licences(event: CardRead) -> None:
        # The platform may be slow or away: ask on the worker thread (with the look-up's own
        # short timeout) and hand the answer to the flow on the GUI thread.
        session = flow.session

        def ask() -> None:
            held: frozenset[str] | None
            try:
                held = platform.held_licences(event.document.id_number)
            except PlatformUnavailable as exc:
                log.warning("e-licence look-up unavailable, asking for paper copies: %s", exc)
                held = None
            except Exception:  # a client bug must not leave the applicant at the card step
                log.exception("e-licence look-up crashed")
                held = None
            bridge.licences_ready.emit((session, event.document, held))

        worker.submit(ask)

    def on_licences_ready(answer: object) -> None:
        session, document, held = answer  # type: ignore[misc]
        if session is not flow.session:
            log.info("e-licence answer for an ended session dropped")
            return
        flow.card_read(document, held)

    bridge.licences_ready.connect(on_licences_ready)
    bridge.sync_state.connect(window.set_sync_state)
    bridge.reader_event.connect(on_reader_event)
    reader.start(bridge.on_reader_event)

    def on_camera_event(event: object) -> None:
        if isinstance(event, CameraLost):
            log.error("document camera lost: %s", event.reason)
        elif isinstance(event, CameraBack):
            log.info("document camera back")

    bridge.camera_event.connect(on_camera_event)
    devices.camera.set_listener(bridge.on_camera_event)

    def print_receipt(receipt: Receipt) -> None:
        try:
            result = devices.printer.print_receipt(receipt)
            if not result.image_png:
                result = replace(result, image_png=devices.printer.render(receipt))
        except Exception as exc:  # the applicant still gets the receipt on screen
            log.exception("printing the receipt crashed")
            result = PrintResult(
                False, PrinterStatus(online=False), detail=f"internal error: {type(exc).__name__}"
            )
        bridge.receipt_ready.emit(result)

    def on_flow_changed(step: Step, session: Session) -> None:
        # The camera looks at the table only while the applicant is at the materials step.
        if step is Step.MATERIALS:
            preview.start()
        else:
            preview.stop()
        if step is Step.RECEIPT and session.result is not None and not ctx.receipt_png:
            ctx.receipt_printed = False
            worker.submit(print_receipt, session.result.receipt)
        elif step is Step.HOME:
            ctx.receipt_png = b""
            ctx.receipt_printed = False

    def on_receipt_ready(printed: PrintResult) -> None:
        if flow.step is not Step.RECEIPT:
            return
        result = flow.session.result
        if printed.printed and result is not None:
            storage.mark_printed(result.application_id)
        else:
            log.warning("receipt not printed: %s", printed.detail)
        ctx.receipt_png = printed.image_png
        ctx.receipt_printed = printed.printed
        window.refresh()

    flow.subscribe(on_flow_changed)
    bridge.receipt_ready.connect(on_receipt_ready)

    desk = StaffDesk(storage, audit, on_requeued=lambda _id: connection.wake())
    staff = StaffMode(
        window,
        StaffDeps(
            config=config,
            flow=flow,
            store=staff_store,
            desk=desk,
            devices=devices,
            worker=worker,
            preview=preview,
            app_bridge=bridge,
            platform=platform,
            catalog=lambda: catalogs.catalog,
            start_reader=lambda: reader.start(bridge.on_reader_event),
            quit=lambda status: _quit_application(window, status),
        ),
    )
    if devices.smart_card is not None:
        # Staff badges: PC/SC events come on pyscard's threads and are queued to the GUI.
        devices.smart_card.start(staff.on_smart_card_event)
    connection.start()
    return Kiosk(
        config,
        storage,
        catalogs,
        devices,
        platform,
        intake,
        flow,
        bridge,
        ctx,
        window,
        worker,
        input_watcher,
        preview,
        connection,
        audit,
        staff_store,
        staff,
    )
