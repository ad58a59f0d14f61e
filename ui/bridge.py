"""The one bridge from device and worker threads to the GUI thread (queued Qt signals)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from kiosk.ports import CameraEvent, ReaderEvent


class Bridge(QObject):
    """Emit from any thread; connected slots run on the GUI thread (AutoConnection queues)."""

    reader_event = Signal(object)  # a kiosk.ports.ReaderEvent
    page_captured = Signal(str, object)  # material id, kiosk.ports.CapturedPage
    capture_failed = Signal(str, str)  # material id, reason for the log
    # One immutable object per event rather than (bytes, bool, str): plain values crossing
    # threads in queued connections have tripped refcount bugs in PySide6.
    receipt_ready = Signal(object)  # a kiosk.ports.PrintResult
    camera_event = Signal(object)  # a kiosk.ports.CameraEvent (CameraLost, CameraBack)
    # A ui.camera_view.PreviewUpdate while the live preview runs; None once it has stopped
    # (the screen then drops the last picture: it may show someone's document).
    preview_updated = Signal(object)
    # (session, IdentityDocument, frozenset | None) when the e-licence look-up has answered.
    licences_ready = Signal(object)
    sync_state = Signal(object)  # a sync.relay.SyncState from the relay thread

    def on_reader_event(self, event: ReaderEvent) -> None:
        """A ReaderListener: safe to call from the reader's thread."""
        self.reader_event.emit(event)

    def on_camera_event(self, event: CameraEvent) -> None:
        """A CameraListener: safe to call from any camera thread."""
        self.camera_event.emit(event)
