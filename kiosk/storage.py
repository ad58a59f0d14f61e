"""Durable local storage: applications, scanned pages, receipts and the receipt counter."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from kiosk.application import (
    TRANSITIONS,
    Page,
    Status,
    StoredApplication,
    Submission,
    TransitionError,
    check_transition,
    new_application_id,
)
from kiosk.crash import crashpoint
from kiosk.durable import fsync_dir as _fsync_dir
from kiosk.durable import make_dir as _make_dir
from kiosk.ports import Sealer
from kiosk.sqlite_utils_lean import sqlite_utils

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20
_DB_NAME = "kiosk.db"


class StorageError(RuntimeError):
    """Saving or reading failed (disk full, I/O error...); the message is for the technician."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class UnknownApplication(KeyError):
    """No application with this id is stored on the kiosk."""


class NotVoidable(TransitionError):
    """The application may have left the kiosk (an upload was begun), so it cannot be voided."""


@dataclass(frozen=True)
class IntegrityProblem:
    """One thing verify() found wrong; holds ids and hashes only, never personal data."""

    kind: Literal["database", "missing", "corrupt"]
    detail: str
    application_id: str | None = None
    sha256: str | None = None

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True)
class Blob:
    """An attachment as stored: its SHA-256 (also its file name) and its size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True)
class OutboxItem:
    """An application waiting to be delivered, with what the relay needs to send it."""

    id: str
    kiosk_seq: int
    thing_id: str
    catalog_version: str
    receipt_number: str
    channel: str
    created_at: dt.datetime
    status: Status  # QUEUED or UPLOADING
    payload_sha256: str  # the sealed payload, stored in the attachment store
    pages: tuple[Page, ...]  # the sealed pages
    attempts: int


@dataclass(frozen=True)
class StatusChange:
    """One entry of the platform's status feed (docs/sync-protocol.md, Status back)."""

    seq: int
    application_id: str
    status: str
    platform_number: str | None
    services: Mapping[str, str]
    note: str
    at: str


@dataclass(frozen=True)
class RatingItem:
    id: str
    application_id: str
    score: int
    created_at: dt.datetime
    attempts: int


PLATFORM_STATUS: dict[str, Status] = {
    "accepted": Status.ACCEPTED,
    "in_progress": Status.IN_PROGRESS,
    "completed": Status.COMPLETED,
    "rejected": Status.REJECTED,
    "needs_supplement": Status.NEEDS_SUPPLEMENT,
}
_PENDING = (Status.QUEUED.value, Status.UPLOADING.value)
_DELIVERED = tuple(status.value for status in PLATFORM_STATUS.values())


def failure_reason(exc: BaseException) -> str:
    """A plain-words reason for an OS or SQLite failure, safe to show a technician."""
    if isinstance(exc, OSError):
        code = exc.errno
        if code in (errno.ENOSPC, errno.EDQUOT):
            return "the disk is full"
        if code == errno.EROFS:
            return "the disk is read-only"
        if code == errno.EIO:
            return "the disk reported an I/O error"
        if code in (errno.EACCES, errno.EPERM):
            return "permission denied on the data directory"
        name = errno.errorcode.get(code, str(code)) if code is not None else "unknown"
        return f"file system error ({name})"
    if isinstance(exc, sqlite3.Error):
        # Extended result codes carry the primary code in the low byte.
        primary = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        plain = {
            sqlite3.SQLITE_FULL: "the disk is full",
            sqlite3.SQLITE_IOERR: "the disk reported an I/O error",
            sqlite3.SQLITE_READONLY: "the database is read-only",
            sqlite3.SQLITE_CORRUPT: "the database file is damaged",
            sqlite3.SQLITE_NOTADB: "the database file is damaged",
            sqlite3.SQLITE_BUSY: "the database is busy (locked by another process)",
            sqlite3.SQLITE_LOCKED: "the database is busy (locked by another process)",
            sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened",
        }
        if primary in plain:
            return plain[primary]
        name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
        return f"database error ({name})"
    return type(exc).__name__


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class AttachmentStore:
    """Content-addressed files `<dir>/<sha[:2]>/<sha>`, each written durably before use."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            _make_dir(self.directory)
        except OSError as exc:
            reason = failure_reason(exc)
            raise StorageError(f"cannot create the attachment directory: {reason}", reason) from exc

    def path(self, sha256: str) -> Path:
        """Where the file for `sha256` lives (it may not exist)."""
        if not _SHA256.fullmatch(sha256):
            # Also keeps a crafted "hash" from pointing outside the store.
            raise ValueError("not a lower-case hex SHA-256")
        return self.directory / sha256[:2] / sha256

    def put(self, data: bytes) -> Blob:
        """Store `data` durably (temp file, fsync, rename, directory fsync) and return its hash."""
        sha = hashlib.sha256(data).hexdigest()
        final = self.path(sha)
        try:
            if final.is_file() and _file_digest(final) == sha:
                # An earlier put may have failed after its rename but before its directory
                # fsync, so the name itself is not known to be durable yet.
                _fsync_dir(final.parent)
                return Blob(sha, len(data))
            # A corrupt file under this name is replaced below, which also repairs it.
            _make_dir(final.parent)
            fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=final.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    crashpoint("put.before-fsync")
                    os.fsync(f.fileno())
                crashpoint("put.after-fsync")
                os.replace(tmp_name, final)
                crashpoint("put.after-rename")
            except BaseException:
                # Give the space back now; a crash here is handled by collect_garbage().
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
                raise
            _fsync_dir(final.parent)
        except OSError as exc:
            reason = failure_reason(exc)
            raise StorageError(f"cannot save a scanned page: {reason}", reason) from exc
        return Blob(sha, len(data))

    def get(self, sha256: str) -> bytes:
        """The bytes stored under `sha256`; StorageError if missing or not matching the hash."""
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(f"attachment {sha256} is missing", "missing attachment") from exc
        except OSError as exc:
            reason = failure_reason(exc)
            raise StorageError(f"cannot read attachment {sha256}: {reason}", reason) from exc
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StorageError(f"attachment {sha256} is corrupt", "corrupt attachment")
        return data

    def check(self, sha256: str) -> Literal["ok", "missing", "corrupt"]:
        """Whether the file for `sha256` exists and hashes right, reading it in chunks."""
        try:
            return "ok" if _file_digest(self.path(sha256)) == sha256 else "corrupt"
        except FileNotFoundError:
            return "missing"

    def all_hashes(self) -> set[str]:
        """The hash of every complete file in the store (temp files excluded)."""
        return {path.name for path in self._files() if _SHA256.fullmatch(path.name)}

    def remove(self, sha256: str) -> None:
        """Delete the file for `sha256`, if present."""
        self.path(sha256).unlink(missing_ok=True)

    def collect_garbage(self, referenced: set[str], older_than_s: float = 0.0) -> int:
        """Delete every file not in `referenced` (and every temp file) last modified more than
        `older_than_s` ago; return how many. The age spares the files of a submission another
        process is saving right now (written before its row is committed)."""
        removed = 0
        cutoff = time.time() - older_than_s
        for path in self._files():
            if path.name.startswith(_TMP_PREFIX) or path.name not in referenced:
                try:
                    if older_than_s and path.stat().st_mtime > cutoff:
                        continue
                except FileNotFoundError:
                    continue
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _files(self) -> Iterator[Path]:
        for subdir in self.directory.iterdir():
            if len(subdir.name) != 2 or not subdir.is_dir():
                continue
            for path in subdir.iterdir():
                if path.is_file():
                    yield path


# Migrations -----------------------------------------------------------------------------------

Migration = Callable[[sqlite_utils.Database], None]


def _migration_1_initial(db: sqlite_utils.Database) -> None:
    for statement in (
        """CREATE TABLE applications (
            id TEXT PRIMARY KEY,
            thing_id TEXT NOT NULL,
            catalog_version TEXT NOT NULL,
            receipt_number TEXT UNIQUE NOT NULL,
            status TEXT NOT NULL,
            channel TEXT NOT NULL,
            created_at TEXT NOT NULL,
            payload TEXT NOT NULL,
            summary TEXT NOT NULL,
            id_hash TEXT NOT NULL,
            platform_number TEXT,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE pages (
            application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            material_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            PRIMARY KEY (application_id, seq)
        )""",
        """CREATE TABLE receipt_counters (
            day TEXT NOT NULL,
            kiosk TEXT NOT NULL,
            last INTEGER NOT NULL,
            PRIMARY KEY (day, kiosk)
        )""",
        """CREATE TABLE receipts (
            application_id TEXT PRIMARY KEY REFERENCES applications(id) ON DELETE CASCADE,
            document TEXT NOT NULL,
            printed INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE status_log (
            application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            old TEXT,
            new TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        )""",
    ):
        db.execute(statement)


def _migration_2_lookup_indexes(db: sqlite_utils.Database) -> None:
    # Staff list today's applications, the relay scans by status, progress look-up goes by
    # id_hash, orphan collection and verify() go by sha256.
    db.execute("CREATE INDEX applications_created_at ON applications(created_at)")
    db.execute("CREATE INDEX applications_status ON applications(status)")
    db.execute("CREATE INDEX applications_id_hash ON applications(id_hash)")
    db.execute("CREATE INDEX pages_sha256 ON pages(sha256)")
    db.execute("CREATE INDEX status_log_application ON status_log(application_id, at)")


def _migration_3_outbox(db: sqlite_utils.Database) -> None:
    # The applications table is the outbox (docs/sync-protocol.md): the to-send state is
    # written in the same transaction as the application itself.
    for column in (
        "payload_sha256 TEXT",  # the sealed payload in the attachment store
        "kiosk_seq INTEGER",  # this kiosk's running number, so the platform can see gaps
        "attempts INTEGER NOT NULL DEFAULT 0",
        "next_attempt_at REAL NOT NULL DEFAULT 0",  # Unix seconds
        "last_error TEXT NOT NULL DEFAULT ''",
        "quarantine_reason TEXT NOT NULL DEFAULT ''",
        "platform_receipt TEXT",  # {"receipt": ..., "signature": ...} as the platform signed it
        "accepted_at TEXT",
        "purged_at TEXT",  # sealed data deleted; the row is the tombstone
        "services TEXT NOT NULL DEFAULT '{}'",
        "remote_status TEXT",  # a feed status that arrived before our own receipt
    ):
        db.execute(f"ALTER TABLE applications ADD COLUMN {column}")
    db.execute("CREATE INDEX applications_due ON applications(status, next_attempt_at)")
    db.execute("CREATE TABLE sync_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE ratings (
            id TEXT PRIMARY KEY,
            application_id TEXT NOT NULL REFERENCES applications(id),
            score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
            created_at TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute("CREATE INDEX ratings_due ON ratings(state, next_attempt_at)")


def _migration_4_void(db: sqlite_utils.Database) -> None:
    # Staff may void an application that never left the kiosk (status 'voided'); its sealed
    # data is then purged after the same retention as a delivered one's.
    db.execute("ALTER TABLE applications ADD COLUMN voided_at TEXT")
    db.execute("ALTER TABLE applications ADD COLUMN void_reason TEXT NOT NULL DEFAULT ''")


# Append only: the position in this list is the schema version it produces.
MIGRATIONS: tuple[Migration, ...] = (
    _migration_1_initial,
    _migration_2_lookup_indexes,
    _migration_3_outbox,
    _migration_4_void,
)


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


def _check_code(kind: str, code: str) -> str:
    # The code is a dash-separated part of the receipt number, so a dash would make
    # two different kiosks able to produce the same number.
    if not code or "-" in code or any(c.isspace() for c in code):
        raise ValueError(f"{kind} must be non-empty without dashes or spaces")
    return code


class Storage:
    """The kiosk's SQLite database and attachment store under one data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        hall_code: str,
        kiosk_code: str,
        clock: Callable[[], dt.datetime] = _local_now,
        collect_orphans: bool = True,
        orphan_grace_s: float = 3600.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.hall_code = _check_code("hall_code", hall_code)
        self.kiosk_code = _check_code("kiosk_code", kiosk_code)
        self._clock = clock
        # The outbox relay and the UI share one instance from different threads.
        self._lock = threading.RLock()
        try:
            _make_dir(self.data_dir)
        except OSError as exc:
            reason = failure_reason(exc)
            raise StorageError(f"cannot create the data directory: {reason}", reason) from exc
        self.attachments = AttachmentStore(self.data_dir / "attachments")
        self._db = self._open(self.data_dir / _DB_NAME)
        # The relay's own connection may use NORMAL: everything it writes (uploading, a
        # receipt, a feed page) is redone identically if a power cut takes it back, and WAL
        # keeps NORMAL safe from process crashes. Submissions and purges are always FULL.
        self._synchronous = synchronous
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        try:
            self._migrate()
            removed = self._collect_orphans(orphan_grace_s) if collect_orphans else 0
        except BaseException:
            self._db.close()
            raise
        log.info("storage opened; removed %d orphan attachment file(s)", removed)

    # Opening ----------------------------------------------------------------------------------

    @staticmethod
    def _open(path: Path) -> sqlite_utils.Database:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(path, timeout=10.0, check_same_thread=False)
            db = sqlite_utils.Database(conn)
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("SQLite refused WAL mode (journal_mode=%s)", mode)
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            # Purged rows and pages are overwritten, not just unlinked from the b-tree.
            db.execute("PRAGMA secure_delete=ON")
        except (OSError, sqlite3.Error) as exc:
            if conn is not None:
                conn.close()
            reason = failure_reason(exc)
            raise StorageError(f"cannot open the local database: {reason}", reason) from exc
        return db

    def _migrate(self) -> None:
        latest = len(MIGRATIONS)
        while True:
            with self._write("cannot upgrade the local database") as db:
                # Read inside the write lock so two processes starting together don't both
                # run the same migration.
                version = int(db.execute("PRAGMA user_version").fetchone()[0])
                if version > latest:
                    raise StorageError(
                        f"the database is schema version {version}, newer than this "
                        f"software ({latest}); update the kiosk software",
                        "database from newer software",
                    )
                if version == latest:
                    return
                MIGRATIONS[version](db)
                db.execute(f"PRAGMA user_version = {version + 1:d}")
            log.info("database migrated to schema version %d", version + 1)

    def _referenced(self) -> set[str]:
        """Every attachment a live (not purged) application needs."""
        rows = self._read(
            "SELECT p.sha256 FROM pages p JOIN applications a ON a.id = p.application_id"
            " WHERE a.purged_at IS NULL"
            " UNION SELECT payload_sha256 FROM applications"
            " WHERE purged_at IS NULL AND payload_sha256 IS NOT NULL"
        )
        return {row[0] for row in rows}

    def _collect_orphans(self, grace_s: float) -> int:
        referenced = self._referenced()
        try:
            return self.attachments.collect_garbage(referenced, grace_s)
        except OSError as exc:
            # Orphans only waste space; not a reason to keep the kiosk from starting.
            log.warning("could not collect orphan attachments: %s", failure_reason(exc))
            return 0

    @property
    def schema_version(self) -> int:
        """The schema version of the open database (PRAGMA user_version)."""
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sqlite_utils.Database]:
        """One IMMEDIATE transaction; OS and SQLite failures become StorageError(what: reason)."""
        with self._lock:
            db = self._db
            try:
                # IMMEDIATE takes the write lock up front, so the counter read and its
                # increment cannot interleave with another writer.
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    # A failing ROLLBACK must not hide the error that caused it.
                    with contextlib.suppress(sqlite3.Error):
                        if db.conn.in_transaction:
                            db.execute("ROLLBACK")
                    raise
            except (OSError, sqlite3.Error) as exc:
                reason = failure_reason(exc)
                raise StorageError(f"{what}: {reason}", reason) from exc

    @contextlib.contextmanager
    def _full_sync(self) -> Iterator[None]:
        """Make the transactions inside durable against power loss on any connection: files
        are deleted or trusted because of them."""
        with self._lock:
            relaxed = self._synchronous != "FULL"
            if relaxed:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                yield
            finally:
                if relaxed:
                    self._db.execute(f"PRAGMA synchronous={self._synchronous}")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._db.execute(sql, list(params)).fetchall())
            except sqlite3.Error as exc:
                reason = failure_reason(exc)
                raise StorageError(f"cannot read the local database: {reason}", reason) from exc

    # Applications -----------------------------------------------------------------------------

    def submit(
        self, submission: Submission, pages: Sequence[tuple[str, bytes]]
    ) -> StoredApplication:
        """Durably save an application and its (sealed) pages, allocating its receipt number.

        Pages and the sealed payload first (each fsynced and renamed to its hash), then one
        transaction for the counter, the rows, the outbox state and the history: a crash in
        between leaves only orphan files, which a later start-up removes. Submitting the same
        id again returns the stored one.
        """
        # Serialise before touching the disk so that a bad summary leaves no orphan files.
        summary_json = json.dumps(dict(submission.summary), ensure_ascii=False, sort_keys=True)
        stored_pages: list[Page] = []
        for material_id, data in pages:
            blob = self.attachments.put(data)  # raises StorageError with the reason
            stored_pages.append(Page(material_id, blob.sha256, blob.size))
        payload = self.attachments.put(submission.sealed_payload)
        crashpoint("submit.files-written")

        now = self._clock()
        day = now.strftime("%Y%m%d")
        stamp = now.isoformat()
        number: str | None = None
        with self._full_sync(), self._write("could not save the application") as db:
            # A second tap on "submit" must not make a second application.
            if not db.execute(
                "SELECT 1 FROM applications WHERE id = ?", [submission.id]
            ).fetchone():
                number = self._next_receipt_number(db, day)
                seq = db.execute("SELECT COALESCE(MAX(kiosk_seq), 0) + 1 FROM applications")
                db.execute(
                    """INSERT INTO applications (id, thing_id, catalog_version, receipt_number,
                        status, channel, created_at, payload, summary, id_hash, platform_number,
                        updated_at, payload_sha256, kiosk_seq)
                        VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, NULL, ?, ?, ?)""",
                    [
                        submission.id,
                        submission.thing_id,
                        submission.catalog_version,
                        number,
                        Status.QUEUED.value,
                        submission.channel,
                        stamp,
                        summary_json,
                        submission.id_hash,
                        stamp,
                        payload.sha256,
                        int(seq.fetchone()[0]),
                    ],
                )
                for page_seq, page in enumerate(stored_pages, start=1):
                    db.execute(
                        "INSERT INTO pages (application_id, seq, material_id, sha256, size)"
                        " VALUES (?, ?, ?, ?, ?)",
                        [submission.id, page_seq, page.material_id, page.sha256, page.size],
                    )
                db.execute(
                    "INSERT INTO status_log (application_id, at, old, new, note)"
                    " VALUES (?, ?, NULL, ?, ?)",
                    [submission.id, stamp, Status.QUEUED.value, "saved on the kiosk"],
                )
                crashpoint("submit.before-commit")
        crashpoint("submit.after-commit")
        if number is None:
            log.info("application %s was already saved; not saved again", submission.id)
        else:
            log.info(
                "application %s saved as %s with %d page(s)",
                submission.id,
                number,
                len(stored_pages),
            )
        return self.get(submission.id)

    def _next_receipt_number(self, db: sqlite_utils.Database, day: str) -> str:
        prefix = f"{self.hall_code}-{self.kiosk_code}-{day}-"
        row = db.execute(
            "SELECT last FROM receipt_counters WHERE day = ? AND kiosk = ?",
            [day, self.kiosk_code],
        ).fetchone()
        last = int(row[0]) if row else 0
        # Should the counter row ever be lost (a restored backup), never hand out a number
        # that an existing application already carries.
        used = db.execute(
            "SELECT MAX(CAST(substr(receipt_number, ?) AS INTEGER)) FROM applications"
            " WHERE receipt_number >= ? AND receipt_number < ?",
            [len(prefix) + 1, prefix, prefix[:-1] + "."],
        ).fetchone()[0]
        seq = max(last, int(used or 0)) + 1
        db.execute(
            "INSERT INTO receipt_counters (day, kiosk, last) VALUES (?, ?, ?)"
            " ON CONFLICT(day, kiosk) DO UPDATE SET last = excluded.last",
            [day, self.kiosk_code, seq],
        )
        return f"{prefix}{seq:04d}"

    _COLUMNS = (
        "id, thing_id, catalog_version, receipt_number, status, channel, created_at,"
        " summary, platform_number, services, purged_at"
    )

    def get(self, application_id: str) -> StoredApplication:
        """The stored application (without its payload); UnknownApplication if absent."""
        rows = self._read(
            f"SELECT {self._COLUMNS} FROM applications WHERE id = ?", [application_id]
        )
        if not rows:
            raise UnknownApplication(application_id)
        return self._build(rows, self._pages_of([application_id]))[0]

    def sealed_payload(self, application_id: str) -> bytes:
        """The sealed payload as saved (only the platform can open it), checked against its hash.

        StorageError once it has been purged."""
        rows = self._read(
            "SELECT payload_sha256, purged_at FROM applications WHERE id = ?", [application_id]
        )
        if not rows:
            raise UnknownApplication(application_id)
        sha, purged_at = rows[0]
        if sha is None or purged_at is not None:
            raise StorageError(f"application {application_id} has no sealed payload", "purged")
        return self.attachments.get(sha)

    def page_bytes(self, page: Page) -> bytes:
        """The scanned bytes of `page`, checked against its hash."""
        return self.attachments.get(page.sha256)

    def list_applications(self, day: dt.date | None = None) -> list[StoredApplication]:
        """Applications in the order they were saved, optionally only those saved on `day`."""
        if day is None:
            rows = self._read(
                f"SELECT {self._COLUMNS} FROM applications ORDER BY created_at, rowid"
            )
        else:
            # created_at is local ISO time, so a plain string range selects a local day.
            rows = self._read(
                f"SELECT {self._COLUMNS} FROM applications"
                " WHERE created_at >= ? AND created_at < ? ORDER BY created_at, rowid",
                [day.isoformat(), (day + dt.timedelta(days=1)).isoformat()],
            )
        return self._build(rows, self._pages_of([row[0] for row in rows]))

    def _pages_of(self, application_ids: list[str]) -> dict[str, list[Page]]:
        pages: dict[str, list[Page]] = {app_id: [] for app_id in application_ids}
        if not application_ids:
            return pages
        rows: list[tuple[Any, ...]] = []
        # Stay well below SQLite's limit on bound parameters.
        for start in range(0, len(application_ids), 500):
            chunk = application_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows += self._read(
                "SELECT application_id, material_id, sha256, size FROM pages"
                f" WHERE application_id IN ({marks}) ORDER BY application_id, seq",
                chunk,
            )
        for app_id, material_id, sha, size in rows:
            pages[app_id].append(Page(material_id, sha, int(size)))
        return pages

    @staticmethod
    def _build(
        rows: list[tuple[Any, ...]], pages: dict[str, list[Page]]
    ) -> list[StoredApplication]:
        return [
            StoredApplication(
                id=app_id,
                thing_id=thing_id,
                catalog_version=catalog_version,
                receipt_number=receipt_number,
                status=Status(status),
                channel=channel,
                created_at=dt.datetime.fromisoformat(created_at),
                summary=json.loads(summary),
                pages=tuple(pages.get(app_id, ())),
                platform_number=platform_number,
                services=json.loads(services),
                purged=purged_at is not None,
            )
            for (
                app_id,
                thing_id,
                catalog_version,
                receipt_number,
                status,
                channel,
                created_at,
                summary,
                platform_number,
                services,
                purged_at,
            ) in rows
        ]

    def set_status(self, application_id: str, new: Status, note: str = "") -> None:
        """Move the application along its lifecycle (TransitionError if not allowed)."""
        with self._write("could not record the status change") as db:
            old = self._status_of(db, application_id)
            check_transition(old, new)  # staying put is refused here too
            self._move(db, application_id, new, note, self._clock().isoformat())
        log.info("application %s: %s -> %s", application_id, old.value, new.value)

    def status_history(
        self, application_id: str
    ) -> list[tuple[dt.datetime, Status | None, Status, str]]:
        """(at, old, new, note) for every status change, oldest first."""
        rows = self._read(
            "SELECT at, old, new, note FROM status_log WHERE application_id = ? ORDER BY rowid",
            [application_id],
        )
        return [
            (dt.datetime.fromisoformat(at), Status(old) if old else None, Status(new), note)
            for at, old, new, note in rows
        ]

    def set_platform_number(self, application_id: str, platform_number: str) -> None:
        """Record the platform's case number (办件编号) once the platform has accepted it."""
        stamp = self._clock().isoformat()
        with self._write("could not record the platform number") as db:
            cursor = db.execute(
                "UPDATE applications SET platform_number = ?, updated_at = ? WHERE id = ?",
                [platform_number, stamp, application_id],
            )
            if cursor.rowcount == 0:
                raise UnknownApplication(application_id)

    def applications_for(self, id_hash: str) -> list[StoredApplication]:
        """The applications of one person (by keyed ID hash), newest first: progress look-up."""
        rows = self._read(
            f"SELECT {self._COLUMNS} FROM applications WHERE id_hash = ?"
            " ORDER BY created_at DESC, rowid DESC",
            [id_hash],
        )
        return self._build(rows, self._pages_of([row[0] for row in rows]))

    # Outbox -----------------------------------------------------------------------------------

    def outbox(self, now: float | None, limit: int = 20) -> list[OutboxItem]:
        """Applications due for delivery (all pending ones when `now` is None), oldest first."""
        rows = self._read(
            "SELECT id, kiosk_seq, thing_id, catalog_version, receipt_number, channel,"
            " created_at, status, payload_sha256, attempts FROM applications"
            " WHERE status IN (?, ?) AND payload_sha256 IS NOT NULL"
            " AND (? IS NULL OR next_attempt_at <= ?)"
            " ORDER BY created_at, rowid LIMIT ?",
            [*_PENDING, now, now, limit],
        )
        pages = self._pages_of([row[0] for row in rows])
        return [
            OutboxItem(
                id=app_id,
                kiosk_seq=int(seq or 0),
                thing_id=thing_id,
                catalog_version=catalog_version,
                receipt_number=receipt_number,
                channel=channel,
                created_at=dt.datetime.fromisoformat(created_at),
                status=Status(status),
                payload_sha256=payload_sha256,
                pages=tuple(pages[app_id]),
                attempts=int(attempts),
            )
            for (
                app_id,
                seq,
                thing_id,
                catalog_version,
                receipt_number,
                channel,
                created_at,
                status,
                payload_sha256,
                attempts,
            ) in rows
        ]

    def next_due_at(self) -> float | None:
        """The earliest next attempt (Unix seconds) among pending applications and ratings."""
        rows = self._read(
            "SELECT MIN(t) FROM (SELECT MIN(next_attempt_at) AS t FROM applications"
            " WHERE status IN (?, ?) AND payload_sha256 IS NOT NULL"
            " UNION ALL SELECT MIN(next_attempt_at) FROM ratings WHERE state = 'queued')",
            list(_PENDING),
        )
        return None if rows[0][0] is None else float(rows[0][0])

    def _move(
        self, db: sqlite_utils.Database, application_id: str, new: Status, note: str, stamp: str
    ) -> Status:
        current = self._status_of(db, application_id)
        old = current
        if old is new:
            return old
        check_transition(old, new)
        db.execute(
            "UPDATE applications SET status = ?, updated_at = ? WHERE id = ?",
            [new.value, stamp, application_id],
        )
        db.execute(
            "INSERT INTO status_log (application_id, at, old, new, note) VALUES (?, ?, ?, ?, ?)",
            [application_id, stamp, old.value, new.value, note],
        )
        return old

    @staticmethod
    def _status_of(db: sqlite_utils.Database, application_id: str) -> Status:
        """The application's status inside a transaction; UnknownApplication if absent."""
        row = db.execute(
            "SELECT status FROM applications WHERE id = ?", [application_id]
        ).fetchone()
        if row is None:
            raise UnknownApplication(application_id)
        return Status(row[0])

    def begin_upload(self, application_id: str) -> None:
        """The relay starts delivering it (QUEUED → UPLOADING; already UPLOADING is fine)."""
        with self._write("could not record the upload") as db:
            self._move(db, application_id, Status.UPLOADING, "", self._clock().isoformat())

    def upload_failed(self, application_id: str, retry_at: float, error: str) -> None:
        """A transient failure: back to the queue, to be tried again at `retry_at`."""
        stamp = self._clock().isoformat()
        with self._write("could not record the failed upload") as db:
            current = self._status_of(db, application_id)
            if current is Status.UPLOADING:
                self._move(db, application_id, Status.QUEUED, "", stamp)
            db.execute(
                "UPDATE applications SET attempts = attempts + 1, next_attempt_at = ?,"
                " last_error = ? WHERE id = ?",
                [retry_at, error[:500], application_id],
            )

    def mark_accepted(
        self, application_id: str, receipt: Mapping[str, Any], signature: str
    ) -> None:
        """The platform's signed receipt arrived (the caller checked it): delivered."""
        stamp = self._clock().isoformat()
        document = json.dumps(
            {"receipt": dict(receipt), "signature": signature}, ensure_ascii=False, sort_keys=True
        )
        with self._write("could not record the platform's receipt") as db:
            row = db.execute(
                "SELECT status, remote_status FROM applications WHERE id = ?", [application_id]
            ).fetchone()
            if row is None:
                raise UnknownApplication(application_id)
            if Status(row[0]).value in _DELIVERED:
                return  # a replayed commit: the first receipt stands
            if Status(row[0]) is Status.QUEUED:
                # A receipt for an attempt that a failure had already put back in the queue.
                self._move(db, application_id, Status.UPLOADING, "", stamp)
            self._move(db, application_id, Status.ACCEPTED, "the platform's receipt", stamp)
            db.execute(
                "UPDATE applications SET platform_number = ?, platform_receipt = ?,"
                " accepted_at = ?, last_error = '', remote_status = NULL WHERE id = ?",
                [str(receipt["platform_number"]), document, stamp, application_id],
            )
            remote = PLATFORM_STATUS.get(row[1] or "")
            if remote is not None and remote in TRANSITIONS[Status.ACCEPTED]:
                self._move(db, application_id, remote, "from the platform", stamp)
        log.info("application %s accepted as %s", application_id, receipt["platform_number"])

    def platform_receipt(self, application_id: str) -> dict[str, Any] | None:
        """{"receipt", "signature"} as the platform signed them, once accepted."""
        rows = self._read(
            "SELECT platform_receipt FROM applications WHERE id = ?", [application_id]
        )
        if not rows:
            raise UnknownApplication(application_id)
        return None if rows[0][0] is None else dict(json.loads(rows[0][0]))

    def quarantine(self, application_id: str, reason: str) -> None:
        """The platform refused it (409/422): set aside for staff, never deleted."""
        stamp = self._clock().isoformat()
        with self._write("could not set the application aside") as db:
            self._move(db, application_id, Status.QUARANTINED, reason[:500], stamp)
            db.execute(
                "UPDATE applications SET quarantine_reason = ? WHERE id = ?",
                [reason[:500], application_id],
            )
        log.warning("application %s set aside: %s", application_id, reason)

    def quarantine_reason(self, application_id: str) -> str:
        rows = self._read(
            "SELECT quarantine_reason FROM applications WHERE id = ?", [application_id]
        )
        if not rows:
            raise UnknownApplication(application_id)
        return str(rows[0][0])

    def requeue(self, application_id: str, note: str) -> None:
        """Staff send a set-aside application again (QUARANTINED → QUEUED), now."""
        stamp = self._clock().isoformat()
        with self._write("could not queue the application again") as db:
            current = self._status_of(db, application_id)
            if current is not Status.QUARANTINED:
                raise TransitionError(f"{current} → queued: only a set-aside one is re-queued")
            self._move(db, application_id, Status.QUEUED, note, stamp)
            db.execute(
                "UPDATE applications SET attempts = 0, next_attempt_at = 0,"
                " quarantine_reason = '' WHERE id = ?",
                [application_id],
            )

    def set_aside(self, application_id: str, reason: str) -> None:
        """Staff hold back a queued application (QUEUED → QUARANTINED) with their reason.

        Refused (TransitionError) while the relay is sending it: checked and changed in one
        transaction, so a delivery that has begun is never turned into a set-aside one."""
        stamp = self._clock().isoformat()
        with self._write("could not set the application aside") as db:
            current = self._status_of(db, application_id)
            if current is not Status.QUEUED:
                raise TransitionError(f"{current} → quarantined: only a queued one is set aside")
            self._move(db, application_id, Status.QUARANTINED, reason[:500], stamp)
            db.execute(
                "UPDATE applications SET quarantine_reason = ? WHERE id = ?",
                [reason[:500], application_id],
            )
        log.info("application %s set aside by staff", application_id)

    def void(self, application_id: str, reason: str) -> None:
        """Staff cancel an application that never left the kiosk (QUEUED → VOIDED).

        NotVoidable once an upload of it was ever begun: a PUT or even a commit may have
        reached the platform before a failure sent it back to the queue. The relay never
        picks a voided one (outbox() takes only pending ones, and begin_upload() refuses it),
        and purge_accepted() deletes its sealed data after the usual retention."""
        stamp = self._clock().isoformat()
        with self._full_sync(), self._write("could not void the application") as db:
            current = self._status_of(db, application_id)
            tried = db.execute(
                "SELECT attempts FROM applications WHERE id = ?", [application_id]
            ).fetchone()[0]
            began = db.execute(
                "SELECT 1 FROM status_log WHERE application_id = ? AND new = ?",
                [application_id, Status.UPLOADING.value],
            ).fetchone()
            if current is not Status.QUEUED or tried or began:
                raise NotVoidable(
                    f"application {application_id} ({current}) may have left the kiosk;"
                    " only one never sent can be voided"
                )
            self._move(db, application_id, Status.VOIDED, reason[:500], stamp)
            db.execute(
                "UPDATE applications SET voided_at = ?, void_reason = ? WHERE id = ?",
                [stamp, reason[:500], application_id],
            )
        log.info("application %s voided by staff", application_id)

    def void_reason(self, application_id: str) -> str:
        rows = self._read("SELECT void_reason FROM applications WHERE id = ?", [application_id])
        if not rows:
            raise UnknownApplication(application_id)
        return str(rows[0][0])

    def delivery_state(self, application_id: str) -> tuple[int, str]:
        """(attempts, last error) of its delivery, for staff."""
        rows = self._read(
            "SELECT attempts, last_error FROM applications WHERE id = ?", [application_id]
        )
        if not rows:
            raise UnknownApplication(application_id)
        return int(rows[0][0]), str(rows[0][1])

    # Upgrading applications saved before sealing existed ------------------------------------

    def legacy_unsealed(self) -> list[str]:
        """Applications saved by software older than schema 3: plaintext payload and scans."""
        rows = self._read(
            "SELECT id FROM applications WHERE payload_sha256 IS NULL AND payload != ''"
            " ORDER BY created_at, rowid"
        )
        return [row[0] for row in rows]

    def seal_legacy(self, application_id: str, sealer: Sealer) -> None:
        """Seal an older application in place (its scans, then its payload), so that it can be
        delivered and its plaintext is gone. Safe to repeat after a crash: until the final
        transaction, the plaintext rows still stand and the new files are orphans."""
        rows = self._read(
            "SELECT thing_id, catalog_version, channel, payload FROM applications"
            " WHERE id = ? AND payload_sha256 IS NULL",
            [application_id],
        )
        if not rows:
            return
        thing_id, catalog_version, channel, payload_json = rows[0]
        legacy: dict[str, Any] = json.loads(payload_json)
        old_pages = self._pages_of([application_id])[application_id]
        new_pages: list[Page] = []
        for page in old_pages:
            sealed = sealer.seal_page(application_id, self.attachments.get(page.sha256))
            blob = self.attachments.put(sealed)
            new_pages.append(Page(page.material_id, blob.sha256, blob.size))
        document = {
            **legacy,
            "application_id": application_id,
            "thing_id": thing_id,
            "catalog_version": catalog_version,
            "channel": channel,
            "pages": [
                {"material_id": p.material_id, "sha256": p.sha256, "size": p.size}
                for p in new_pages
            ],
        }
        plaintext = json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
        payload = self.attachments.put(sealer.seal_payload(application_id, plaintext))
        with self._write("could not seal an older application") as db:
            seq = db.execute("SELECT COALESCE(MAX(kiosk_seq), 0) + 1 FROM applications")
            db.execute(
                "UPDATE applications SET payload = '', payload_sha256 = ?,"
                " kiosk_seq = COALESCE(kiosk_seq, ?) WHERE id = ?",
                [payload.sha256, int(seq.fetchone()[0]), application_id],
            )
            db.execute("DELETE FROM pages WHERE application_id = ?", [application_id])
            for page_seq, page in enumerate(new_pages, start=1):
                db.execute(
                    "INSERT INTO pages (application_id, seq, material_id, sha256, size)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [application_id, page_seq, page.material_id, page.sha256, page.size],
                )
        live = self._referenced()
        for page in old_pages:
            if page.sha256 not in live:
                self.attachments.remove(page.sha256)
        log.info("older application %s sealed (%d page(s))", application_id, len(new_pages))

    # Status feed and sync metadata ------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM sync_meta WHERE key = ?", [key])
        return None if not rows else str(rows[0][0])

    def set_meta(self, key: str, value: str) -> None:
        with self._write("could not save sync state") as db:
            self._put_meta(db, key, value)

    @staticmethod
    def _put_meta(db: sqlite_utils.Database, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO sync_meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    def status_cursor(self) -> int:
        value = self.get_meta("status_cursor")
        return int(value) if value else 0

    def reset_status_cursor(self) -> None:
        self.set_meta("status_cursor", "0")

    def apply_status_changes(self, changes: Sequence[StatusChange], next_cursor: int) -> int:
        """Record a page of the status feed and the new cursor in one transaction.

        Changes are idempotent: a repeated or stale one changes nothing. A change for an
        application whose own receipt has not arrived yet is remembered and applied when it
        does. Returns how many applications changed."""
        stamp = self._clock().isoformat()
        applied = 0
        with self._write("could not record status changes") as db:
            for change in changes:
                new = PLATFORM_STATUS.get(change.status)
                row = db.execute(
                    "SELECT status, services FROM applications WHERE id = ?",
                    [change.application_id],
                ).fetchone()
                if row is None or new is None:
                    log.warning(
                        "status feed entry %d ignored (%s)",
                        change.seq,
                        "unknown application" if row is None else f"status {change.status!r}",
                    )
                    continue
                current = Status(row[0])
                services = {**json.loads(row[1]), **dict(change.services)}
                if current.value not in _DELIVERED:
                    db.execute(
                        "UPDATE applications SET remote_status = ?, services = ? WHERE id = ?",
                        [
                            change.status,
                            json.dumps(services, sort_keys=True),
                            change.application_id,
                        ],
                    )
                    continue
                db.execute(
                    "UPDATE applications SET services = ?,"
                    " platform_number = COALESCE(?, platform_number) WHERE id = ?",
                    [
                        json.dumps(services, sort_keys=True),
                        change.platform_number,
                        change.application_id,
                    ],
                )
                if new is not current and new in TRANSITIONS[current]:
                    self._move(db, change.application_id, new, change.note[:500], stamp)
                    applied += 1
                elif new is not current:
                    log.warning(
                        "status feed entry %d: %s → %s not allowed; ignored",
                        change.seq,
                        current.value,
                        new.value,
                    )
            self._put_meta(db, "status_cursor", str(int(next_cursor)))
        crashpoint("status.after-commit")
        return applied

    # Purge ------------------------------------------------------------------------------------

    def purge_accepted(self, before: dt.datetime) -> int:
        """Delete the sealed payload and scans of applications the platform acknowledged
        before `before`, and of those staff voided before then; the row stays as a tombstone
        (ids, hashes, receipt, status)."""
        rows = self._read(
            "SELECT id FROM applications WHERE purged_at IS NULL AND ("
            "(accepted_at IS NOT NULL AND accepted_at < ?)"
            " OR (status = ? AND voided_at IS NOT NULL AND voided_at < ?))",
            [before.isoformat(), Status.VOIDED.value, before.isoformat()],
        )
        ids = [row[0] for row in rows]
        if not ids:
            return 0
        stamp = self._clock().isoformat()
        with self._full_sync(), self._write("could not purge delivered applications") as db:
            for app_id in ids:
                db.execute(
                    "UPDATE applications SET purged_at = ?, payload = '' WHERE id = ?",
                    [stamp, app_id],
                )
        crashpoint("purge.after-commit")
        # Files go only after the tombstones are committed; a crash in between leaves
        # unreferenced files that the next start-up removes.
        live = self._referenced()
        removed = 0
        for app_id in ids:
            payload = self._read("SELECT payload_sha256 FROM applications WHERE id = ?", [app_id])
            hashes = {page.sha256 for page in self._pages_of([app_id])[app_id]}
            if payload and payload[0][0]:
                hashes.add(payload[0][0])
            for sha in hashes - live:
                try:
                    self.attachments.remove(sha)
                    removed += 1
                except OSError as exc:
                    log.warning("could not delete purged file %s: %s", sha, failure_reason(exc))
                crashpoint("purge.mid-delete")
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log.info("purged %d delivered application(s), %d file(s)", len(ids), removed)
        return len(ids)

    # Counts -----------------------------------------------------------------------------------

    def sync_counts(self) -> dict[str, int]:
        """{"pending", "accepted", "quarantined"}: accepted counts every delivered one."""
        rows = self._read("SELECT status, COUNT(*) FROM applications GROUP BY status")
        by_status = {status: int(n) for status, n in rows}
        return {
            "pending": sum(by_status.get(s, 0) for s in _PENDING),
            "accepted": sum(by_status.get(s, 0) for s in _DELIVERED),
            "quarantined": by_status.get(Status.QUARANTINED.value, 0),
        }

    def oldest_pending(self) -> dt.datetime | None:
        rows = self._read(
            "SELECT MIN(created_at) FROM applications WHERE status IN (?, ?)", list(_PENDING)
        )
        return None if rows[0][0] is None else dt.datetime.fromisoformat(rows[0][0])

    # Ratings (好差评) -------------------------------------------------------------------------

    def add_rating(self, application_id: str, score: int) -> str:
        """Queue the applicant's 1–5 rating of an application; returns the rating's id."""
        if not 1 <= int(score) <= 5:
            raise ValueError("a rating is 1 to 5")
        rating_id = new_application_id()
        stamp = self._clock().isoformat()
        with self._write("could not save the rating") as db:
            if not db.execute(
                "SELECT 1 FROM applications WHERE id = ?", [application_id]
            ).fetchone():
                raise UnknownApplication(application_id)
            db.execute(
                "INSERT INTO ratings (id, application_id, score, created_at) VALUES (?, ?, ?, ?)",
                [rating_id, application_id, int(score), stamp],
            )
        return rating_id

    def ratings_due(self, now: float | None, limit: int = 50) -> list[RatingItem]:
        rows = self._read(
            "SELECT id, application_id, score, created_at, attempts FROM ratings"
            " WHERE state = 'queued' AND (? IS NULL OR next_attempt_at <= ?)"
            " ORDER BY created_at, rowid LIMIT ?",
            [now, now, limit],
        )
        return [
            RatingItem(r_id, app_id, int(score), dt.datetime.fromisoformat(at), int(attempts))
            for r_id, app_id, score, at, attempts in rows
        ]

    def rating_sent(self, rating_id: str) -> None:
        self._rating_update(rating_id, "UPDATE ratings SET state = 'sent' WHERE id = ?", [])

    def rating_failed(self, rating_id: str, retry_at: float, error: str) -> None:
        self._rating_update(
            rating_id,
            "UPDATE ratings SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE id = ?",
            [retry_at, error[:500]],
        )

    def rating_quarantined(self, rating_id: str, reason: str) -> None:
        self._rating_update(
            rating_id,
            "UPDATE ratings SET state = 'quarantined', reason = ? WHERE id = ?",
            [reason[:500]],
        )

    def _rating_update(self, rating_id: str, sql: str, params: list[Any]) -> None:
        with self._write("could not record the rating's delivery") as db:
            if db.execute(sql, [*params, rating_id]).rowcount == 0:
                raise UnknownApplication(rating_id)

    def rating_counts(self) -> dict[str, int]:
        rows = self._read("SELECT state, COUNT(*) FROM ratings GROUP BY state")
        return {state: int(n) for state, n in rows}

    # Receipts ---------------------------------------------------------------------------------

    def save_receipt(self, application_id: str, document: Mapping[str, Any]) -> None:
        """Store the receipt document for reprint, replacing an earlier one."""
        body = json.dumps(dict(document), ensure_ascii=False, sort_keys=True)
        stamp = self._clock().isoformat()
        with self._write("could not save the receipt") as db:
            if not db.execute(
                "SELECT 1 FROM applications WHERE id = ?", [application_id]
            ).fetchone():
                raise UnknownApplication(application_id)
            db.execute(
                "INSERT INTO receipts (application_id, document, printed, created_at)"
                " VALUES (?, ?, 0, ?)"
                " ON CONFLICT(application_id) DO UPDATE SET document = excluded.document",
                [application_id, body, stamp],
            )

    def receipt_document(self, application_id: str) -> dict[str, Any] | None:
        """The stored receipt document, or None if none was saved."""
        rows = self._read(
            "SELECT document FROM receipts WHERE application_id = ?", [application_id]
        )
        if not rows:
            return None
        result: dict[str, Any] = json.loads(rows[0][0])
        return result

    def mark_printed(self, application_id: str) -> None:
        """Count one more print of the receipt (the first print and every reprint)."""
        with self._write("could not record the print") as db:
            cursor = db.execute(
                "UPDATE receipts SET printed = printed + 1 WHERE application_id = ?",
                [application_id],
            )
            if cursor.rowcount == 0:
                raise UnknownApplication(application_id)

    def times_printed(self, application_id: str) -> int:
        """How often the receipt was printed; 0 if never or if there is no receipt."""
        rows = self._read("SELECT printed FROM receipts WHERE application_id = ?", [application_id])
        return int(rows[0][0]) if rows else 0

    # Health -----------------------------------------------------------------------------------

    def integrity_problems(self) -> list[IntegrityProblem]:
        """Database integrity and every page file's presence and hash."""
        problems: list[IntegrityProblem] = []
        for (message,) in self._read("PRAGMA integrity_check"):
            if message != "ok":
                problems.append(IntegrityProblem("database", f"database: {message}"))
        for table, _rowid, parent, _fk in self._read("PRAGMA foreign_key_check"):
            problems.append(
                IntegrityProblem("database", f"database: a {table} row has no {parent} row")
            )
        checked: dict[str, Literal["ok", "missing", "corrupt"]] = {}
        for app_id, seq, sha in self._read(
            "SELECT p.application_id, p.seq, p.sha256 FROM pages p"
            " JOIN applications a ON a.id = p.application_id WHERE a.purged_at IS NULL"
            " UNION ALL SELECT id, 0, payload_sha256 FROM applications"
            " WHERE purged_at IS NULL AND payload_sha256 IS NOT NULL"
            " ORDER BY 1, 2"
        ):
            if sha not in checked:
                try:
                    checked[sha] = self.attachments.check(sha)
                except (OSError, ValueError):
                    checked[sha] = "corrupt"
            state = checked[sha]
            if state != "ok":
                problems.append(
                    IntegrityProblem(
                        state,
                        f"application {app_id} {f'page {seq}' if seq else 'sealed payload'}:"
                        f" attachment {sha} is {state}",
                        application_id=app_id,
                        sha256=sha,
                    )
                )
        return problems

    def verify(self) -> list[str]:
        """Problems found in the database and the attachments; empty when healthy."""
        return [str(problem) for problem in self.integrity_problems()]

    # Lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database; the instance is unusable afterwards."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
