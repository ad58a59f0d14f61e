"""Voiding an application that never left the kiosk: the new status, its migration, the relay
never sending a voided one, and its sealed data purged like a delivered one's."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlite_utils
from test_client import FakePlatform
from test_relay import HALL, KIOSK, Clock, make_relay, submit, sync_config

from kiosk.application import Status, TransitionError
from kiosk.config import Config, PlatformConfig, StorageConfig
from kiosk.storage import MIGRATIONS, NotVoidable, Storage, StorageError, UnknownApplication
from sync.client import HttpPlatform


@pytest.fixture
def clock() -> Clock:
    return Clock()


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


def test_a_queued_application_is_voided_with_its_reason_and_history(storage: Storage) -> None:
    app_id = submit(storage)
    storage.void(app_id, "staff S001: duplicate")
    app = storage.get(app_id)
    assert app.status is Status.VOIDED
    assert storage.void_reason(app_id) == "staff S001: duplicate"
    history = storage.status_history(app_id)
    assert (history[-1][1], history[-1][2]) == (Status.QUEUED, Status.VOIDED)
    assert history[-1][3] == "staff S001: duplicate"
    # Nothing can move a voided one again.
    with pytest.raises(TransitionError):
        storage.set_status(app_id, Status.QUEUED)
    with pytest.raises(TransitionError):
        storage.requeue(app_id, "again")
    with pytest.raises(UnknownApplication):
        storage.void("NO-SUCH-ID", "x")


def test_voided_is_never_uploaded_and_the_others_still_are(
    config: Config, storage: Storage, platform: HttpPlatform, fake: FakePlatform, clock: Clock
) -> None:
    voided, kept = submit(storage, seed=1), submit(storage, seed=2)
    storage.void(voided, "staff S001: applicant_withdrew")
    assert [item.id for item in storage.outbox(None)] == [kept]
    relay = make_relay(config, storage, platform, clock)
    result = relay.run_once(ignore_schedule=True)
    assert result.uploaded == 1
    assert voided not in fake.applications and voided not in fake.receipts
    assert not any(voided in path for _method, path in fake.log)
    assert storage.get(voided).status is Status.VOIDED
    assert storage.get(kept).status is Status.ACCEPTED


def test_a_relay_that_read_it_just_before_the_void_cannot_begin_sending_it(
    storage: Storage,
) -> None:
    app_id = submit(storage)
    (item,) = storage.outbox(None)  # the relay's read...
    storage.void(item.id, "staff S001: duplicate")  # ...then staff void it
    with pytest.raises(TransitionError):
        storage.begin_upload(app_id)
    assert storage.get(app_id).status is Status.VOIDED


def test_void_is_refused_once_an_upload_was_begun(
    config: Config, storage: Storage, platform: HttpPlatform, fake: FakePlatform, clock: Clock
) -> None:
    uploading, failed, accepted = (submit(storage, seed=i) for i in range(3))
    storage.begin_upload(uploading)
    storage.begin_upload(failed)
    storage.upload_failed(failed, retry_at=0.0, error="connection reset")
    assert storage.get(failed).status is Status.QUEUED  # back in the queue, but it went out
    for app_id in (uploading, failed):
        with pytest.raises(NotVoidable):
            storage.void(app_id, "staff S001: duplicate")
    relay = make_relay(config, storage, platform, clock)
    relay.run_once(ignore_schedule=True)
    assert storage.get(accepted).status is Status.ACCEPTED
    with pytest.raises(NotVoidable):
        storage.void(accepted, "staff S001: duplicate")
    assert all(storage.get(i).status is not Status.VOIDED for i in (uploading, failed, accepted))


def test_a_voided_ones_sealed_data_is_purged_after_the_retention(
    config: Config, storage: Storage, platform: HttpPlatform, clock: Clock
) -> None:
    config = replace(config, sync=sync_config(retention_days=1.0))
    app_id = submit(storage, n_pages=2)
    pages = storage.get(app_id).pages
    storage.void(app_id, "staff S001: wrong_thing")
    relay = make_relay(config, storage, platform, clock)
    assert relay.run_once().purged == 0  # kept for the retention period, like a delivered one
    assert storage.sealed_payload(app_id)
    clock.advance(2 * 86400)
    assert relay.run_once().purged == 1
    app = storage.get(app_id)
    assert app.purged and app.status is Status.VOIDED
    assert not any(storage.attachments.path(p.sha256).exists() for p in pages)
    with pytest.raises(StorageError):
        storage.sealed_payload(app_id)
    assert app.receipt_number  # the tombstone keeps the numbers


def test_set_aside_by_staff_only_while_queued(storage: Storage) -> None:
    queued, sending = submit(storage, seed=1), submit(storage, seed=2)
    storage.set_aside(queued, "staff S001: check_materials")
    assert storage.get(queued).status is Status.QUARANTINED
    assert storage.quarantine_reason(queued) == "staff S001: check_materials"
    storage.begin_upload(sending)
    with pytest.raises(TransitionError):
        storage.set_aside(sending, "staff S001: check_materials")
    storage.requeue(queued, "staff S001: checked_ok")
    assert storage.get(queued).status is Status.QUEUED


def test_a_schema_3_database_gains_the_void_columns(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "kiosk.db")
    db = sqlite_utils.Database(conn)
    for migration in MIGRATIONS[:3]:
        migration(db)
    conn.execute("PRAGMA user_version = 3")
    stamp = dt.datetime(2026, 11, 27, 9, 0).astimezone().isoformat()
    conn.execute(
        "INSERT INTO applications (id, thing_id, catalog_version, receipt_number, status,"
        " channel, created_at, payload, summary, id_hash, updated_at, payload_sha256, kiosk_seq)"
        " VALUES ('APP1', 'newborn', '1', 'HZ01-K01-20261127-0001', 'queued', 'self', ?, '',"
        " '{}', 'h', ?, NULL, 1)",
        [stamp, stamp],
    )
    conn.commit()
    conn.close()
    with Storage(tmp_path, hall_code=HALL, kiosk_code=KIOSK) as upgraded:
        assert upgraded.schema_version == len(MIGRATIONS) == 4
        assert upgraded.get("APP1").status is Status.QUEUED
        upgraded.void("APP1", "staff S001: duplicate")
        assert upgraded.get("APP1").status is Status.VOIDED
