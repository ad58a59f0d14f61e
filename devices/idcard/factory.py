"""build_id_reader: the ID card reader a devices.id_reader spec string names."""

from __future__ import annotations

from devices.idcard.reader import ReaderSpec, ReaderSpecError, SamSerialIdReader
from kiosk.ports import IdDocumentReader

__all__ = ["ReaderSpecError", "build_id_reader"]


def build_id_reader(spec: str) -> IdDocumentReader:
    """`simulated[?opts]`: the real reader code on the wire-level simulator, with demo cards;
    `serial://DEVICE[?baud=115200&fingerprint=0&address=1]`: a SAM reader on that port.

    Raises ReaderSpecError (a ValueError) naming what is wrong with `spec`. Nothing is opened
    until the reader is started.
    """
    parsed = ReaderSpec.parse(spec)
    if parsed.kind == "simulated":
        from devices.idcard.simulator import SimulatedIdCardReader

        return SimulatedIdCardReader(
            realtime=parsed.realtime,
            baud=parsed.baud,
            fingerprint=parsed.fingerprint,
            appended_address=parsed.appended_address,
        )
    return SamSerialIdReader(
        parsed.device,
        parsed.baud,
        fingerprint=parsed.fingerprint,
        appended_address=parsed.appended_address,
    )
