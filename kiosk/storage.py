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
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import sqlite_utils

from kiosk.application import (
    Page,
    Status,
    StoredApplication,
    Submission,
    check_transition,
)

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


def _fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in `directory` survive power loss."""
    if sys.platform == "win32":
        # NTFS journals directory metadata, and Windows cannot open a directory for fsync.
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dir(directory: Path) -> None:
    """Create `directory` (private to this user) and its missing parents, durably."""
    if directory.is_dir():
        return
    _make_dir(directory.parent)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    _fsync_dir(directory.parent)


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
                    os.fsync(f.fileno())
                os.replace(tmp_name, final)
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

    def collect_garbage(self, referenced: set[str]) -> int:
        """Delete every file not in `referenced` (and every temp file); return how many."""
        removed = 0
        for path in self._files():
            if path.name.startswith(_TMP_PREFIX) or path.name not in referenced:
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


# Append only: the position in this list is the schema version it produces.
MIGRATIONS: tuple[Migration, ...] = (_migration_1_initial, _migration_2_lookup_indexes)


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
        try:
            self._migrate()
            removed = self._collect_orphans()
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

    def _collect_orphans(self) -> int:
        referenced = {row[0] for row in self._read("SELECT DISTINCT sha256 FROM pages")}
        try:
            return self.attachments.collect_garbage(referenced)
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
        """Durably save an application and its pages, allocating its receipt number.

        Pages first (each fsynced and renamed to its hash), then one transaction for the
        counter, the rows and the history: a crash in between leaves only orphan files,
        which the next start-up removes. Submitting the same id again returns the stored one.
        """
        # Serialise before touching the disk so that a bad payload leaves no orphan files.
        payload_json = json.dumps(dict(submission.payload), ensure_ascii=False, sort_keys=True)
        summary_json = json.dumps(dict(submission.summary), ensure_ascii=False, sort_keys=True)
        stored_pages: list[Page] = []
        for material_id, data in pages:
            blob = self.attachments.put(data)  # raises StorageError with the reason
            stored_pages.append(Page(material_id, blob.sha256, blob.size))

        now = self._clock()
        day = now.strftime("%Y%m%d")
        stamp = now.isoformat()
        number: str | None = None
        with self._write("could not save the application") as db:
            # A second tap on "submit" must not make a second application.
            if not db.execute(
                "SELECT 1 FROM applications WHERE id = ?", [submission.id]
            ).fetchone():
                number = self._next_receipt_number(db, day)
                db.execute(
                    """INSERT INTO applications (id, thing_id, catalog_version, receipt_number,
                        status, channel, created_at, payload, summary, id_hash, platform_number,
                        updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)""",
                    [
                        submission.id,
                        submission.thing_id,
                        submission.catalog_version,
                        number,
                        Status.QUEUED.value,
                        submission.channel,
                        stamp,
                        payload_json,
                        summary_json,
                        submission.id_hash,
                        stamp,
                    ],
                )
                for seq, page in enumerate(stored_pages, start=1):
                    db.execute(
                        "INSERT INTO pages (application_id, seq, material_id, sha256, size)"
                        " VALUES (?, ?, ?, ?, ?)",
                        [submission.id, seq, page.material_id, page.sha256, page.size],
                    )
                db.execute(
                    "INSERT INTO status_log (application_id, at, old, new, note)"
                    " VALUES (?, ?, NULL, ?, ?)",
                    [submission.id, stamp, Status.QUEUED.value, "saved on the kiosk"],
                )
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
        " summary, platform_number"
    )

    def get(self, application_id: str) -> StoredApplication:
        """The stored application (without its payload); UnknownApplication if absent."""
        rows = self._read(
            f"SELECT {self._COLUMNS} FROM applications WHERE id = ?", [application_id]
        )
        if not rows:
            raise UnknownApplication(application_id)
        return self._build(rows, self._pages_of([application_id]))[0]

    def payload(self, application_id: str) -> dict[str, Any]:
        """The full payload (identity and answers), for the platform upload only."""
        rows = self._read("SELECT payload FROM applications WHERE id = ?", [application_id])
        if not rows:
            raise UnknownApplication(application_id)
        result: dict[str, Any] = json.loads(rows[0][0])
        return result

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
            ) in rows
        ]

    def set_status(self, application_id: str, new: Status, note: str = "") -> None:
        """Move the application along its lifecycle (TransitionError if not allowed)."""
        stamp = self._clock().isoformat()
        with self._write("could not record the status change") as db:
            row = db.execute(
                "SELECT status FROM applications WHERE id = ?", [application_id]
            ).fetchone()
            if row is None:
                raise UnknownApplication(application_id)
            old = Status(row[0])
            check_transition(old, new)
            db.execute(
                "UPDATE applications SET status = ?, updated_at = ? WHERE id = ?",
                [new.value, stamp, application_id],
            )
            db.execute(
                "INSERT INTO status_log (application_id, at, old, new, note)"
                " VALUES (?, ?, ?, ?, ?)",
                [application_id, stamp, old.value, new.value, note],
            )
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
            "SELECT application_id, seq, sha256 FROM pages ORDER BY application_id, seq"
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
                        f"application {app_id} page {seq}: attachment {sha} is {state}",
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
