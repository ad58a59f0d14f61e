"""The resident ID card reader: SAM serial protocol (GA/T 467), card text (GA/T 490), simulator.

The public API other code and independent checks call; docs/idcard.md describes the protocol.
"""

from __future__ import annotations

from devices.idcard.codec import Frame, FrameError, decode_frame, encode_command
from devices.idcard.reader import SamSerialIdReader
from devices.idcard.simulator import SimulatedIdCardReader
from devices.idcard.text import CardDataError, parse_text
from kiosk.identity import IdentityDocument as IdDocument

__all__ = [
    "CardDataError",
    "Frame",
    "FrameError",
    "IdDocument",
    "SamSerialIdReader",
    "SimulatedIdCardReader",
    "decode_frame",
    "encode_command",
    "parse_text",
]
