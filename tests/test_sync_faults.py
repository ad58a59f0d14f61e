"""End to end through the fault proxy: kiosk relay → sync.faultproxy → the reference platform.

Each test breaks the link in one way (errors with Retry-After, cut requests and answers, the
answer lost after the platform committed, a refused application, no network, a slow link with
resets), then lets the faults stop and checks the invariant: everything confirmed is at the
platform once, with the kiosk's hashes and receipt, and the queue is empty.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sync_harness import (
    InProcessPlatform,
    Kiosk,
    check_invariant,
    drain,
    kiosk_intake,
    make_kiosk,
    walk_to_review,
)

from kiosk.application import Status
from kiosk.demo import DEMO_CARDS
from sync.backoff import RetryPolicy
from sync.client import HttpPlatform
from sync.faultproxy import FaultProxy, Faults
from sync.relay import Relay, SyncState
from sync.sealing import HpkeSealer
from sync.simulate import simulate_applications


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessPlatform]:
    with InProcessPlatform(tmp_path_factory.mktemp("platform")) as p:
        yield p


@pytest.fixture
def proxy(platform: InProcessPlatform) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", platform.port, seed=11) as p:
        yield p


def _kiosk(tmp_path: Path, platform: InProcessPlatform, proxy: FaultProxy, **sync: Any) -> Kiosk:
    return make_kiosk(tmp_path, platform, url=proxy.url, **sync)


def _until_drained(
    kiosk: Kiosk, relay: Relay, faults: Any, timeout_s: float = 40.0, pause_s: float = 0.02
) -> int:
    """Run scheduled passes (backoff and Retry-After respected) while `faults()` picks the
    faults for each; returns the passes it took."""
    deadline = time.monotonic() + timeout_s
    passes = 0
    while relay.storage.sync_counts()["pending"] or relay.storage.ratings_due(None):
        assert time.monotonic() < deadline, f"not drained under faults: {relay.state()}"
        faults()
        relay.run_once()
        passes += 1
        time.sleep(pause_s)
    return passes


def test_errors_and_busy_answers_with_retry_after(
    tmp_path: Path, platform: InProcessPlatform, proxy: FaultProxy
) -> None:
    kiosk = _kiosk(tmp_path, platform, proxy, chunk_kib=64, chunk_max_kib=64)
    made = kiosk.simulate(1, seed=1)
    rng = random.Random(3)

    def faults() -> None:
        status = rng.choice([500, 503, 429])
        retry_after = None if status == 500 else 1
        proxy.set(Faults(answer=status, retry_after=retry_after, probability=0.3))

    with kiosk.relay() as relay:
        for app_id in made:
            relay.storage.add_rating(app_id, 4)
        _until_drained(kiosk, relay, faults)
    proxy.set(Faults())
    log = proxy.request_log()
    busy = [i for i, r in enumerate(log) if r.action in ("answered 429", "answered 503")]
    assert busy and any(r.action == "answered 500" for r in log)
    for i in busy:
        # Retry-After: 1 is a floor for the whole kiosk, never shortened.
        early = [r for r in log[i + 1 :] if r.at < log[i].at + 1.0]
        assert not early, (log[i], early[:3])
    check_invariant(kiosk).assert_ok()


@pytest.mark.parametrize("side", ["request", "response"])
def test_connections_cut_mid_request_and_mid_response(
    tmp_path: Path, platform: InProcessPlatform, proxy: FaultProxy, side: str
) -> None:
    kiosk = _kiosk(tmp_path, platform, proxy)
    kiosk.simulate(2, seed=2)
    rng = random.Random(side)

    def faults() -> None:
        cut = rng.choice([0, 40, 300, 3000, 12000])
        if side == "request":
            proxy.set(Faults(drop_request_after=cut, probability=0.3))
        else:
            proxy.set(Faults(drop_response_after=cut, probability=0.3))

    with kiosk.relay() as relay:
        _until_drained(kiosk, relay, faults)
    proxy.set(Faults())
    actions = {r.action for r in proxy.request_log()}
    assert f"dropped {side}" in actions and proxy.stats().cut > 0
    check_invariant(kiosk).assert_ok()


class _LosesOneAnswer(HttpPlatform):
    """The client as it is, with the answer to its first `method` request cut by the proxy
    after the platform acted on it."""

    def __init__(self, *args: Any, proxy: FaultProxy, method: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._proxy = proxy
        self._method = method
        self.lost: list[str] = []

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if method != self._method or self.lost:
            return super()._request(method, path, **kwargs)
        self._proxy.set(Faults(drop_response_after=0))
        try:
            return super()._request(method, path, **kwargs)
        finally:
            self._proxy.set(Faults())
            self.lost.append(path)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "POST"])
def test_an_answer_lost_after_the_platform_acted_makes_no_duplicate(
    tmp_path: Path, platform: InProcessPlatform, proxy: FaultProxy, method: str
) -> None:
    kiosk = _kiosk(tmp_path, platform, proxy)
    (app_id,) = kiosk.simulate(1, seed=3)
    with kiosk.storage() as storage, kiosk.relay() as relay:
        client = _LosesOneAnswer(
            kiosk.config, kiosk.enrollment, url=proxy.url, proxy=proxy, method=method
        )
        relay.platform = client
        try:
            first = relay.run_once(ignore_schedule=True)
        finally:
            client.close()
        assert client.lost and first.failed == 1 and first.uploaded == 0
        assert storage.get(app_id).status is Status.QUEUED
    committed = {a.id: a for a in platform.server.store.list_committed()}
    if method == "POST":
        # The platform committed and numbered it; the kiosk never heard.
        assert app_id in committed
    before = committed.get(app_id)
    drain(kiosk)
    after = {a.id: a for a in platform.server.store.list_committed()}
    assert app_id in after
    if before is not None:
        assert (after[app_id].platform_number, after[app_id].server_seq) == (
            before.platform_number,
            before.server_seq,
        )
    with kiosk.storage() as storage:
        receipt = storage.platform_receipt(app_id)
    assert receipt is not None
    assert receipt["receipt"]["platform_number"] == after[app_id].platform_number
    assert receipt["receipt"]["server_seq"] == after[app_id].server_seq  # the same receipt
    check_invariant(kiosk).assert_ok()


def test_refused_applications_are_set_aside_and_the_others_drain(
    tmp_path: Path, platform: InProcessPlatform, proxy: FaultProxy
) -> None:
    kiosk = _kiosk(tmp_path, platform, proxy)
    # 422: sealed to a key that is not the platform's, so its commit cannot open it.
    stranger = HpkeSealer(X25519PrivateKey.generate().public_key())
    (unreadable,) = simulate_applications(
        kiosk.config,
        1,
        seed=4,
        sealer=stranger,
        on_saved=kiosk.record_confirmed,
        page_bytes=(20_000, 40_000),
    )
    # 409: its id already reached the platform with other content.
    (conflicting,) = kiosk.simulate(1, seed=5)
    good = kiosk.simulate(3, seed=6)
    with kiosk.storage() as storage, kiosk.client() as client:
        item = next(i for i in storage.outbox(None) if i.id == conflicting)
        other = random.Random(7).randbytes(600)
        impostor = dataclasses.replace(item, payload_sha256=hashlib.sha256(other).hexdigest())
        client.put_application(impostor, other)
    drain(kiosk)
    with kiosk.storage() as storage:
        for app_id, status in ((unreadable, 422), (conflicting, 409)):
            assert storage.get(app_id).status is Status.QUARANTINED
            assert str(status) in storage.quarantine_reason(app_id)
        assert {storage.get(app_id).status for app_id in good} == {Status.ACCEPTED}
        assert storage.sync_counts() == {"pending": 0, "accepted": 3, "quarantined": 2}
    check_invariant(kiosk, quarantined=[unreadable, conflicting]).assert_ok()


def test_offline_then_online_the_relay_thread_drains_the_queue(
    tmp_path: Path, platform: InProcessPlatform, proxy: FaultProxy
) -> None:
    kiosk = _kiosk(tmp_path, platform, proxy)
    proxy.set(Faults(offline=True))
    made = kiosk.simulate(3, seed=8)
    states: list[SyncState] = []
    drained = threading.Event()

    def on_state(state: SyncState) -> None:
        states.append(state)
        if state.pending == 0 and state.accepted == len(made):
            drained.set()

    with kiosk.storage() as storage, kiosk.client() as client:
        policy = RetryPolicy.from_config(kiosk.config.sync)
        relay = Relay(kiosk.config, storage, client, policy=policy, on_state=on_state)
        relay.start()
        try:
            deadline = time.monotonic() + 10
            while relay.state().online is not False:
                assert time.monotonic() < deadline, relay.state()
                time.sleep(0.05)
            assert relay.state().pending == 3 and not drained.is_set()
            assert not ({a.id for a in platform.server.store.list_committed()} & set(made))
            proxy.set(Faults())
            relay.wake(network_returned=True)
            assert drained.wait(30), states[-1:]
        finally:
            relay.stop(10)
    assert states[-1].online is True
    check_invariant(kiosk).assert_ok()


def test_a_slow_link_with_resets_resumes_instead_of_restarting(
    tmp_path: Path, platform: InProcessPlatform, proxy: FaultProxy
) -> None:
    # 128 kbit/s, every connection cut every 1.5 s; 4 KiB chunks (a quarter second each).
    # (64 kbit/s with a reset every 30 s on a 5 MB application: benchmarks/bench_sync.py.)
    kiosk = _kiosk(tmp_path, platform, proxy, chunk_kib=4, chunk_max_kib=4)
    with kiosk.storage(collect_orphans=True) as storage:
        flow = walk_to_review(
            kiosk_intake(kiosk, storage), DEMO_CARDS["adult"][1], "social_security_card", seed=9
        )
        flow.next()
        assert flow.session.result is not None
        app = storage.get(flow.session.result.application_id)
    size = sum(page.size for page in app.pages)
    proxy.reset_counters()
    proxy.set(Faults(rate_bps=16000, reset_every_s=1.5))
    with kiosk.relay() as relay:
        passes = _until_drained(kiosk, relay, lambda: None, timeout_s=45, pause_s=0.1)
    stats = proxy.stats()
    proxy.set(Faults())
    assert stats.cut >= 2 and passes >= 2  # the resets did strike mid-upload
    # Resuming loses at most the chunk in flight per reset; restarting would resend it all.
    assert stats.bytes_up < size + 4096 * (stats.cut + 1) + 40_000, (stats, size)
    check_invariant(kiosk).assert_ok()
