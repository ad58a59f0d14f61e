"""An in-process platform for demo mode and tests: answers e-licence look-ups from a table."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from kiosk.identity import mask_id_number, normalize_id_number
from kiosk.ports import PlatformUnavailable

log = logging.getLogger(__name__)


class SimulatedPlatform:
    """Implements kiosk.ports.Platform; `go_offline()` makes every call fail as a cut link would."""

    def __init__(self, licences: Mapping[str, frozenset[str]]) -> None:
        self._licences = {normalize_id_number(k): v for k, v in licences.items()}
        self._online = threading.Event()
        self._online.set()

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
