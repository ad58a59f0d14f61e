"""The ports devices and the platform implement. The core depends on these, never on drivers.

Drivers deliver events from their own threads; whoever wires them to a UI marshals them onto
its thread (ui/bridge.py does it with queued Qt signals).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from kiosk.catalog import Aspect as Aspect  # re-exported: the camera port speaks it
from kiosk.i18n import Text
from kiosk.identity import IdentityDocument
from kiosk.receipt import Receipt

if TYPE_CHECKING:
    # Only for annotations: the core never needs numpy at run time.
    import numpy as np
    from numpy.typing import NDArray

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

SmartCardKind = Literal["staff_badge", "bank_card", "social_security_card", "unknown"]


@dataclass(frozen=True)
class SmartCardReaderAdded:
    """A PC/SC reader appeared (plugged in, or pcscd came up)."""

    reader: str


@dataclass(frozen=True)
class SmartCardReaderRemoved:
    """A PC/SC reader went away (unplugged, or pcscd stopped)."""

    reader: str


@dataclass(frozen=True)
class SmartCardSeen:
    """A card was inserted and read. Bank data is masked before it gets here."""

    reader: str
    atr: bytes
    uid: bytes = b""  # staff badges only: a bank card's UID is never passed on
    kind: SmartCardKind = "unknown"
    masked_pan: str = ""  # 6217 **** **** 1234, bank and social security cards
    expiry: dt.date | None = None  # of the payment application (5F24, or track 2)
    masked_card_number: str = ""  # 社会保障卡卡号, A******78
    elapsed_ms: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class SmartCardFailed:
    """A card was inserted but could not be read; `reason` is for the technician, no card data."""

    reader: str
    atr: bytes
    reason: str


@dataclass(frozen=True)
class SmartCardRemoved:
    """The card left the reader (after a read, during one, or with its reader)."""

    reader: str


SmartCardEvent = (
    SmartCardReaderAdded
    | SmartCardReaderRemoved
    | SmartCardSeen
    | SmartCardFailed
    | SmartCardRemoved
)
SmartCardListener = Callable[[SmartCardEvent], None]


class SmartCardReader(Protocol):
    """PC/SC readers: staff badges, bank and social security cards (devices/pcsc)."""

    def start(self, listener: SmartCardListener) -> None:
        """Watch readers and cards; `listener` runs on the driver's threads, one at a time."""

    def stop(self) -> None:
        """Stop watching; idempotent; the listener is not called after it returns."""


# Document camera ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureIssue:
    """Something the quality checks found on a page, in words for the applicant."""

    code: str  # blurred, glare, not_in_view, too_small, too_skewed, no_page
    message: Text


@dataclass(frozen=True)
class CapturedPage:
    """One page as the camera pipeline delivers it: an encoded JPEG and its size."""

    jpeg: bytes = field(repr=False)
    width: int
    height: int
    # Empty when the page passed every check; a manual capture keeps a page that did not.
    issues: tuple[CaptureIssue, ...] = ()


@dataclass(frozen=True)
class PreviewFrame:
    """A low-resolution live frame for the screen and for finding the page (BGR, uint8)."""

    pixels: NDArray[np.uint8] = field(repr=False)  # height × width × 3
    timestamp: float  # time.monotonic() when it was grabbed


@dataclass(frozen=True)
class CameraLost:
    reason: str  # for the technician's log


@dataclass(frozen=True)
class CameraBack:
    """The camera gave frames again after being lost."""


CameraEvent = CameraLost | CameraBack
CameraListener = Callable[[CameraEvent], None]


class CameraError(RuntimeError):
    """The camera is gone or gave no usable frame; the message is for the technician."""


class DocumentCamera(Protocol):
    """A document camera (高拍仪) or its simulator; safe to call from two threads at once."""

    def preview(self) -> PreviewFrame:
        """The next live frame; raises CameraError while the camera is gone."""

    def capture(self, material_id: str, aspect: Aspect, label: str) -> CapturedPage:
        """Capture one straightened page of a material; raises CameraError."""

    def set_listener(self, listener: CameraListener | None) -> None:
        """Report CameraLost and CameraBack to `listener`, from whichever thread notices."""

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


class Sealer(Protocol):
    """Encrypts to the platform's public key: once sealed, the kiosk itself cannot read it."""

    def seal_page(self, application_id: str, plaintext: bytes) -> bytes: ...

    def seal_payload(self, application_id: str, plaintext: bytes) -> bytes: ...
