"""A printer's profile: paper, print mode, font ROM and python-escpos model.

Kept apart from the ESC/POS renderer so that configuring a printer at start-up does not load
python-escpos, Pillow and qrcode: they are imported on the first print (docs/deploy.md, cold
start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Printable width in dots and columns of font A (12 dots an ASCII character, 24 a Chinese one).
PAPER: dict[int, tuple[int, int]] = {58: (384, 32), 80: (576, 48)}

Mode = Literal["text", "raster"]
Charset = Literal["gb2312", "gbk", "gb18030"]
MODES: tuple[Mode, ...] = ("text", "raster")
CHARSETS: tuple[Charset, ...] = ("gb2312", "gbk", "gb18030")

# python-escpos always has this profile; any other name is looked up in its capabilities data.
DEFAULT_MODEL = "default"


class ProfileError(ValueError):
    """A printer profile this build cannot print with; the message names the setting."""


@dataclass(frozen=True)
class PrinterProfile:
    """What the layout needs to know about a printer: paper, font ROM and features."""

    paper_mm: int = 80
    mode: Mode = "text"  # "raster": the whole receipt as one image (no Chinese font ROM)
    charset: Charset = "gbk"  # what the printer's Chinese font ROM covers
    model: str = DEFAULT_MODEL  # a python-escpos capabilities profile: which commands it knows

    def __post_init__(self) -> None:
        if self.paper_mm not in PAPER:
            raise ProfileError(f"width={self.paper_mm}: 58 or 80 (mm)")
        if self.mode not in MODES:
            raise ProfileError(f"mode={self.mode!r}: one of {', '.join(MODES)}")
        if self.charset not in CHARSETS:
            raise ProfileError(f"charset={self.charset!r}: one of {', '.join(CHARSETS)}")
        if self.model != DEFAULT_MODEL and not _known_model(self.model):
            raise ProfileError(
                f"model={self.model!r}: not a python-escpos printer profile "
                "(see `python -m escpos.cli` or docs/printing.md)"
            )

    @property
    def dots(self) -> int:
        """Printable width in dots."""
        return PAPER[self.paper_mm][0]

    @property
    def columns(self) -> int:
        """Columns of ASCII characters at normal size (a Chinese character takes two)."""
        return PAPER[self.paper_mm][1]

    @property
    def native_qr(self) -> bool:
        """Whether the printer draws QR codes itself (GS ( k); otherwise they go as images."""
        from devices.printer.escpos_render import escpos_profile

        return bool(escpos_profile(self.model, self.dots).supports("qrCode"))

    @property
    def native_barcode(self) -> bool:
        """Whether the printer draws CODE128 itself (GS k, function B)."""
        from devices.printer.escpos_render import escpos_profile

        return bool(escpos_profile(self.model, self.dots).supports("barcodeB"))


def _known_model(model: str) -> bool:
    from escpos.capabilities import CAPABILITIES

    return model in CAPABILITIES["profiles"]
