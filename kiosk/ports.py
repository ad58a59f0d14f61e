"""The ports devices and the platform implement. The core depends on these, never on drivers.

Drivers deliver events from their own threads; whoever wires them to a UI marshals them onto
its thread (ui/bridge.py does it with queued Qt signals).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from kiosk.i18n import Text
from kiosk.identity import IdentityDocument
from kiosk.receipt import Receipt

# ID document reader ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CardPlaced:
    """A card is on the reader; reading has started."""


@dataclass(frozen=True)
class CardRead:
    document: IdentityDocument
    elapsed_ms: float = 0.0


@dataclass(frozen=True)
class CardRemoved:
    """The card left the reader (possibly mid-read: no partial data is ever delivered)."""


@dataclass(frozen=True)
class ReadFailed:
    reason: str  # for the technician's log; never contains card data


@dataclass(frozen=True)
class ReaderLost:
    reason: str


@dataclass(frozen=True)
class ReaderBack:
    """The reader answered again after being lost."""


ReaderEvent = CardPlaced | CardRead | CardRemoved | ReadFailed | ReaderLost | ReaderBack
ReaderListener = Callable[[ReaderEvent], None]


@runtime_checkable
class IdDocumentReader(Protocol):
    """A resident ID card reader (SAM protocol) or its simulator."""

    def start(self, listener: ReaderListener) -> None:
        """Begin polling; `listener` is called from the reader's own thread."""

    def stop(self) -> None:
        """Stop polling and release the device; idempotent."""


@runtime_checkable
class SupportsDemoCards(Protocol):
    """A reader that can be handed a card by a person at the screen (demo mode only)."""

    def demo_cards(self) -> list[tuple[str, Text]]:
        """(key, bilingual label) of each demo card."""

    def tap(self, key: str) -> None:
        """Place the demo card `key` on the reader and take it away after the read."""


# Smart card reader (PC/SC) --------------------------------------------------------------------


@dataclass(frozen=True)
class SmartCardSeen:
    reader: str
    atr: bytes
    uid: bytes = b""


class SmartCardReader(Protocol):
    """PC/SC readers: staff badges, bank and social-security cards (a later issue)."""

    def start(self, listener: Callable[[SmartCardSeen | None], None]) -> None: ...

    def stop(self) -> None: ...


# Document camera ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapturedPage:
    """One page as the camera pipeline delivers it: an encoded JPEG and its size."""

    jpeg: bytes = field(repr=False)
    width: int
    height: int


class CameraError(RuntimeError):
    """The camera is gone or gave no usable frame; the message is for the technician."""


class DocumentCamera(Protocol):
    def capture(
        self, material_id: str, aspect: Literal["a4", "id_card", "free"], label: str
    ) -> CapturedPage:
        """Capture one straightened page of a material; raises CameraError."""

    def close(self) -> None: ...


# Receipt printer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrinterStatus:
    online: bool
    paper_out: bool = False
    paper_near_end: bool = False
    cover_open: bool = False

    @property
    def ready(self) -> bool:
        return self.online and not self.paper_out and not self.cover_open


@dataclass(frozen=True)
class PrintResult:
    printed: bool
    status: PrinterStatus
    image_png: bytes = field(default=b"", repr=False)  # the receipt as the screen shows it
    detail: str = ""  # for the technician's log


class ReceiptPrinter(Protocol):
    def status(self) -> PrinterStatus: ...

    def render(self, receipt: Receipt) -> bytes:
        """The receipt as a PNG, exactly as the paper shows it."""

    def print_receipt(self, receipt: Receipt) -> PrintResult:
        """Print; never raises for printer trouble (reported in the result)."""

    def close(self) -> None:
        """Release the connection (and stop a simulator); idempotent."""


# Platform -------------------------------------------------------------------------------------


class PlatformUnavailable(RuntimeError):
    """The platform could not be asked (offline, timeout, garbage answer)."""


class Platform(Protocol):
    def held_licences(self, id_number: str) -> frozenset[str]:
        """E-licence types (电子证照) the government already holds for this person.

        Raises PlatformUnavailable; the caller then asks for paper copies instead.
        """
