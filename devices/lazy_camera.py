"""A document camera that is built after the home screen is up, not before.

Building a camera loads OpenCV (and, for the simulator, its renderer): on a kiosk PC booting
with a cold disk that is a good part of the start-up, for a device the applicant meets three
screens later. `LazyCamera` stands in for it: `warm_up()` builds it on a background thread once
the first screen is painted, and whichever call comes first (a preview, a capture) builds it
at once if the warm-up has not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kiosk.ports import (
    Aspect,
    CameraError,
    CameraListener,
    CapturedPage,
    DocumentCamera,
    PreviewFrame,
)

log = logging.getLogger(__name__)


class LazyCamera:
    """The DocumentCamera port over a camera built on first use (or by `warm_up`)."""

    def __init__(self, build: Callable[[], DocumentCamera]) -> None:
        self._build = build
        self._camera: DocumentCamera | None = None
        self._listener: CameraListener | None = None
        self._closed = False
        self._lock = threading.Lock()

    def camera(self) -> DocumentCamera:
        """The real camera, built now if it was not yet; CameraError once closed or if the
        camera cannot be built."""
        with self._lock:
            if self._closed:
                raise CameraError("the camera was closed")
            if self._camera is None:
                try:
                    camera = self._build()
                except (OSError, RuntimeError, ValueError) as exc:
                    log.error("the camera cannot be built: %s", exc)
                    raise CameraError(f"the camera cannot be started: {exc}") from exc
                camera.set_listener(self._listener)
                self._camera = camera
            return self._camera

    @property
    def built(self) -> bool:
        return self._camera is not None

    def warm_up(self) -> threading.Thread:
        """Build the camera on a background thread (an error is logged, and raised again to
        whoever uses the camera next)."""

        def build() -> None:
            try:
                self.camera()
            except CameraError as exc:
                # Logged in camera(); the next preview or capture shows it on screen.
                log.debug("camera warm-up: %s", exc)

        thread = threading.Thread(target=build, name="camera-warm-up", daemon=True)
        thread.start()
        return thread

    def preview(self) -> PreviewFrame:
        return self.camera().preview()

    def capture(self, material_id: str, aspect: Aspect, label: str) -> CapturedPage:
        return self.camera().capture(material_id, aspect, label)

    def set_listener(self, listener: CameraListener | None) -> None:
        with self._lock:
            self._listener = listener
            camera = self._camera
        if camera is not None:
            camera.set_listener(listener)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            camera, self._camera = self._camera, None
        if camera is not None:
            camera.close()
