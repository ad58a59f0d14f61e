"""Receipts and queue tickets as ESC/POS bytes, built with python-escpos.

python-escpos builds the commands: initialise, text style, QR code, barcode, image, cut. Two
things it does wrong for Chinese are done here instead: it never switches the printer into
Chinese (Kanji) mode with FS &, and a string with full-width punctuation but no Han character
goes through a single-byte code page and prints as "??". So every line of text goes out as
bytes in the printer's GB encoding through `_raw`, after one FS & at the start of the job.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import qrcode
from escpos.capabilities import Profile, get_profile
from escpos.constants import QR_ECLEVEL_M
from escpos.printer import Dummy
from PIL import Image

from devices.printer.profile import PAPER, PrinterProfile
from devices.receipt_image import (
    BARCODE_QUIET,
    barcode_image,
    line_image,
    render_receipt,
    render_ticket,
    wrap_measured,
)
from kiosk.receipt import Receipt, ReceiptLine
from kiosk.ticket import TICKET_NOTICE, TICKET_TITLE, QueueTicket

log = logging.getLogger(__name__)

FS_CHINESE_ON = b"\x1c\x26"  # FS &: two-byte characters from here on
_GS_V0 = b"\x1d\x76\x30"  # GS v 0: print a raster bit image
_LF = b"\n"

_CJK_DOTS = 24  # the glyph size of the usual Chinese font ROM, also used for stand-in images

# Characters outside GBK that have a GBK twin, so a line does not fall back to an image for
# them (¥ is a four-byte GB18030 code that GBK font ROMs print as garbage).
_TWINS = str.maketrans({"¥": "￥", "\u00a0": " ", "\u3000": "  ", "\t": " ", "•": "·"})

_RASTER_BAND = 256  # rows per GS v 0 command: small enough for the input buffer of cheap printers


@functools.lru_cache(maxsize=16)
def escpos_profile(model: str, dots: int) -> Any:
    """python-escpos's profile for `model`, with the paper width we print on."""
    profile = Profile()
    # A copy: python-escpos shares one data dict between every user of a profile.
    profile.profile_data = copy.deepcopy(get_profile(model).profile_data)
    media = profile.profile_data.setdefault("media", {})
    media.setdefault("width", {})["pixels"] = dots
    if not isinstance(media.get("dpi"), int):
        media["dpi"] = 203  # every 58/80 mm head we print on; python-escpos print()s without it
    profile.features = profile.profile_data.get("features", {})
    return profile


def columns(text: str) -> int:
    """Columns `text` takes in the printer's text mode: ASCII one, anything else two.

    In Chinese mode the printer prints every two-byte code (Han, full-width punctuation, "·")
    as a 24-dot glyph: the width follows the encoding, not Unicode's East Asian Width.
    """
    return sum(1 if ord(char) < 0x80 else 2 for char in text)


def raster_commands(image: Image.Image) -> bytes:
    """GS v 0 commands printing `image` (mode "1", white paper = 1) at its own width."""
    ink = ~np.asarray(image.convert("1"), dtype=bool)  # True where the head makes a dot
    packed = np.packbits(ink, axis=1)  # most significant bit leftmost, rows padded to bytes
    width_bytes = packed.shape[1]
    out = bytearray()
    for top in range(0, packed.shape[0], _RASTER_BAND):
        band = packed[top : top + _RASTER_BAND]
        rows = band.shape[0]
        out += _GS_V0 + bytes((0, width_bytes & 0xFF, width_bytes >> 8, rows & 0xFF, rows >> 8))
        out += band.tobytes()
    return bytes(out)


# CODE128 as ESC/POS wants it: the data starts with a code set ("{B"), and runs of digits go
# in code set C, two digits a symbol, so a receipt number fits 80 mm paper at 2-dot modules.
_CODE_B, _CODE_C = "{B", "{C"


def code128_data(text: str) -> tuple[str, int]:
    """The GS k function B data for `text` and the symbol's width in modules (no quiet zone)."""
    if not text or not all(32 <= ord(c) < 127 for c in text):
        raise ValueError("CODE128 here takes printable ASCII only")
    out: list[str] = []
    symbols = 1  # the start character
    current = ""
    i = 0
    while i < len(text):
        run = 0
        while i + run < len(text) and text[i + run].isdigit():
            run += 1
        at_edge = i == 0 or i + run == len(text)
        if run >= (4 if at_edge else 6):
            if run % 2:  # an odd digit stays in code set B, before the pairs
                if current != _CODE_B:
                    out.append(_CODE_B)
                    symbols += current != ""
                    current = _CODE_B
                out.append(text[i])
                symbols += 1
                i += 1
                run -= 1
            if current != _CODE_C:
                out.append(_CODE_C)
                symbols += current != ""
                current = _CODE_C
            for k in range(i, i + run, 2):
                out.append(chr(int(text[k : k + 2])))
                symbols += 1
            i += run
            continue
        if current != _CODE_B:
            out.append(_CODE_B)
            symbols += current != ""
            current = _CODE_B
        char = text[i]
        out.append("{{" if char == "{" else char)  # "{" is the escape character in the data
        symbols += 1
        i += 1
    symbols += 1  # the check character
    return "".join(out), symbols * 11 + 13  # the stop pattern is 13 modules


@dataclass(frozen=True)
class _Style:
    align: Literal["left", "center"] = "left"
    bold: bool = False
    size: Literal["normal", "tall", "double", "huge"] = "normal"

    @property
    def scale(self) -> tuple[int, int]:
        """Width and height multipliers."""
        return {"normal": (1, 1), "tall": (1, 2), "double": (2, 2), "huge": (4, 4)}[self.size]


_NORMAL = _Style()


class EscposJob:
    """One print job: lines of Chinese and English, QR code, barcode, images, cut.

    Built on python-escpos's Dummy, which collects the bytes; `output` is the job.
    """

    def __init__(self, profile: PrinterProfile) -> None:
        self.profile = profile
        self._printer: Any = Dummy(profile=escpos_profile(profile.model, profile.dots))
        self._style: _Style | None = None
        self._printer.hw("INIT")  # ESC @: whatever the last job left set, start from defaults
        self._printer._raw(FS_CHINESE_ON)

    @property
    def output(self) -> bytes:
        """The job's bytes so far."""
        return bytes(self._printer.output)

    # Text -------------------------------------------------------------------------------------

    def _set(self, style: _Style) -> None:
        if style == self._style:
            return
        width, height = style.scale
        # Sizes always through GS ! (custom_size): python-escpos's double_width/double_height
        # send ESC !, which enlarges only single-byte characters, never Chinese ones.
        self._printer.set(
            custom_size=True, width=width, height=height, bold=style.bold, align=style.align
        )
        self._style = style

    def _line(self, text: str, style: _Style) -> None:
        text = text.translate(_TWINS).rstrip()
        if self.profile.mode == "raster":
            self._line_as_image(text, style)  # no Chinese font ROM to print it with
            return
        try:
            encoded = text.encode(self.profile.charset)
        except UnicodeEncodeError:
            self._line_as_image(text, style)
            return
        self._set(style)
        self._printer._raw(encoded + _LF)

    def _line_as_image(self, text: str, style: _Style) -> None:
        # A character the font ROM lacks (a 生僻字 in a name), or no font ROM at all: the
        # line goes as a picture drawn with the kiosk's CJK font.
        indent = len(text) - len(text.lstrip(" "))
        width, height = style.scale
        x = None if style.align == "center" else indent * _CJK_DOTS // 2 * width
        image = line_image(text.lstrip(" "), self.profile.dots, x, _CJK_DOTS * height, style.bold)
        if self.profile.mode == "text":
            log.info("a line with characters outside %s printed as an image", self.profile.charset)
        self.image(image)

    def blank(self, lines: int = 1) -> None:
        """Feed `lines` empty lines."""
        self._printer._raw(_LF * lines)

    def text(
        self,
        text: str,
        *,
        align: Literal["left", "center"] = "left",
        bold: bool = False,
        size: Literal["normal", "tall", "double", "huge"] = "normal",
    ) -> None:
        """A paragraph, wrapped to the paper with Chinese characters counted as two columns."""
        style = _Style(align, bold, size)
        budget = self.profile.columns // style.scale[0]
        for line in wrap_measured(text.translate(_TWINS), columns, budget):
            self._line(line, style)

    def pair(self, label: str, value: str) -> None:
        """`label：value`, continuation lines aligned under the value like a printed form."""
        head = f"{label}："
        indent = columns(head)
        cols = self.profile.columns
        if indent > cols * 0.4:
            self.text(head + value)
            return
        parts = wrap_measured(value.translate(_TWINS), columns, cols - indent)
        self._line(head + parts[0], _NORMAL)
        for part in parts[1:]:
            self._line(" " * indent + part, _NORMAL)

    def rule(self, char: str = "-") -> None:
        """A line across the paper."""
        self._line(char * self.profile.columns, _NORMAL)

    # Codes and images -------------------------------------------------------------------------

    def qr(self, payload: str) -> None:
        """A centred QR code of `payload` (error correction M): native, or an image."""
        code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M)
        code.add_data(payload)
        modules = int(code.best_fit()) * 4 + 17  # the version alone, not the masked matrix
        size = max(1, min(8, self.profile.dots // (modules + 8)))
        self._set(_Style(align="center"))
        if self.profile.native_qr:
            self._printer.qr(payload, ec=QR_ECLEVEL_M, size=size, native=True)
            self._printer._raw(_LF)
        else:
            self._printer.qr(
                payload, ec=QR_ECLEVEL_M, size=size, native=False, image_arguments=_image_args()
            )
        self._style = None  # python-escpos's image path leaves the alignment unknown

    def barcode(self, text: str, height: int | None = None) -> None:
        """A centred CODE128 symbol of `text`: native when it fits at 2-dot modules, else an
        image with the widest modules that fit."""
        dots = self.profile.dots
        height = height or (80 if dots >= PAPER[80][0] else 64)
        data, modules = code128_data(text)
        module = min(3, dots // (modules + 2 * BARCODE_QUIET))
        if self.profile.native_barcode and module >= 2:
            self._set(_Style(align="center"))
            # python-escpos 3.1 print()s which renderer it chose; stdout is the diag's JSON.
            with contextlib.redirect_stdout(io.StringIO()):
                self._printer.barcode(
                    data, "CODE128", height=height, width=module, pos="OFF", function_type="B"
                )
            self._printer._raw(_LF)
            return
        try:
            symbol = barcode_image(text, dots, height)
        except ValueError:
            log.warning("no barcode: %d characters do not fit %d dots", len(text), dots)
            return
        self.image(symbol)

    def image(self, image: Image.Image) -> None:
        """A mode "1" image as wide as the paper (GS v 0 bands)."""
        if image.width > self.profile.dots:
            raise ValueError(f"image {image.width} dots wide, paper {self.profile.dots}")
        if image.width < self.profile.dots:
            paper = Image.new("1", (self.profile.dots, image.height), 1)
            paper.paste(image, ((self.profile.dots - image.width) // 2, 0))
            image = paper
        # Not python-escpos's image(): it converts through RGBA, greyscale and dithering and
        # takes ~50 ms for a receipt; a 1-bit image needs only packing.
        self._printer._raw(raster_commands(image))

    def cut(self) -> None:
        """Feed the paper past the cutter and cut (feed only, if the model has no cutter)."""
        self._printer.cut()
        self._style = None


def _image_args() -> dict[str, Any]:
    return {"impl": "bitImageRaster", "center": True}


# Documents ------------------------------------------------------------------------------------


def _receipt_line(job: EscposJob, line: ReceiptLine) -> None:
    if line.style == "heading":
        job.blank()
        job.text(f"{line.text}：{line.value}" if line.value else line.text, bold=True)
        job.rule()
    elif line.style == "pair" and line.value:
        job.pair(line.text, line.value)
    else:
        job.text(line.text)


def write_receipt(job: EscposJob, receipt: Receipt) -> None:
    """Append the receipt and cut. Text mode: bold double-size title, number as text and
    barcode, the lines, the QR code, the footer. Raster mode: the screen's image of it."""
    if job.profile.mode == "raster":
        job.image(render_receipt(receipt, job.profile.dots))
        job.cut()
        return
    job.text(receipt.title, align="center", bold=True, size="double")
    if receipt.subtitle:
        job.text(receipt.subtitle, align="center")
    job.blank()
    job.text(receipt.number, align="center", bold=True, size="tall")
    job.barcode(receipt.number)
    job.rule()
    for line in receipt.lines:
        _receipt_line(job, line)
    if receipt.qr_payload:
        job.blank()
        job.qr(receipt.qr_payload)
    for text in receipt.footer:
        job.text(text, align="center")
    job.cut()


def write_ticket(job: EscposJob, ticket: QueueTicket) -> None:
    """Append the queue ticket in text mode: the number four times the normal size."""
    job.text(ticket.hall.zh, align="center")
    job.text(ticket.hall.en, align="center")
    job.blank()
    job.text(f"{TICKET_TITLE.zh} {TICKET_TITLE.en}", align="center", bold=True)
    job.text(ticket.number, align="center", bold=True, size="huge")
    job.rule()
    for row in ticket.rows():
        job.text(f"{row.label.zh} {row.label.en}：{row.value.zh}")
        if row.value.en != row.value.zh:
            job.text(row.value.en)
    job.blank()
    job.text(TICKET_NOTICE.zh, align="center")
    job.text(TICKET_NOTICE.en, align="center")
    job.cut()


def image_job(image: Image.Image, profile: PrinterProfile) -> bytes:
    """A job printing one image (a whole receipt in raster mode), then cutting."""
    job = EscposJob(profile)
    job.image(image)
    job.cut()
    return job.output


def receipt_job(receipt: Receipt, profile: PrinterProfile) -> bytes:
    """The receipt as ESC/POS bytes, in the profile's text or raster mode."""
    job = EscposJob(profile)
    write_receipt(job, receipt)
    return job.output


def ticket_job(ticket: QueueTicket, profile: PrinterProfile) -> bytes:
    """The queue ticket as ESC/POS bytes, in the profile's text or raster mode."""
    if profile.mode == "raster":
        return image_job(render_ticket(ticket, profile.dots), profile)
    job = EscposJob(profile)
    write_ticket(job, ticket)
    return job.output
