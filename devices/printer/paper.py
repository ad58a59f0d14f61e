"""The simulated printer's paper: ESC/POS bytes split into commands and drawn as an image.

Only what a simulator needs: where each command ends (so DLE EOT is answered at command
boundaries and never inside image data), and a picture of the paper for the screen and the
technician. Text is drawn with the CJK font in the printer's 12/24-dot cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import qrcode
from PIL import Image, ImageDraw

from devices.receipt_image import FONT_LOCK, barcode_image, cjk_font, draw_text

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
_LINE_DOTS = 30  # one line of text with the printer's default line spacing
_FIXED = {  # command bytes after the prefix byte and the command byte, where fixed
    ESC: {
        **dict.fromkeys(b"@2<SLim", 0),
        **dict.fromkeys(b"!EG-adJMt3 {VRTUr=%?u", 1),
        **dict.fromkeys(b"B$\\c", 2),
        ord("p"): 3,
        ord("W"): 8,
    },
    GS: {**dict.fromkeys(b"!BbhwHfaIrT^", 1), **dict.fromkeys(b"LW$\\P", 2)},
    FS: {**dict.fromkeys(b"&.", 0), **dict.fromkeys(b"!W-C", 1), **dict.fromkeys(b"Sp", 2)},
    DLE: {4: 1, 5: 1},
}


class Incomplete(Exception):
    """The buffer ends inside a command; wait for more bytes."""


def command_length(data: bytes | bytearray, pos: int) -> int:
    """Bytes in the command (or single text byte) starting at `pos`; raises Incomplete."""

    def need(count: int) -> int:
        if pos + count > len(data):
            raise Incomplete
        return count

    first = data[pos]
    if first not in _FIXED:
        return 1
    need(2)
    cmd = data[pos + 1]
    fixed = _FIXED[first].get(cmd)
    if fixed is not None:
        return need(2 + fixed)
    if first == GS and cmd == ord("V"):
        return need(4 if data[pos + 2 : pos + 3] in (b"A", b"B", b"a", b"b") else 3)
    if first == GS and cmd == ord("("):
        need(5)
        return need(5 + data[pos + 3] + 256 * data[pos + 4])
    if first == GS and cmd == ord("v"):
        need(8)
        width = data[pos + 4] + 256 * data[pos + 5]
        return need(8 + width * (data[pos + 6] + 256 * data[pos + 7]))
    if first == GS and cmd == ord("k"):
        need(3)
        m = data[pos + 2]
        if m <= 6:
            end = bytes(data).find(b"\0", pos + 3)
            if end < 0:
                raise Incomplete
            return end + 1 - pos
        need(4)
        return need(4 + data[pos + 3])
    if first == ESC and cmd == ord("*"):
        need(5)
        columns = data[pos + 3] + 256 * data[pos + 4]
        return need(5 + columns * (3 if data[pos + 2] >= 32 else 1))
    return 2  # unknown to the simulator: taken as a two-byte command


def commands(data: bytes) -> Iterator[bytes]:
    """The commands and text bytes of a complete job, one by one."""
    pos = 0
    while pos < len(data):
        try:
            length = command_length(data, pos)
        except Incomplete:
            yield data[pos:]
            return
        yield data[pos : pos + length]
        pos += length


@dataclass
class _Cell:
    text: str
    dots: int
    height: int
    bold: bool
    scale: int  # the smaller multiplier: a tall glyph drawn wider would overlap its neighbour


def _code128_text(raw: bytes) -> str:
    code = chr(raw[1]) if len(raw) > 1 else "B"
    out: list[str] = []
    i = 2
    while i < len(raw):
        if raw[i] == ord("{") and i + 1 < len(raw):
            escape = chr(raw[i + 1])
            if escape in "ABC":
                code = escape
            elif escape == "{":
                out.append("{")
            i += 2
            continue
        out.append(f"{raw[i]:02d}" if code == "C" else chr(raw[i]))
        i += 1
    return "".join(out)


class _Paper:
    def __init__(self, width: int) -> None:
        self.width = width
        self.blocks: list[Image.Image] = []
        self.cells: list[_Cell] = []
        self.reset()
        self.qr_data = b""
        self.qr_module = 3
        self.bar_height = 80
        self.bar_module = 2

    def reset(self) -> None:
        self.chinese = False
        self.bold = False
        self.size = (1, 1)
        self.align = 0

    def _line_image(self) -> Image.Image:
        height = max((c.height for c in self.cells), default=1)
        image = Image.new("1", (self.width, _LINE_DOTS * height), 1)
        used = sum(c.dots for c in self.cells)
        x = {0: 0, 1: (self.width - used) // 2, 2: self.width - used}.get(self.align, 0)
        with FONT_LOCK:
            for cell in self.cells:
                font = cjk_font(22 * cell.scale, bold=cell.bold)
                draw_text(image, x, image.height - 6 * cell.height, cell.text, font)
                x += cell.dots
        return image

    def newline(self) -> None:
        self.blocks.append(self._line_image())
        self.cells = []

    def flush(self) -> None:
        if self.cells:
            self.newline()

    def put(self, text: str, wide: bool) -> None:
        dots = (24 if wide else 12) * self.size[0]
        if sum(c.dots for c in self.cells) + dots > self.width:
            self.newline()
        self.cells.append(_Cell(text, dots, self.size[1], self.bold, min(self.size)))

    def place(self, image: Image.Image) -> None:
        self.flush()
        line = Image.new("1", (self.width, image.height), 1)
        x = {1: (self.width - image.width) // 2, 2: self.width - image.width}.get(self.align, 0)
        line.paste(image, (max(0, x), 0))
        self.blocks.append(line)

    def command(self, cmd: bytes) -> None:
        first = cmd[0]
        if first == 0x0A:
            self.newline()
        elif first not in _FIXED:
            return
        elif first == ESC:
            self.esc(cmd)
        elif first == GS:
            self.gs(cmd)
        elif first == FS and len(cmd) == 2:
            self.chinese = cmd[1] == ord("&")

    def esc(self, cmd: bytes) -> None:
        c = chr(cmd[1])
        if c == "@":
            self.flush()
            self.reset()
        elif c == "E":
            self.bold = bool(cmd[2] & 1)
        elif c == "!":
            self.bold = bool(cmd[2] & 0x08)
            self.size = (2 if cmd[2] & 0x20 else 1, 2 if cmd[2] & 0x10 else 1)
        elif c == "a" and not self.cells:
            self.align = cmd[2] % 48
        elif c == "d":
            self.flush()
            for _ in range(cmd[2]):
                self.newline()

    def gs(self, cmd: bytes) -> None:
        c = chr(cmd[1])
        if c == "!":
            self.size = ((cmd[2] >> 4) + 1, (cmd[2] & 0x0F) + 1)
        elif c == "h":
            self.bar_height = cmd[2]
        elif c == "w":
            self.bar_module = cmd[2]
        elif c == "V":
            self.flush()
            cut = Image.new("1", (self.width, 12), 1)
            draw = ImageDraw.Draw(cut)
            for x in range(0, self.width, 16):
                draw.rectangle((x, 5, x + 9, 6), fill=0)
            self.blocks.append(cut)
        elif c == "k" and cmd[2] == 73:
            text = _code128_text(cmd[4:])
            try:
                symbol = barcode_image(text, self.width, self.bar_height)
            except ValueError:
                return
            self.place(symbol)
        elif c == "(" and cmd[2] == ord("k") and cmd[5] == 49:
            self.qr(cmd[6], cmd[7:])
        elif c == "v":
            width_bytes, rows = cmd[4] + 256 * cmd[5], cmd[6] + 256 * cmd[7]
            bits = np.frombuffer(cmd[8:], dtype=np.uint8).reshape(rows, width_bytes)
            self.place(Image.fromarray(np.unpackbits(bits, axis=1) == 0))

    def qr(self, fn: int, params: bytes) -> None:
        if fn == 67:
            self.qr_module = params[0]
        elif fn == 80:
            self.qr_data = params[1:]
        elif fn == 81:
            code = qrcode.QRCode(box_size=1, border=0)
            code.add_data(self.qr_data)
            code.make(fit=True)
            dark = np.asarray(code.get_matrix(), dtype=bool)
            dots = np.kron(~dark, np.ones((self.qr_module, self.qr_module), dtype=bool))
            self.place(Image.fromarray(dots))

    def text(self, data: bytes) -> None:
        i = 0
        while i < len(data):
            b = data[i]
            if b < 0x80 or not self.chinese:
                self.put(chr(b) if 0x20 <= b < 0x7F else "?", wide=False)
                i += 1
                continue
            size = 4 if i + 1 < len(data) and 0x30 <= data[i + 1] <= 0x39 else 2
            self.put(data[i : i + size].decode("gb18030", errors="replace"), wide=True)
            i += size

    def image(self) -> Image.Image:
        self.flush()
        height = sum(b.height for b in self.blocks) or 1
        paper = Image.new("1", (self.width, height), 1)
        y = 0
        for block in self.blocks:
            paper.paste(block, (0, y))
            y += block.height
        return paper


def render_paper(data: bytes, width: int) -> Image.Image:
    """What a printer `width` dots wide would put on paper for `data` (an approximation:
    the printer's own fonts are drawn with the kiosk's CJK font)."""
    paper = _Paper(width)
    text = bytearray()
    for cmd in commands(data):
        if len(cmd) == 1 and cmd[0] >= 0x20:
            text += cmd
            continue
        if text:
            paper.text(bytes(text))
            text.clear()
        paper.command(cmd)
    if text:
        paper.text(bytes(text))
    return paper.image()
