"""Synthetic document-camera frames with known page corners, for the simulator, tests and benches.

A scene is a document lying on a background under a 高拍仪, seen through a slightly tilted
camera, with the troubles of a real hall: blur, glare, a cast shadow, uneven light, a hand
moving the page or a finger over an edge. Rendering a scene at any 4:3 size gives the same
picture, and the page's true corners in that frame's pixels. Everything is seeded.

All documents are sample artwork: filler text, no real person's data.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from devices.receipt_image import FONT_LOCK, cjk_font, wrap_text
from devices.scanning import order_corners

DocumentKind = Literal["a4_text", "hukou", "id_card", "bank_card", "folded", "square"]
BackgroundKind = Literal["plain", "wood", "pad", "clutter"]
DOCUMENTS: tuple[DocumentKind, ...] = get_args(DocumentKind)
# What turns up at a hall's camera; "square" is the simulator's stand-in for odd formats.
RANDOM_DOCUMENTS: tuple[DocumentKind, ...] = ("a4_text", "hukou", "id_card", "bank_card", "folded")
BACKGROUNDS: tuple[BackgroundKind, ...] = get_args(BackgroundKind)

# What the camera sees of the base pad: an A3-class 高拍仪, 4:3 like its sensor.
FOV_MM = (440.0, 330.0)
PREVIEW_SIZE = (1600, 1200)
STILL_SIZE = (3264, 2448)

# Physical sizes (width, height) in millimetres as the document lies, portrait unless a card.
SIZES_MM: dict[DocumentKind, tuple[float, float]] = {
    "a4_text": (210.0, 297.0),
    "folded": (210.0, 297.0),
    "square": (210.0, 210.0),
    "hukou": (105.0, 143.0),
    "id_card": (85.6, 54.0),
    "bank_card": (85.6, 53.98),
}
PAPER_DPI = 150  # artwork resolution of paper documents
CARD_DPI = 300  # cards carry small print

# Typed loosely because OpenCV's stubs type every result that way.
Bgr = NDArray[Any]  # BGR uint8
Floats = NDArray[Any]  # float32 working images


# Flat artwork: the documents as printed ------------------------------------------------------

_PAPER = (247, 245, 238)
_HUKOU_PAPER = (246, 236, 232)
_INK = (36, 36, 40)
_GREY_INK = (96, 96, 104)
_RULE = (120, 120, 126)
_SEAL_RED = (206, 38, 44)
_CARD = (229, 237, 241)

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
# The headings of a 常住人口登记卡; every value on the sample page is filler.
_HUKOU_FIELDS = (
    ("姓名", "户主或与户主关系"),
    ("曾用名", "性别"),
    ("出生地", "民族"),
    ("籍贯", "出生日期"),
    ("本市（县）其他住址", "宗教信仰"),
    ("公民身份号码", "身高"),
    ("文化程度", "婚姻状况"),
    ("服务处所", "职业"),
    ("何时由何地迁来本市（县）", ""),
    ("何时由何地迁来本址", ""),
)
_LABELS = (
    "出生医学证明",
    "劳动合同",
    "委托书",
    "医院诊断证明",
    "租房合同",
    "营业执照",
    "清税证明",
    "社保缴费证明",
)


def page_label(number: int) -> str:
    """The page number printed at the foot of a sample page."""
    return f"第 {number} 页 / Page {number}"


def _noise(shape: tuple[int, int], amplitude: float, seed: int = 20240601) -> Floats:
    # A small tile repeated: sensor-like grain at a fraction of the cost of full-frame noise;
    # the period is invisible after JPEG compression.
    rng = np.random.default_rng(seed)
    tile = rng.normal(0.0, amplitude, (128, 128)).astype(np.float32)
    reps = (math.ceil(shape[0] / 128), math.ceil(shape[1] / 128))
    return np.tile(tile, reps)[: shape[0], : shape[1]]


def _lighting(height: int, width: int) -> Floats:
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


def _alpha(mask: Image.Image, strength: float) -> Floats:
    return np.asarray(mask, dtype=np.float32) * (strength / 255.0)


def _rgb(layers: list[tuple[Floats, tuple[int, int, int]]], noise: Floats) -> Image.Image:
    """Sum `weight × colour` per channel, add grain; all maths on 2-D planes to stay fast."""
    channels = []
    for c in range(3):
        plane = noise.copy()
        for weight, colour in layers:
            plane += weight * colour[c]
        channels.append(Image.fromarray(np.clip(plane, 0, 255).astype(np.uint8), "L"))
    return Image.merge("RGB", channels)


def _art_size(kind: DocumentKind) -> tuple[int, int]:
    dpi = CARD_DPI if kind in ("id_card", "bank_card") else PAPER_DPI
    width_mm, height_mm = SIZES_MM[kind]
    return round(width_mm / 25.4 * dpi), round(height_mm / 25.4 * dpi)


def _rounded_mask(width: int, height: int, radius: int) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, width - 1, height - 1), radius=radius, fill=255)
    return mask


@functools.lru_cache(maxsize=8)
def _blank(kind: DocumentKind) -> Image.Image:
    """The document before anything is written on it: paper or card stock, with watermark."""
    width, height = _art_size(kind)
    light = _lighting(height, width)
    noise = _noise((height, width), 1.6)
    if kind == "id_card":
        guilloche = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(guilloche)
        xs = np.arange(0, width, 3, dtype=np.float64)
        for k in range(9):
            ys = height * (0.55 + 0.04 * k) + 18 * np.sin(xs / (40 + 6 * k) + k)
            draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=255, width=1)
        # A faint tint gradient across the card, as printed security backgrounds have.
        tint = np.linspace(0.985, 1.0, width, dtype=np.float32)[None, :]
        ink = (1.0 - _alpha(guilloche, 0.10)) * (
            1.0 - _alpha(_watermark_mask(width, height, 96), 0.10)
        )
        return _rgb([(light * tint * ink, _CARD)], noise)
    if kind == "bank_card":
        return _bank_card_stock(width, height, noise)
    paper = _HUKOU_PAPER if kind == "hukou" else _PAPER
    watermark = _watermark_mask(width, height, max(60, min(150, width // 8)))
    return _rgb([(light * (1.0 - _alpha(watermark, 0.08)), paper)], noise)


def _bank_card_stock(width: int, height: int, noise: Floats) -> Image.Image:
    """A saturated two-tone card with a wave, as bank cards are printed."""
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    wave = (ys > 0.62 + 0.12 * np.sin(xs * 5.0 + 0.6)).astype(np.float32)
    wave = cv2.GaussianBlur(wave, (0, 0), 2.0)
    shade = 0.85 + 0.15 * (1.0 - xs) * np.ones_like(ys)
    deep, bright = (18, 64, 142), (34, 118, 196)
    return _rgb([(shade * (1.0 - wave), deep), (shade * wave, bright)], noise)


@dataclass(frozen=True)
class _Filler:
    """A long line of filler text as an ink mask, cut into lines of whole characters."""

    mask: Image.Image
    advance: int  # CJK glyphs and full-width punctuation all advance one em
    starts: tuple[int, ...]  # character offsets a line may start at (not on punctuation)


@functools.lru_cache(maxsize=8)
def _filler(size: int) -> _Filler:
    text = _FILLER * 2
    with FONT_LOCK:
        font = cjk_font(size)
        ascent, descent = font.getmetrics()
        mask = Image.new("L", (len(text) * size + size, ascent + descent), 0)
        ImageDraw.Draw(mask).text((0, ascent), text, font=font, fill=255, anchor="ls")
    starts = tuple(i for i, ch in enumerate(text[: len(_FILLER)]) if ch not in _PUNCTUATION)
    return _Filler(mask, size, starts)


@functools.lru_cache(maxsize=8)
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
        (centre_x, baseline), page_label(number), font=cjk_font(22), fill=_GREY_INK, anchor="ms"
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


def _bank_card(page: Image.Image, rng: np.random.Generator) -> None:
    draw = ImageDraw.Draw(page)
    white = (245, 245, 245)
    draw.text((60, 50), "样例银行", font=cjk_font(54, bold=True), fill=white)
    draw.text((60, 118), "SAMPLE BANK · 借记卡", font=cjk_font(26), fill=(210, 222, 240))
    # The chip, with its contact pads.
    cx, cy = 96, 230
    draw.rounded_rectangle((cx, cy, cx + 130, cy + 100), radius=14, fill=(212, 182, 98))
    for k in range(1, 3):
        draw.line((cx, cy + k * 33, cx + 130, cy + k * 33), fill=(160, 130, 60), width=3)
    draw.line((cx + 65, cy, cx + 65, cy + 100), fill=(160, 130, 60), width=3)
    groups = ["6200", *(f"{int(rng.integers(0, 10000)):04d}" for _ in range(2)), "0000"]
    draw.text((90, 392), "  ".join(groups), font=cjk_font(62), fill=white)
    draw.text((90, 500), "有效期 12/30   样张 SAMPLE", font=cjk_font(26), fill=(220, 230, 240))


def _hukou(page: Image.Image, number: int, rng: np.random.Generator) -> None:
    """A 常住人口登记卡 page: title, a ruled form, filler values, the registrar's seal."""
    width, height = page.size
    draw = ImageDraw.Draw(page)
    red = (170, 60, 60)
    y = _title(draw, "常住人口登记卡", cjk_font(40, bold=True), width // 2, 30, width - 60, 1)
    left, right = 28, width - 28
    top = y + 16
    rows = len(_HUKOU_FIELDS)
    row_height = (height - top - 70) // rows
    split = width // 2
    draw.rectangle((left, top, right, top + rows * row_height), outline=red, width=3)
    font = cjk_font(17)
    for r, (first, second) in enumerate(_HUKOU_FIELDS):
        ry = top + r * row_height
        if r:
            draw.line((left, ry, right, ry), fill=red, width=1)
        cells = [(left, right if not second else split, first)]
        if second:
            draw.line((split, ry, split, ry + row_height), fill=red, width=1)
            cells.append((split, right, second))
        for x0, x1, name in cells:
            name_width = round(font.getlength(name)) + 12
            draw.text((x0 + 6, ry + row_height // 2), name, font=font, fill=red, anchor="lm")
            draw.line((x0 + name_width, ry, x0 + name_width, ry + row_height), fill=red, width=1)
            chars = max(1, (x1 - x0 - name_width - 12) // 18)
            _filler_line(
                page,
                x0 + name_width + 6,
                ry + row_height // 2 - 12,
                int(rng.integers(max(1, chars // 3), chars + 1)),
                18,
                rng,
                _INK,
            )
    seal = _seal_mask(150)
    _stamp(page, seal, width - 200, height - 190, 0.5)
    _page_number(draw, width // 2, height - 24, number)


@functools.lru_cache(maxsize=24)
def document_art(kind: DocumentKind, label: str = "", number: int = 1, seed: int = 0) -> Bgr:
    """The document as printed (BGR), at 150 dpi for paper and 300 dpi for cards."""
    page = _blank(kind).copy()
    rng = np.random.default_rng(seed)
    with FONT_LOCK:
        if kind == "id_card":
            _id_card(page, label, number, rng)
        elif kind == "bank_card":
            _bank_card(page, rng)
        elif kind == "hukou":
            _hukou(page, number, rng)
        else:
            _document(page, label, number, rng, with_table=kind != "square")
    art = cv2.cvtColor(np.asarray(page), cv2.COLOR_RGB2BGR)
    art.setflags(write=False)  # shared by the cache
    return art


@functools.lru_cache(maxsize=8)
def document_alpha(kind: DocumentKind) -> Bgr:
    """Coverage of the artwork: rounded corners for cards (ISO/IEC 7810: r = 3.18 mm)."""
    width, height = _art_size(kind)
    if kind in ("id_card", "bank_card"):
        radius = round(3.18 / 25.4 * CARD_DPI)
        mask = np.asarray(_rounded_mask(width, height, radius), dtype=np.uint8).copy()
    else:
        mask = np.full((height, width), 255, np.uint8)
    mask.setflags(write=False)
    return mask


# Scenes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hand:
    """A hand holding the page: fingers over one side, the arm out past the frame."""

    side: int  # 0 top, 1 right, 2 bottom, 3 left, of the page as laid
    along: float  # where along that side, 0..1
    reach_mm: float  # how far the fingertips come over the page
    fingers: int
    skin: tuple[int, int, int]  # BGR
    angle_deg: float = 0.0  # the arm's angle from the side's normal


@dataclass(frozen=True)
class Scene:
    """Everything that decides one frame; any 4:3 size renders the same picture."""

    seed: int
    background: BackgroundKind
    document: DocumentKind | None
    centre_mm: tuple[float, float] = (FOV_MM[0] / 2, FOV_MM[1] / 2)
    angle_deg: float = 0.0  # the page's rotation on the pad
    landscape: bool = False  # paper laid sideways
    tilt: tuple[float, ...] = (0.0,) * 8  # camera perspective: frame-corner shifts / width
    blur_mm: float = 0.0  # defocus, Gaussian sigma on the pad
    motion_mm: tuple[float, float] = (0.0, 0.0)  # motion blur during the exposure
    glare: float = 0.0  # 0 none .. 1 a saturated hot spot
    glare_at: tuple[float, float] = (0.5, 0.5)  # where on the page, 0..1 each way
    shadow: float = 0.0  # a cast shadow (head, arm) across part of the frame, 0..1
    shadow_angle_deg: float = 0.0
    light: float = 0.1  # uneven light: fall-off to the sides, 0..0.5
    hand: Hand | None = None
    fold_mm: float = 0.0  # how far the creases of a folded page stand off the pad
    noise: float = 2.0  # sensor noise, grey levels
    jpeg_quality: int = 85  # the camera's MJPG stream
    label: str = ""
    number: int = 1
    art_seed: int = 0

    def page_size_mm(self) -> tuple[float, float]:
        """The page's width and height as it lies on the pad."""
        assert self.document is not None
        width, height = SIZES_MM[self.document]
        return (height, width) if self.landscape else (width, height)


@dataclass(frozen=True)
class Frame:
    """A rendered frame (BGR) and the page's true corners, TL TR BR BL as seen (None: no page)."""

    image: Bgr
    corners: NDArray[np.float32] | None
    scene: Scene


def _scale(size: tuple[int, int]) -> float:
    return size[0] / FOV_MM[0]


def _page_corners_mm(scene: Scene) -> Floats:
    """The page's corners on the pad, in the page's own order (its top-left first)."""
    width, height = scene.page_size_mm()
    half_w, half_h = width / 2, height / 2
    local = np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])
    angle = math.radians(scene.angle_deg)
    rotation = np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32
    )
    placed: Floats = (local @ rotation.T + np.array(scene.centre_mm)).astype(np.float32)
    return placed


def _camera(scene: Scene, size: tuple[int, int]) -> NDArray[Any]:
    """The homography from the pad (in frame pixels, camera square-on) to the tilted view."""
    width, height = size
    square = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    shifts = np.array(scene.tilt, np.float32).reshape(4, 2) * width
    matrix: NDArray[Any] = cv2.getPerspectiveTransform(square, square + shifts)
    return matrix


def _apply(matrix: NDArray[Any], points: Floats) -> Floats:
    moved = cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float32), matrix)
    return moved.reshape(-1, 2).astype(np.float32)


def true_corners(scene: Scene, size: tuple[int, int] = PREVIEW_SIZE) -> NDArray[np.float32] | None:
    """Where the page's corners land in a frame of `size`, TL TR BR BL as seen."""
    if scene.document is None:
        return None
    pad = _page_corners_mm(scene) * _scale(size)
    return order_corners(_apply(_camera(scene, size), pad))


# Backgrounds ----------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> Floats:
    """Value noise: a coarse random grid blown up smoothly, in -1..1."""
    width, height = size
    grid = rng.uniform(-1, 1, (max(2, cells * height // width), cells)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


_PLAIN_COLOURS = (
    (196, 198, 200),  # light grey laminate
    (212, 214, 212),  # near-white desk: the hard case for white paper
    (150, 172, 190),  # beige
    (72, 72, 76),  # dark grey
    (112, 96, 84),  # blue-grey
    (78, 104, 84),  # green desk mat
)
_WOOD_COLOURS = (
    ((104, 150, 192), (70, 108, 150)),  # oak
    ((60, 86, 124), (34, 52, 80)),  # walnut
    ((64, 98, 160), (42, 64, 118)),  # cherry
    ((150, 186, 214), (118, 152, 186)),  # birch
)
_PAD_COLOURS = ((32, 32, 34), (46, 46, 50), (70, 44, 30), (40, 58, 40))


def _plain(rng: np.random.Generator, size: tuple[int, int]) -> Floats:
    colour = np.array(_PLAIN_COLOURS[int(rng.integers(len(_PLAIN_COLOURS)))], np.float32)
    colour *= rng.uniform(0.92, 1.06)
    mottle = 1.0 + 0.03 * _smooth_noise(rng, size, 6) + 0.015 * _smooth_noise(rng, size, 40)
    return mottle[:, :, None] * colour[None, None, :]


def _wood(rng: np.random.Generator, size: tuple[int, int]) -> Floats:
    width, height = size
    light, dark = (np.array(c, np.float32) for c in _WOOD_COLOURS[int(rng.integers(4))])
    vertical = bool(rng.integers(2))
    length, across = (height, width) if vertical else (width, height)
    scale = width / FOV_MM[0]
    # Grain runs along the boards: rings warped by low-frequency noise, plus fine streaks.
    u = np.arange(across, dtype=np.float32)[:, None] / scale  # mm across the grain
    warp = _smooth_noise(rng, (length, across), 5) * rng.uniform(4, 12)
    period = rng.uniform(3.0, 9.0)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (u + warp) / period)
    rings = rings**3
    streaks = cv2.resize(
        rng.uniform(-1, 1, (across // 2 + 1, 12)).astype(np.float32),
        (length, across),
        interpolation=cv2.INTER_LINEAR,
    )
    mix = np.clip(0.55 * rings + 0.15 * streaks + 0.2, 0, 1)
    image = light[None, None, :] * (1 - mix[:, :, None]) + dark[None, None, :] * mix[:, :, None]
    # Board seams: dark grooves along the grain.
    board = rng.uniform(90, 160)
    offset = rng.uniform(0, board)
    for edge in np.arange(offset, across / scale, board):
        line = round(edge * scale)
        thickness = max(1, round(0.8 * scale))
        image[max(0, line - thickness) : line + thickness] *= 0.55
    image = np.ascontiguousarray(image.transpose(1, 0, 2)) if vertical else image
    return image.astype(np.float32)


def _pad(rng: np.random.Generator, size: tuple[int, int]) -> Floats:
    """A 高拍仪 base pad: dark, with ruler ticks and guide corners for A4 and ID cards."""
    width, height = size
    colour = np.array(_PAD_COLOURS[int(rng.integers(len(_PAD_COLOURS)))], np.float32)
    sheen = 1.0 + 0.06 * _smooth_noise(rng, size, 3)
    image = (sheen[:, :, None] * colour[None, None, :]).astype(np.float32)
    scale = width / FOV_MM[0]
    marks = np.zeros((height, width), np.uint8)
    ink = int(rng.uniform(140, 210))
    origin = (rng.uniform(8, 22), rng.uniform(8, 22))
    for mm in range(0, 420, 5):
        x = round((origin[0] + mm) * scale)
        y = round((origin[1] + mm) * scale)
        long = 8 if mm % 50 == 0 else 5 if mm % 10 == 0 else 3
        cv2.line(marks, (x, 0), (x, round(long * scale)), ink, max(1, round(0.4 * scale)))
        if mm <= 300:
            cv2.line(marks, (0, y), (round(long * scale), y), ink, max(1, round(0.4 * scale)))
        if mm % 50 == 0 and mm:
            cv2.putText(
                marks,
                str(mm // 10),
                (x + 3, round(14 * scale)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.09 * scale,
                ink,
                max(1, round(0.3 * scale)),
                cv2.LINE_AA,
            )
    # Guide corners: an A4 outline and an ID-card outline, as brackets only.
    centre = (FOV_MM[0] / 2 + rng.uniform(-10, 10), FOV_MM[1] / 2 + rng.uniform(-6, 6))
    for w_mm, h_mm in ((210.0, 297.0), (85.6, 54.0), (148.0, 210.0)):
        x0, y0 = (centre[0] - w_mm / 2) * scale, (centre[1] - h_mm / 2) * scale
        x1, y1 = (centre[0] + w_mm / 2) * scale, (centre[1] + h_mm / 2) * scale
        arm = min(w_mm, h_mm) * 0.15 * scale
        for cx, cy, dx, dy in ((x0, y0, 1, 1), (x1, y0, -1, 1), (x1, y1, -1, -1), (x0, y1, 1, -1)):
            pts = np.array([[cx + dx * arm, cy], [cx, cy], [cx, cy + dy * arm]], np.int32).reshape(
                -1, 1, 2
            )
            cv2.polylines(marks, [pts], False, ink // 2, max(1, round(0.5 * scale)), cv2.LINE_AA)
    alpha = marks.astype(np.float32)[:, :, None] / 255.0
    marked: Floats = image * (1 - alpha) + 235.0 * alpha
    return marked


def _box(mask: Floats, pad: float) -> tuple[slice, slice] | None:
    """The rows and columns where `mask` is set, grown by `pad` pixels; None if empty."""
    x, y, w, h = cv2.boundingRect((mask > 0.004).astype(np.uint8))
    if w == 0 or h == 0:
        return None
    grow = math.ceil(pad)
    rows = slice(max(0, y - grow), min(mask.shape[0], y + h + grow))
    cols = slice(max(0, x - grow), min(mask.shape[1], x + w + grow))
    return rows, cols


def _shadowed(image: Floats, mask: Floats, offset: tuple[float, float], strength: float) -> None:
    """Darken `image` under `mask` shifted by `offset` pixels, softly, in place."""
    sigma = max(1.0, math.hypot(*offset) * 0.8)
    box = _box(mask, math.hypot(*offset) + 3 * sigma)
    if box is None:
        return
    rows, cols = box
    part = mask[rows, cols]
    # The shadow is soft: work it out at a fraction of the size and blow it up.
    step = max(1, int(sigma // 2))
    small = cv2.resize(part, (max(1, part.shape[1] // step), max(1, part.shape[0] // step)))
    shift = np.array([[1, 0, offset[0] / step], [0, 1, offset[1] / step]], np.float32)
    moved = cv2.warpAffine(small, shift, (small.shape[1], small.shape[0]))
    soft = cv2.resize(cv2.GaussianBlur(moved, (0, 0), sigma / step), (part.shape[1], part.shape[0]))
    region = image[rows, cols]
    region *= cv2.merge([1.0 - strength * soft] * 3)


def _clutter(rng: np.random.Generator, size: tuple[int, int], base: Floats) -> Floats:
    """Desk things around the page: pens, coins, a mug, a cable, a stapler, paper clips."""
    width, height = size
    scale = width / FOV_MM[0]
    image = base.copy()

    def at() -> tuple[float, float]:
        return rng.uniform(0, FOV_MM[0]) * scale, rng.uniform(0, FOV_MM[1]) * scale

    for _ in range(int(rng.integers(3, 8))):
        kind = int(rng.integers(6))
        mask = np.zeros((height, width), np.uint8)
        colour = np.array(rng.uniform(20, 230, 3), np.float32)
        x, y = at()
        if kind == 0:  # pen or pencil
            angle = rng.uniform(0, math.pi)
            length = rng.uniform(120, 160) * scale
            dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
            cv2.line(
                mask,
                (round(x - dx), round(y - dy)),
                (round(x + dx), round(y + dy)),
                255,
                max(2, round(rng.uniform(7, 11) * scale)),
                cv2.LINE_AA,
            )
        elif kind == 1:  # coins
            for _ in range(int(rng.integers(1, 4))):
                cx, cy = x + rng.uniform(-30, 30) * scale, y + rng.uniform(-30, 30) * scale
                r = round(rng.uniform(10, 13) * scale)
                cv2.circle(mask, (round(cx), round(cy)), r, 255, -1, cv2.LINE_AA)
            colour = np.array((90, 150, 180) if rng.integers(2) else (170, 170, 170), np.float32)
        elif kind == 2:  # a mug seen from above: a ring, coffee inside, a handle
            r = round(rng.uniform(40, 46) * scale)
            cv2.circle(mask, (round(x), round(y)), r, 255, -1, cv2.LINE_AA)
            handle = (round(x + r * 1.1), round(y))
            cv2.ellipse(mask, handle, (round(r * 0.35), round(r * 0.25)), 0, 0, 360, 255, -1)
        elif kind == 3:  # a cable: a thick smooth curve across the desk
            t = np.linspace(0, 1, 60)
            pts = np.stack(
                [
                    x + (t - 0.5) * rng.uniform(150, 300) * scale,
                    y + np.sin(t * rng.uniform(3, 8) + rng.uniform(0, 6)) * 30 * scale,
                ],
                axis=1,
            ).astype(np.int32)
            cv2.polylines(
                mask, [pts.reshape(-1, 1, 2)], False, 255, max(2, round(5 * scale)), cv2.LINE_AA
            )
            colour = np.array((30, 30, 30) if rng.integers(2) else (225, 225, 225), np.float32)
        elif kind == 4:  # a stapler from above: long, dark, rounded at both ends
            angle = rng.uniform(0, math.pi)
            half = rng.uniform(50, 65) * scale
            dx, dy = math.cos(angle) * half, math.sin(angle) * half
            cv2.line(
                mask,
                (round(x - dx), round(y - dy)),
                (round(x + dx), round(y + dy)),
                255,
                round(38 * scale),
                cv2.LINE_AA,
            )
            colour *= 0.4
        else:  # paper clips: small wire loops
            for _ in range(int(rng.integers(1, 4))):
                cx, cy = x + rng.uniform(-25, 25) * scale, y + rng.uniform(-25, 25) * scale
                axes = (round(16 * scale), round(4 * scale))
                cv2.ellipse(
                    mask,
                    (round(cx), round(cy)),
                    axes,
                    rng.uniform(0, 180),
                    0,
                    360,
                    255,
                    max(1, round(0.8 * scale)),
                    cv2.LINE_AA,
                )
            colour = np.array((180, 180, 185), np.float32)
        alpha = mask.astype(np.float32) / 255.0
        _shadowed(image, alpha, (2.5 * scale, 3.5 * scale), 0.45)
        found = _box(alpha, 1)
        if found is None:
            continue
        rows, cols = found
        part = alpha[rows, cols][:, :, None]
        shade = 0.8 + 0.2 * _smooth_noise(rng, (part.shape[1], part.shape[0]), 3)
        image[rows, cols] = image[rows, cols] * (1 - part) + shade[:, :, None] * colour * part
    return image


@functools.lru_cache(maxsize=6)
def _background(kind: BackgroundKind, seed: int, size: tuple[int, int]) -> Bgr:
    rng = np.random.default_rng([seed, 1])
    if kind == "plain":
        image = _plain(rng, size)
    elif kind == "wood":
        image = _wood(rng, size)
    elif kind == "pad":
        image = _pad(rng, size)
    else:
        base = _wood(rng, size) if rng.integers(2) else _plain(rng, size)
        image = _clutter(rng, size, base)
    pixels: Bgr = np.clip(image, 0, 255).astype(np.uint8)
    pixels.setflags(write=False)
    return pixels


# Rendering ------------------------------------------------------------------------------------


def _warp_into(
    canvas: Floats,
    art: Bgr,
    alpha: Bgr,
    src: Floats,
    dst: Floats,
    shade: float = 1.0,
) -> None:
    """Paint the `src` quad of `art` onto the `dst` quad of `canvas`."""
    height, width = canvas.shape[:2]
    x0, y0 = np.floor(dst.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(dst.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        return
    matrix = cv2.getPerspectiveTransform(src, dst - np.array([x0, y0], np.float32))
    roi = (x1 - x0, y1 - y0)
    paint = cv2.warpPerspective(art, matrix, roi, flags=cv2.INTER_AREA).astype(np.float32)
    cover = cv2.warpPerspective(alpha, matrix, roi, flags=cv2.INTER_LINEAR).astype(np.float32)
    cover /= 255.0
    if shade != 1.0:
        paint *= shade
    region = canvas[y0:y1, x0:x1]
    region[...] = cv2.blendLinear(paint, region, cover, 1.0 - cover)


def _paint_document(
    canvas: Floats, scene: Scene, size: tuple[int, int], origin: NDArray[np.float32]
) -> None:
    """Lay the page on `canvas`, whose top-left pixel is at `origin` in the frame."""
    assert scene.document is not None
    art = document_art(scene.document, scene.label, scene.number, scene.art_seed)
    alpha = document_alpha(scene.document)
    if scene.landscape:
        art = cv2.rotate(art, cv2.ROTATE_90_COUNTERCLOCKWISE)
        alpha = cv2.rotate(alpha, cv2.ROTATE_90_COUNTERCLOCKWISE)
    art_h, art_w = art.shape[:2]
    scale = _scale(size)
    corners = _page_corners_mm(scene) * scale - origin
    shadow_mask = np.zeros(canvas.shape[:2], np.float32)
    cv2.fillConvexPoly(shadow_mask, np.round(corners).astype(np.int32), 1.0, cv2.LINE_AA)
    lift = 1.0 + (scene.fold_mm * 0.8 if scene.document == "folded" else 0.0)
    _shadowed(canvas, shadow_mask, (0.8 * lift * scale, 1.2 * lift * scale), 0.35)
    if scene.document != "folded" or scene.fold_mm <= 0:
        src = np.array([[0, 0], [art_w, 0], [art_w, art_h], [0, art_h]], np.float32)
        _warp_into(canvas, art, alpha, src, corners)
        return
    # Folded in three and opened again: the creases stand up off the pad, so the outline bends
    # outwards at them and each panel is lit differently. A point lifted h above the pad shows
    # shifted outwards by about h × r / H (r from the lens axis, H the camera's height: about
    # 150 and 400 mm on an A3-class 高拍仪).
    tl, tr, br, bl = corners
    centre = corners.mean(axis=0)
    panels = 3
    fractions = [k / panels for k in range(panels + 1)]
    left = [tl + (bl - tl) * f for f in fractions]
    right = [tr + (br - tr) * f for f in fractions]
    bulge = scene.fold_mm * 0.4 * scale
    for k in range(1, panels):
        for side in (left, right):
            direction = side[k] - centre
            side[k] = side[k] + direction / np.linalg.norm(direction) * bulge
    for k in range(panels):
        top, bottom = art_h * fractions[k], art_h * fractions[k + 1]
        src = np.array([[0, top], [art_w, top], [art_w, bottom], [0, bottom]], np.float32)
        dst = np.array([left[k], right[k], right[k + 1], left[k + 1]], np.float32)
        _warp_into(canvas, art, alpha, src, dst, 1.0 - 0.05 * (k % 2))
    for k in range(1, panels):
        crease = np.array([left[k], right[k]], np.float32).round().astype(np.int32)
        line = np.zeros(canvas.shape[:2], np.float32)
        cv2.line(line, tuple(crease[0]), tuple(crease[1]), 1.0, max(1, round(0.6 * scale)))
        box = _box(line, 4 * scale)
        if box is None:
            continue
        rows, cols = box
        soft = cv2.GaussianBlur(line[rows, cols], (0, 0), max(1.0, 0.8 * scale))
        canvas[rows, cols] *= (1.0 - 0.25 * soft / max(float(soft.max()), 1e-6))[:, :, None]


def _paint_hand(
    canvas: Floats, scene: Scene, size: tuple[int, int], origin: NDArray[np.float32]
) -> None:
    """Fingers over one side of the page, the palm and arm outside it, with a shadow."""
    hand = scene.hand
    assert hand is not None
    scale = _scale(size)
    if scene.document is not None:
        corners = _page_corners_mm(scene)
    else:
        w, h = 150.0, 200.0
        corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], np.float32) / 2 + np.array(
            scene.centre_mm, np.float32
        )
    start, end = corners[hand.side], corners[(hand.side + 1) % 4]
    tangent = (end - start) / np.linalg.norm(end - start)
    normal = np.array([tangent[1], -tangent[0]], np.float32)  # outward for clockwise corners
    turn = math.radians(hand.angle_deg)
    arm = normal * math.cos(turn) + tangent * math.sin(turn)
    edge_point = start + (end - start) * hand.along
    mask = np.zeros(canvas.shape[:2], np.float32)

    def px(p: NDArray[np.floating]) -> tuple[int, int]:
        return round(float(p[0]) * scale - origin[0]), round(float(p[1]) * scale - origin[1])

    spacing = 19.0
    bases = []
    for k in range(hand.fingers):
        offset = (k - (hand.fingers - 1) / 2) * spacing
        length = 60.0 - abs(offset) * 0.5
        tip = edge_point - normal * (hand.reach_mm - abs(offset) * 0.3) + tangent * offset
        base = tip + arm * length
        bases.append(base)
        cv2.line(mask, px(tip), px(base), 1.0, round(16 * scale), cv2.LINE_AA)
    # Palm and forearm, out to well beyond the frame.
    across = np.array([arm[1], -arm[0]], np.float32)
    middle = np.mean(bases, axis=0)
    palm = [middle + across * 45, middle - across * 45]
    wrist = [middle + arm * 90 + across * 38, middle + arm * 90 - across * 38]
    far = [middle + arm * 600 + across * 45, middle + arm * 600 - across * 45]
    outline = np.array([palm[0], wrist[0], far[0], far[1], wrist[1], palm[1]], np.float32)
    cv2.fillPoly(mask, [np.round(outline * scale - origin).astype(np.int32)], 1.0, cv2.LINE_AA)
    box = _box(mask, 16 * scale)
    if box is None:
        return
    rows, cols = box
    part = mask[rows, cols]
    soft = cv2.GaussianBlur(part, (0, 0), max(1.0, 0.7 * scale))
    _shadowed(canvas[rows, cols], soft, (4.0 * scale, 6.0 * scale), 0.4)
    # Rounded look: darker towards the outline. Smooth, so it is worked out small.
    small = cv2.resize(part, (max(1, part.shape[1] // 8), max(1, part.shape[0] // 8)))
    body = cv2.resize(cv2.GaussianBlur(small, (0, 0), 5.0 * scale / 8), part.shape[::-1])
    shade = 0.72 + 0.33 * np.clip(body, 0, 1)
    skin = np.array(hand.skin, np.float32)
    region = canvas[rows, cols]
    region *= (1 - soft)[:, :, None]
    region += (soft * shade)[:, :, None] * skin[None, None, :]


def _light_field(scene: Scene, size: tuple[int, int], rng: np.random.Generator) -> Floats:
    """Uneven light and a soft cast shadow, computed small and blown up (they are smooth)."""
    width, height = size
    small = (max(8, width // 16), max(6, height // 16))
    ys = np.linspace(-1.0, 1.0, small[1], dtype=np.float32)[:, None]
    xs = np.linspace(-1.0, 1.0, small[0], dtype=np.float32)[None, :]
    cx, cy = rng.uniform(-0.5, 0.5, 2)
    # Auto-exposure keeps white paper a little below clipping; only glare reaches white.
    exposure = rng.uniform(0.86, 0.97)
    field = exposure - scene.light * ((xs - cx) ** 2 + (ys - cy) ** 2) / 2
    field = field + 0.3 * scene.light * (xs * rng.uniform(-1, 1) + ys * rng.uniform(-1, 1))
    if scene.shadow > 0:
        angle = math.radians(scene.shadow_angle_deg)
        distance = xs * math.cos(angle) + ys * math.sin(angle) - rng.uniform(-0.2, 0.4)
        cast = 1.0 / (1.0 + np.exp(-distance * 9.0))
        field = field * (1.0 - scene.shadow * cast)
    smooth: Floats = cv2.resize(field.astype(np.float32), size, interpolation=cv2.INTER_CUBIC)
    return smooth


def _glare(scene: Scene, size: tuple[int, int], corners: Floats | None, image: Bgr) -> None:
    """Add a specular hot spot in place: a lamp reflected in gloss, clipped white at its core."""
    width, height = size
    scale = _scale(size)
    if corners is not None:
        u, v = scene.glare_at
        top = corners[0] + (corners[1] - corners[0]) * u
        bottom = corners[3] + (corners[2] - corners[3]) * u
        centre = top + (bottom - top) * v
    else:
        centre = np.array(scene.glare_at, np.float32) * np.array(size, np.float32)
    radius = (12.0 + 18.0 * scene.glare) * scale
    reach = 3.0 * radius * 1.6
    x0, x1 = max(0, int(centre[0] - reach)), min(width, int(centre[0] + reach) + 1)
    y0, y1 = max(0, int(centre[1] - reach)), min(height, int(centre[1] + reach) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    ys, xs = np.ogrid[y0:y1, x0:x1]
    d2 = ((xs - centre[0]) ** 2) / (radius * 1.6) ** 2 + ((ys - centre[1]) ** 2) / radius**2
    spot = np.exp(-d2 * 1.5).astype(np.float32) * (300.0 * scene.glare)
    region = image[y0:y1, x0:x1].astype(np.float32) + spot[:, :, None]
    image[y0:y1, x0:x1] = np.clip(region, 0, 255).astype(np.uint8)


def _painted_box(scene: Scene, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The part of the (square-on) frame the page, its shadow and a hand can touch."""
    width, height = size
    if scene.hand is not None or scene.document is None:
        return 0, 0, width, height  # an arm reaches in from beyond the frame
    corners = _page_corners_mm(scene) * _scale(size)
    margin = (12.0 + 3.0 * scene.fold_mm) * _scale(size)
    x0, y0 = np.floor(corners.min(axis=0) - margin).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0) + margin).astype(int)
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def _render_raw(scene: Scene, size: tuple[int, int]) -> tuple[Bgr, NDArray[np.float32] | None]:
    rng = np.random.default_rng([scene.seed, 2])
    image: Bgr = _background(scene.background, scene.seed, size).copy()
    if scene.document is not None or scene.hand is not None:
        # Float work only where the page and hand go: a still is 5 MP or more.
        x0, y0, x1, y1 = _painted_box(scene, size)
        if x1 > x0 and y1 > y0:
            origin = np.array([x0, y0], np.float32)
            canvas = image[y0:y1, x0:x1].astype(np.float32)
            if scene.document is not None:
                _paint_document(canvas, scene, size, origin)
            if scene.hand is not None:
                _paint_hand(canvas, scene, size, origin)
            image[y0:y1, x0:x1] = np.clip(canvas, 0, 255).astype(np.uint8)
    if any(scene.tilt):
        image = cv2.warpPerspective(
            image,
            _camera(scene, size),
            size,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT_101,
        )
    corners = true_corners(scene, size)
    if scene.light > 0 or scene.shadow > 0:
        lit = image.astype(np.float32) * _light_field(scene, size, rng)[:, :, None]
        image = np.clip(lit, 0, 255).astype(np.uint8)
    if scene.glare > 0:
        _glare(scene, size, corners, image)
    scale = _scale(size)
    if scene.blur_mm > 0:
        image = cv2.GaussianBlur(image, (0, 0), scene.blur_mm * scale)
    if any(scene.motion_mm):
        image = _motion_blur(image, (scene.motion_mm[0] * scale, scene.motion_mm[1] * scale))
    if scene.noise > 0:
        grain = _noise(size[::-1], scene.noise, seed=scene.seed % 1000)
        image = np.clip(image.astype(np.float32) + grain[:, :, None], 0, 255).astype(np.uint8)
    return image, corners


def render_jpeg(scene: Scene, size: tuple[int, int] = PREVIEW_SIZE) -> tuple[bytes, Frame]:
    """The frame as the camera's MJPG stream carries it, and the decoded frame."""
    image, corners = _render_raw(scene, size)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, scene.jpeg_quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    return data.tobytes(), Frame(decoded, corners, scene)


def render(scene: Scene, size: tuple[int, int] = PREVIEW_SIZE) -> Frame:
    """Draw `scene` as the camera would deliver it, at `size` (4:3), JPEG artefacts and all."""
    if scene.jpeg_quality >= 100:
        image, corners = _render_raw(scene, size)
        return Frame(image, corners, scene)
    return render_jpeg(scene, size)[1]


def _motion_blur(image: Floats, vector: tuple[float, float]) -> Floats:
    """Smear along `vector`, centred: the page's place is the middle of the exposure."""
    length = max(1, round(math.hypot(*vector) / 2))
    kernel = np.zeros((2 * length + 1, 2 * length + 1), np.float32)
    half = (vector[0] / 2, vector[1] / 2)
    start = (length - round(half[0]), length - round(half[1]))
    end = (length + round(half[0]), length + round(half[1]))
    cv2.line(kernel, start, end, 1.0, 1)
    kernel /= kernel.sum()
    blurred: Floats = cv2.filter2D(image, -1, kernel)
    return blurred


# Random scenes --------------------------------------------------------------------------------

_SKINS = ((120, 160, 214), (96, 136, 196), (142, 178, 226), (70, 104, 160))


def random_scene(
    seed: int,
    document: DocumentKind | None = None,
    background: BackgroundKind | None = None,
    *,
    degrade: bool = True,
    empty: bool = False,
) -> Scene:
    """A plausible scene: a page laid on the pad, fully in view, with the usual troubles."""
    rng = np.random.default_rng([seed, 0])
    kind: DocumentKind | None = None
    if not empty:
        kind = document or RANDOM_DOCUMENTS[int(rng.integers(len(RANDOM_DOCUMENTS)))]
    bg = background or BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    scene = Scene(seed=seed, background=bg, document=kind, art_seed=int(rng.integers(4)))
    landscape = kind in ("a4_text", "folded", "hukou") and rng.random() < 0.12
    angle = float(
        rng.normal(0, 4) if kind not in ("id_card", "bank_card") else rng.uniform(-40, 40)
    )
    tilt = tuple(float(v) for v in rng.normal(0, 0.008, 8))
    if degrade and rng.random() < 0.2:  # the arm of the camera knocked: real keystone
        tilt = tuple(float(v) for v in rng.normal(0, 0.03, 8))
    scene = dataclasses.replace(
        scene,
        angle_deg=angle,
        landscape=landscape,
        tilt=tilt,
        label=_LABELS[int(rng.integers(len(_LABELS)))],
        number=int(rng.integers(1, 4)),
    )
    scene = _place(scene, rng)
    if not degrade:
        return scene
    hand = None
    if rng.random() < 0.3:
        side = int(rng.integers(4))
        small = kind in ("id_card", "bank_card", None)
        # Fingers hold an edge down; they leave the corners of the side free.
        side_mm = 150.0 if kind is None else scene.page_size_mm()[side % 2]
        fingers = min(int(rng.integers(1, 3 if small else 5)), max(1, int(side_mm * 0.5 // 19)))
        hand = Hand(
            side=side,
            along=float(rng.uniform(0.35, 0.65)),
            reach_mm=float(rng.uniform(3, 9) if small else rng.uniform(5, 22)),
            fingers=fingers,
            skin=_SKINS[int(rng.integers(len(_SKINS)))],
            angle_deg=float(rng.uniform(-35, 35)),
        )
    return dataclasses.replace(
        scene,
        blur_mm=float(rng.choice([0.0, 0.0, rng.uniform(0.1, 0.6), rng.uniform(0.6, 1.4)])),
        motion_mm=(
            (float(rng.normal(0, 1.2)), float(rng.normal(0, 1.2)))
            if rng.random() < 0.15
            else (0.0, 0.0)
        ),
        glare=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.25 else 0.0,
        glare_at=(float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9))),
        shadow=float(rng.uniform(0.2, 0.55)) if rng.random() < 0.3 else 0.0,
        shadow_angle_deg=float(rng.uniform(0, 360)),
        light=float(rng.uniform(0.05, 0.45)),
        hand=hand,
        fold_mm=float(rng.uniform(1.5, 5.0)) if kind == "folded" else 0.0,
        noise=float(rng.uniform(1.0, 4.0)),
        jpeg_quality=int(rng.integers(70, 95)),
    )


def _place(scene: Scene, rng: np.random.Generator) -> Scene:
    """Put the page somewhere on the pad where all of it stays in view (with a margin)."""
    if scene.document is None:
        return dataclasses.replace(
            scene, centre_mm=(float(rng.uniform(150, 290)), float(rng.uniform(110, 220)))
        )
    margin = 8.0
    for _ in range(50):
        centre = (
            float(rng.normal(FOV_MM[0] / 2, FOV_MM[0] * 0.12)),
            float(rng.normal(FOV_MM[1] / 2, FOV_MM[1] * 0.1)),
        )
        placed = dataclasses.replace(scene, centre_mm=centre)
        corners = true_corners(placed, PREVIEW_SIZE)
        assert corners is not None
        lo = margin * _scale(PREVIEW_SIZE)
        if (
            corners.min() > lo
            and (corners[:, 0].max() < PREVIEW_SIZE[0] - lo)
            and (corners[:, 1].max() < PREVIEW_SIZE[1] - lo)
        ):
            return placed
        scene = dataclasses.replace(scene, angle_deg=scene.angle_deg * 0.7)
    return dataclasses.replace(scene, centre_mm=(FOV_MM[0] / 2, FOV_MM[1] / 2), angle_deg=0.0)


def nudge(scene: Scene, rng: np.random.Generator, move_mm: float, turn_deg: float) -> Scene:
    """The same scene a moment later, the page moved by a hand (None of the rest changes)."""
    x, y = scene.centre_mm
    dx, dy = rng.normal(0, move_mm, 2)
    return dataclasses.replace(
        scene,
        centre_mm=(float(x + dx), float(y + dy)),
        angle_deg=float(scene.angle_deg + rng.normal(0, turn_deg)),
    )
