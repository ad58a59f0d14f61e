"""Receipts and queue tickets as thermal-printer images: the screen shows the paper's dots."""

from __future__ import annotations

import functools
import io
import logging
import math
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import qrcode
from barcode.codex import Code128
from PIL import Image, ImageDraw, ImageFont

from kiosk.receipt import Receipt, ReceiptLine
from kiosk.ticket import TICKET_NOTICE, TICKET_TITLE, QueueTicket

log = logging.getLogger(__name__)

FONT_FAMILY = "Noto Sans CJK SC"
FONT_PACKAGE = "fonts-noto-cjk"

# Where distributions put the collection when fontconfig cannot be asked (minimal images).
_KNOWN_DIRS = (
    "/usr/share/fonts/opentype/noto",  # Debian, Ubuntu
    "/usr/share/fonts/noto-cjk",  # Arch
    "/usr/share/fonts/google-noto-cjk",  # Fedora
    "/usr/share/fonts/opentype/noto-cjk",
    "/usr/share/fonts/truetype/noto",
)

# FreeType faces are not safe to use from two threads at once, and Pillow shares one face per
# cached font object: everyone drawing with cjk_font() holds this lock.
FONT_LOCK = threading.RLock()

# 576 dots is the printable width of an 80 mm head, 384 of a 58 mm one.
WIDTH_80MM = 576
WIDTH_58MM = 384

_BLACK = 0
_WHITE = 1
_QR_MIN_DOTS = 200
_QR_BORDER = 4  # modules of quiet zone the QR specification asks for
BARCODE_QUIET = 10  # modules of quiet zone either side of a CODE128 symbol (ISO/IEC 15417)

# Chinese line-breaking rules (禁则): these may not start a line ...
_NO_LINE_START = frozenset("，。、；：？！）》」』】〕〉”’…·％～")
# ... and these may not end one.
_NO_LINE_END = frozenset("（《「『【〔〈“‘")
# A run of printable ASCII is one unbreakable word; spaces are break opportunities; any other
# character (CJK, full-width punctuation) is a unit of its own.
_TOKEN = re.compile(r"[\x21-\x7e]+|\s+|.", re.DOTALL)
_URL_PART = re.compile(r"[^/.?&=_-]*(?:[/.?&=_-]+|$)")


class FontMissing(RuntimeError):
    """No CJK font is installed, so Chinese text cannot be drawn."""


def _fc_match(bold: bool) -> str | None:
    exe = shutil.which("fc-match")
    if exe is None:
        return None
    pattern = f"{FONT_FAMILY}:style=Bold" if bold else FONT_FAMILY
    try:
        done = subprocess.run(
            [exe, "-f", "%{file}", pattern], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _face_index(path: str, style: str) -> int | None:
    """The index of the SC face in a collection (.ttc files hold JP, KR, SC, TC, HK...)."""
    for index in range(32):
        try:
            font = ImageFont.truetype(path, 12, index=index)
        except OSError:
            return None  # past the last face, or not a font at all
        if font.getname() == (FONT_FAMILY, style):
            return index
    return None


@functools.lru_cache(maxsize=2)
def font_face(bold: bool = False) -> tuple[str, int]:
    """The file and face index of Noto Sans CJK SC; raises FontMissing when not installed."""
    style = "Bold" if bold else "Regular"
    file_name = f"NotoSansCJK-{style}.ttc"
    candidates = [_fc_match(bold), *(f"{d}/{file_name}" for d in _KNOWN_DIRS)]
    for path in dict.fromkeys(c for c in candidates if c):
        if Path(path).is_file() and (index := _face_index(path, style)) is not None:
            return path, index
    if bold:
        # Some slim installs carry only the regular weight: plain text beats no receipt.
        return font_face(False)
    raise FontMissing(
        f"the font '{FONT_FAMILY}' is not installed; install the Debian package "
        f"{FONT_PACKAGE} (apt-get install {FONT_PACKAGE})"
    )


@functools.lru_cache(maxsize=64)
def cjk_font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """Noto Sans CJK SC at `size` pixels; use it while holding FONT_LOCK."""
    path, index = font_face(bold)
    return ImageFont.truetype(path, size, index=index)


# Wrapping -------------------------------------------------------------------------------------

# How wide a string is: pixels for an image font, columns for a printer's text mode.
Measure = Callable[[str], float]


def _tokens(text: str, measure: Measure, max_width: float) -> Iterator[str]:
    for match in _TOKEN.finditer(text):
        token = match.group()
        if len(token) == 1 or token.isspace() or measure(token) <= max_width:
            yield token
            continue
        # A word wider than the paper (a URL): break after its separators, and a part that
        # is still too wide anywhere.
        for part in filter(None, _URL_PART.findall(token)):
            if measure(part) <= max_width:
                yield part
            else:
                yield from part


def _wrap_paragraph(
    text: str, measure: Measure, first_width: float, rest_width: float
) -> list[str]:
    whole = text.strip()
    if measure(whole) <= first_width:
        # Most receipt lines fit as they are: one measurement instead of one per token.
        return [whole] if whole else []
    lines: list[str] = []
    current: list[str] = []

    def fits(tokens: list[str]) -> bool:
        limit = rest_width if lines else first_width
        return measure("".join(tokens).rstrip()) <= limit

    def flush(tokens: list[str]) -> None:
        lines.append("".join(tokens).strip())

    for token in _tokens(text, measure, min(first_width, rest_width)):
        if not current and token.isspace():
            continue
        if fits([*current, token]):
            current.append(token)
            continue
        if token.isspace():
            flush(current)
            current = []
            continue
        carry: list[str] = []
        if token in _NO_LINE_START and len(current) > 1 and not current[-1].isspace():
            carry.append(current.pop())  # take a character down with the closing mark
        while len(current) > 1 and current[-1] in _NO_LINE_END:
            carry.insert(0, current.pop())
        if current:
            flush(current)
        current = [*carry, token]
        if carry and not fits(current):
            # The line-break rule would push text off the paper; a broken rule reads better
            # than lost characters.
            flush(carry)
            current = [token]
    if current:
        flush(current)
    return lines


def wrap_measured(
    text: str, measure: Measure, width: float, rest_width: float | None = None
) -> list[str]:
    """Break `text` into lines whose `measure` fits `width` (then `rest_width`), CJK-aware."""
    rest = width if rest_width is None else rest_width
    lines: list[str] = []
    for paragraph in text.split("\n"):
        first = rest if lines else width
        lines.extend(_wrap_paragraph(paragraph, measure, first, rest) or [""])
    return lines


def wrap_text(
    text: str, font: ImageFont.FreeTypeFont, width: float, rest_width: float | None = None
) -> list[str]:
    """Break `text` into lines no wider than `width` (later lines: `rest_width`), CJK-aware."""
    return wrap_measured(text, font.getlength, width, rest_width)


# Layout ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sizes:
    margin: int
    title: int
    subtitle: int
    number: int
    heading: int
    body: int
    small: int
    barcode: int


def _sizes(width: int) -> _Sizes:
    # Proportional to the 80 mm layout, with floors so a 58 mm receipt stays readable by an
    # older applicant (24 dots is the classic thermal CJK glyph; 20 is the least we accept).
    scale = width / WIDTH_80MM

    def px(base: int, floor: int) -> int:
        return max(floor, round(base * scale))

    return _Sizes(
        margin=px(16, 8),
        title=px(40, 26),
        subtitle=px(26, 20),
        number=px(44, 28),
        heading=px(30, 22),
        body=px(26, 20),
        small=px(21, 16),
        barcode=px(72, 56),
    )


@dataclass(frozen=True)
class _TextOp:
    x: int
    baseline: int
    text: str
    font: ImageFont.FreeTypeFont


@dataclass(frozen=True)
class _BoxOp:
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class _PasteOp:
    image: Image.Image
    x: int
    y: int


_Op = _TextOp | _BoxOp | _PasteOp


class _Sheet:
    """Rows laid out top to bottom, then drawn on one image of exactly the height they need."""

    def __init__(self, width: int, margin: int) -> None:
        self.width = width
        self.margin = margin
        self.y = margin
        self.ops: list[_Op] = []

    @property
    def content_width(self) -> int:
        return self.width - 2 * self.margin

    def space(self, dots: int) -> None:
        self.y += dots

    def line(self, text: str, font: ImageFont.FreeTypeFont, x: int | None = None) -> None:
        """One line of text at `x`, or centred when `x` is None."""
        ascent, descent = font.getmetrics()
        if x is None:
            x = (self.width - round(font.getlength(text))) // 2
        if text:
            self.ops.append(_TextOp(x, self.y + ascent, text, font))
        self.y += ascent + descent

    def paragraph(self, text: str, font: ImageFont.FreeTypeFont, *, center: bool = False) -> None:
        for line in wrap_text(text, font, self.content_width):
            self.line(line, font, None if center else self.margin)

    def rule(self, thickness: int) -> None:
        self.ops.append(
            _BoxOp((self.margin, self.y, self.width - self.margin - 1, self.y + thickness - 1))
        )
        self.y += thickness

    def image(self, image: Image.Image) -> None:
        self.ops.append(_PasteOp(image, (self.width - image.width) // 2, self.y))
        self.y += image.height

    def dashed_cut(self, dash: int, gap: int, thickness: int) -> None:
        for x in range(0, self.width, dash + gap):
            self.ops.append(
                _BoxOp((x, self.y, min(x + dash, self.width) - 1, self.y + thickness - 1))
            )
        self.y += thickness

    def draw(self) -> Image.Image:
        image = Image.new("1", (self.width, self.y + self.margin), _WHITE)
        draw = ImageDraw.Draw(image)
        for op in self.ops:
            if isinstance(op, _TextOp):
                draw_text(image, op.x, op.baseline, op.text, op.font)
            elif isinstance(op, _BoxOp):
                draw.rectangle(op.box, fill=_BLACK)
            else:
                image.paste(op.image, (op.x, op.y))
        return image


@functools.lru_cache(maxsize=8192)
def _glyph(font: ImageFont.FreeTypeFont, char: str) -> tuple[Image.Image | None, int, int, float]:
    """A character's ink as a mask, its offset from the pen on the baseline, and its advance."""
    advance = font.getlength(char)
    left, top, right, bottom = (int(v) for v in font.getbbox(char, anchor="ls"))
    if right <= left or bottom <= top:
        return None, 0, 0, advance
    mask = Image.new("1", (right - left, bottom - top), 0)
    draw = ImageDraw.Draw(mask)
    # Monochrome glyph rendering with hinting: what a thermal head can actually print,
    # crisper than thresholding anti-aliased text.
    draw.fontmode = "1"
    draw.text((-left, -top), char, font=font, fill=1, anchor="ls")
    return mask, left, top, advance


def draw_text(
    image: Image.Image, x: int, baseline: int, text: str, font: ImageFont.FreeTypeFont
) -> None:
    """Draw `text` in black on a mode "1" image, its baseline at `baseline`; hold FONT_LOCK.

    Glyphs are rasterised once and pasted from a cache: a receipt repeats the same few hundred
    characters, and FreeType needs about a millisecond for each line of CJK outlines.
    """
    pen = float(x)
    for char in text:
        mask, left, top, advance = _glyph(font, char)
        if mask is not None:
            image.paste(_BLACK, (round(pen) + left, baseline + top), mask)
        pen += advance


def qr_image(payload: str, max_width: int, min_width: int = _QR_MIN_DOTS) -> Image.Image:
    """The QR code of `payload` with its quiet zone, modules at least `min_width` dots wide."""
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=1, border=_QR_BORDER
    )
    code.add_data(payload)
    code.make(fit=True)
    modules = int(code.modules_count)
    box = math.ceil(min_width / modules)
    while box > 1 and (modules + 2 * _QR_BORDER) * box > max_width:
        box -= 1
    dark = np.asarray(code.get_matrix(), dtype=bool)
    dots = np.repeat(np.repeat(~dark, box, axis=0), box, axis=1)  # True is white paper
    return Image.fromarray(dots)


def code128_modules(data: str) -> str:
    """The CODE128 symbol of `data` as modules, "1" dark: python-barcode picks the code sets."""
    return str(Code128(data).build()[0])


def barcode_image(data: str, max_width: int, height: int) -> Image.Image:
    """The CODE128 symbol of `data` with its quiet zones, in the widest modules (up to 3 dots)
    that fit `max_width`; raises ValueError when even 1-dot modules do not fit."""
    modules = code128_modules(data)
    total = len(modules) + 2 * BARCODE_QUIET
    module = min(3, max_width // total)
    if module < 1:
        raise ValueError(f"a CODE128 symbol of {len(data)} characters is wider than the paper")
    quiet = np.zeros(BARCODE_QUIET, dtype=bool)
    dark = np.concatenate(
        [quiet, np.frombuffer(modules.encode(), dtype=np.uint8) == ord("1"), quiet]
    )
    row = np.repeat(~dark, module)  # True is white paper
    return Image.fromarray(np.tile(row, (height, 1)))


def line_image(
    text: str, width_dots: int, x: int | None, size: int, bold: bool = False
) -> Image.Image:
    """One line of text as a mode "1" image `width_dots` wide (at `x`, or centred when None):
    what a printer without the glyph in its font ROM gets instead of the characters."""
    with FONT_LOCK:
        font = cjk_font(size, bold)
        ascent, descent = font.getmetrics()
        image = Image.new("1", (width_dots, ascent + descent), _WHITE)
        if x is None:
            x = max(0, (width_dots - round(font.getlength(text))) // 2)
        draw_text(image, x, ascent, text, font)
        return image


def _receipt_line(sheet: _Sheet, line: ReceiptLine, sizes: _Sizes) -> None:
    body = cjk_font(sizes.body)
    if line.style == "heading":
        sheet.space(sizes.body // 2)
        heading = cjk_font(sizes.heading, bold=True)
        text = f"{line.text}：{line.value}" if line.value else line.text
        for part in wrap_text(text, heading, sheet.content_width):
            sheet.line(part, heading, sheet.margin)
        sheet.space(2)
        sheet.rule(2)
        sheet.space(sizes.body // 4)
    elif line.style == "pair" and line.value:
        label = f"{line.text}："
        indent = round(body.getlength(label))
        if indent <= sheet.content_width * 0.4:
            # Hanging indent: continuation lines align under the value, like a printed form.
            parts = wrap_text(line.value, body, sheet.content_width - indent)
            sheet.ops.append(_TextOp(sheet.margin, sheet.y + body.getmetrics()[0], label, body))
            for part in parts:
                sheet.line(part, body, sheet.margin + indent)
        else:
            sheet.paragraph(label + line.value, body)
    elif line.style == "small":
        sheet.paragraph(line.text, cjk_font(sizes.small))
    else:
        sheet.paragraph(line.text, body)


def _number_barcode(number: str, max_width: int, height: int) -> Image.Image | None:
    try:
        return barcode_image(number, max_width, height)
    except ValueError:
        # A number too long for a scannable symbol: the digits above it still say it.
        log.warning("receipt number of %d characters: no barcode fits the paper", len(number))
        return None


def _fitting_font(text: str, sizes: _Sizes, sheet: _Sheet) -> ImageFont.FreeTypeFont:
    """The largest bold font, down to the body size, that keeps `text` on one line."""
    for size in range(sizes.number, sizes.body, -1):
        font = cjk_font(size, bold=True)
        if font.getlength(text) <= sheet.content_width:
            return font
    return cjk_font(sizes.body, bold=True)


def render_receipt(receipt: Receipt, width_dots: int = WIDTH_80MM) -> Image.Image:
    """The receipt as a mode "1" image `width_dots` wide (576: 80 mm paper, 384: 58 mm)."""
    if width_dots < 240:
        raise ValueError(f"width_dots={width_dots}: a receipt needs at least 240 dots")
    sizes = _sizes(width_dots)
    with FONT_LOCK:
        sheet = _Sheet(width_dots, sizes.margin)
        sheet.paragraph(receipt.title, cjk_font(sizes.title, bold=True), center=True)
        if receipt.subtitle:
            sheet.space(sizes.body // 4)
            sheet.paragraph(receipt.subtitle, cjk_font(sizes.subtitle), center=True)
        sheet.space(sizes.body // 2)
        sheet.paragraph(receipt.number, _fitting_font(receipt.number, sizes, sheet), center=True)
        sheet.space(sizes.body // 4)
        symbol = _number_barcode(receipt.number, sheet.content_width, sizes.barcode)
        if symbol is not None:
            sheet.image(symbol)
            sheet.space(sizes.body // 4)
        sheet.rule(2)
        sheet.space(sizes.body // 4)
        for line in receipt.lines:
            _receipt_line(sheet, line, sizes)
        if receipt.qr_payload:
            sheet.space(sizes.body // 2)
            sheet.image(qr_image(receipt.qr_payload, width_dots))
        if receipt.footer:
            sheet.space(sizes.body // 4)
            small = cjk_font(sizes.small)
            for text in receipt.footer:
                sheet.paragraph(text, small, center=True)
        sheet.space(sizes.body)
        sheet.dashed_cut(dash=max(6, width_dots // 48), gap=max(4, width_dots // 72), thickness=2)
        return sheet.draw()


def render_receipt_png(receipt: Receipt, width_dots: int = WIDTH_80MM) -> bytes:
    """The receipt image as PNG bytes (deterministic for the same receipt and width)."""
    buffer = io.BytesIO()
    render_receipt(receipt, width_dots).save(buffer, format="PNG")
    return buffer.getvalue()


def render_ticket(ticket: QueueTicket, width_dots: int = WIDTH_80MM) -> Image.Image:
    """The queue ticket as a mode "1" image `width_dots` wide, Chinese with English beneath."""
    if width_dots < 240:
        raise ValueError(f"width_dots={width_dots}: a ticket needs at least 240 dots")
    sizes = _sizes(width_dots)
    with FONT_LOCK:
        sheet = _Sheet(width_dots, sizes.margin)
        sheet.paragraph(ticket.hall.zh, cjk_font(sizes.subtitle), center=True)
        sheet.paragraph(ticket.hall.en, cjk_font(sizes.small), center=True)
        sheet.space(sizes.body // 2)
        title = f"{TICKET_TITLE.zh} {TICKET_TITLE.en}"
        sheet.paragraph(title, cjk_font(sizes.heading, bold=True), center=True)
        sheet.paragraph(ticket.number, cjk_font(sizes.number * 3, bold=True), center=True)
        sheet.space(sizes.body // 4)
        sheet.rule(2)
        sheet.space(sizes.body // 4)
        body, small = cjk_font(sizes.body), cjk_font(sizes.small)
        for row in ticket.rows():
            sheet.paragraph(f"{row.label.zh} {row.label.en}：{row.value.zh}", body)
            if row.value.en != row.value.zh:
                sheet.paragraph(row.value.en, small)
        sheet.space(sizes.body // 2)
        sheet.paragraph(TICKET_NOTICE.zh, body, center=True)
        sheet.paragraph(TICKET_NOTICE.en, small, center=True)
        sheet.space(sizes.body)
        sheet.dashed_cut(dash=max(6, width_dots // 48), gap=max(4, width_dots // 72), thickness=2)
        return sheet.draw()


def render_ticket_png(ticket: QueueTicket, width_dots: int = WIDTH_80MM) -> bytes:
    """The ticket image as PNG bytes."""
    buffer = io.BytesIO()
    render_ticket(ticket, width_dots).save(buffer, format="PNG")
    return buffer.getvalue()
