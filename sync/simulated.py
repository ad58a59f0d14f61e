"""An in-process platform for tests and offline demos: answers e-licence look-ups from a table
and holds a sealing key of its own, so what the kiosk seals to it can be opened in tests."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kiosk.identity import mask_id_number, normalize_id_number
from kiosk.ports import PlatformUnavailable
from sync.protocol import open_sealed, page_info, payload_info
from sync.sealing import HpkeSealer

log = logging.getLogger(__name__)


class SimulatedPlatform:
    """Implements kiosk.ports.Platform; `go_offline()` makes every call fail as a cut link would."""

    def __init__(self, licences: Mapping[str, frozenset[str]]) -> None:
        self._licences = {normalize_id_number(k): v for k, v in licences.items()}
        self._online = threading.Event()
        self._online.set()
        self._seal_key = X25519PrivateKey.generate()
        self.sealer = HpkeSealer(self._seal_key.public_key())

    def open_payload(self, application_id: str, sealed: bytes) -> dict[str, Any]:
        """What the platform would read from a sealed payload (tests)."""
        result: dict[str, Any] = json.loads(
            open_sealed(self._seal_key, sealed, payload_info(application_id))
        )
        return result

    def open_page(self, application_id: str, sealed: bytes) -> bytes:
        return open_sealed(self._seal_key, sealed, page_info(application_id))

    def go_offline(self) -> None:
        self._online.clear()

    def go_online(self) -> None:
        self._online.set()

    @property
    def online(self) -> bool:
        return self._online.is_set()

    def held_licences(self, id_number: str) -> frozenset[str]:
        if not self._online.is_set():
            raise PlatformUnavailable("simulated platform is offline")
        held = self._licences.get(normalize_id_number(id_number), frozenset())
        log.debug("e-licences for %s: %d", mask_id_number(id_number), len(held))
        return held
