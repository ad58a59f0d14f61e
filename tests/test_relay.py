"""The outbox relay on a real Storage against the in-memory FakePlatform (test_client.py):
exactly-once delivery, quarantine, receipts, backoff, the breaker, status, catalog, ratings."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from test_client import FakePlatform, json_response

from kiosk.application import Status, Submission
from kiosk.catalog import CatalogStore, shipped_catalog_text
from kiosk.config import Config, PlatformConfig, StorageConfig, SyncConfig
from kiosk.storage import Storage
from sync.backoff import RetryPolicy
from sync.client import HttpPlatform
from sync.relay import Relay, SyncState

HALL, KIOSK = "HZ01", "K01"


class Clock:
    """Settable wall time for the relay and its breaker."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def sync_config(**overrides: float) -> SyncConfig:
    base = dict(
        backoff_base_s=2.0,
        backoff_cap_s=60.0,
        breaker_failures=3,
        breaker_open_min_s=30.0,
        breaker_open_max_s=60.0,
        startup_delay_max_s=0.0,
        status_poll_s=300.0,
        chunk_kib=16,
        chunk_max_kib=16,
        retention_days=30.0,
    )
    base.update(overrides)
    return SyncConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        storage=StorageConfig(data_dir=str(tmp_path)),
        platform=PlatformConfig(url="https://platform.test"),
        sync=sync_config(),
    )


@pytest.fixture
def fake() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    with Storage(tmp_path, hall_code=HALL, kiosk_code=KIOSK) as s:
        yield s


@pytest.fixture
def platform(fake: FakePlatform, config: Config) -> Iterator[HttpPlatform]:
    with HttpPlatform(config, fake.enrollment(), transport=fake.transport()) as p:
        yield p


def make_relay(
    config: Config,
    storage: Storage,
    platform: HttpPlatform,
    clock: Clock,
    **kwargs: object,
) -> Relay:
    policy = RetryPolicy.from_config(config.sync, rng=random.Random(7), clock=clock)
    return Relay(config, storage, platform, policy=policy, clock=clock, **kwargs)  # type: ignore[arg-type]


def submit(storage: Storage, n_pages: int = 2, size: int = 40_000, seed: int = 0) -> str:
    rng = random.Random(seed)
    pages = [("birth_certificate", rng.randbytes(size)) for _ in range(n_pages)]
    stored = storage.submit(
        Submission(
            thing_id="newborn",
            catalog_version="2026.11.1",
            sealed_payload=rng.randbytes(500),
            summary={"name": "张*"},
            id_hash="h" * 64,
        ),
        pages,
    )
    return stored.id


@pytest.fixture
def relay(config: Config, storage: Storage, platform: HttpPlatform, clock: Clock) -> Relay:
    return make_relay(config, storage, platform, clock)


# Delivery -------------------------------------------------------------------------------------


def test_each_application_is_delivered_once_with_every_page(
    relay: Relay, storage: Storage, fake: FakePlatform
) -> None:
    ids = [submit(storage, n_pages=i + 1, seed=i) for i in range(3)]
    result = relay.run_once()
    assert (result.uploaded, result.failed, result.quarantined) == (3, 0, 0)
    assert set(fake.receipts) == set(ids)
    for app_id in ids:
        app = storage.get(app_id)
        assert app.status is Status.ACCEPTED
        assert app.platform_number == fake.receipts[app_id][0]["platform_number"]
        assert {p.sha256 for p in app.pages} <= fake.whole
    assert storage.sync_counts() == {"pending": 0, "accepted": 3, "quarantined": 0}
    state = relay.state()
    assert state.online is True and state.pending == 0 and state.accepted == 3
    assert state.last_success_at is not None
    # Nothing is sent again on the next pass.
    before = fake.count("PUT")
    relay.run_once()
    assert fake.count("PUT") == before


def test_one_voided_by_staff_after_the_pass_read_the_queue_is_skipped_not_an_error(
    relay: Relay, storage: Storage, fake: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [submit(storage, seed=i) for i in range(3)]
    read_outbox = storage.outbox

    def read_then_void(*args: object, **kwargs: object) -> object:
        batch = read_outbox(*args, **kwargs)  # type: ignore[arg-type]
        if storage.get(ids[1]).status is Status.QUEUED:
            storage.void(ids[1], "applicant changed their mind")  # staff, a moment later
        return batch

    monkeypatch.setattr(storage, "outbox", read_then_void)
    result = relay.run_once()
    assert (result.uploaded, result.failed, result.quarantined) == (2, 0, 0)
    assert set(fake.receipts) == {ids[0], ids[2]}
    assert storage.get(ids[1]).status is Status.VOIDED
    assert relay.state().last_error == ""


def test_an_item_left_uploading_by_a_crash_is_resumed_without_duplicates(
    relay: Relay, storage: Storage, fake: FakePlatform, platform: HttpPlatform
) -> None:
    app_id = submit(storage, n_pages=1, size=100_000)
    # A previous process got the PUT and half the blob through, then died.
    item = storage.outbox(None)[0]
    storage.begin_upload(app_id)
    platform.put_application(item, storage.sealed_payload(app_id))
    sha = item.pages[0].sha256
    fake.blobs[sha] = bytearray(storage.attachments.path(sha).read_bytes()[:50_000])
    assert storage.outbox(None)[0].status is Status.UPLOADING
    fake.patches.clear()
    assert relay.run_once().uploaded == 1
    assert sum(length for _, _, length in fake.patches) == 50_000  # only the rest
    assert len(fake.receipts) == 1 and storage.get(app_id).status is Status.ACCEPTED


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/v1/applications/"), ("PATCH", "/v1/blobs/"), ("POST", "/v1/applications/")],
)
def test_a_lost_answer_after_the_platform_acted_changes_nothing(
    relay: Relay, storage: Storage, fake: FakePlatform, clock: Clock, method: str, path: str
) -> None:
    app_id = submit(storage)
    fake.fail(method, path, None)  # the platform acts, the answer never arrives
    first = relay.run_once()
    assert first.failed == 1 and storage.get(app_id).status is Status.QUEUED
    clock.advance(120)
    assert relay.run_once().uploaded == 1
    assert len(fake.receipts) == 1 and len(fake.applications) == 1
    stored = storage.platform_receipt(app_id)
    assert stored is not None and stored["receipt"] == fake.receipts[app_id][0]


def test_a_refused_application_is_set_aside_and_the_others_still_go(
    relay: Relay, storage: Storage, fake: FakePlatform
) -> None:
    poison = submit(storage, seed=1)
    good = submit(storage, seed=2)
    fake.fail("PUT", f"/v1/applications/{poison}", json_response(422, {"reason": "bad page"}))
    result = relay.run_once()
    assert (result.uploaded, result.quarantined) == (1, 1)
    assert storage.get(poison).status is Status.QUARANTINED
    assert "bad page" in storage.quarantine_reason(poison)
    assert storage.get(good).status is Status.ACCEPTED
    assert relay.state().quarantined == 1
    # Never deleted, never retried on its own: staff requeue it.
    relay.run_once()
    assert storage.get(poison).status is Status.QUARANTINED
    storage.requeue(poison, "staff: try again")
    assert relay.run_once().uploaded == 1


def test_a_receipt_that_does_not_name_every_page_is_not_accepted(
    relay: Relay, storage: Storage, fake: FakePlatform, clock: Clock
) -> None:
    app_id = submit(storage, n_pages=3)
    fake.corrupt_receipts = True
    result = relay.run_once()
    assert result.uploaded == 0 and result.failed == 1
    assert storage.get(app_id).status is Status.QUEUED
    assert storage.platform_receipt(app_id) is None
    fake.corrupt_receipts = False
    clock.advance(120)
    assert relay.run_once().uploaded == 1


def test_a_receipt_signed_by_another_key_is_not_accepted(
    relay: Relay, storage: Storage, fake: FakePlatform
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    app_id = submit(storage)
    fake.receipt_key = Ed25519PrivateKey.generate()  # an impostor
    assert relay.run_once().uploaded == 0
    assert storage.get(app_id).status is Status.QUEUED


def test_retry_after_is_honoured_for_the_item_and_the_whole_kiosk(
    relay: Relay, storage: Storage, fake: FakePlatform, clock: Clock
) -> None:
    first, second = submit(storage, seed=1), submit(storage, seed=2)
    busy = json_response(503, {"error": "busy"}, {"Retry-After": "7"})
    fake.fail("PUT", "/v1/applications/", busy)
    result = relay.run_once()
    assert result.stopped == "retry-after" and result.failed == 1
    assert fake.count("PUT") == 1  # the second was not tried against a busy platform
    requests = len(fake.log)
    clock.advance(6.5)
    assert relay.run_once().stopped == "retry-after"
    assert len(fake.log) == requests  # nothing at all before 7 s
    clock.advance(1)
    assert relay.run_once().uploaded == 2
    assert {storage.get(i).status for i in (first, second)} == {Status.ACCEPTED}


def test_after_trouble_the_backlog_is_spaced_out_until_a_clean_pass(
    relay: Relay,
    storage: Storage,
    fake: FakePlatform,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gaps: list[float] = []

    def wait(seconds: float | None = None) -> bool:
        gaps.append(seconds or 0.0)
        return False

    monkeypatch.setattr(relay._stop, "wait", wait)
    for seed in range(3):
        submit(storage, seed=seed)
    assert relay.run_once().uploaded == 3 and gaps == []  # no trouble: back to back
    for seed in range(3, 6):
        submit(storage, seed=seed)
    fake.fail(
        "PUT", "/v1/applications/", json_response(429, {"error": "busy"}, {"Retry-After": "2"})
    )
    relay.run_once()
    clock.advance(3)
    assert relay.run_once().uploaded == 3
    # Paced after the 429: two gaps of about backlog_gap_s (±20 %) between three items.
    assert len(gaps) == 2 and all(0.8 <= g <= 1.2 for g in gaps)
    for seed in range(6, 8):
        submit(storage, seed=seed)
    gaps.clear()
    assert relay.run_once().uploaded == 2 and gaps == []  # the clean pass ended pacing


def test_backoff_grows_and_the_breaker_stops_the_pass(
    config: Config, storage: Storage, platform: HttpPlatform, fake: FakePlatform, clock: Clock
) -> None:
    relay = make_relay(config, storage, platform, clock)
    for seed in range(5):
        submit(storage, seed=seed)
    fake.fail("PUT", "/v1/applications/", httpx.ConnectError, times=100)
    result = relay.run_once()
    # Three consecutive failures open the breaker; the other two are not even tried.
    assert result.failed == 3 and result.stopped == "breaker open"
    assert fake.count("PUT") == 3
    state = relay.state()
    assert state.online is False and state.breaker == "open" and state.pending == 5
    assert "no connection" in state.last_error
    clock.advance(10)
    relay.run_once()
    assert fake.count("PUT") == 3  # still open: not one request
    fake.faults.clear()
    clock.advance(61)  # half-open: one probe, which succeeds and closes it
    result = relay.run_once(ignore_schedule=True)
    assert result.uploaded == 5 and relay.state().breaker == "closed"


def test_network_failures_count_attempts_and_schedule_the_next(
    relay: Relay, storage: Storage, fake: FakePlatform, clock: Clock
) -> None:
    app_id = submit(storage)
    fake.fail("PUT", "/v1/applications/", httpx.ReadTimeout)
    relay.run_once()
    item = storage.outbox(None)[0]
    assert item.attempts == 1
    due = storage.next_due_at()
    assert due is not None and clock.now <= due <= clock.now + 2.0  # full jitter, base 2 s
    clock.advance(3)
    assert relay.run_once().uploaded == 1 and storage.get(app_id).status is Status.ACCEPTED


# Status, catalog, ratings, purge --------------------------------------------------------------


def test_status_changes_arrive_in_pages_and_the_cursor_moves_forward(
    relay: Relay, storage: Storage, fake: FakePlatform
) -> None:
    ids = [submit(storage, seed=i) for i in range(3)]
    relay.run_once()
    fake.feed_page = 2
    for app_id in ids:
        fake.add_change(app_id, "in_progress", services={"birth_registration": "in_progress"})
    fake.add_change(ids[0], "completed", services={"birth_registration": "completed"})
    result = relay.run_once()
    assert result.status_changes == 4
    assert storage.get(ids[0]).status is Status.COMPLETED
    assert storage.get(ids[0]).services == {"birth_registration": "completed"}
    assert storage.get(ids[1]).status is Status.IN_PROGRESS
    assert storage.status_cursor() == fake.changes[-1]["seq"]


def test_a_restored_platform_resets_the_cursor(
    relay: Relay, storage: Storage, fake: FakePlatform
) -> None:
    app_id = submit(storage)
    relay.run_once()
    storage.set_meta("status_cursor", "9999")  # beyond what the restored platform knows
    fake.add_change(app_id, "completed")
    relay.run_once()
    assert storage.get(app_id).status is Status.COMPLETED
    assert storage.status_cursor() == fake.changes[-1]["seq"]


def test_catalog_updates_are_validated_swapped_and_the_last_good_kept(
    config: Config, storage: Storage, platform: HttpPlatform, fake: FakePlatform, clock: Clock
) -> None:
    catalogs = CatalogStore(Path(config.storage.data_dir))
    relay = make_relay(config, storage, platform, clock, catalogs=catalogs)
    document = json.loads(shipped_catalog_text())
    document["version"] = "2099.1.1"
    fake.catalog_bytes = json.dumps(document).encode()
    assert relay.run_once().catalog == "updated"
    assert catalogs.catalog.version == "2099.1.1"
    assert relay.run_once().catalog == "skipped"  # at most every status_poll_s
    assert relay.run_once(ignore_schedule=True).catalog == "unchanged"  # 304
    fake.catalog_bytes = b'{"schema": 1, "version": "2099.2.0"}'  # not a valid catalog
    clock.advance(400)
    assert relay.run_once().catalog == "refused"
    assert catalogs.catalog.version == "2099.1.1"
    assert CatalogStore(Path(config.storage.data_dir)).catalog.version == "2099.1.1"


def test_ratings_travel_like_applications(
    relay: Relay, storage: Storage, fake: FakePlatform, clock: Clock
) -> None:
    app_id = submit(storage)
    good = storage.add_rating(app_id, 5)
    bad = storage.add_rating(app_id, 1)
    fake.fail("PUT", f"/v1/ratings/{bad}", json_response(422, {"reason": "too late"}))
    relay.run_once()
    assert fake.ratings[good]["score"] == 5 and bad not in fake.ratings
    assert storage.rating_counts() == {"sent": 1, "quarantined": 1}


def test_delivered_applications_are_purged_after_the_retention(
    config: Config, storage: Storage, platform: HttpPlatform, fake: FakePlatform, clock: Clock
) -> None:
    config = replace(config, sync=sync_config(retention_days=1.0))
    relay = make_relay(config, storage, platform, clock)
    app_id = submit(storage, n_pages=2)
    pages = storage.get(app_id).pages
    assert relay.run_once().purged == 0
    clock.advance(2 * 86400)
    assert relay.run_once().purged == 1
    assert storage.get(app_id).purged and storage.get(app_id).status is Status.ACCEPTED
    assert not any(storage.attachments.path(p.sha256).exists() for p in pages)


def test_a_revoked_kiosk_stops_the_relay_with_a_reason(
    relay: Relay, storage: Storage, fake: FakePlatform
) -> None:
    app_id = submit(storage)
    fake.kiosks.clear()
    result = relay.run_once()
    assert result.unauthenticated and result.uploaded == 0
    assert "enroll again" in relay.state().last_error
    assert storage.get(app_id).status in (Status.QUEUED, Status.UPLOADING)


def test_clock_offset_is_kept_across_restarts(
    config: Config, storage: Storage, fake: FakePlatform, clock: Clock
) -> None:
    enrollment = fake.enrollment()
    slow = lambda: time.time() - 1000  # noqa: E731
    with HttpPlatform(config, enrollment, transport=fake.transport(), clock=slow) as platform:
        make_relay(config, storage, platform, clock).run_once()
        learned = platform.clock_offset
    assert 990 < learned < 1010
    with HttpPlatform(config, enrollment, transport=fake.transport(), clock=slow) as platform:
        make_relay(config, storage, platform, clock)
        assert abs(platform.clock_offset - learned) < 0.01


# The thread -----------------------------------------------------------------------------------


def test_the_thread_delivers_on_wake_and_stops(
    config: Config, storage: Storage, platform: HttpPlatform, fake: FakePlatform
) -> None:
    states: list[SyncState] = []
    delivered = threading.Event()

    def on_state(state: SyncState) -> None:
        states.append(state)
        if state.accepted == 2:
            delivered.set()

    relay = Relay(config, storage, platform, on_state=on_state)
    relay.start()
    try:
        submit(storage, seed=1)
        submit(storage, seed=2)
        relay.wake()
        assert delivered.wait(10), states[-1:]
    finally:
        relay.stop(5)
    assert not relay.running
    assert states[-1].pending == 0 and states[-1].online is True


# The reference platform through a faulty link -------------------------------------------------


def test_everything_drains_exactly_once_through_a_faulty_link(tmp_path: Path, clock: Clock) -> None:
    from sync.enrollment import enroll
    from sync.faultproxy import FaultProxy, Faults
    from sync.platform.server import PlatformServer
    from sync.simulate import simulate_applications

    with (
        PlatformServer(tmp_path / "platform") as server,
        FaultProxy("127.0.0.1", server.port, seed=3) as proxy,
    ):
        config = Config(
            storage=StorageConfig(data_dir=str(tmp_path / "kiosk")),
            platform=PlatformConfig(url=proxy.url, request_timeout_s=5.0),
            sync=sync_config(),
        )
        enrollment = enroll(config, server.url, server.new_enrollment_code())
        ids = simulate_applications(config, 6, seed=1, page_bytes=(20_000, 70_000))
        faults = [
            Faults(drop_response_after=40, probability=0.3),  # the platform acted; answer lost
            Faults(drop_request_after=3000, probability=0.3),  # cut mid-upload
            Faults(answer=503, retry_after=7, probability=0.3),
        ]
        with (
            Storage(config.data_dir, hall_code=HALL, kiosk_code=KIOSK) as storage,
            HttpPlatform(config, enrollment) as platform,
        ):
            relay = make_relay(config, storage, platform, clock)
            passes = 0
            while storage.sync_counts()["pending"] and passes < 60:
                proxy.set(faults[passes % len(faults)])
                relay.run_once()
                clock.advance(400)  # past any backoff, Retry-After and open breaker
                passes += 1
            proxy.set(Faults())
            relay.run_once()
            assert storage.sync_counts() == {"pending": 0, "accepted": 6, "quarantined": 0}
            numbers = {storage.get(i).platform_number for i in ids}
        assert proxy.stats().cut > 0 and proxy.stats().answered > 0  # faults did happen
        committed = server.store.list_committed()
        assert sorted(app.id for app in committed) == sorted(ids)
        assert numbers == {app.platform_number for app in committed}
