"""The scanning pipeline on synthetic 高拍仪 frames whose true page corners are known."""

from __future__ import annotations

import dataclasses
import functools
import io

import cv2
import numpy as np
import pikepdf
import pytest
from numpy.typing import NDArray

from devices import scanning
from devices.scanning import AutoCapture, AutoState
from devices.synthetic_docs import (
    BACKGROUNDS,
    BackgroundKind,
    DocumentKind,
    Frame,
    Scene,
    random_scene,
    render,
)
from kiosk.ports import Aspect

SIZE = (1280, 960)  # detection takes any size; a smaller frame keeps the suite quick


@functools.lru_cache(maxsize=64)
def frame_of(scene: Scene, size: tuple[int, int] = SIZE) -> Frame:
    return render(scene, size)


def clean(seed: int, document: DocumentKind, background: BackgroundKind) -> Scene:
    return random_scene(seed, document, background, degrade=False)


def corners_of(frame: Frame) -> NDArray[np.float32]:
    assert frame.corners is not None
    return frame.corners


# Detection ------------------------------------------------------------------------------------

TROUBLES: dict[str, dict[str, object]] = {
    "blur": {"blur_mm": 0.5},
    "shadow": {"shadow": 0.45, "shadow_angle_deg": 30.0},
    "uneven_light": {"light": 0.4},
    "keystone": {"tilt": (0.02, -0.01, -0.015, 0.0, 0.01, 0.02, -0.02, 0.01)},
}


@pytest.mark.parametrize("background", BACKGROUNDS)
@pytest.mark.parametrize("document", ["a4_text", "id_card", "hukou", "bank_card"])
def test_pages_are_found_on_every_background(
    background: BackgroundKind, document: DocumentKind
) -> None:
    frame = frame_of(clean(11, document, background))
    found = scanning.detect_document(frame.image)
    assert found is not None
    assert found.shape == (4, 2) and found.dtype == np.float32
    assert scanning.quad_iou(found, corners_of(frame)) >= 0.9


@pytest.mark.parametrize("trouble", sorted(TROUBLES))
def test_pages_are_found_despite_the_usual_troubles(trouble: str) -> None:
    scene = dataclasses.replace(clean(23, "a4_text", "wood"), **TROUBLES[trouble])  # type: ignore[arg-type]
    frame = frame_of(scene)
    found = scanning.detect_document(frame.image)
    assert found is not None and scanning.quad_iou(found, corners_of(frame)) >= 0.9


def test_a_folded_page_and_a_finger_on_an_edge() -> None:
    for scene in (
        dataclasses.replace(clean(5, "folded", "plain"), fold_mm=3.0),
        random_scene(31, "a4_text", "pad"),  # this seed has a hand over the edge
    ):
        frame = frame_of(scene)
        found = scanning.detect_document(frame.image)
        assert found is not None and scanning.quad_iou(found, corners_of(frame)) >= 0.9
    assert random_scene(31, "a4_text", "pad").hand is not None


@pytest.mark.parametrize(
    ("seed", "document", "glare_at"),
    [(7, "id_card", (0.1, 0.2)), (3, "bank_card", (0.9, 0.5))],
)
def test_a_card_is_found_when_glare_washes_out_part_of_its_edge(
    seed: int, document: DocumentKind, glare_at: tuple[float, float]
) -> None:
    # A lamp reflected in the lamination: card and desk both blown out white over a corner
    # or a short side, so that part of the edge cannot be seen at all.
    scene = dataclasses.replace(clean(seed, document, "plain"), glare=1.0, glare_at=glare_at)
    frame = frame_of(scene)
    found = scanning.detect_document(frame.image)
    assert found is not None and scanning.quad_iou(found, corners_of(frame)) >= 0.95


@pytest.mark.parametrize("background", ["pad", "wood"])
@pytest.mark.parametrize("document", ["a4_text", "id_card", "hukou", "bank_card"])
def test_corners_are_placed_to_within_a_pixel(
    background: BackgroundKind, document: DocumentKind
) -> None:
    # The straightened page is cut exactly at its edge: no desk along a side, no print lost.
    frame = frame_of(clean(11, document, background))
    found = scanning.detect_document(frame.image)
    assert found is not None
    assert np.abs(found - corners_of(frame)).max() < 1.0


@pytest.mark.parametrize("seed", range(6))
def test_no_page_is_found_on_a_table_with_none(seed: int) -> None:
    background = BACKGROUNDS[seed % len(BACKGROUNDS)]
    scene = random_scene(900 + seed, background=background, empty=True)
    assert scene.document is None
    assert scanning.detect_document(frame_of(scene).image) is None


def test_blank_and_tiny_frames_have_no_page() -> None:
    coin = np.full((1200, 1600, 3), 60, np.uint8)
    cv2.circle(coin, (800, 600), 25, (200, 200, 200), -1)  # edges, but no straight run
    for frame in (
        np.zeros((1200, 1600, 3), np.uint8),
        np.full((960, 1280, 3), 200, np.uint8),
        np.zeros((40, 60, 3), np.uint8),
        coin,
    ):
        assert scanning.detect_document(frame) is None


def test_frames_of_any_size_and_grey_frames_work() -> None:
    scene = clean(3, "a4_text", "pad")
    for size in ((1600, 1200), (800, 600)):
        frame = frame_of(scene, size)
        found = scanning.detect_document(frame.image)
        assert found is not None and scanning.quad_iou(found, corners_of(frame)) >= 0.9
    grey = cv2.cvtColor(frame_of(scene).image, cv2.COLOR_BGR2GRAY)
    assert scanning.detect_document(grey) is not None


def test_corners_come_top_left_first_and_clockwise_as_seen() -> None:
    scene = dataclasses.replace(clean(8, "hukou", "pad"), angle_deg=20.0)
    frame = frame_of(scene)
    assert corners_of(frame).min() > 0 and corners_of(frame)[:, 1].max() < SIZE[1]
    found = scanning.detect_document(frame.image)
    assert found is not None
    truth = corners_of(frame)
    # The same corner in the same place: top-left, top-right, bottom-right, bottom-left.
    assert np.abs(found - truth).max() < 15
    tl, tr, br, bl = found
    assert tr[0] > tl[0] and br[1] > tr[1] and bl[0] < br[0] and bl[1] > tl[1]
    shuffled = truth[[2, 0, 3, 1]]
    assert np.allclose(scanning.order_corners(shuffled), truth)


def test_iou_of_quads() -> None:
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32)
    assert scanning.quad_iou(square, square) == pytest.approx(1.0)
    assert scanning.quad_iou(square, square + np.array([5, 0])) == pytest.approx(1 / 3)
    assert scanning.quad_iou(square, square + np.array([20, 0])) == 0.0


# Straightening and cleaning ---------------------------------------------------------------------


def test_pages_come_out_at_their_format_and_resolution() -> None:
    a4 = frame_of(clean(3, "a4_text", "pad"))
    page = scanning.straighten(a4.image, corners_of(a4), "a4")
    assert page.shape == (3508, 2480, 3)  # A4 at 300 dpi
    assert scanning.straighten(a4.image, corners_of(a4), "a4", dpi=150).shape[:2] == (1754, 1240)
    card = frame_of(clean(4, "id_card", "pad"))
    assert scanning.page_size(corners_of(card), "id_card") == (1011, 638)  # 85.6 × 54 mm
    sideways = frame_of(dataclasses.replace(clean(3, "a4_text", "pad"), landscape=True))
    assert scanning.page_size(corners_of(sideways), "a4") == (3508, 2480)
    square = frame_of(clean(6, "square", "wood"))
    # A page of no set format keeps its shape; the short side is A4's.
    assert scanning.page_size(corners_of(square), "free") == (2480, 2480)


def test_shadow_removal_whitens_paper_and_keeps_ink_and_seals() -> None:
    scene = dataclasses.replace(clean(3, "a4_text", "pad"), shadow=0.5, light=0.4)
    frame = frame_of(scene)
    flat = scanning.straighten(frame.image, corners_of(frame), "a4", dpi=100)
    colour = scanning.enhance(flat, "colour")
    grey = cv2.cvtColor(flat, cv2.COLOR_BGR2GRAY)
    # Paper: uneven and grey before, white and even after.
    assert np.percentile(grey, 60) < 215
    cleaned = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    assert np.percentile(cleaned, 60) > 240
    assert np.percentile(cleaned, 2) < 180  # the text is still there
    red = (colour[:, :, 2].astype(int) - colour[:, :, 1]) > 60
    assert red.sum() > 200  # and so is the red seal
    assert scanning.enhance(flat, "grey").ndim == 2
    bw = scanning.enhance(flat, "bw")
    assert bw.ndim == 2 and set(np.unique(bw).tolist()) <= {0, 255}


def test_cards_stay_in_colour() -> None:
    frame = frame_of(clean(4, "bank_card", "plain"))
    flat = scanning.straighten(frame.image, corners_of(frame), "id_card")
    card = scanning.enhance(flat, "bw", card=True)
    assert card.ndim == 3
    saturation = cv2.cvtColor(card, cv2.COLOR_BGR2HSV)[:, :, 1]
    assert np.median(saturation) > 100  # the blue card is still blue


# Quality gates ----------------------------------------------------------------------------------


def codes(
    frame: Frame, corners: NDArray[np.floating] | None = None, aspect: Aspect = "a4"
) -> set[str]:
    where = corners_of(frame) if corners is None else corners
    quality = scanning.check_quality(frame.image, where, aspect)
    for found in quality.issues:
        assert found.message.zh and found.message.en
    return set(quality.codes())


GOOD = clean(3, "a4_text", "pad")


def test_a_good_page_passes_every_check() -> None:
    assert codes(frame_of(GOOD)) == set()
    assert codes(frame_of(clean(4, "id_card", "wood")), aspect="id_card") == set()


def test_blur_is_caught() -> None:
    assert "blurred" in codes(frame_of(dataclasses.replace(GOOD, blur_mm=1.5)))
    # A shake in two directions at once; a pure sideways smear keeps the sideways strokes
    # sharp, and Laplacian variance can miss it (docs/scanning.md).
    shaken = dataclasses.replace(GOOD, blur_mm=0.4, motion_mm=(4.0, 4.0))
    assert "blurred" in codes(frame_of(shaken))


def test_glare_is_caught() -> None:
    shiny = dataclasses.replace(GOOD, glare=1.0, glare_at=(0.5, 0.4))
    assert codes(frame_of(shiny)) == {"glare"}


def test_a_page_reaching_the_border_is_not_fully_in_view() -> None:
    frame = frame_of(GOOD)
    corners = corners_of(frame).copy()
    corners[:, 0] -= corners[:, 0].min() - 1  # slide it to touch the left border
    assert "not_in_view" in codes(frame, corners)


def test_a_card_is_too_small_for_an_a4_material() -> None:
    card = frame_of(clean(4, "id_card", "pad"))
    assert "too_small" in codes(card, aspect="a4")
    assert "too_small" not in codes(card, aspect="id_card")


def test_a_page_held_up_at_an_angle_is_too_skewed() -> None:
    tilted = dataclasses.replace(GOOD, tilt=(0.0, 0.0, 0.0, 0.0, 0.12, 0.0, -0.12, 0.0))
    assert "too_skewed" in codes(frame_of(tilted))


def test_no_page_is_its_own_issue() -> None:
    quality = scanning.check_quality(frame_of(GOOD).image, None)
    assert quality.codes() == ("no_page",) and not quality.ok


# Auto-capture ------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


PAGE = np.array([[400, 200], [1200, 210], [1190, 1000], [410, 990]], np.float32)
FRAME = (1600, 1200)


def test_auto_capture_waits_for_the_page_to_hold_still() -> None:
    clock = Clock()
    auto = AutoCapture(clock=clock)
    assert auto.update(None, FRAME, True).state is AutoState.NO_PAGE
    status = auto.update(PAGE, FRAME, True)
    assert status.state is AutoState.SETTLING and status.progress == 0.0
    clock.now += 0.4
    status = auto.update(PAGE + 3, FRAME, True)  # a tremor well inside 1 % of the diagonal
    assert status.state is AutoState.SETTLING and 0.5 < status.progress < 0.6
    clock.now += 0.2
    auto.update(PAGE + 60, FRAME, True)  # moved by a hand: the wait starts again
    clock.now += 0.6
    assert auto.update(PAGE + 60, FRAME, True).state is AutoState.SETTLING
    clock.now += 0.15
    assert auto.update(PAGE + 61, FRAME, True).state is AutoState.READY


def test_auto_capture_waits_for_the_checks() -> None:
    clock = Clock()
    auto = AutoCapture(clock=clock)
    auto.update(PAGE, FRAME, False)
    clock.now += 2.0
    status = auto.update(PAGE, FRAME, False)
    assert status.state is AutoState.SETTLING and status.progress == 0.0
    assert auto.update(PAGE, FRAME, True).state is AutoState.READY


def test_a_captured_page_is_not_taken_twice() -> None:
    clock = Clock()
    auto = AutoCapture(clock=clock)
    auto.update(PAGE, FRAME, True)
    clock.now += 1.0
    assert auto.update(PAGE, FRAME, True).state is AutoState.READY
    auto.captured()
    clock.now += 5.0
    assert auto.update(PAGE + 5, FRAME, True).state is AutoState.TAKEN
    # A glimpse of nothing (a missed frame) does not count as the page lifted ...
    auto.update(None, FRAME, True)
    clock.now += 0.1
    assert auto.update(PAGE, FRAME, True).state is AutoState.TAKEN
    # ... an empty table for a moment does: the next page is taken when it holds still.
    auto.update(None, FRAME, True)
    clock.now += 0.5
    auto.update(None, FRAME, True)
    auto.update(PAGE, FRAME, True)
    clock.now += 0.8
    assert auto.update(PAGE, FRAME, True).state is AutoState.READY
    # A new page laid where the old one was, moved a little, is a new page too.
    auto.captured()
    assert auto.update(PAGE + 150, FRAME, True).state is AutoState.SETTLING


# Encoding ---------------------------------------------------------------------------------------


def test_jpeg_carries_its_resolution_and_the_pdf_one_page_each() -> None:
    frame = frame_of(GOOD)
    page = scanning.enhance(scanning.straighten(frame.image, corners_of(frame), "a4", 100))
    jpegs = [scanning.encode_jpeg(page, dpi=100), scanning.encode_jpeg(page, dpi=100)]
    grey = scanning.encode_jpeg(scanning.enhance(page, "grey"), dpi=100)
    jpegs.append(grey)
    assert jpegs[0][13:18] == b"\x01\x00\x64\x00\x64"  # JFIF: dots per inch, 100 × 100
    pdf = pikepdf.Pdf.open(io.BytesIO(scanning.pages_to_pdf(jpegs)))
    assert len(pdf.pages) == 3
    width, height = (float(v) for v in pdf.pages[0].mediabox[2:])
    assert (width, height) == pytest.approx((595.3, 841.7), abs=1.0)  # A4 in points
    with pytest.raises(ValueError):
        scanning.pages_to_pdf([])


def test_a_still_goes_through_the_whole_pipeline() -> None:
    still = frame_of(GOOD, (2048, 1536)).image
    result = scanning.scan(still, "a4", dpi=150)
    assert result.quality.ok and result.corners is not None
    page = scanning.to_captured_page(result)
    assert (page.width, page.height) == (1240, 1754) and not page.issues
    decoded = cv2.imdecode(np.frombuffer(page.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (1754, 1240, 3)
    # No page on the table: the whole frame is kept, and says so.
    empty = frame_of(random_scene(3, background="pad", empty=True, degrade=False)).image
    nothing = scanning.to_captured_page(scanning.scan(empty, "a4", dpi=150))
    assert [i.code for i in nothing.issues] == ["no_page"] and nothing.jpeg


def test_the_generator_is_deterministic() -> None:
    scene = random_scene(77)
    first, second = render(scene, (640, 480)), render(scene, (640, 480))
    assert np.array_equal(first.image, second.image)
    assert first.corners is not None and second.corners is not None
    assert np.array_equal(first.corners, second.corners)
