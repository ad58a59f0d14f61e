"""An ESC/POS reader for tests: bytes back into what a person would read on the paper.

Written from the ESC/POS command reference (Epson's, with the FS & / FS . Chinese-mode commands
of Chinese printers), without python-escpos or its constants, so a test that reads the
renderer's bytes with it checks the renderer against the reference, not against itself.

It is strict: a command it does not know raises DecodeError, because a printer that does not
know it either would print garbage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
LF, CR, HT = 0x0A, 0x0D, 0x09

ANK_DOTS = {0: 12, 1: 9}  # font A / font B: dots across one single-byte character
KANJI_DOTS = 24

# ESC t n: the single-byte code pages a test may meet (Python codec names).
CODE_PAGES = {0: "cp437", 2: "cp850", 16: "cp1252", 17: "cp866", 19: "cp858"}

BARCODE_KINDS = {
    65: "UPC-A",
    66: "UPC-E",
    67: "EAN13",
    68: "EAN8",
    69: "CODE39",
    70: "ITF",
    71: "CODABAR",
    72: "CODE93",
    73: "CODE128",
}
FUNCTION_A_KINDS = {
    0: "UPC-A",
    1: "UPC-E",
    2: "EAN13",
    3: "EAN8",
    4: "CODE39",
    5: "ITF",
    6: "CODABAR",
}
QR_EC = {48: "L", 49: "M", 50: "Q", 51: "H"}


class DecodeError(ValueError):
    """Bytes a printer would not understand (unknown command, truncated data)."""


@dataclass
class Line:
    """One printed line of text."""

    text: str
    align: Literal["left", "center", "right"] = "left"
    bold: bool = False
    width: int = 1  # the largest width multiplier on the line
    height: int = 1
    dots: int = 0  # how wide the printed characters are
    x: int = 0  # where the first character starts, in dots from the left edge
    broken: bool = False  # the printer broke this line at the paper's edge


@dataclass
class QrCode:
    payload: str
    module: int
    ec: str
    model: int


@dataclass
class Barcode:
    kind: str
    data: str
    module: int
    height: int
    hri: int  # 0 none, 1 above, 2 below, 3 both


@dataclass
class Picture:
    image: Image.Image  # mode "1", white paper = 1


@dataclass
class Cut:
    partial: bool


Item = Line | QrCode | Barcode | Picture | Cut


@dataclass
class Paper:
    """What came out of the printer, top to bottom."""

    width: int
    items: list[Item] = field(default_factory=list)
    status_queries: int = 0

    @property
    def lines(self) -> list[Line]:
        return [i for i in self.items if isinstance(i, Line)]

    @property
    def qr_codes(self) -> list[QrCode]:
        return [i for i in self.items if isinstance(i, QrCode)]

    @property
    def barcodes(self) -> list[Barcode]:
        return [i for i in self.items if isinstance(i, Barcode)]

    @property
    def pictures(self) -> list[Picture]:
        return [i for i in self.items if isinstance(i, Picture)]

    @property
    def cuts(self) -> list[Cut]:
        return [i for i in self.items if isinstance(i, Cut)]

    def text(self) -> str:
        """The text lines as read, one per line, indentation kept."""
        return "\n".join(line.text.rstrip() for line in self.lines)

    def read(self) -> list[str]:
        """Everything on the paper in order; codes and pictures as bracketed notes."""
        out: list[str] = []
        for item in self.items:
            if isinstance(item, Line):
                text = item.text.strip()
                out.append(" " * (item.x // ANK_DOTS[0]) + text if text else "")
            elif isinstance(item, QrCode):
                out.append(f"[QR {item.payload}]")
            elif isinstance(item, Barcode):
                out.append(f"[{item.kind} {item.data}]")
            elif isinstance(item, Picture):
                out.append(f"[picture {item.image.width}x{item.image.height}]")
            else:
                out.append("[partial cut]" if item.partial else "[cut]")
        return out


@dataclass
class _Char:
    text: str
    dots: int
    bold: bool
    width: int
    height: int


class _Reader:
    def __init__(self, data: bytes, width: int, chinese_at_power_on: bool) -> None:
        self.data = data
        self.pos = 0
        self.paper = Paper(width)
        self.chinese_default = chinese_at_power_on
        self.buffer: list[_Char] = []
        self.line_align: Literal["left", "center", "right"] = "left"
        self.broke = False
        self.qr_data = b""
        self.qr_module = 3
        self.qr_ec = "L"
        self.qr_model = 2
        self.graphics: Image.Image | None = None
        self.reset()

    def reset(self) -> None:
        self.chinese = self.chinese_default
        self.code_page = 0
        self.bold = False
        self.font = 0
        self.ank_w = self.ank_h = 1  # ESC !
        self.size_w = self.size_h = 1  # GS !
        self.kanji_w = self.kanji_h = 1  # FS !
        self.align: Literal["left", "center", "right"] = "left"
        self.bar_height = 162
        self.bar_module = 3
        self.bar_hri = 0

    # Bytes --------------------------------------------------------------------------------

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise DecodeError(f"truncated command at byte {self.pos}: needs {count} more")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def word(self) -> int:
        low, high = self.take(2)
        return low + 256 * high

    # Text ---------------------------------------------------------------------------------

    def put(self, text: str, two_byte: bool) -> None:
        if two_byte:
            width = self.size_w if self.size_w > 1 else self.kanji_w
            height = self.size_h if self.size_h > 1 else self.kanji_h
            dots = KANJI_DOTS * width
        else:
            width = self.size_w if self.size_w > 1 else self.ank_w
            height = self.size_h if self.size_h > 1 else self.ank_h
            dots = ANK_DOTS[self.font] * width
        if not self.buffer:
            self.line_align = self.align
        if sum(c.dots for c in self.buffer) + dots > self.paper.width:
            # The printer prints what fits and carries on with the next line.
            self.broke = True
            self.print_line()
            self.line_align = self.align
        self.buffer.append(_Char(text, dots, self.bold, width, height))

    def print_line(self) -> None:
        chars = self.buffer
        dots = sum(c.dots for c in chars)
        x = {"left": 0, "center": (self.paper.width - dots) // 2, "right": self.paper.width - dots}
        self.paper.items.append(
            Line(
                text="".join(c.text for c in chars),
                align=self.line_align,
                bold=any(c.bold for c in chars if c.text.strip()),
                width=max((c.width for c in chars), default=1),
                height=max((c.height for c in chars), default=1),
                dots=dots,
                x=x[self.line_align],
                broken=self.broke,
            )
        )
        self.buffer = []
        self.broke = False

    def flush(self) -> None:
        """Print whatever is in the line buffer (before a code, picture or cut)."""
        if self.buffer:
            self.print_line()

    def character(self, first: int) -> None:
        if first < 0x80:
            self.put(chr(first), two_byte=False)
            return
        if not self.chinese:
            codec = CODE_PAGES.get(self.code_page)
            self.put(bytes([first]).decode(codec) if codec else "?", two_byte=False)
            return
        if not 0x81 <= first <= 0xFE:
            raise DecodeError(f"byte {first:#04x} at {self.pos - 1} cannot start a GB character")
        second = self.byte()
        raw = bytes([first, second])
        if 0x30 <= second <= 0x39:  # the four-byte form of GB18030
            raw += self.take(2)
        try:
            self.put(raw.decode("gb18030"), two_byte=True)
        except UnicodeDecodeError as exc:
            raise DecodeError(f"{raw.hex(' ')} is not GB18030 at {self.pos - len(raw)}") from exc

    # Commands -----------------------------------------------------------------------------

    def run(self) -> Paper:
        while self.pos < len(self.data):
            b = self.byte()
            if b == LF:
                self.print_line()
            elif b == CR:
                pass
            elif b == HT:
                for _ in range(8 - len(self.buffer) % 8):
                    self.put(" ", two_byte=False)
            elif b == ESC:
                self.esc(self.byte())
            elif b == GS:
                self.gs(self.byte())
            elif b == FS:
                self.fs(self.byte())
            elif b == DLE:
                self.dle(self.byte())
            elif b < 0x20 or b == 0x7F:
                raise DecodeError(f"control byte {b:#04x} at {self.pos - 1}")
            else:
                self.character(b)
        self.flush()
        self.merge_pictures()
        return self.paper

    def esc(self, cmd: int) -> None:
        c = chr(cmd)
        if c == "@":
            self.flush()
            self.reset()
        elif c == "!":
            n = self.byte()
            self.font = n & 1
            self.bold = bool(n & 0x08)
            self.ank_h = 2 if n & 0x10 else 1
            self.ank_w = 2 if n & 0x20 else 1
        elif c in "EG":
            self.bold = bool(self.byte() & 1)
        elif c == "-":
            self.byte()  # underline: not something a reader needs
        elif c == "a":
            n = self.byte()
            if not self.buffer:  # only effective at the start of a line
                self.align = {0: "left", 1: "center", 2: "right"}[n % 48]
        elif c == "d":
            n = self.byte()  # print the line, then feed n lines in all
            if n == 0:
                self.flush()
            for _ in range(n):
                self.print_line()
        elif c == "J":
            self.byte()
            self.flush()
        elif c == "M":
            self.font = self.byte() % 48 & 1
        elif c == "t":
            self.code_page = self.byte()
        elif c == "2":
            pass
        elif c in "3 {V":
            self.byte()
        else:
            raise DecodeError(f"unknown command ESC {c!r} at {self.pos - 2}")

    def gs(self, cmd: int) -> None:
        c = chr(cmd)
        if c == "!":
            n = self.byte()
            self.size_w, self.size_h = (n >> 4) + 1, (n & 0x0F) + 1
        elif c == "B" or c == "b":
            self.byte()
        elif c == "V":
            m = self.byte()
            self.flush()
            if m in (65, 66, 97, 98):
                self.byte()  # feed before cutting
            self.paper.items.append(Cut(partial=m in (1, 49, 66, 98)))
        elif c == "h":
            self.bar_height = self.byte()
        elif c == "w":
            self.bar_module = self.byte()
        elif c == "H":
            self.bar_hri = self.byte() % 48
        elif c == "f":
            self.byte()
        elif c == "k":
            self.barcode()
        elif c == "(":
            self.gs_paren(chr(self.byte()))
        elif c == "v":
            if self.byte() != 0x30:
                raise DecodeError(f"GS v other than GS v 0 at {self.pos - 3}")
            self.raster()
        else:
            raise DecodeError(f"unknown command GS {c!r} at {self.pos - 2}")

    def fs(self, cmd: int) -> None:
        c = chr(cmd)
        if c == "&":
            self.chinese = True
        elif c == ".":
            self.chinese = False
        elif c == "!":
            n = self.byte()
            self.kanji_w = 2 if n & 0x04 else 1
            self.kanji_h = 2 if n & 0x08 else 1
        elif c == "W":
            self.kanji_w = self.kanji_h = 2 if self.byte() & 1 else 1
        elif c in "-C":
            self.byte()
        elif c == "S":
            self.take(2)
        else:
            raise DecodeError(f"unknown command FS {c!r} at {self.pos - 2}")

    def dle(self, cmd: int) -> None:
        if cmd == 0x04:  # DLE EOT n: a status request, answered, never printed
            self.byte()
            self.paper.status_queries += 1
        elif cmd == 0x05:
            self.byte()
        else:
            raise DecodeError(f"unknown command DLE {cmd:#04x} at {self.pos - 2}")

    # Codes and pictures -------------------------------------------------------------------

    def barcode(self) -> None:
        m = self.byte()
        if m in FUNCTION_A_KINDS:
            end = self.data.index(0, self.pos)
            raw = self.take(end - self.pos)
            self.pos += 1
            kind = FUNCTION_A_KINDS[m]
        elif m in BARCODE_KINDS:
            raw = self.take(self.byte())
            kind = BARCODE_KINDS[m]
        else:
            raise DecodeError(f"GS k with unknown symbology {m}")
        data = code128_text(raw) if kind == "CODE128" else raw.decode("ascii")
        self.flush()
        self.paper.items.append(Barcode(kind, data, self.bar_module, self.bar_height, self.bar_hri))

    def gs_paren(self, sub: str) -> None:
        size = self.word()
        body = self.take(size)
        if sub == "k":
            self.code_2d(body)
        elif sub == "L":
            self.graphics_data(body)
        else:
            raise DecodeError(f"unknown command GS ( {sub!r}")

    def code_2d(self, body: bytes) -> None:
        cn, fn, params = body[0], body[1], body[2:]
        if cn != 49:
            raise DecodeError(f"GS ( k for symbol type {cn}: only QR (49) is expected")
        if fn == 65:
            self.qr_model = {49: 1, 50: 2, 51: 3}[params[0]]
        elif fn == 67:
            self.qr_module = params[0]
        elif fn == 69:
            self.qr_ec = QR_EC[params[0]]
        elif fn == 80:
            self.qr_data = params[1:]  # after m = 48
        elif fn == 81:
            self.flush()
            self.paper.items.append(
                QrCode(self.qr_data.decode("utf-8"), self.qr_module, self.qr_ec, self.qr_model)
            )
        elif fn != 82:
            raise DecodeError(f"GS ( k QR function {fn}")

    def graphics_data(self, body: bytes) -> None:
        fn = body[1]
        if fn == 112:  # store raster graphics: a bx by c xL xH yL yH d...
            width = body[6] + 256 * body[7]
            height = body[8] + 256 * body[9]
            self.graphics = _bits_to_image(body[10:], (width + 7) // 8, height, width)
        elif fn == 50:  # print what was stored
            self.flush()
            if self.graphics is None:
                raise DecodeError("GS ( L print with nothing stored")
            self.paper.items.append(Picture(self.graphics))
        elif fn not in (48, 49, 65):
            raise DecodeError(f"GS ( L function {fn}")

    def raster(self) -> None:
        self.byte()  # density
        width_bytes = self.word()
        rows = self.word()
        data = self.take(width_bytes * rows)
        self.flush()
        self.paper.items.append(Picture(_bits_to_image(data, width_bytes, rows, width_bytes * 8)))

    def merge_pictures(self) -> None:
        """Bands of one image (GS v 0 per 256 rows) are one picture on the paper."""
        merged: list[Item] = []
        for item in self.paper.items:
            last = merged[-1] if merged else None
            if (
                isinstance(item, Picture)
                and isinstance(last, Picture)
                and last.image.width == item.image.width
            ):
                both = Image.new("1", (item.image.width, last.image.height + item.image.height))
                both.paste(last.image, (0, 0))
                both.paste(item.image, (0, last.image.height))
                merged[-1] = Picture(both)
            else:
                merged.append(item)
        self.paper.items = merged


def _bits_to_image(data: bytes, width_bytes: int, rows: int, width: int) -> Image.Image:
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8).reshape(rows, width_bytes), axis=1)
    return Image.fromarray(bits[:, :width] == 0)  # a set bit is a dot: black on white paper


def code128_text(raw: bytes) -> str:
    """The text a CODE128 symbol carries, from GS k function B data ({A/{B/{C code sets)."""
    if len(raw) < 2 or raw[0] != ord("{") or chr(raw[1]) not in "ABC":
        raise DecodeError(f"CODE128 data must start with a code set: {raw[:2]!r}")
    code = chr(raw[1])
    out: list[str] = []
    i = 2
    while i < len(raw):
        b = raw[i]
        if b == ord("{"):
            nxt = chr(raw[i + 1])
            if nxt in "ABC":
                code = nxt
            elif nxt == "{":
                out.append("{")
            elif nxt not in "S1234":
                raise DecodeError(f"CODE128 escape {{{nxt}")
            i += 2
            continue
        if code == "C":
            if b > 99:
                raise DecodeError(f"code set C value {b}")
            out.append(f"{b:02d}")
        else:
            out.append(chr(b))
        i += 1
    return "".join(out)


def decode(data: bytes, width: int = 576, chinese_at_power_on: bool = False) -> Paper:
    """Read a print job as a printer `width` dots wide would print it.

    `chinese_at_power_on=False` is the strict case: a printer that starts in single-byte
    mode, so a job must switch Chinese on itself (FS &).
    """
    return _Reader(data, width, chinese_at_power_on).run()
