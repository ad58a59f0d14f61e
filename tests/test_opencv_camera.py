"""The OpenCV document camera on a folder of synthetic frames, and what both cameras promise."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from devices import scanning
from devices.camera_factory import build_camera
from devices.opencv_camera import OpenCvCamera, find_device
from devices.simulated_camera import SimulatedCamera
from devices.synthetic_docs import random_scene, render
from kiosk.config import Config, StorageConfig
from kiosk.flow import Step
from kiosk.ports import (
    CameraBack,
    CameraError,
    CameraEvent,
    CameraLost,
    CapturedPage,
    DocumentCamera,
    PreviewFrame,
)
from ui.app import Kiosk, build_kiosk
from ui.bridge import Bridge
from ui.camera_view import CameraPreview, CameraView, PreviewUpdate
from ui.driver import KioskDriver


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """Three camera frames of a page on the pad, 1600×1200, as a 高拍仪 would see them."""
    return [render(random_scene(300 + i, "a4_text", "pad", degrade=False)).image for i in range(3)]


@pytest.fixture
def folder(tmp_path: Path, frames: list[np.ndarray]) -> Path:
    where = tmp_path / "camera"
    where.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(where / f"{i:02d}.jpg"), frame)
    (where / "notes.txt").write_text("not an image", encoding="utf-8")
    return where


def decode(page: CapturedPage) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(page.jpeg, np.uint8), cv2.IMREAD_UNCHANGED)
    assert pixels is not None
    return pixels


# The folder and file sources ------------------------------------------------------------------


def test_a_folder_of_images_plays_like_a_camera(folder: Path, frames: list[np.ndarray]) -> None:
    camera = OpenCvCamera(folder)
    seen = [camera.preview() for _ in range(4)]
    assert all(isinstance(f, PreviewFrame) and f.pixels.shape == (1200, 1600, 3) for f in seen)
    # In name order, round and round.
    assert np.abs(seen[1].pixels.astype(int) - cv2.imread(str(folder / "01.jpg"))).max() == 0
    assert np.array_equal(seen[3].pixels, seen[0].pixels)
    assert scanning.detect_document(seen[0].pixels) is not None
    camera.close()


def test_a_capture_is_a_straightened_a4_page_at_300_dpi(folder: Path) -> None:
    camera = OpenCvCamera(folder)
    page = camera.capture("lease_contract", "a4", "租房合同")
    assert (page.width, page.height) == (2480, 3508) and not page.issues
    assert decode(page).shape == (3508, 2480, 3)
    grey = OpenCvCamera(folder, enhancement="bw", dpi=150).capture("m", "a4", "")
    assert decode(grey).ndim == 2 and (grey.width, grey.height) == (1240, 1754)
    camera.close()
    with pytest.raises(CameraError, match="closed"):
        camera.preview()


def test_an_unplugged_camera_is_reported_once_and_found_again(folder: Path) -> None:
    clock = Clock()
    events: list[CameraEvent] = []
    camera = OpenCvCamera(folder, clock=clock, retry_s=1.0)
    camera.set_listener(events.append)
    camera.preview()
    gone = folder.with_name("unplugged")
    folder.rename(gone)
    with pytest.raises(CameraError):
        for _ in range(4):  # the frames already listed run out, or the next read fails
            camera.preview()
    with pytest.raises(CameraError):
        camera.capture("m", "a4", "")
    assert events == [CameraLost("no frame")]
    gone.rename(folder)
    with pytest.raises(CameraError):
        camera.preview()  # not looked for again until retry_s has passed
    clock.now += 1.5
    assert camera.preview().pixels.shape == (1200, 1600, 3)
    assert events == [CameraLost("no frame"), CameraBack()]
    camera.close()


def test_a_camera_missing_from_the_start_is_lost_then_found(tmp_path: Path) -> None:
    clock = Clock()
    events: list[CameraEvent] = []
    later = tmp_path / "later"
    camera = OpenCvCamera(later, clock=clock)
    camera.set_listener(events.append)
    with pytest.raises(CameraError):
        camera.preview()
    assert [type(e) for e in events] == [CameraLost]
    later.mkdir()
    cv2.imwrite(str(later / "a.png"), np.full((120, 160, 3), 200, np.uint8))
    clock.now += 2
    assert camera.preview().pixels.shape == (120, 160, 3)
    assert [type(e) for e in events] == [CameraLost, CameraBack]


def test_a_video_file_plays_on_a_loop_and_big_frames_are_shrunk(
    tmp_path: Path, frames: list[np.ndarray]
) -> None:
    video = tmp_path / "table.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 5, (1600, 1200))
    for frame in frames:
        writer.write(frame)
    writer.release()
    camera = OpenCvCamera(video, preview_size=(800, 600))
    shapes = {camera.preview().pixels.shape for _ in range(len(frames) + 2)}
    assert shapes == {(600, 800, 3)}
    # The still is the frame itself, at its full size; a portrait page stays portrait.
    page = camera.capture("m", "id_card", "")
    assert (page.width, page.height) == (638, 1011)
    camera.close()


def test_a_device_is_found_by_its_name(tmp_path: Path) -> None:
    for node, name in (("video0", "HD Face Camera"), ("video2", "USB Document Camera")):
        (tmp_path / node).mkdir()
        (tmp_path / node / "name").write_text(name + "\n", encoding="utf-8")
    (tmp_path / "video3").mkdir()
    (tmp_path / "video3" / "name").write_text("USB Document Camera\n", encoding="utf-8")
    assert find_device("document camera", tmp_path) == "/dev/video2"
    assert find_device("face", tmp_path) == "/dev/video0"
    assert find_device("scanner", tmp_path) is None
    assert find_device("x", tmp_path / "missing") is None


def test_the_factory_builds_what_the_config_names(folder: Path) -> None:
    assert isinstance(build_camera("simulated"), SimulatedCamera)
    camera = build_camera(str(folder))
    assert isinstance(camera, OpenCvCamera) and camera.preview().pixels.ndim == 3
    # A camera not plugged in yet is still built: it reports itself lost when used.
    assert isinstance(build_camera("No Such Camera"), OpenCvCamera)
    with pytest.raises(ValueError):
        build_camera("  ")


# What every document camera promises -----------------------------------------------------------


@pytest.fixture(params=["simulated", "opencv"])
def any_camera(request: pytest.FixtureRequest, folder: Path) -> Iterator[DocumentCamera]:
    camera: DocumentCamera
    camera = SimulatedCamera(seed=5) if request.param == "simulated" else OpenCvCamera(folder)
    yield camera
    camera.close()


def test_every_camera_previews_and_captures(any_camera: DocumentCamera) -> None:
    frame = any_camera.preview()
    assert frame.pixels.dtype == np.uint8 and frame.pixels.ndim == 3
    assert 800 <= frame.pixels.shape[1] <= 1600
    assert scanning.detect_document(frame.pixels) is not None  # a page lies on the table
    page = any_camera.capture("power_of_attorney", "a4", "委托书")
    assert page.jpeg.startswith(b"\xff\xd8") and decode(page).shape[:2] == (page.height, page.width)
    assert page.height / page.width == pytest.approx(297 / 210, abs=0.01)


def test_the_simulator_lifts_the_page_after_a_capture_and_lays_the_next() -> None:
    clock = Clock()
    events: list[CameraEvent] = []
    camera = SimulatedCamera(seed=2, clock=clock)
    camera.set_listener(events.append)
    camera.capture("birth_certificate", "free", "出生医学证明")
    clock.now += 0.2
    assert scanning.detect_document(camera.preview().pixels) is None  # lifted
    clock.now += 3.0
    assert scanning.detect_document(camera.preview().pixels) is not None  # the next page
    camera.unplug()
    with pytest.raises(CameraError):
        camera.preview()
    camera.plug()
    assert camera.preview().pixels.ndim == 3
    assert events == [CameraLost("simulated unplug"), CameraBack()]


# The live preview, off the GUI thread ------------------------------------------------------------


class WatchedCamera:
    """A camera wrapper that notes which thread asks for frames."""

    def __init__(self, inner: OpenCvCamera) -> None:
        self.inner = inner
        self.threads: set[threading.Thread] = set()

    def preview(self) -> PreviewFrame:
        self.threads.add(threading.current_thread())
        return self.inner.preview()

    def capture(self, material_id: str, aspect: str, label: str) -> CapturedPage:
        return self.inner.capture(material_id, aspect, label)  # type: ignore[arg-type]

    def set_listener(self, listener: object) -> None:
        self.inner.set_listener(listener)  # type: ignore[arg-type]

    def close(self) -> None:
        self.inner.close()


def test_the_preview_finds_the_page_off_the_gui_thread(folder: Path, qtbot: QtBot) -> None:
    camera = WatchedCamera(OpenCvCamera(folder))
    bridge = Bridge()
    updates: list[object] = []
    bridge.preview_updated.connect(updates.append)
    preview = CameraPreview(camera, bridge)  # type: ignore[arg-type]
    view = CameraView()
    qtbot.addWidget(view)
    try:
        preview.start()
        qtbot.waitUntil(lambda: any(isinstance(u, PreviewUpdate) for u in updates), timeout=10000)
        update = next(u for u in updates if isinstance(u, PreviewUpdate))
        assert update.image is not None and update.image.width() <= 960
        assert update.corners is not None and not update.lost
        view.show_update(update, "zh")
        assert view.showing_outline() and view.status_text()
        assert threading.main_thread() not in camera.threads and camera.threads
        preview.stop()
        assert updates[-1] is None  # the screen drops the last picture
    finally:
        preview.shutdown()


def test_the_preview_says_when_the_camera_is_gone(tmp_path: Path, qtbot: QtBot) -> None:
    bridge = Bridge()
    updates: list[object] = []
    bridge.preview_updated.connect(updates.append)
    preview = CameraPreview(OpenCvCamera(tmp_path / "nothing"), bridge)
    try:
        preview.start()
        qtbot.waitUntil(lambda: bool(updates), timeout=10000)
        first = updates[0]
        assert isinstance(first, PreviewUpdate) and first.lost and first.image is None
        assert "摄像头" in first.message("zh")
    finally:
        preview.shutdown()


# The materials step with the live camera -------------------------------------------------------


@pytest.fixture
def kiosk(qapp: QApplication, tmp_path: Path) -> Iterator[Kiosk]:
    k = build_kiosk(replace(Config(), storage=StorageConfig(data_dir=str(tmp_path))), qapp)
    k.window.resize(1080, 1920)
    k.window.show()
    yield k
    k.window.close()
    k.close()


def to_materials(kiosk: Kiosk) -> KioskDriver:
    driver = KioskDriver(kiosk.window, timeout_s=20)
    driver.choose("newborn")
    driver.start()
    driver.tap_card("adult")
    driver.fill_form()
    driver.next(Step.MATERIALS)
    return driver


def pages(kiosk: Kiosk) -> int:
    return sum(len(p) for p in kiosk.flow.session.pages.values())


def test_a_page_lying_still_is_captured_without_a_tap(kiosk: Kiosk) -> None:
    driver = to_materials(kiosk)
    view = driver.find("camera_view", CameraView)
    driver.wait_until(view.showing_outline, "the page outlined in the preview")
    target = driver.find("scan_target", QLabel).text()
    assert target.startswith("自动拍摄：")
    driver.wait_until(lambda: pages(kiosk) == 1, "a page taken by itself")
    first = kiosk.flow.form.to_scan(kiosk.flow.session.answers)[0]
    assert len(kiosk.flow.session.pages[first.id]) == 1
    # The page is not taken again while it lies there; the camera turns it (the simulator).
    driver.press(f"scan_{first.id}")
    driver.wait_until(lambda: pages(kiosk) == 2, "the page scanned by hand")
    driver.press("back")
    driver.wait_until(lambda: kiosk.flow.step is Step.FORM, "the form again")
    assert not view.status_text() and not view.showing_outline()  # the picture is gone


def test_retake_puts_the_new_page_where_the_old_one_was(kiosk: Kiosk) -> None:
    driver = to_materials(kiosk)
    need = next(
        n for n in kiosk.flow.form.to_scan(kiosk.flow.session.answers) if n.definition.pages >= 2
    )
    for expected in (1, 2):
        driver.press(f"scan_{need.id}")
        driver.wait_until(
            lambda e=expected: len(kiosk.flow.session.pages.get(need.id, [])) >= e, "a page"
        )
    old_first, second = kiosk.flow.session.pages[need.id][:2]
    driver.wait_until(lambda: driver.find(f"retake_{need.id}_0").isEnabled(), "retake")
    driver.press(f"retake_{need.id}_0")
    driver.wait_until(
        lambda: kiosk.flow.session.pages[need.id][0] is not old_first, "the retaken page"
    )
    QApplication.processEvents()
    taken = kiosk.flow.session.pages[need.id]
    assert taken[1] is second and old_first not in taken
    assert driver.find(f"thumb_{need.id}_0", QLabel).pixmap() is not None
