"""What screens are given: the flow to send intents to, and the app's asynchronous services.

Screens never touch devices, the database or the network: they call the flow's intent
methods, and ask the context for anything slow (a camera capture), whose result comes back
through the bridge on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk.config import Config
from kiosk.flow import ApplicantFlow
from kiosk.form import MaterialNeed
from kiosk.i18n import Text
from ui.bridge import Bridge


@dataclass
class UiContext:
    flow: ApplicantFlow
    config: Config
    bridge: Bridge
    request_capture: Callable[[MaterialNeed], None]  # result: bridge.page_captured/failed
    demo_cards: list[tuple[str, Text]] = field(default_factory=list)  # empty outside demo
    tap_card: Callable[[str], None] | None = None  # demo only: place demo card `key`
    receipt_png: bytes = b""  # set when the receipt step starts
    receipt_printed: bool = False
