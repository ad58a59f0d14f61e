"""How a kiosk reaches its platform, chosen by `platform.url`: the one place that wires sync.

- "simulated": an in-process stand-in; nothing leaves the machine, applications stay queued.
- "embedded": the reference platform started on 127.0.0.1 with the kiosk (its data under
  `DATA/platform/`), the kiosk enrolled with it automatically, and the relay delivering to it:
  what `make demo` shows.
- an http(s) URL: the real platform; the kiosk must have been enrolled (`kiosk enroll`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kiosk.catalog import CatalogStore
from kiosk.config import Config
from kiosk.demo import DEMO_LICENCES
from kiosk.ports import Platform, Sealer
from kiosk.storage import Storage
from sync.simulated import SimulatedPlatform

if TYPE_CHECKING:
    from sync.platform.server import PlatformServer
    from sync.relay import Relay, SyncState

log = logging.getLogger(__name__)


class NotEnrolled(RuntimeError):
    """The kiosk has no enrollment with a platform; the message says what to run."""


@dataclass
class Connection:
    """The platform port, the sealer and (unless simulated) the relay and embedded server."""

    platform: Platform
    sealer: Sealer
    relay: Relay | None = None
    server: PlatformServer | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def start(self) -> None:
        if self.relay is not None:
            self.relay.start()

    def wake(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    def close(self) -> None:
        """Stop the relay, then the client, the relay's storage and the embedded platform."""
        if self.relay is not None:
            self.relay.stop()
        for close in reversed(self._closers):
            try:
                close()
            except Exception:  # one failing close must not keep the others from running
                log.exception("closing the platform connection failed")
        self._closers.clear()


def connect(
    config: Config,
    catalogs: CatalogStore | None = None,
    *,
    on_state: Callable[[SyncState], None] | None = None,
    embedded_interval_s: float = 5.0,
) -> Connection:
    """Build what `platform.url` names; call `start()` to begin delivering."""
    if config.platform.url == "simulated":
        simulated = SimulatedPlatform(DEMO_LICENCES)
        return Connection(simulated, simulated.sealer)

    from sync.client import HttpPlatform
    from sync.enrollment import enroll, load_enrollment
    from sync.relay import Relay
    from sync.sealing import HpkeSealer

    closers: list[Callable[[], None]] = []
    server = None
    try:
        enrollment = load_enrollment(config.data_dir)
        url = None
        if config.platform.url == "embedded":
            from sync.platform.server import PlatformServer

            server = PlatformServer(
                config.data_dir / "platform", demo=True, demo_interval_s=embedded_interval_s
            )
            server.start()
            closers.append(server.stop)
            url = server.url
            if enrollment is None or enrollment.url != url:
                # The embedded platform has a new port each start; its keys persist, so what
                # was sealed to it before is still readable by it.
                enrollment = enroll(config, url, server.new_enrollment_code())
        if enrollment is None:
            raise NotEnrolled(
                "this kiosk is not enrolled with a platform: run "
                "`kiosk enroll --platform URL --code CODE` with a code from the platform"
            )
        client = HttpPlatform(config, enrollment, url=url)
        closers.append(client.close)
        relay_storage = Storage(
            config.data_dir,
            hall_code=config.hall.code,
            kiosk_code=config.hall.kiosk_code,
            collect_orphans=False,
            synchronous="NORMAL",  # what the relay writes is redone if a power cut undoes it
        )
        closers.append(relay_storage.close)
        relay = Relay(config, relay_storage, client, catalogs=catalogs, on_state=on_state)
    except BaseException:
        for close in reversed(closers):
            close()
        raise
    return Connection(client, HpkeSealer(enrollment.seal_public_key), relay, server, closers)
