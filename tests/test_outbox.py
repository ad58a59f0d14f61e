"""The applications table as the outbox: delivery state, the status feed, purge and ratings."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.application import Status, Submission, TransitionError
from kiosk.storage import StatusChange, Storage, StorageError, UnknownApplication

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def storage(tmp_path: Path, clock: Clock) -> Iterator[Storage]:
    with Storage(tmp_path, hall_code="HZ01", kiosk_code="K01", clock=clock) as opened:
        yield opened


def submit(storage: Storage, pages: int = 2) -> str:
    sub = Submission(
        thing_id="newborn",
        catalog_version="1",
        sealed_payload=b"sealed " + os.urandom(40),
        summary={"name": "张*"},
        id_hash="cd" * 32,
    )
    return storage.submit(sub, [("m", os.urandom(100)) for _ in range(pages)]).id


def receipt_for(storage: Storage, app_id: str, number: str = "BJ20261127000001") -> dict:
    item = next(i for i in storage.outbox(None) if i.id == app_id)
    return {
        "application_id": app_id,
        "platform_number": number,
        "payload_sha256": item.payload_sha256,
        "attachments": [p.sha256 for p in item.pages],
    }


def test_a_submission_is_in_the_outbox_in_the_same_transaction(storage: Storage) -> None:
    first, second = submit(storage), submit(storage, pages=0)
    items = storage.outbox(now=0.0)
    assert [i.id for i in items] == [first, second]
    assert [i.kiosk_seq for i in items] == [1, 2]
    assert items[0].status is Status.QUEUED and len(items[0].pages) == 2
    assert storage.sync_counts() == {"pending": 2, "accepted": 0, "quarantined": 0}
    assert storage.oldest_pending() == T0


def test_a_failed_attempt_waits_for_its_retry_time(storage: Storage) -> None:
    app = submit(storage)
    storage.begin_upload(app)
    storage.begin_upload(app)  # resuming after a crash: still uploading
    assert storage.get(app).status is Status.UPLOADING
    storage.upload_failed(app, retry_at=1000.0, error="503 from the platform")
    assert storage.get(app).status is Status.QUEUED
    assert storage.outbox(now=999.0) == []
    assert [i.attempts for i in storage.outbox(now=1000.0)] == [1]
    assert storage.outbox(now=None)[0].id == app
    assert storage.next_due_at() == 1000.0


def test_accepted_only_through_the_receipt_and_only_once(storage: Storage) -> None:
    app = submit(storage)
    storage.begin_upload(app)
    receipt = receipt_for(storage, app)
    storage.mark_accepted(app, receipt, "sig")
    storage.mark_accepted(app, {**receipt, "platform_number": "OTHER"}, "sig2")  # a replay
    stored = storage.get(app)
    assert stored.status is Status.ACCEPTED and stored.platform_number == "BJ20261127000001"
    assert storage.platform_receipt(app) == {"receipt": receipt, "signature": "sig"}
    assert storage.outbox(None) == []
    assert storage.sync_counts() == {"pending": 0, "accepted": 1, "quarantined": 0}


def test_quarantine_sets_aside_without_blocking_and_staff_can_requeue(storage: Storage) -> None:
    bad, good = submit(storage), submit(storage)
    storage.begin_upload(bad)
    storage.quarantine(bad, "409: different content under this id")
    assert [i.id for i in storage.outbox(None)] == [good]
    assert storage.quarantine_reason(bad).startswith("409")
    assert storage.sync_counts()["quarantined"] == 1
    storage.requeue(bad, "staff: checked with the platform")
    assert {i.id for i in storage.outbox(0.0)} == {bad, good}
    with pytest.raises(TransitionError):
        storage.requeue(good, "not quarantined")


def test_status_changes_and_cursor_commit_together_and_are_idempotent(storage: Storage) -> None:
    app = submit(storage)
    storage.begin_upload(app)
    storage.mark_accepted(app, receipt_for(storage, app), "sig")
    changes = [
        StatusChange(5, app, "in_progress", "BJ1", {"svc-a": "in_progress"}, "审核中", "t"),
        StatusChange(6, "01UNKNOWN00000000000000000", "completed", None, {}, "", "t"),
    ]
    assert storage.apply_status_changes(changes, 6) == 1
    assert storage.apply_status_changes(changes, 6) == 0  # the same page again
    stored = storage.get(app)
    assert stored.status is Status.IN_PROGRESS and stored.services == {"svc-a": "in_progress"}
    assert storage.status_cursor() == 6
    # Going back is refused; the cursor still moves on.
    back = [StatusChange(7, app, "accepted", None, {}, "", "t")]
    assert storage.apply_status_changes(back, 7) == 0
    assert storage.get(app).status is Status.IN_PROGRESS and storage.status_cursor() == 7


def test_a_feed_status_seen_before_the_receipt_is_applied_with_it(storage: Storage) -> None:
    app = submit(storage)
    storage.begin_upload(app)
    # The commit's answer was lost; the feed already says the case is being worked on.
    feed = [StatusChange(1, app, "in_progress", "BJ9", {"svc": "in_progress"}, "", "t")]
    storage.apply_status_changes(feed, 1)
    assert storage.get(app).status is Status.UPLOADING
    storage.mark_accepted(app, receipt_for(storage, app, "BJ9"), "sig")
    stored = storage.get(app)
    assert stored.status is Status.IN_PROGRESS and stored.services == {"svc": "in_progress"}


def test_purge_deletes_sealed_files_after_retention_and_keeps_a_tombstone(
    storage: Storage, clock: Clock
) -> None:
    old, recent, pending = submit(storage), submit(storage), submit(storage)
    for app in (old, recent):
        storage.begin_upload(app)
    storage.mark_accepted(old, receipt_for(storage, old), "sig")
    clock.now = T0 + dt.timedelta(days=10)
    storage.mark_accepted(recent, receipt_for(storage, recent, "BJ2"), "sig")
    files_before = storage.attachments.all_hashes()
    old_hashes = {p.sha256 for p in storage.get(old).pages}

    assert storage.purge_accepted(before=T0 + dt.timedelta(days=5)) == 1
    tomb = storage.get(old)
    assert tomb.purged and tomb.status is Status.ACCEPTED and tomb.platform_number
    assert {p.sha256 for p in tomb.pages} == old_hashes  # hashes stay in the tombstone
    assert not old_hashes & storage.attachments.all_hashes()
    assert len(files_before) - len(storage.attachments.all_hashes()) == 3  # 2 pages + payload
    with pytest.raises(StorageError):
        storage.sealed_payload(old)
    assert not storage.get(recent).purged and not storage.get(pending).purged
    assert storage.verify() == []
    assert storage.purge_accepted(before=T0 + dt.timedelta(days=5)) == 0


def test_orphan_collection_spares_young_files_of_a_submission_in_progress(
    tmp_path: Path, clock: Clock
) -> None:
    with Storage(tmp_path, hall_code="HZ01", kiosk_code="K01", clock=clock) as storage:
        young = storage.attachments.put(b"another process is saving this right now")
    with Storage(tmp_path, hall_code="HZ01", kiosk_code="K01", clock=clock) as storage:
        assert young.sha256 in storage.attachments.all_hashes()
    with Storage(
        tmp_path, hall_code="HZ01", kiosk_code="K01", clock=clock, orphan_grace_s=0
    ) as storage:
        assert young.sha256 not in storage.attachments.all_hashes()


def test_ratings_queue_and_deliver(storage: Storage) -> None:
    app = submit(storage)
    with pytest.raises(ValueError):
        storage.add_rating(app, 6)
    with pytest.raises(UnknownApplication):
        storage.add_rating("01UNKNOWN00000000000000000", 5)
    first, second = storage.add_rating(app, 5), storage.add_rating(app, 2)
    assert [r.score for r in storage.ratings_due(0.0)] == [5, 2]
    storage.rating_failed(first, retry_at=50.0, error="timeout")
    assert [r.id for r in storage.ratings_due(10.0)] == [second]
    storage.rating_sent(second)
    storage.rating_quarantined(first, "422")
    assert storage.ratings_due(None) == []
    assert storage.rating_counts() == {"sent": 1, "quarantined": 1}


def test_an_application_saved_before_sealing_is_sealed_in_place(storage: Storage) -> None:
    from sync.simulated import SimulatedPlatform

    platform = SimulatedPlatform({})
    app = submit(storage, pages=2)
    scan = b"\xff\xd8 a plaintext scan from the older version"
    legacy = {"identity": {"id_number": "110105194912310025"}, "answers": {"a": 1}, "lang": "zh"}
    # What schema 2 left behind: the payload in a column, scans in the clear, no outbox state.
    plain = storage.attachments.put(scan)
    with storage._write("test") as db:
        db.execute(
            "UPDATE applications SET payload = ?, payload_sha256 = NULL, kiosk_seq = NULL"
            " WHERE id = ?",
            [json.dumps(legacy), app],
        )
        db.execute(
            "UPDATE pages SET sha256 = ?, size = ? WHERE application_id = ?",
            [plain.sha256, plain.size, app],
        )
    assert storage.legacy_unsealed() == [app]
    assert storage.outbox(None) == []

    storage.seal_legacy(app, platform.sealer)
    assert storage.legacy_unsealed() == []
    (item,) = storage.outbox(None)
    opened = platform.open_payload(app, storage.sealed_payload(app))
    assert opened["identity"] == legacy["identity"] and opened["application_id"] == app
    assert [p["sha256"] for p in opened["pages"]] == [p.sha256 for p in item.pages]
    assert all(
        platform.open_page(app, storage.attachments.get(p.sha256)) == scan for p in item.pages
    )
    assert plain.sha256 not in storage.attachments.all_hashes()  # the plaintext is gone
    assert item.kiosk_seq > 0 and storage.verify() == []
