"""A UVC document camera (高拍仪) through OpenCV's VideoCapture, with the scanning pipeline.

The camera runs in two modes: a preview of about 1600 px wide for finding the page live, and
a full-resolution still (5–10 MP) for the capture. MJPG is asked for before the resolution
(UVC cameras deliver high resolutions at a usable rate only compressed), and the first frames
after a switch are dropped (exposure and focus settle; some drivers hand out a stale frame).

A source is a device index ("0"), a device path ("/dev/video2"), a device name where the OS
lists it (Linux: /sys/class/video4linux/*/name; many 高拍仪 carry a second, face camera, so
pick by name), a video file, or a folder of images (for tests and demonstrations).

An unplugged camera never crashes the kiosk: reads fail, CameraLost is reported once and
CameraError raised; the camera is looked for again every `retry_s`, and CameraBack reported
when frames come again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from devices import scanning
from devices.camera_events import CameraEvents
from kiosk.ports import (
    Aspect,
    CameraBack,
    CameraError,
    CameraListener,
    CameraLost,
    CapturedPage,
    PreviewFrame,
)

log = logging.getLogger(__name__)

PREVIEW_SIZE = (1600, 1200)  # 20 fps in MJPG on a typical 8 MP module
STILL_SIZE = (3264, 2448)  # 8 MP, 15 fps in MJPG
DROP_FRAMES = 3  # frames thrown away after a resolution switch
RETRY_S = 1.0  # how often a lost camera is looked for
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_V4L_SYSFS = Path("/sys/class/video4linux")

Pixels = NDArray[Any]  # BGR uint8, as OpenCV hands it out


class _Source(Protocol):
    """Where frames come from: a camera, a video file or a folder of images."""

    live: bool  # a real camera: resolutions can be asked for and frames need settling

    def open(self) -> bool: ...

    def ask_size(self, size: tuple[int, int]) -> None: ...

    def read(self) -> Pixels | None: ...

    def release(self) -> None: ...


class _VideoSource:
    """A camera (index or device path) or a video file, through cv2.VideoCapture."""

    def __init__(self, target: int | str, live: bool) -> None:
        self.target = target
        self.live = live
        self._capture: cv2.VideoCapture | None = None

    def open(self) -> bool:
        self.release()
        if self.live and isinstance(self.target, int):
            capture = cv2.VideoCapture(self.target)
        elif self.live:
            capture = cv2.VideoCapture(self.target, cv2.CAP_V4L2)
        else:
            capture = cv2.VideoCapture(str(self.target))
        if not capture.isOpened():
            capture.release()
            return False
        self._capture = capture
        return True

    def ask_size(self, size: tuple[int, int]) -> None:
        if self._capture is None or not self.live:
            return
        # FOURCC first: many UVC drivers only offer the large sizes in MJPG, and refuse (or
        # silently fall back to 640×480) when the size is set while still in YUYV.
        self._capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])

    def read(self) -> Pixels | None:
        if self._capture is None:
            return None
        ok, frame = self._capture.read()
        if not ok and not self.live:
            # A video file plays on a loop, like a camera that never stops.
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
        return frame if ok and frame is not None else None

    def release(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class _FolderSource:
    """A folder of images played in name order, on a loop; gone folder = unplugged camera."""

    live = False

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files: list[Path] = []
        self._next = 0

    def open(self) -> bool:
        if not self.folder.is_dir():
            return False
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self._next = 0
        return bool(self._files)

    def ask_size(self, size: tuple[int, int]) -> None:
        """Images are what they are."""

    def read(self) -> Pixels | None:
        if not self._files:
            return None
        path = self._files[self._next % len(self._files)]
        self._next += 1
        if not path.is_file():
            return None  # the folder (or this image) is gone: an unplugged camera
        frame: Pixels | None = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return frame

    def release(self) -> None:
        self._files = []


def find_device(name: str, sysfs: Path = _V4L_SYSFS) -> str | None:
    """The /dev/videoN whose driver-reported name contains `name` (Linux), or None."""
    if not sysfs.is_dir():
        return None

    def number(node: Path) -> int:
        digits = node.name.removeprefix("video")
        return int(digits) if digits.isdigit() else 1 << 30

    wanted = name.casefold()
    for node in sorted(sysfs.glob("video*"), key=number):
        try:
            label = (node / "name").read_text(encoding="utf-8").strip()
        except OSError:
            continue
        # A UVC camera has two nodes (video and metadata); the lower number gives frames.
        if wanted in label.casefold():
            return f"/dev/{node.name}"
    return None


class _NamedSource(_VideoSource):
    """A camera known by name, perhaps plugged in later: looked up again on every open."""

    def __init__(self, name: str) -> None:
        super().__init__(name, live=True)
        self.name = name

    def open(self) -> bool:
        device = find_device(self.name)
        if device is None:
            return False
        self.target = device
        return super().open()


def _source_for(spec: str | int | Path) -> _Source:
    """What `spec` names: an index, a device path, a folder, a video file or a device name."""
    if isinstance(spec, int):
        return _VideoSource(spec, live=True)
    text = str(spec).strip()
    if text.isdigit():
        return _VideoSource(int(text), live=True)
    if text.startswith("/dev/"):
        return _VideoSource(text, live=True)
    path = Path(text).expanduser()
    if path.is_dir():
        return _FolderSource(path)
    if path.is_file():
        return _VideoSource(str(path), live=False)
    if "/" in text or "\\" in text:
        # A path that is not there (yet): a file if it looks like one, else a folder.
        return _VideoSource(str(path), live=False) if path.suffix else _FolderSource(path)
    return _NamedSource(text)


class OpenCvCamera:
    """A document camera over cv2.VideoCapture (or a video file or folder of images)."""

    def __init__(
        self,
        source: str | int | Path,
        *,
        preview_size: tuple[int, int] = PREVIEW_SIZE,
        still_size: tuple[int, int] = STILL_SIZE,
        dpi: int = scanning.DEFAULT_DPI,
        enhancement: scanning.Enhancement = "colour",
        drop_frames: int = DROP_FRAMES,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description = str(source)  # for the technician: which camera this is
        self._source = _source_for(source)
        self._preview_size = preview_size
        self._still_size = still_size
        self._dpi = dpi
        self._enhancement = enhancement
        self._drop_frames = drop_frames
        self._retry_s = retry_s
        self._clock = clock
        self._lock = threading.Lock()
        self._events = CameraEvents()
        self._opened = False
        self._lost = False
        self._last_try = -float("inf")
        self._mode: tuple[int, int] | None = None  # the size last asked for
        self._closed = False

    # Events -----------------------------------------------------------------------------------

    def set_listener(self, listener: CameraListener | None) -> None:
        """Report CameraLost / CameraBack to `listener` (from the thread using the camera)."""
        self._events.set(listener)

    def _lose(self, reason: str) -> CameraError:
        """Note the camera as gone (reporting it once) and give the error to raise."""
        self._source.release()
        self._opened = False
        self._mode = None
        if not self._lost:
            self._lost = True
            log.error("camera %s lost: %s", self.description, reason)
            self._events.tell(CameraLost(reason))
        return CameraError(f"camera not found ({reason})")

    # Reading ----------------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise CameraError("camera closed")
        if self._opened:
            return
        now = self._clock()
        if self._lost and now - self._last_try < self._retry_s:
            raise CameraError("camera not found")
        self._last_try = now
        if not self._source.open():
            raise self._lose("cannot open the camera")
        self._opened = True

    def _frame(self, size: tuple[int, int]) -> Pixels:
        """One frame at `size` (switching mode and letting it settle first)."""
        self._ensure_open()
        if self._mode != size:
            self._source.ask_size(size)
            self._mode = size
            if self._source.live:
                for _ in range(self._drop_frames):
                    self._source.read()
        frame = self._source.read()
        if frame is None:
            raise self._lose("no frame")
        if self._lost:
            self._lost = False
            log.info("camera %s back", self.description)
            self._events.tell(CameraBack())
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        return frame

    def preview(self) -> PreviewFrame:
        """The next live frame, at most preview width; raises CameraError while gone."""
        with self._lock:
            frame = self._frame(self._preview_size)
        width = self._preview_size[0]
        if frame.shape[1] > width * 1.1:
            # A file or folder (or a camera refusing the size) can hand out big frames.
            height = round(frame.shape[0] * width / frame.shape[1])
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        return PreviewFrame(pixels=np.ascontiguousarray(frame), timestamp=self._clock())

    def capture(self, material_id: str, aspect: Aspect, label: str) -> CapturedPage:
        """A full-resolution still through the scanning pipeline; raises CameraError."""
        with self._lock:
            still = self._frame(self._still_size)
        result = scanning.scan(still, aspect, dpi=self._dpi, enhancement=self._enhancement)
        log.info(
            "captured a page of %s (%s, %dx%d still): %s",
            material_id,
            aspect,
            still.shape[1],
            still.shape[0],
            ",".join(result.quality.codes()) or "ok",
        )
        return scanning.to_captured_page(result)

    def close(self) -> None:
        """Release the camera; idempotent."""
        with self._lock:
            self._closed = True
            self._source.release()
            self._opened = False
