"""A simulated document camera: synthetic, straightened sample pages, with an unplug trigger."""

from __future__ import annotations

import functools
import io
import itertools
import logging
import math
import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from devices.receipt_image import FONT_LOCK, cjk_font, wrap_text
from kiosk.ports import CameraError, CapturedPage

log = logging.getLogger(__name__)

Aspect = Literal["a4", "id_card", "free"]

# Pixels of a straightened capture: A4 and square pages at 150 dpi, an ID-1 card at 300 dpi.
SIZES: dict[str, tuple[int, int]] = {
    "a4": (1240, 1754),
    "id_card": (1011, 638),
    "free": (1240, 1240),
}
JPEG_QUALITY = 85

_PAPER = (247, 245, 238)
_INK = (36, 36, 40)
_GREY_INK = (96, 96, 104)
_RULE = (120, 120, 126)
_SEAL_RED = (206, 38, 44)
_CARD = (229, 237, 241)
_BED = (48, 50, 54)  # the dark scanning bed around a card

# Filler prose instead of bars: it reads as a document at a glance and says what it is.
_FILLER = (
    "本页为自助终端模拟拍摄的样张，仅供演示与测试使用，不含任何真实个人信息，不具有法律效力。"
    "材料内容以原件为准，样张中的文字、表格与印章均为程序生成。"
)
_SEAL_TEXT = "政务服务样张专用章"
_WATERMARK = "样张 SAMPLE"
_PUNCTUATION = frozenset("，。、；：？！（）")
# Neutral field names for the card: the layout of a card, none of the fields of a real one.
_CARD_FIELDS = ("项　目", "类　别", "编　号", "日　期", "备　注")


def _page_label(number: int) -> str:
    return f"第 {number} 页 / Page {number}"


# Static artwork, built once per process -------------------------------------------------------


def _noise(shape: tuple[int, int], amplitude: float) -> NDArray[np.float32]:
    # A small tile repeated: sensor-like grain at a fraction of the cost of full-frame noise;
    # the period is invisible after JPEG compression.
    rng = np.random.default_rng(20240601)
    tile = rng.normal(0.0, amplitude, (128, 128)).astype(np.float32)
    reps = (math.ceil(shape[0] / 128), math.ceil(shape[1] / 128))
    return np.tile(tile, reps)[: shape[0], : shape[1]]


def _lighting(height: int, width: int) -> NDArray[np.float32]:
    """The uneven light of a document camera: brighter in the middle, a little to one side."""
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    return 1.0 - 0.045 * (xs**2 + ys**2) - 0.012 * xs


def _watermark_mask(width: int, height: int, size: int) -> Image.Image:
    with FONT_LOCK:
        font = cjk_font(size, bold=True)
        text_width = round(font.getlength(_WATERMARK))
        strip = Image.new("L", (text_width + 20, size * 2), 0)
        ImageDraw.Draw(strip).text((10, size // 4), _WATERMARK, font=font, fill=255)
    rotated = strip.rotate(30, expand=True, resample=Image.Resampling.BILINEAR)
    mask = Image.new("L", (width, height), 0)
    mask.paste(rotated, ((width - rotated.width) // 2, (height - rotated.height) // 2))
    return mask


def _alpha(mask: Image.Image, strength: float) -> NDArray[np.float32]:
    return np.asarray(mask, dtype=np.float32) * (strength / 255.0)


def _rgb(
    layers: list[tuple[NDArray[np.float32], tuple[int, int, int]]], noise: NDArray[np.float32]
) -> Image.Image:
    """Sum `weight × colour` per channel, add grain; all maths on 2-D planes to stay fast."""
    channels = []
    for c in range(3):
        plane = noise.copy()
        for weight, colour in layers:
            plane += weight * colour[c]
        channels.append(Image.fromarray(np.clip(plane, 0, 255).astype(np.uint8), "L"))
    return Image.merge("RGB", channels)


@functools.lru_cache(maxsize=len(SIZES))
def _background(aspect: str) -> Image.Image:
    """Paper (or a card on the scanning bed) under camera light, with the watermark."""
    width, height = SIZES[aspect]
    light = _lighting(height, width)
    noise = _noise((height, width), 1.6)
    if aspect != "id_card":
        watermark = _watermark_mask(width, height, 150 if aspect == "a4" else 130)
        return _rgb([(light * (1.0 - _alpha(watermark, 0.08)), _PAPER)], noise)
    card = Image.new("L", (width, height), 0)
    ImageDraw.Draw(card).rounded_rectangle((3, 3, width - 4, height - 4), radius=38, fill=255)
    inside = np.asarray(card, dtype=np.float32) / 255.0
    guilloche = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(guilloche)
    xs = np.arange(0, width, 3, dtype=np.float64)
    for k in range(9):
        ys = height * (0.55 + 0.04 * k) + 18 * np.sin(xs / (40 + 6 * k) + k)
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=255, width=1)
    # A faint tint gradient across the card, as printed security backgrounds have.
    tint = np.linspace(0.985, 1.0, width, dtype=np.float32)[None, :]
    ink = (1.0 - _alpha(guilloche, 0.10)) * (1.0 - _alpha(_watermark_mask(width, height, 96), 0.10))
    return _rgb([(light * tint * inside * ink, _CARD), (light * (1.0 - inside), _BED)], noise)


@dataclass(frozen=True)
class _Filler:
    """A long line of filler text as an ink mask, cut into lines of whole characters."""

    mask: Image.Image
    advance: int  # CJK glyphs and full-width punctuation all advance one em
    starts: tuple[int, ...]  # character offsets a line may start at (not on punctuation)


@functools.lru_cache(maxsize=4)
def _filler(size: int) -> _Filler:
    text = _FILLER * 2
    with FONT_LOCK:
        font = cjk_font(size)
        ascent, descent = font.getmetrics()
        mask = Image.new("L", (len(text) * size + size, ascent + descent), 0)
        ImageDraw.Draw(mask).text((0, ascent), text, font=font, fill=255, anchor="ls")
    starts = tuple(i for i, ch in enumerate(text[: len(_FILLER)]) if ch not in _PUNCTUATION)
    return _Filler(mask, size, starts)


@functools.lru_cache(maxsize=4)
def _seal_mask(diameter: int) -> Image.Image:
    """A round official seal (公章): ring, star and the text along the upper arc."""
    mask = Image.new("L", (diameter, diameter), 0)
    draw = ImageDraw.Draw(mask)
    ring = max(3, diameter // 28)
    draw.ellipse((ring, ring, diameter - ring, diameter - ring), outline=255, width=ring)
    centre = diameter / 2
    star_r = diameter * 0.17
    points = [
        (
            centre + (star_r if i % 2 == 0 else star_r * 0.38) * math.sin(i * math.pi / 5),
            centre - (star_r if i % 2 == 0 else star_r * 0.38) * math.cos(i * math.pi / 5),
        )
        for i in range(10)
    ]
    draw.polygon(points, fill=255)
    glyph_size = round(diameter * 0.13)
    with FONT_LOCK:
        font = cjk_font(glyph_size, bold=True)
        radius = centre - ring * 2 - glyph_size * 0.62
        span = math.radians(230)
        count = len(_SEAL_TEXT)
        for i, char in enumerate(_SEAL_TEXT):
            angle = -span / 2 + span * i / (count - 1)
            glyph = Image.new("L", (glyph_size * 2, glyph_size * 2), 0)
            ImageDraw.Draw(glyph).text(
                (glyph_size, glyph_size), char, font=font, fill=255, anchor="mm"
            )
            glyph = glyph.rotate(-math.degrees(angle), resample=Image.Resampling.BILINEAR)
            x = centre + radius * math.sin(angle) - glyph_size
            y = centre - radius * math.cos(angle) - glyph_size
            mask.paste(255, (round(x), round(y)), glyph)
    return mask


# Per-capture drawing --------------------------------------------------------------------------


def _stamp(page: Image.Image, mask: Image.Image, x: int, y: int, opacity: float) -> None:
    """Ink the seal onto the page like a real stamp: it tints, it does not cover."""
    box = (x, y, x + mask.width, y + mask.height)
    region = np.asarray(page.crop(box), dtype=np.float32)
    alpha = np.asarray(mask, dtype=np.float32)[:, :, None] * (opacity / 255.0)
    tint = np.array(_SEAL_RED, np.float32) / 255.0
    inked = region * (1.0 - alpha + alpha * tint)
    page.paste(Image.fromarray(inked.astype(np.uint8), "RGB"), box[:2])


def _filler_line(
    page: Image.Image,
    x: int,
    y: int,
    chars: int,
    size: int,
    rng: np.random.Generator,
    colour: tuple[int, int, int],
) -> None:
    filler = _filler(size)
    start = filler.starts[int(rng.integers(0, len(filler.starts)))] * filler.advance
    mask = filler.mask.crop((start, 0, start + chars * filler.advance, filler.mask.height))
    page.paste(colour, (x, y), mask)


def _title(
    draw: ImageDraw.ImageDraw,
    label: str,
    font: ImageFont.FreeTypeFont,
    centre_x: int,
    top: int,
    max_width: int,
    max_lines: int,
) -> int:
    """Draw the title centred; returns the y below it."""
    lines = wrap_text(label, font, max_width)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][:-1] + "…"]
    ascent, descent = font.getmetrics()
    y = top
    for line in lines:
        draw.text((centre_x, y + ascent), line, font=font, fill=_INK, anchor="ms")
        y += ascent + descent
    return y


def _document(
    page: Image.Image, label: str, number: int, rng: np.random.Generator, with_table: bool
) -> None:
    width, height = page.size
    draw = ImageDraw.Draw(page)
    margin = round(width * 0.12)
    body = 25  # 12 pt at 150 dpi
    pitch = 44
    chars_per_line = (width - 2 * margin) // body
    y = _title(
        draw,
        label or "材料",
        cjk_font(46, bold=True),
        width // 2,
        round(height * 0.06),
        width - 2 * margin,
        2,
    )
    y += 18
    draw.line((margin, y, width - margin, y), fill=_RULE, width=2)
    y += 36
    bottom = height - round(height * (0.34 if with_table else 0.28))
    while y + pitch * 2 < bottom:
        lines = int(rng.integers(2, 6))
        for i in range(lines):
            if y + pitch > bottom:
                break
            indent = 2 if i == 0 else 0  # 段首缩进两字
            chars = chars_per_line - indent
            if i == lines - 1:
                chars = int(rng.integers(chars // 4, chars))
            _filler_line(page, margin + indent * body, y, chars, body, rng, _GREY_INK)
            y += pitch
        y += pitch // 2
    if with_table:
        _table(page, draw, margin, y + 10, width - 2 * margin, rng)
    # Signature block with the seal over it, where an issuing office signs.
    sign_x = width - margin - 14 * body
    sign_y = height - round(height * 0.16)
    _filler_line(page, sign_x, sign_y, 10, body, rng, _GREY_INK)
    _filler_line(page, sign_x + 2 * body, sign_y + pitch, 8, body, rng, _GREY_INK)
    seal = _seal_mask(round(width * 0.2))
    seal = seal.rotate(float(rng.uniform(-18, 18)), resample=Image.Resampling.BILINEAR)
    _stamp(
        page,
        seal,
        sign_x + int(rng.integers(0, 3 * body)),
        sign_y - seal.height // 2 + int(rng.integers(-20, 20)),
        0.55,
    )
    _page_number(draw, width // 2, height - round(height * 0.045), number)


def _table(
    page: Image.Image,
    draw: ImageDraw.ImageDraw,
    x: int,
    y: int,
    width: int,
    rng: np.random.Generator,
) -> None:
    rows, row_height = 5, 52
    columns = (0.0, 0.28, 0.66, 1.0)
    xs = [x + round(width * c) for c in columns]
    draw.rectangle((x, y, x + width, y + row_height), fill=(228, 228, 226))
    for r in range(rows + 1):
        draw.line(
            (x, y + r * row_height, x + width, y + r * row_height),
            fill=_RULE,
            width=2 if r in (0, 1, rows) else 1,
        )
    for cx in xs:
        draw.line((cx, y, cx, y + rows * row_height), fill=_RULE, width=2)
    for r in range(rows):
        for left, right in itertools.pairwise(xs):
            cell_chars = max(2, (right - left - 24) // 22)
            chars = cell_chars if r == 0 else int(rng.integers(2, cell_chars + 1))
            _filler_line(
                page,
                left + 12,
                y + r * row_height + 10,
                chars,
                22,
                rng,
                _INK if r == 0 else _GREY_INK,
            )


def _page_number(draw: ImageDraw.ImageDraw, centre_x: int, baseline: int, number: int) -> None:
    draw.text(
        (centre_x, baseline), _page_label(number), font=cjk_font(22), fill=_GREY_INK, anchor="ms"
    )


def _id_card(page: Image.Image, label: str, number: int, rng: np.random.Generator) -> None:
    width, height = page.size
    draw = ImageDraw.Draw(page)
    left = 64
    y = _title(draw, label or "证件", cjk_font(36, bold=True), width // 2, 34, width - 2 * left, 1)
    # Photo area with a neutral silhouette: never a face.
    px0, py0, px1, py1 = width - 300, y + 24, width - 70, y + 24 + 290
    draw.rectangle((px0, py0, px1, py1), fill=(214, 220, 224))
    head_cx, head_cy = (px0 + px1) // 2, py0 + 110
    draw.ellipse((head_cx - 55, head_cy - 68, head_cx + 55, head_cy + 62), fill=(186, 194, 200))
    draw.chord((px0 + 25, py1 - 110, px1 - 25, py1 + 110), 180, 360, fill=(186, 194, 200))
    row_y = y + 34
    label_font = cjk_font(26)
    for field in _CARD_FIELDS:
        draw.text(
            (left, row_y + label_font.getmetrics()[0]),
            field,
            font=label_font,
            fill=_GREY_INK,
            anchor="ls",
        )
        _filler_line(page, left + 110, row_y, int(rng.integers(4, 16)), 26, rng, _INK)
        row_y += 58
    seal = _seal_mask(120)
    _stamp(page, seal, px0 - 90, py1 - 70, 0.35)
    _page_number(draw, width // 2, height - 26, number)


class SimulatedCamera:
    """A document camera that hands back synthetic sample pages (demo mode and tests)."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._pages: dict[str, int] = {}
        self._plugged = True
        self._closed = False

    def unplug(self) -> None:
        """Fault trigger: captures raise CameraError until plug()."""
        with self._lock:
            self._plugged = False

    def plug(self) -> None:
        """Undo unplug()."""
        with self._lock:
            self._plugged = True

    def capture(self, material_id: str, aspect: Aspect, label: str) -> CapturedPage:
        """One straightened page of `material_id`; raises CameraError when unplugged."""
        if aspect not in SIZES:
            raise ValueError(f"unknown aspect {aspect!r}; expected one of {sorted(SIZES)}")
        # One capture at a time, as with a real camera; also keeps a seeded run reproducible.
        with self._lock:
            if self._closed:
                raise CameraError("camera closed")
            if not self._plugged:
                raise CameraError("camera not found")
            number = self._pages.get(material_id, 0) + 1
            self._pages[material_id] = number
            page = _background(aspect).copy()
            with FONT_LOCK:
                if aspect == "id_card":
                    _id_card(page, label, number, self._rng)
                else:
                    _document(page, label, number, self._rng, with_table=aspect == "a4")
        buffer = io.BytesIO()
        page.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        log.debug("captured %s page %d (%s)", material_id, number, aspect)
        return CapturedPage(jpeg=buffer.getvalue(), width=page.width, height=page.height)

    def close(self) -> None:
        """Release the camera; idempotent."""
        with self._lock:
            self._closed = True
