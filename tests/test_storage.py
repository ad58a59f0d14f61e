"""Durable local storage: real SQLite files and real attachment files under tmp_path."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.application import Status, Submission, TransitionError
from kiosk.storage import (
    MIGRATIONS,
    AttachmentStore,
    Storage,
    StorageError,
    UnknownApplication,
)

HALL = "HZ01"
KIOSK = "K01"
# Personal data that must never reach a log line.
SECRET_NAME = "张三丰"
SECRET_ID = "11010519491231002X"


class FakeClock:
    """A settable local clock."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def next_day(self) -> None:
        self.now += dt.timedelta(days=1)


@pytest.fixture
def clock() -> FakeClock:
    tz = dt.timezone(dt.timedelta(hours=8))
    return FakeClock(dt.datetime(2025, 3, 14, 9, 30, tzinfo=tz))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def storage(data_dir: Path, clock: FakeClock) -> Iterator[Storage]:
    with open_storage(data_dir, clock) as opened:
        yield opened


def open_storage(data_dir: Path, clock: FakeClock, kiosk: str = KIOSK) -> Storage:
    # No grace period: these tests check that orphans go at the very next start-up.
    return Storage(data_dir, hall_code=HALL, kiosk_code=kiosk, clock=clock, orphan_grace_s=0)


def submission(**overrides: Any) -> Submission:
    fields: dict[str, Any] = {
        "thing_id": "newborn",
        "catalog_version": "2025.1",
        # Intake seals the payload to the platform; storage only keeps the bytes it is given.
        "sealed_payload": b"sealed-payload-" + os.urandom(32),
        "summary": {"name": "张**", "id_number": "1101**********002X"},
        "id_hash": "ab" * 32,
    }
    fields.update(overrides)
    return Submission(**fields)


@contextlib.contextmanager
def raw(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """A second connection in autocommit mode, as a technician's sqlite3 shell would be."""
    conn = sqlite3.connect(data_dir / "kiosk.db", isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def attachment_files(data_dir: Path) -> list[Path]:
    root = data_dir / "attachments"
    return sorted(p for p in root.rglob("*") if p.is_file())


def counter(data_dir: Path, day: str = "20250314", kiosk: str = KIOSK) -> int | None:
    with raw(data_dir) as conn:
        row = conn.execute(
            "SELECT last FROM receipt_counters WHERE day = ? AND kiosk = ?", [day, kiosk]
        ).fetchone()
    return None if row is None else int(row[0])


def payload_hash(storage: Storage, application_id: str) -> str:
    return hashlib.sha256(storage.sealed_payload(application_id)).hexdigest()


def kept_files(storage: Storage, application_id: str) -> list[Path]:
    """The files an application needs: its pages and its sealed payload, sorted."""
    app = storage.get(application_id)
    hashes = {p.sha256 for p in app.pages} | {payload_hash(storage, application_id)}
    return sorted(storage.attachments.path(h) for h in hashes)


# Saving and reading back ----------------------------------------------------------------------


def test_submit_then_reopen_returns_the_same_application_with_identical_pages(
    data_dir: Path, clock: FakeClock
) -> None:
    pages = [("birth_cert", b"\xff\xd8page one"), ("household", bytes(range(256)) * 40)]
    with open_storage(data_dir, clock) as storage:
        saved = storage.submit(submission(), pages)

    with open_storage(data_dir, clock) as storage:
        again = storage.get(saved.id)
        assert again == saved
        assert again.status is Status.QUEUED
        assert again.receipt_number == "HZ01-K01-20250314-0001"
        assert again.created_at == clock.now
        assert again.summary == {"name": "张**", "id_number": "1101**********002X"}
        assert [(p.material_id, p.size) for p in again.pages] == [
            ("birth_cert", len(pages[0][1])),
            ("household", len(pages[1][1])),
        ]
        assert [storage.page_bytes(p) for p in again.pages] == [data for _, data in pages]
        assert storage.sealed_payload(saved.id).startswith(b"sealed-payload-")
        assert storage.verify() == []


def test_unknown_application_is_reported_as_such(storage: Storage) -> None:
    with pytest.raises(UnknownApplication):
        storage.get("01NOSUCHAPPLICATION0000000")
    with pytest.raises(UnknownApplication):
        storage.sealed_payload("01NOSUCHAPPLICATION0000000")


def test_submitting_the_same_application_twice_saves_it_once(
    storage: Storage, data_dir: Path
) -> None:
    sub = submission()
    first = storage.submit(sub, [("a", b"page")])
    second = storage.submit(sub, [("a", b"page")])
    assert second == first
    assert len(storage.list_applications()) == 1
    assert counter(data_dir) == 1


def test_list_applications_by_day(storage: Storage, clock: FakeClock) -> None:
    monday = storage.submit(submission(), [])
    clock.next_day()
    tuesday = [storage.submit(submission(), []) for _ in range(2)]
    assert [a.id for a in storage.list_applications()] == [monday.id] + [a.id for a in tuesday]
    assert storage.list_applications(dt.date(2025, 3, 14)) == [monday]
    assert storage.list_applications(dt.date(2025, 3, 15)) == tuesday
    assert storage.list_applications(dt.date(2025, 3, 16)) == []


def test_payload_and_personal_data_never_reach_the_log(
    data_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with open_storage(data_dir, clock) as storage:
        saved = storage.submit(submission(), [("a", b"scan")])
        storage.set_status(saved.id, Status.UPLOADING)
    with open_storage(data_dir, clock):
        pass
    assert caplog.records, "storage should log what it did"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET_NAME not in text
    assert SECRET_ID not in text
    assert "answers" not in text


# Receipt numbers ------------------------------------------------------------------------------


def test_receipt_numbers_are_sequential_and_continue_after_a_restart(
    data_dir: Path, clock: FakeClock
) -> None:
    with open_storage(data_dir, clock) as storage:
        first = [storage.submit(submission(), []).receipt_number for _ in range(2)]
    with open_storage(data_dir, clock) as storage:
        after_restart = storage.submit(submission(), []).receipt_number
    assert first == ["HZ01-K01-20250314-0001", "HZ01-K01-20250314-0002"]
    assert after_restart == "HZ01-K01-20250314-0003"


def test_a_new_day_starts_again_at_0001(storage: Storage, clock: FakeClock) -> None:
    storage.submit(submission(), [])
    storage.submit(submission(), [])
    clock.next_day()
    assert storage.submit(submission(), []).receipt_number == "HZ01-K01-20250315-0001"


def test_two_kiosk_codes_count_independently(data_dir: Path, clock: FakeClock) -> None:
    with open_storage(data_dir, clock, kiosk="K01") as k01:
        assert k01.submit(submission(), []).receipt_number == "HZ01-K01-20250314-0001"
        assert k01.submit(submission(), []).receipt_number == "HZ01-K01-20250314-0002"
    with open_storage(data_dir, clock, kiosk="K02") as k02:
        assert k02.submit(submission(), []).receipt_number == "HZ01-K02-20250314-0001"
    with open_storage(data_dir, clock, kiosk="K01") as k01:
        assert k01.submit(submission(), []).receipt_number == "HZ01-K01-20250314-0003"


def test_numbers_are_never_reused_after_rows_are_deleted(storage: Storage, data_dir: Path) -> None:
    for _ in range(3):
        storage.submit(submission(), [("a", os.urandom(16))])
    with raw(data_dir) as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("DELETE FROM applications")
        assert conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0] == 0
    assert storage.submit(submission(), []).receipt_number == "HZ01-K01-20250314-0004"


def test_a_lost_counter_row_does_not_reissue_a_number(storage: Storage, data_dir: Path) -> None:
    storage.submit(submission(), [])
    storage.submit(submission(), [])
    with raw(data_dir) as conn:
        conn.execute("DELETE FROM receipt_counters")
    assert storage.submit(submission(), []).receipt_number == "HZ01-K01-20250314-0003"


@pytest.mark.parametrize("code", ["", "K-1", "K 1"])
def test_codes_that_would_make_numbers_ambiguous_are_refused(data_dir: Path, code: str) -> None:
    with pytest.raises(ValueError):
        Storage(data_dir, hall_code=HALL, kiosk_code=code)


# Durability -----------------------------------------------------------------------------------


def test_wal_and_synchronous_full_are_in_force(storage: Storage, data_dir: Path) -> None:
    # synchronous is per connection, so ask the storage's own connection.
    conn = storage._db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with raw(data_dir) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_pages_are_fsynced_and_renamed_before_the_row_is_committed(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append("rename")
        real_replace(src, dst)

    def statement(sql: str) -> None:
        if sql.split()[0] in ("BEGIN", "COMMIT"):
            events.append(sql.split()[0])

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    storage._db.conn.set_trace_callback(statement)
    storage.submit(submission(), [("a", b"new page one"), ("b", b"new page two")])
    storage._db.conn.set_trace_callback(None)

    renames = [i for i, event in enumerate(events) if event == "rename"]
    assert len(renames) == 3  # two pages and the sealed payload
    for i in renames:
        assert events[i - 1 : i + 2] == ["fsync file", "rename", "fsync dir"]
    assert events[renames[-1] + 1 :] == ["fsync dir", "BEGIN", "COMMIT"]


def test_a_failure_inside_the_transaction_leaves_nothing_half_written(
    data_dir: Path, clock: FakeClock
) -> None:
    with open_storage(data_dir, clock) as storage:
        kept = storage.submit(submission(), [("a", b"kept page")])
        # Fail on the last statement of the transaction: counter, application and pages
        # are already written inside it by then.
        with raw(data_dir) as conn:
            conn.execute(
                "CREATE TRIGGER fail_commit BEFORE INSERT ON status_log"
                " BEGIN SELECT RAISE(ABORT, 'simulated failure'); END"
            )
        doomed = submission()
        with pytest.raises(StorageError, match="could not save the application"):
            storage.submit(doomed, [("a", b"orphan page one"), ("b", b"orphan page two")])

        with pytest.raises(UnknownApplication):
            storage.get(doomed.id)
        assert [a.id for a in storage.list_applications()] == [kept.id]
        assert counter(data_dir) == 1
        # The files were written before the transaction: they are orphans now.
        assert len(attachment_files(data_dir)) == 5  # kept: page + payload; doomed: 2 + 1
        with raw(data_dir) as conn:
            conn.execute("DROP TRIGGER fail_commit")
            assert conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0] == 1
            assert conn.execute("SELECT COUNT(*) FROM status_log").fetchone()[0] == 1

    with open_storage(data_dir, clock) as storage:
        assert attachment_files(data_dir) == kept_files(storage, kept.id)
        assert storage.verify() == []
        assert storage.submit(submission(), []).receipt_number == "HZ01-K01-20250314-0002"


def test_a_process_killed_between_file_write_and_commit_loses_only_orphan_files(
    data_dir: Path, clock: FakeClock
) -> None:
    with open_storage(data_dir, clock) as storage:
        kept = storage.submit(submission(), [("a", b"kept page")])
    # The child dies (os._exit, no clean-up of any kind) inside the commit transaction,
    # after its page files were fsynced and renamed.
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from kiosk.application import Submission
        from kiosk.storage import Storage

        storage = Storage(Path({str(data_dir)!r}), hall_code="HZ01", kiosk_code="K01")
        conn = storage._db.conn
        conn.create_function("die", 0, lambda: os._exit(3))
        conn.execute(
            "CREATE TEMP TRIGGER die_mid_commit BEFORE INSERT ON main.status_log"
            " BEGIN SELECT die(); END"
        )
        storage.submit(
            Submission(thing_id="t", catalog_version="1", sealed_payload=b"s", summary={{}},
                       id_hash="h"),
            [("a", b"page written by the dying process")],
        )
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.run([sys.executable, "-c", script], env=env, timeout=60, check=False)
    assert child.returncode == 3
    assert len(attachment_files(data_dir)) == 4  # kept page and payload, and two orphans

    with open_storage(data_dir, clock) as storage:
        assert [a.id for a in storage.list_applications()] == [kept.id]
        assert attachment_files(data_dir) == kept_files(storage, kept.id)
        assert storage.verify() == []
    with raw(data_dir) as conn:
        assert conn.execute("SELECT SUM(last) FROM receipt_counters").fetchone()[0] == 1


def test_disk_full_while_writing_a_page_is_reported_and_loses_nothing(
    storage: Storage, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier = storage.submit(submission(), [("a", b"earlier page")])

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(StorageError, match="disk is full") as caught:
        storage.submit(submission(), [("a", b"a page that does not fit")])
    monkeypatch.undo()

    assert caught.value.reason == "the disk is full"
    assert [a.id for a in storage.list_applications()] == [earlier.id]
    assert storage.page_bytes(storage.get(earlier.id).pages[0]) == b"earlier page"
    assert counter(data_dir) == 1
    assert not [p for p in attachment_files(data_dir) if p.name.startswith(".tmp-")]
    assert storage.verify() == []


def test_disk_full_inside_sqlite_is_reported_and_rolled_back(
    storage: Storage, data_dir: Path
) -> None:
    earlier = storage.submit(submission(), [("a", b"earlier page")])
    conn = storage._db.conn
    pages_now = conn.execute("PRAGMA page_count").fetchone()[0]
    # A real SQLITE_FULL from SQLite itself: the database may not grow any more.
    conn.execute(f"PRAGMA max_page_count = {pages_now}")
    big = submission(summary={"blob": "x" * 200_000})
    with pytest.raises(StorageError, match="disk is full"):
        storage.submit(big, [])
    conn.execute("PRAGMA max_page_count = 1073741823")

    assert [a.id for a in storage.list_applications()] == [earlier.id]
    assert counter(data_dir) == 1
    assert storage.submit(submission(), []).receipt_number == "HZ01-K01-20250314-0002"


# Attachments ----------------------------------------------------------------------------------


def test_the_same_content_is_stored_once(storage: Storage, data_dir: Path) -> None:
    first = storage.submit(submission(), [("a", b"same"), ("b", b"same")])
    second = storage.submit(submission(), [("c", b"same")])
    payloads = {payload_hash(storage, app.id) for app in (first, second)}
    assert len(attachment_files(data_dir)) == 1 + len(payloads)
    assert {p.sha256 for p in first.pages + second.pages} | payloads == (
        storage.attachments.all_hashes()
    )
    assert storage.page_bytes(second.pages[0]) == b"same"


def test_a_corrupt_attachment_is_reported(storage: Storage) -> None:
    saved = storage.submit(submission(), [("a", b"original"), ("b", b"fine")])
    bad = saved.pages[0].sha256
    storage.attachments.path(bad).write_bytes(b"bit rot")

    problems = storage.verify()
    assert len(problems) == 1
    assert bad in problems[0] and "corrupt" in problems[0]
    with pytest.raises(StorageError, match="corrupt"):
        storage.page_bytes(saved.pages[0])
    assert storage.page_bytes(saved.pages[1]) == b"fine"


def test_a_corrupt_file_is_repaired_when_the_same_content_is_stored_again(
    storage: Storage,
) -> None:
    saved = storage.submit(submission(), [("a", b"original")])
    storage.attachments.path(saved.pages[0].sha256).write_bytes(b"bit rot")
    storage.submit(submission(), [("a", b"original")])
    assert storage.verify() == []


def test_a_missing_attachment_is_reported(storage: Storage) -> None:
    saved = storage.submit(submission(), [("a", b"will vanish")])
    storage.attachments.path(saved.pages[0].sha256).unlink()

    problems = storage.integrity_problems()
    assert [(p.kind, p.application_id) for p in problems] == [("missing", saved.id)]
    assert "missing" in storage.verify()[0]
    with pytest.raises(StorageError, match="missing"):
        storage.page_bytes(saved.pages[0])


def test_a_damaged_database_is_reported(storage: Storage, data_dir: Path) -> None:
    saved = storage.submit(submission(), [("a", b"page")])
    with raw(data_dir) as conn:
        # foreign_keys is off on this connection, as in a careless repair.
        conn.execute("DELETE FROM applications WHERE id = ?", [saved.id])
    assert any("pages row has no applications row" in p for p in storage.verify())


def test_attachment_store_garbage_collection(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path / "att")
    keep = store.put(b"keep")
    drop = store.put(b"drop")
    leftover = store.path(keep.sha256).parent / ".tmp-crashed"
    leftover.write_bytes(b"half written")

    assert store.collect_garbage({keep.sha256}) == 2
    assert store.all_hashes() == {keep.sha256}
    assert not leftover.exists()
    assert store.get(keep.sha256) == b"keep"
    with pytest.raises(StorageError):
        store.get(drop.sha256)
    store.remove(keep.sha256)
    assert store.all_hashes() == set()


def test_attachment_store_refuses_paths_that_are_not_hashes(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path / "att")
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


# Lifecycle ------------------------------------------------------------------------------------


def test_set_status_follows_the_lifecycle_and_keeps_a_history(storage: Storage) -> None:
    app = storage.submit(submission(), [])
    with pytest.raises(TransitionError):
        storage.set_status(app.id, Status.ACCEPTED)  # never without an upload
    assert storage.get(app.id).status is Status.QUEUED

    for status in (Status.UPLOADING, Status.ACCEPTED, Status.IN_PROGRESS, Status.COMPLETED):
        storage.set_status(app.id, status, note=f"to {status}")
    assert storage.get(app.id).status is Status.COMPLETED
    with pytest.raises(TransitionError):
        storage.set_status(app.id, Status.QUEUED)  # completed is final

    history = storage.status_history(app.id)
    assert [(old, new) for _, old, new, _ in history] == [
        (None, Status.QUEUED),
        (Status.QUEUED, Status.UPLOADING),
        (Status.UPLOADING, Status.ACCEPTED),
        (Status.ACCEPTED, Status.IN_PROGRESS),
        (Status.IN_PROGRESS, Status.COMPLETED),
    ]
    assert history[-1][3] == "to completed"
    with pytest.raises(UnknownApplication):
        storage.set_status("01NOSUCHAPPLICATION0000000", Status.UPLOADING)


def test_platform_number_is_recorded(storage: Storage, data_dir: Path, clock: FakeClock) -> None:
    app = storage.submit(submission(), [])
    storage.set_platform_number(app.id, "330100-2025-000123")
    with open_storage(data_dir, clock) as reopened:
        assert reopened.get(app.id).platform_number == "330100-2025-000123"
    with pytest.raises(UnknownApplication):
        storage.set_platform_number("01NOSUCHAPPLICATION0000000", "x")


def test_receipts_are_stored_for_reprint(storage: Storage) -> None:
    app = storage.submit(submission(), [])
    assert storage.receipt_document(app.id) is None
    document = {"title": "受理回执", "number": app.receipt_number, "lines": [["姓名", "张**"]]}
    storage.save_receipt(app.id, document)
    assert storage.receipt_document(app.id) == document
    assert storage.times_printed(app.id) == 0
    storage.mark_printed(app.id)
    storage.mark_printed(app.id)
    assert storage.times_printed(app.id) == 2
    storage.save_receipt(app.id, {**document, "title": "受理回执（补打）"})
    assert storage.receipt_document(app.id) == {**document, "title": "受理回执（补打）"}
    assert storage.times_printed(app.id) == 2
    with pytest.raises(UnknownApplication):
        storage.save_receipt("01NOSUCHAPPLICATION0000000", document)


# Migrations -----------------------------------------------------------------------------------


def schema(data_dir: Path) -> list[tuple[str, str]]:
    with raw(data_dir) as conn:
        return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()


def test_a_new_database_is_at_the_latest_version_and_reopening_changes_nothing(
    data_dir: Path, clock: FakeClock
) -> None:
    with open_storage(data_dir, clock) as storage:
        assert storage.schema_version == len(MIGRATIONS)
        storage.submit(submission(), [("a", b"page")])
    before = schema(data_dir)
    with open_storage(data_dir, clock) as storage:
        assert storage.schema_version == len(MIGRATIONS)
        assert len(storage.list_applications()) == 1
    assert schema(data_dir) == before


def test_a_version_1_database_is_upgraded_in_place(data_dir: Path, clock: FakeClock) -> None:
    data_dir.mkdir()
    with raw(data_dir) as conn:
        MIGRATIONS[0](sqlite_utils.Database(conn))
        conn.execute("PRAGMA user_version = 1")
        stamp = clock.now.isoformat()
        conn.execute(
            "INSERT INTO applications VALUES"
            " ('APP1', 't', '1', 'HZ01-K01-20250314-0001', 'queued', 'self', ?, '{}', '{}',"
            " 'h', NULL, ?)",
            [stamp, stamp],
        )
        conn.execute("INSERT INTO receipt_counters VALUES ('20250314', 'K01', 1)")
    assert "applications_created_at" not in {name for name, _ in schema(data_dir)}

    with open_storage(data_dir, clock) as storage:
        assert storage.schema_version == len(MIGRATIONS) == 4
        assert storage.get("APP1").receipt_number == "HZ01-K01-20250314-0001"
        assert storage.submit(submission(), []).receipt_number == "HZ01-K01-20250314-0002"
    assert "applications_created_at" in {name for name, _ in schema(data_dir)}


def test_a_database_from_newer_software_is_refused(data_dir: Path, clock: FakeClock) -> None:
    with open_storage(data_dir, clock):
        pass
    with raw(data_dir) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StorageError, match="newer than this software"):
        open_storage(data_dir, clock)


# Properties -----------------------------------------------------------------------------------

_step: st.SearchStrategy[tuple[str, list[bytes]]] = st.one_of(
    st.tuples(st.just("submit"), st.lists(st.binary(max_size=300), max_size=3)),
    st.tuples(st.just("reopen"), st.just([])),
    st.tuples(st.just("next_day"), st.just([])),
)


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(_step, min_size=1, max_size=12))
def test_any_sequence_of_submits_and_restarts_keeps_numbers_unique_and_pages_readable(
    steps: list[tuple[str, list[bytes]]],
) -> None:
    clock = FakeClock(dt.datetime(2025, 12, 31, 23, 0, tzinfo=dt.UTC))
    expected: dict[str, list[bytes]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        storage = open_storage(data_dir, clock)
        try:
            for action, page_data in steps:
                if action == "submit":
                    pages = [(f"m{i}", data) for i, data in enumerate(page_data)]
                    saved = storage.submit(submission(), pages)
                    expected[saved.id] = page_data
                elif action == "reopen":
                    storage.close()
                    storage = open_storage(data_dir, clock)
                else:
                    clock.next_day()

            stored = storage.list_applications()
            numbers = [a.receipt_number for a in stored]
            assert len(set(numbers)) == len(numbers) == len(expected)
            for app in stored:
                assert [storage.page_bytes(p) for p in app.pages] == expected[app.id]
            assert storage.verify() == []
        finally:
            storage.close()
