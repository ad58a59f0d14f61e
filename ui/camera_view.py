"""The live camera preview: a worker thread that finds the page, and the widget that shows it.

The worker pulls preview frames from the document camera, runs page detection, the quality
checks and auto-capture on its own QThread, shrinks the frame for the screen and hands one
immutable PreviewUpdate to the GUI thread through a queued signal. The GUI thread only paints,
so the preview stays smooth however long detection takes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QCoreApplication,
    QObject,
    QPointF,
    QRectF,
    QSize,
    Qt,
    QThread,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from kiosk.i18n import Lang, Text
from kiosk.ports import CameraError, CaptureIssue, DocumentCamera
from ui.bridge import Bridge

if TYPE_CHECKING:
    import numpy as np

    from devices.scanning import AutoCapture, AutoState

log = logging.getLogger(__name__)

FRAME_INTERVAL_MS = 80  # at most ~12 previews a second: smooth enough, light on the CPU
LOST_INTERVAL_MS = 500  # how often a missing camera is asked again
DISPLAY_WIDTH = 960  # frames are shrunk to this before crossing to the GUI thread

WORDS: dict[str, Text] = {
    "no_page": Text("请把材料平放在拍摄区", "Lay the document flat on the camera table"),
    "settling": Text("请不要移动，马上自动拍摄…", "Hold still: it will be taken in a moment…"),
    "ready": Text("正在拍摄…", "Taking the picture…"),
    "taken": Text("拍好了。请放下一页", "Done. Lay down the next page"),
    "lost": Text("摄像头没有连接，请联系工作人员", "The camera is not connected: please ask staff"),
    "starting": Text("正在打开摄像头…", "Starting the camera…"),
    "manual": Text("要加拍这一页，请点“再拍一页”", "To add this page, tap Scan another page"),
}


@dataclass(frozen=True)
class PreviewUpdate:
    """One preview frame as the screen shows it (made on the worker thread, never changed)."""

    image: QImage | None  # the frame, shrunk for the screen; None while the camera is lost
    corners: tuple[tuple[float, float], ...] | None  # the page outline in `image` pixels
    issues: tuple[CaptureIssue, ...]  # what the checks found on the page, most urgent first
    state: AutoState
    progress: float  # 0..1 of the time the page must hold still
    lost: bool = False

    def message(self, lang: Lang, auto: bool = True) -> str:
        """What to tell the applicant about this frame; `auto` False: nothing is waiting to
        be taken by itself (every material has its pages)."""
        from devices.scanning import AutoState

        if self.lost:
            return WORDS["lost"].get(lang)
        if self.state is AutoState.NO_PAGE:
            return WORDS["no_page"].get(lang)
        if self.issues:
            return self.issues[0].message.get(lang)
        if not auto and self.state is not AutoState.TAKEN:
            return WORDS["manual"].get(lang)
        return WORDS[self.state.value].get(lang)


def to_qimage(pixels: np.ndarray) -> QImage:
    """A QImage that owns a copy of a BGR uint8 frame (safe to hand to another thread)."""
    import numpy as np

    frame = np.ascontiguousarray(pixels)
    height, width = frame.shape[:2]
    image = QImage(frame.data, width, height, frame.strides[0], QImage.Format.Format_BGR888)
    return image.copy()  # the numpy buffer goes away with this function


class PreviewWorker(QObject):
    """Runs on the preview thread: frame → detection → checks → auto-capture → update."""

    updated = Signal(object)  # a PreviewUpdate

    def __init__(self, camera: DocumentCamera, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._camera = camera
        self._clock = clock
        self._auto_capture: AutoCapture | None = None  # made with the first frame (OpenCV)
        self._auto_lock = threading.Lock()  # captured() comes from the GUI thread
        self._timer: QTimer | None = None
        self._running = False

    def _auto(self) -> AutoCapture:
        """The auto-capture state (held under _auto_lock); the scanning pipeline, and with it
        OpenCV, is loaded here, on first use, rather than when the kiosk starts."""
        if self._auto_capture is None:
            from devices.scanning import AutoCapture

            self._auto_capture = AutoCapture(clock=self._clock)
        return self._auto_capture

    @Slot()
    def begin(self) -> None:
        """Start pulling frames (on the preview thread)."""
        if self._timer is None:
            # Made here, so it belongs to (and fires on) the preview thread.
            self._timer = QTimer(self)
            self._timer.setSingleShot(True)
            self._timer.timeout.connect(self._tick)
        with self._auto_lock:
            self._auto().reset()
        self._running = True
        self._timer.start(0)

    @Slot()
    def end(self) -> None:
        """Stop pulling frames."""
        self._running = False
        if self._timer is not None:
            self._timer.stop()
        with self._auto_lock:
            self._auto().reset()

    @Slot()
    def dispose(self) -> None:
        """Stop for good and come back to the GUI thread, so Qt can delete the worker and
        its timer there (a timer may only be stopped on its own thread)."""
        self.end()
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())

    def captured(self) -> None:
        """The page on the table is being captured: do not take it again (any thread)."""
        with self._auto_lock:
            self._auto().captured()

    @Slot()
    def _tick(self) -> None:
        if not self._running:
            return
        started = time.monotonic()
        try:
            update = self._next_update()
            delay = FRAME_INTERVAL_MS
        except CameraError:
            # The camera reports its own loss (CameraLost); here only the picture goes.
            from devices.scanning import AutoState

            update = PreviewUpdate(None, None, (), AutoState.NO_PAGE, 0.0, lost=True)
            delay = LOST_INTERVAL_MS
            with self._auto_lock:
                self._auto().reset()
        except Exception:  # a bug in a frame must not stop the preview for good
            log.exception("preview frame failed")
            update, delay = None, LOST_INTERVAL_MS
        if update is not None:
            self.updated.emit(update)
        if self._running and self._timer is not None:
            spent = (time.monotonic() - started) * 1000
            self._timer.start(max(5, round(delay - spent)))

    def _next_update(self) -> PreviewUpdate:
        import cv2

        from devices import scanning

        frame = self._camera.preview().pixels
        corners = scanning.detect_document(frame)
        quality = scanning.check_quality(frame, corners)
        height, width = frame.shape[:2]
        with self._auto_lock:
            status = self._auto().update(corners, (width, height), quality.ok)
        scale = min(1.0, DISPLAY_WIDTH / width)
        shown = frame
        if scale < 1.0:
            size = (round(width * scale), round(height * scale))
            shown = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        outline = None
        if corners is not None:
            outline = tuple((float(x) * scale, float(y) * scale) for x, y in corners)
        issues = quality.issues if corners is not None else ()
        return PreviewUpdate(to_qimage(shown), outline, issues, status.state, status.progress)


class CameraPreview(QObject):
    """The preview thread and its worker, started and stopped from the GUI thread.

    Updates reach the screen through `bridge.preview_updated`, only while running; stop()
    sends None so the last picture of a document does not stay on a hidden screen.
    """

    _begin = Signal()
    _end = Signal()
    _dispose = Signal()

    def __init__(
        self,
        camera: DocumentCamera,
        bridge: Bridge,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._bridge = bridge
        self._thread = QThread()
        self._thread.setObjectName("camera-preview")
        self._worker = PreviewWorker(camera, clock)
        self._worker.moveToThread(self._thread)
        self._begin.connect(self._worker.begin)
        self._end.connect(self._worker.end)
        # Blocking: shutdown() returns only once the worker has left its thread.
        self._dispose.connect(self._worker.dispose, Qt.ConnectionType.BlockingQueuedConnection)
        self._worker.updated.connect(self._on_updated)
        self._thread.start()
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Show the live preview (idempotent)."""
        if not self._running:
            self._running = True
            self._begin.emit()

    def stop(self) -> None:
        """Stop the preview and blank it on screen (idempotent)."""
        if self._running:
            self._running = False
            self._end.emit()
            self._bridge.preview_updated.emit(None)

    def captured(self) -> None:
        """A capture started: the page now on the table must not be auto-captured again."""
        self._worker.captured()

    def shutdown(self) -> None:
        """Stop and end the thread; the preview cannot be started again."""
        self.stop()
        if self._thread.isRunning():
            self._dispose.emit()
        self._thread.quit()
        if not self._thread.wait(5000):
            log.error("the camera preview thread did not stop")

    @Slot(object)
    def _on_updated(self, update: object) -> None:
        if self._running and isinstance(update, PreviewUpdate):
            self._bridge.preview_updated.emit(update)


class CameraView(QWidget):
    """The live picture with the page outline, a hold-still bar and what to do, in words."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("camera_view")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMinimumSize(320, 240)
        self._update: PreviewUpdate | None = None
        self._text = ""
        self._auto = True

    def sizeHint(self) -> QSize:
        return QSize(720, 540)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return width * 3 // 4

    def show_update(
        self, update: PreviewUpdate, lang: Lang, auto: bool = True, text: str | None = None
    ) -> None:
        """Show a new frame (cheap: stores it and schedules a paint); `auto` False when no
        page is waiting to be taken by itself (no hold-still bar then); `text` replaces the
        applicant's words (the technician's screen)."""
        self._update = update
        self._auto = auto
        self._text = update.message(lang, auto) if text is None else text
        self.update()

    def show_starting(self, lang: Lang) -> None:
        """No frame yet: say the camera is starting."""
        self._update = None
        self._text = WORDS["starting"].get(lang)
        self.update()

    def clear(self) -> None:
        """Drop the picture and words (they may show someone's document)."""
        self._update = None
        self._text = ""
        self.update()

    def status_text(self) -> str:
        """The words on the picture now (for tests and the technician's screen)."""
        return self._text

    def showing_outline(self) -> bool:
        """Whether a page outline is drawn now."""
        return self._update is not None and self._update.corners is not None

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.fillRect(self.rect(), QColor("#1F2937"))
        update = self._update
        area = QRectF(self.rect())
        if update is not None and update.image is not None and not update.image.isNull():
            image = update.image
            scale = min(area.width() / image.width(), area.height() / image.height())
            shown = QRectF(0, 0, image.width() * scale, image.height() * scale)
            shown.moveCenter(area.center())
            painter.drawImage(shown, image)
            if update.corners is not None:
                self._paint_outline(painter, update, shown.topLeft(), scale)
            area = shown
        self._paint_words(painter, area)
        painter.end()

    def _paint_outline(
        self, painter: QPainter, update: PreviewUpdate, origin: QPointF, scale: float
    ) -> None:
        from devices.scanning import AutoState

        assert update.corners is not None
        polygon = QPolygonF(
            [QPointF(origin.x() + x * scale, origin.y() + y * scale) for x, y in update.corners]
        )
        if update.state in (AutoState.READY, AutoState.TAKEN):
            colour = QColor("#22C55E")  # green: taken, or being taken
        elif update.issues:
            colour = QColor("#F59E0B")  # amber: something to fix first
        else:
            colour = QColor("#38BDF8")  # blue: found, holding still
        pen = QPen(colour, 5)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPolygon(polygon)
        if self._auto and update.state is AutoState.SETTLING and update.progress > 0:
            # The hold-still bar fills along the top of the page outline.
            start, end = polygon[0], polygon[1]
            tip = start + (end - start) * update.progress
            bar = QPen(QColor("#22C55E"), 12)
            bar.setCapStyle(Qt.PenCapStyle.RoundCap)
            painter.setPen(bar)
            painter.drawLine(start, tip)

    def _paint_words(self, painter: QPainter, area: QRectF) -> None:
        if not self._text:
            return
        font = QFont(self.font())
        font.setPixelSize(max(22, min(34, round(area.height() / 16))))
        font.setBold(True)
        painter.setFont(font)
        band_height = font.pixelSize() * 2.2
        band = QRectF(area.left(), area.bottom() - band_height, area.width(), band_height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRect(band)
        painter.setPen(QColor("white"))
        painter.drawText(band, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._text)
