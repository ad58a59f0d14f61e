"""A simulated document camera (高拍仪): synthetic frames through the real scanning pipeline.

The camera looks down at a base pad. Live preview frames show a page being laid down by a
hand, settling, and lying still; a capture renders a full-resolution still of the requested
material lying still and runs it through devices.scanning (detect, straighten, clean, check,
encode), exactly as the OpenCV camera does, so demo mode exercises the real code. After a
capture the applicant "turns the page": the table is clear for a moment, then the next page
is laid down. Fault triggers: unplug() and plug().
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from devices import scanning
from devices.camera_events import CameraEvents
from devices.synthetic_docs import (
    FOV_MM,
    BackgroundKind,
    DocumentKind,
    Frame,
    Hand,
    Scene,
    render,
)
from kiosk.ports import (
    Aspect,
    CameraBack,
    CameraError,
    CameraListener,
    CameraLost,
    CapturedPage,
    PreviewFrame,
)

__all__ = ["SIZES", "Aspect", "SimulatedCamera"]

log = logging.getLogger(__name__)

PREVIEW_FPS = 15.0  # what a USB document camera's preview stream gives at about 1280×960

PREVIEW_SIZE = (1280, 960)  # live frames: enough to find a card, light enough to render live
STILL_SIZE = (2592, 1944)  # a 5 MP still, the smallest sensor 高拍仪 ship with
# Resolution of the straightened pages: paper at 150 dpi (what a 5 MP still of an A3-class
# pad holds, about 150 dpi), cards at 300 dpi for their small print.
DPI: dict[str, int] = {"a4": 150, "id_card": 300, "free": 150}
# The resulting page sizes in pixels (a "free" sample page is square).
SIZES: dict[str, tuple[int, int]] = {
    "a4": (1240, 1754),
    "id_card": (1011, 638),
    "free": (1240, 1240),
}
_DOCUMENT: dict[str, DocumentKind] = {"a4": "a4_text", "id_card": "id_card", "free": "square"}

# The page-turn timeline, in seconds after a capture.
LIFT_S = 0.5  # the table is clear
SETTLE_S = 1.6  # a hand lays the next page down and lets go
_HAND_SKIN = (120, 160, 214)


class SimulatedCamera:
    """A document camera that renders synthetic frames (demo mode and tests)."""

    def __init__(
        self,
        seed: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        background: BackgroundKind = "pad",
        preview_size: tuple[int, int] = PREVIEW_SIZE,
        still_size: tuple[int, int] = STILL_SIZE,
        enhancement: scanning.Enhancement = "colour",
        fps: float | None = PREVIEW_FPS,
    ) -> None:
        """`fps`: preview frames come at most this often, as from a real camera (a live view
        and `kiosk diag camera` then see a real frame rate); None: as fast as asked."""
        rng = np.random.default_rng(seed)
        self._scene_seed = int(rng.integers(0, 2**31))
        self._clock = clock
        self._background = background
        self._preview_size = preview_size
        self._still_size = still_size
        self._enhancement = enhancement
        self._lock = threading.Lock()
        self._pages: dict[str, int] = {}
        self._plugged = True
        self._closed = False
        self._events = CameraEvents()
        # What lies on the table: a page settled long ago until the first capture.
        self._aspect: Aspect = "a4"
        self._material = ""
        self._label = ""
        self._turns = 0
        self._turned_at = clock() - 60.0
        self._cached: tuple[tuple[object, ...], Frame] | None = None
        self._frame_interval = 1.0 / fps if fps else 0.0
        self._next_frame_at = 0.0
        self._pace_lock = threading.Lock()

    # Faults and events ------------------------------------------------------------------------

    def set_listener(self, listener: CameraListener | None) -> None:
        """Report CameraLost / CameraBack (here: from the thread calling unplug and plug)."""
        self._events.set(listener)

    def unplug(self) -> None:
        """Fault trigger: previews and captures raise CameraError until plug()."""
        with self._lock:
            was_plugged, self._plugged = self._plugged, False
        if was_plugged:
            self._events.tell(CameraLost("simulated unplug"))

    def plug(self) -> None:
        """Undo unplug()."""
        with self._lock:
            was_plugged, self._plugged = self._plugged, True
        if not was_plugged:
            self._events.tell(CameraBack())

    def _check(self) -> None:
        if self._closed:
            raise CameraError("camera closed")
        if not self._plugged:
            raise CameraError("camera not found")

    # The scene on the table -------------------------------------------------------------------

    def _settled(self, aspect: Aspect, label: str, number: int) -> Scene:
        """The page lying still where this turn's hand left it."""
        rng = np.random.default_rng([self._scene_seed, self._turns])
        document = _DOCUMENT[aspect]
        # Cards are laid anywhere near the middle; paper is lined up with the pad's guides.
        spread = (40.0, 25.0) if aspect == "id_card" else (8.0, 5.0)
        centre = (
            FOV_MM[0] / 2 + float(rng.uniform(-spread[0], spread[0])),
            FOV_MM[1] / 2 + float(rng.uniform(-spread[1], spread[1])),
        )
        return Scene(
            seed=self._scene_seed,
            background=self._background,
            document=document,
            centre_mm=centre,
            angle_deg=float(rng.uniform(-12, 12) if aspect == "id_card" else rng.uniform(-3, 3)),
            tilt=tuple(float(v) for v in rng.normal(0, 0.004, 8)),
            light=0.15,
            noise=1.5,
            jpeg_quality=90,
            label=label,
            number=number,
            art_seed=self._turns % 4,
        )

    def _scene_at(self, elapsed: float) -> tuple[Scene, bool]:
        """The scene `elapsed` seconds after the last page turn, and whether it is still."""
        number = self._pages.get(self._material, 0) + 1
        settled = self._settled(self._aspect, self._label, number)
        if self._turns == 0 or elapsed >= SETTLE_S:
            return settled, True
        if elapsed < LIFT_S:
            return dataclasses.replace(settled, document=None), False
        # Being laid down: a hand on one edge, the page sliding the last few millimetres.
        left = (SETTLE_S - elapsed) / (SETTLE_S - LIFT_S)
        phase = elapsed * 7.0
        x, y = settled.centre_mm
        moving = dataclasses.replace(
            settled,
            centre_mm=(x + 12.0 * left * np.cos(phase), y + 8.0 * left * np.sin(phase * 1.3)),
            angle_deg=settled.angle_deg + 4.0 * left * float(np.sin(phase * 0.7)),
            motion_mm=(3.0 * left, 1.0 * left),
            hand=Hand(
                side=3,
                along=0.5,
                reach_mm=5.0 if self._aspect == "id_card" else 10.0,
                fingers=1 if self._aspect == "id_card" else 2,
                skin=_HAND_SKIN,
            ),
        )
        return moving, False

    # The port ---------------------------------------------------------------------------------

    def preview(self) -> PreviewFrame:
        """The next live frame (rendered on the caller's thread); raises CameraError."""
        self._pace()
        with self._lock:
            self._check()
            now = self._clock()
            scene, still = self._scene_at(now - self._turned_at)
            key = (scene, self._preview_size)
            if still and self._cached is not None and self._cached[0] == key:
                frame = self._cached[1]  # nothing moves: the same picture again
            else:
                frame = render(scene, self._preview_size)
                self._cached = (key, frame) if still else None
        return PreviewFrame(pixels=frame.image, timestamp=now)

    def _pace(self) -> None:
        """Wait for the next frame time, as a camera's stream would make the caller wait."""
        if not self._frame_interval:
            return
        with self._pace_lock:
            now = time.monotonic()
            wait = self._next_frame_at - now
            if wait > 0:
                time.sleep(wait)
            self._next_frame_at = max(now, self._next_frame_at) + self._frame_interval

    def capture(self, material_id: str, aspect: Aspect, label: str) -> CapturedPage:
        """One straightened page of `material_id`, through the real pipeline; CameraError."""
        if aspect not in SIZES:
            raise ValueError(f"unknown aspect {aspect!r}; expected one of {sorted(SIZES)}")
        # One capture at a time, as with a real camera; also keeps a seeded run reproducible.
        with self._lock:
            self._check()
            number = self._pages.get(material_id, 0) + 1
            self._pages[material_id] = number
            # The applicant laid this material's page down and pressed: it lies still.
            # Square-on, evenly lit by the camera's own lamp, no compression: a still is 5 MP
            # and rendering the preview's troubles at that size would take most of a second.
            scene = dataclasses.replace(
                self._settled(aspect, label, number),
                tilt=(0.0,) * 8,
                light=0.0,
                noise=0.0,
                jpeg_quality=100,
            )
            still = render(scene, self._still_size).image
            # The next page goes down where this one was, after a moment with the table clear.
            self._aspect, self._material, self._label = aspect, material_id, label
            self._turns += 1
            self._turned_at = self._clock()
            self._cached = None
        result = scanning.scan(still, aspect, dpi=DPI[aspect], enhancement=self._enhancement)
        page = scanning.to_captured_page(result)
        log.debug(
            "captured %s page %d (%s): %s",
            material_id,
            number,
            aspect,
            ",".join(result.quality.codes()) or "ok",
        )
        return page

    def close(self) -> None:
        """Release the camera; idempotent."""
        with self._lock:
            self._closed = True
            self._cached = None
