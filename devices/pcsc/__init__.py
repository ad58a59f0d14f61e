"""PC/SC smart cards: staff badges, UnionPay bank cards and social security cards, via pcscd.

Modules: `tlv` (BER-TLV), `apdu` (one exchange, 61xx/6Cxx), `emv` (the PBOC read and the
social security application), `reader` (`PcscCardReader`, on pyscard), `virtual_card`
(`VirtualCard` for vpcd, and a pcscd for it), `diag` (`kiosk diag pcsc`).

The events below are what `PcscCardReader` hands its listener. They are meant for
kiosk/ports.py (the smart card port); until they move there they live here, importable
without pyscard.
"""

from __future__ import annotations

from kiosk.ports import (
    SmartCardEvent,
    SmartCardFailed,
    SmartCardKind,
    SmartCardListener,
    SmartCardReaderAdded,
    SmartCardReaderRemoved,
    SmartCardRemoved,
    SmartCardSeen,
)

__all__ = [
    "SmartCardEvent",
    "SmartCardFailed",
    "SmartCardKind",
    "SmartCardListener",
    "SmartCardReaderAdded",
    "SmartCardReaderRemoved",
    "SmartCardRemoved",
    "SmartCardSeen",
]
