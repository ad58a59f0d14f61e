"""A Hypothesis model of one kiosk's life: submit / kill / partition / drop / sync / purge / heal.

The kiosk runs in this process against the reference platform behind the fault proxy. A kill is
modelled by making the named crash points raise `Killed` (a BaseException, so nothing the code
under test catches) and then closing and reopening Storage and the relay as a restarted process
would; the real SIGKILL is in test_sync_crash.py. After every step: no application twice at the
platform, and every application the kiosk holds as accepted is there with the same hashes and
办件编号. At the end: heal, drain, and the full invariant.

$SYNC_MODEL_EXAMPLES and $SYNC_MODEL_STEPS run it longer (e.g. 300 × 50 nightly).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sync_harness import (
    SMALL_PAGES,
    InProcessPlatform,
    Kiosk,
    PlatformEntry,
    check_invariant,
    discover_crash_points,
    drain,
    make_kiosk,
)

import kiosk.storage
import sync.relay
from kiosk.storage import Storage
from sync.backoff import RetryPolicy
from sync.client import HttpPlatform
from sync.faultproxy import FaultProxy, Faults
from sync.relay import Relay
from sync.sealing import HpkeSealer
from sync.simulate import simulate_applications

EXAMPLES = int(os.environ.get("SYNC_MODEL_EXAMPLES", "25"))
STEPS = int(os.environ.get("SYNC_MODEL_STEPS", "20"))
POINTS = discover_crash_points()
# Points every submission passes (each page and the payload are put, then one commit).
SUBMIT_POINTS = sorted(p for p in POINTS if p.startswith(("put.", "submit.")))


class Killed(BaseException):
    """The process died here (kill -9 at a crash point)."""


class CrashSwitch:
    """Stands in for kiosk.crash.crashpoint: raises Killed at the armed point's N-th hit."""

    def __init__(self) -> None:
        self.armed: tuple[str, int] | None = None
        self.hits = 0
        self.fired: list[str] = []

    def arm(self, point: str, nth: int) -> None:
        self.armed, self.hits = (point, nth), 0

    def __call__(self, name: str) -> None:
        if self.armed is None or self.armed[0] != name:
            return
        self.hits += 1
        if self.hits >= self.armed[1]:
            self.armed = None
            self.fired.append(name)
            raise Killed(name)


class World:
    """What outlives one example: the platform, a directory per kiosk, the crash switch."""

    platform: InProcessPlatform
    root: Path
    switch: CrashSwitch
    serial = itertools.count(1)


class KioskModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        platform = World.platform
        # Applications of earlier examples (other kiosks) are not this example's business.
        self.before = {e.id for e in platform.committed()}
        platform.kiosks.clear()
        self.proxy = FaultProxy("127.0.0.1", platform.port, seed=next(World.serial)).start()
        self.kiosk: Kiosk = make_kiosk(
            World.root / f"example-{next(World.serial)}",
            platform,
            url=self.proxy.url,
            breaker_failures=1000,  # the model's faults are the test, not the breaker's timing
        )
        self.sealer = HpkeSealer(self.kiosk.enrollment.seal_public_key)
        self.kills = 0
        self._storage: Storage | None = None
        self._client: HttpPlatform | None = None
        self.relay = self._start()

    # The kiosk process ------------------------------------------------------------------------

    def _start(self) -> Relay:
        # Start-up as the kiosk's own: orphans of the previous life are collected (no grace:
        # nothing else writes here), then the relay gets its own connection.
        Storage(
            self.kiosk.data_dir,
            hall_code=self.kiosk.config.hall.code,
            kiosk_code=self.kiosk.config.hall.kiosk_code,
            orphan_grace_s=0,
        ).close()
        self._storage = self.kiosk.storage()
        self._client = self.kiosk.client()
        policy = RetryPolicy.from_config(self.kiosk.config.sync)
        return Relay(self.kiosk.config, self._storage, self._client, policy=policy)

    def _stop(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._storage is not None:
            self._storage.close()
        self._client = self._storage = None

    def _restart(self) -> None:
        self.kills += 1
        World.switch.armed = None
        self._stop()
        self.relay = self._start()

    # Rules ------------------------------------------------------------------------------------

    @rule(seed=st.integers(0, 2**16))
    def submit(self, seed: int) -> None:
        try:
            simulate_applications(
                self.kiosk.config,
                1,
                seed=seed,
                sealer=self.sealer,
                on_saved=self.kiosk.record_confirmed,
                page_bytes=SMALL_PAGES,
            )
        except Killed:
            self._restart()

    @rule(point=st.sampled_from(POINTS), nth=st.integers(1, 4))
    def arm_crash(self, point: str, nth: int) -> None:
        World.switch.arm(point, nth)

    @rule(point=st.sampled_from(SUBMIT_POINTS), seed=st.integers(0, 2**16))
    def crash_while_submitting(self, point: str, seed: int) -> None:
        # Armed for its first hit, which this submission reaches for sure: the model is
        # then certain to die inside the durable submit, not only between steps.
        World.switch.arm(point, 1)
        self.submit(seed)

    @rule()
    def kill_now(self) -> None:
        self._restart()

    @rule()
    def partition(self) -> None:
        self.proxy.set(Faults(offline=True))

    @rule(
        side=st.sampled_from(["request", "response"]),
        cut=st.sampled_from([0, 50, 400, 5000]),
        probability=st.sampled_from([0.3, 1.0]),
    )
    def drop(self, side: str, cut: int, probability: float) -> None:
        if side == "request":
            self.proxy.set(Faults(drop_request_after=cut, probability=probability))
        else:
            self.proxy.set(Faults(drop_response_after=cut, probability=probability))

    @rule()
    def heal(self) -> None:
        self.proxy.set(Faults())

    @rule()
    def sync(self) -> None:
        try:
            self.relay.run_once(ignore_schedule=True)
        except Killed:
            self._restart()

    @precondition(lambda self: self._storage is not None)
    @rule()
    def purge(self) -> None:
        assert self._storage is not None
        try:
            # Retention 0: everything the platform acknowledged goes.
            self._storage.purge_accepted(dt.datetime.now().astimezone() + dt.timedelta(seconds=1))
        except Killed:
            self._restart()

    # Invariants -------------------------------------------------------------------------------

    def _entries(self) -> list[PlatformEntry]:
        return [e for e in World.platform.committed() if e.id not in self.before]

    @invariant()
    def nothing_twice_and_every_accepted_one_is_at_the_platform(self) -> None:
        report = check_invariant(
            self.kiosk, settled=False, entries=self._entries(), check_platform_bytes=False
        )
        report.assert_ok()

    def teardown(self) -> None:
        try:
            World.switch.armed = None
            self.proxy.set(Faults())
            self._stop()
            drain(self.kiosk)
            check_invariant(self.kiosk, entries=self._entries()).assert_ok()
        finally:
            self._stop()
            self.proxy.stop()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashSwitch]:
    switch = CrashSwitch()
    # The modules call the name they imported from kiosk.crash.
    monkeypatch.setattr(kiosk.storage, "crashpoint", switch)
    monkeypatch.setattr(sync.relay, "crashpoint", switch)
    with InProcessPlatform(tmp_path / "platform") as platform:
        World.platform, World.root, World.switch = platform, tmp_path, switch
        yield switch


def test_kiosk_model(world: CrashSwitch) -> None:
    run_state_machine_as_test(
        KioskModel,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            # The suite's run is the same every time (a random one could, rarely, never reach an
            # armed crash point and fail the check below); longer runs asked for through the
            # environment explore at random.
            derandomize="SYNC_MODEL_EXAMPLES" not in os.environ,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
    # The model did kill the kiosk at crash points, not only between steps.
    assert world.fired, "no armed crash point was ever reached"


def test_the_crash_switch_fires_at_the_nth_hit() -> None:
    switch = CrashSwitch()
    switch.arm("put.after-fsync", 2)
    switch("put.after-fsync")
    switch("relay.after-put")
    with pytest.raises(Killed):
        switch("put.after-fsync")
    switch("put.after-fsync")  # disarmed after firing
    assert switch.fired == ["put.after-fsync"]
