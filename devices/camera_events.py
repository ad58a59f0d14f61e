"""The camera's one listener for CameraLost / CameraBack, shared by every camera driver."""

from __future__ import annotations

import logging

from kiosk.ports import CameraEvent, CameraListener

log = logging.getLogger(__name__)


class CameraEvents:
    """Holds the listener and calls it; a listener's bug is logged and never breaks the camera."""

    def __init__(self) -> None:
        self._listener: CameraListener | None = None

    def set(self, listener: CameraListener | None) -> None:
        self._listener = listener  # one attribute store: atomic, no lock needed

    def tell(self, event: CameraEvent) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            listener(event)
        except Exception:  # a listener bug must not break the camera
            log.exception("camera listener failed on %s", type(event).__name__)
