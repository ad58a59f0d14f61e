"""The audit log: every staff and technician action, append-only and hash-chained.

Each entry carries the hash of the entry before it, and its own hash is SHA-256 over the
canonical JSON of the entry without `hash`. Changing, removing or moving an entry breaks the
chain at that entry, and `verify()` names it. The latest (seq, hash) is also kept in a second
file, `DATA/audit.head`, so that cutting entries off the end is found too.

Entries live in their own SQLite file, `DATA/audit.db` (WAL, synchronous=FULL). An append is
one IMMEDIATE transaction that reads the last entry and writes the next, so the CLI and the
running kiosk can append at the same time and still make one chain.

What this does not stop: someone who can write the data directory can rewrite the whole chain
from some entry on and the head file with it. Sending the head hash off the kiosk from time to
time (to the platform) would pin it; until then the log shows accidental damage and casual edits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from kiosk.durable import fsync_dir
from kiosk.logs import redact
from kiosk.storage import StorageError, failure_reason

log = logging.getLogger(__name__)

DB_NAME = "audit.db"
HEAD_NAME = "audit.head"
GENESIS = "0" * 64  # the prev_hash of entry 1
SCHEMA_VERSION = 1

ACTIONS: tuple[str, ...] = (
    "login",
    "login_failed",
    "logout",
    "assisted_submission",
    "manual_identity",
    "reprint",
    "void",
    "requeue",
    "set_aside",
    "diagnostics",
    "support_bundle",
    "exit",
    "restart",
    "staff_added",
    "staff_disabled",
    "pin_changed",
    "badge_changed",
)

# Keys that would only ever hold personal data: refused outright, whatever the value looks like.
_FORBIDDEN_KEYS = re.compile(
    r"(^|_)(name|id_number|idnumber|phone|mobile|address|pin|password|birth)(_|$)"
)
_ACTOR = re.compile(r"[\w.:@-]{1,64}")
_MAX_DETAIL = 500  # characters per string value

Scalar = str | int | float | bool | None
Clock = Callable[[], dt.datetime]

ProblemKind = Literal["modified", "removed", "reordered", "broken_chain", "truncated", "unreadable"]


class AuditError(StorageError):
    """The audit log could not be read or written; the message is for the technician."""


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action; `hash` covers every other field."""

    seq: int
    at: str  # local time, ISO 8601 with its offset
    at_utc: str  # the same instant in UTC, ISO 8601 with Z
    actor: str  # a staff number, "system", or "cli:<os user>"
    action: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The fields the hash covers."""
        return {
            "seq": self.seq,
            "at": self.at,
            "at_utc": self.at_utc,
            "actor": self.actor,
            "action": self.action,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
        }

    def as_json(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}


@dataclass(frozen=True)
class AuditProblem:
    """The first thing wrong with the log: which entry and why (no details of any entry)."""

    seq: int
    kind: ProblemKind
    detail: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.detail}"

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "detail": self.detail}


def canonical(value: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes an entry's hash is taken over."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry without its `hash`."""
    return hashlib.sha256(canonical(body)).hexdigest()


def clean_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Details as stored: ids and masked data only.

    A key that names personal data (name, id_number, phone, address, pin...) is a programming
    error and raises ValueError. A string that looks like an ID, bank card or mobile number is
    masked (kiosk.logs.redact), as the log filter would."""
    cleaned: dict[str, Any] = {}
    for key, value in (details or {}).items():
        if not isinstance(key, str) or not key:
            raise ValueError("audit detail keys are non-empty strings")
        if _FORBIDDEN_KEYS.search(key.lower()):
            raise ValueError(f"audit detail {key!r} would hold personal data; record an id")
        cleaned[key] = _clean_value(key, value)
    return cleaned


def _clean_value(key: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"audit detail {key!r} is not a finite number")
        return value
    if isinstance(value, str):
        masked = redact(value[:_MAX_DETAIL])
        if masked != value[:_MAX_DETAIL]:
            log.warning("audit detail %r looked like a personal number; masked", key)
        return masked
    if isinstance(value, list | tuple):
        return [_clean_value(key, item) for item in value]
    raise ValueError(f"audit detail {key!r} must be a string, number, bool or list of them")


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


def _row_entry(row: Sequence[Any]) -> AuditEntry:
    seq, at, at_utc, actor, action, details, prev_hash, hash_ = row
    return AuditEntry(
        seq=int(seq),
        at=str(at),
        at_utc=str(at_utc),
        actor=str(actor),
        action=str(action),
        details=json.loads(details),
        prev_hash=str(prev_hash),
        hash=str(hash_),
    )


class AuditLog:
    """The hash-chained audit log of one data directory; safe across threads and processes."""

    def __init__(self, data_dir: Path, *, clock: Clock = _local_now) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        self.head_path = self.data_dir / HEAD_NAME
        self._clock = clock
        self._lock = threading.RLock()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(
                self.path, timeout=15.0, check_same_thread=False, isolation_level=None
            )
        except (OSError, sqlite3.Error) as exc:
            reason = failure_reason(exc)
            raise AuditError(f"cannot open the audit log: {reason}", reason) from exc
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("SQLite refused WAL mode for the audit log (journal_mode=%s)", mode)
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            self._db.close()
            reason = failure_reason(exc)
            raise AuditError(f"cannot open the audit log: {reason}", reason) from exc
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        with self._write("cannot set up the audit log") as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise AuditError(
                    f"the audit log is schema version {version}, newer than this software "
                    f"({SCHEMA_VERSION}); update the kiosk software",
                    "audit log from newer software",
                )
            if version == 0:
                db.execute(
                    """CREATE TABLE entries (
                        seq INTEGER PRIMARY KEY,
                        at TEXT NOT NULL,
                        at_utc TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        action TEXT NOT NULL,
                        details TEXT NOT NULL,
                        prev_hash TEXT NOT NULL,
                        hash TEXT NOT NULL
                    )"""
                )
                db.execute("CREATE INDEX entries_at_utc ON entries(at_utc)")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: the last entry cannot change between reading and writing."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        if db.in_transaction:
                            db.execute("ROLLBACK")
                    raise
            except (OSError, sqlite3.Error) as exc:
                reason = failure_reason(exc)
                raise AuditError(f"{what}: {reason}", reason) from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._db.execute(sql, list(params)).fetchall())
            except sqlite3.Error as exc:
                reason = failure_reason(exc)
                raise AuditError(f"cannot read the audit log: {reason}", reason) from exc

    # Writing ----------------------------------------------------------------------------------

    def append(
        self, actor: str, action: str, details: Mapping[str, Any] | None = None
    ) -> AuditEntry:
        """Record one action durably and return its entry; AuditError if it cannot be saved.

        `details` holds ids and masked data only (see clean_details)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        if not _ACTOR.fullmatch(actor):
            raise ValueError("an audit actor is 1-64 letters, digits or . : @ _ -")
        cleaned = clean_details(details)
        now = self._clock()
        if now.tzinfo is None:
            now = now.astimezone()
        at_utc = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._write("cannot write the audit log") as db:
            last = db.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
            body = {
                "seq": seq,
                "at": now.isoformat(),
                "at_utc": at_utc,
                "actor": actor,
                "action": action,
                "details": cleaned,
                "prev_hash": prev,
            }
            digest = entry_hash(body)
            db.execute(
                "INSERT INTO entries (seq, at, at_utc, actor, action, details, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    seq,
                    body["at"],
                    at_utc,
                    actor,
                    action,
                    canonical(cleaned).decode("utf-8"),
                    prev,
                    digest,
                ],
            )
        self._update_head()
        log.info("audit %d: %s by %s", seq, action, actor)
        return AuditEntry(seq, str(body["at"]), at_utc, actor, action, cleaned, prev, digest)

    def _update_head(self) -> None:
        """Write the newest (seq, hash) to the head file under the database's write lock, so
        that two processes never leave an older head over a newer one. The head only trails
        the log (a crash just before this write), never leads it."""
        with self._write("cannot update the audit head") as db:
            last = db.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
            if last is None:
                return
            document = json.dumps({"seq": int(last[0]), "hash": str(last[1])}).encode()
            try:
                fd, tmp = tempfile.mkstemp(prefix=".tmp-audit-", dir=self.data_dir)
                try:
                    with os.fdopen(fd, "wb") as f:
                        f.write(document)
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, self.head_path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
                fsync_dir(self.data_dir)
            except OSError as exc:
                reason = failure_reason(exc)
                raise AuditError(f"cannot update the audit head: {reason}", reason) from exc

    # Reading ----------------------------------------------------------------------------------

    def entries(
        self, since: dt.datetime | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Entries oldest first, optionally only those at or after `since`, at most `limit`
        (the newest ones when limited)."""
        where, params = "", []
        if since is not None:
            if since.tzinfo is None:
                since = since.astimezone()
            where = " WHERE at_utc >= ?"
            params.append(since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        sql = f"SELECT seq, at, at_utc, actor, action, details, prev_hash, hash FROM entries{where}"
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY seq DESC LIMIT {int(limit):d})"
        rows = self._read(f"{sql} ORDER BY seq", params)
        return [_row_entry(row) for row in rows]

    def count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM entries")[0][0])

    def head(self) -> tuple[int, str] | None:
        """The (seq, hash) saved in the head file, or None when there is none yet."""
        try:
            document = json.loads(self.head_path.read_text(encoding="utf-8"))
            return int(document["seq"]), str(document["hash"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"the audit head {self.head_path} is unreadable: {exc}") from exc

    def verify(self) -> AuditProblem | None:
        """The first bad entry (modified, removed, reordered, broken chain, cut off the end),
        or None when the whole chain and the head hold."""
        try:
            rows = self._read(
                "SELECT seq, at, at_utc, actor, action, details, prev_hash, hash"
                " FROM entries ORDER BY seq"
            )
        except AuditError as exc:
            return AuditProblem(0, "unreadable", str(exc))
        entries: list[AuditEntry] = []
        for row in rows:
            try:
                entries.append(_row_entry(row))
            except (ValueError, TypeError):
                return AuditProblem(int(row[0]), "modified", "its details are not valid JSON")
        problem = _check_chain(entries)
        if problem is not None:
            return problem
        return self._check_head(entries)

    def _check_head(self, entries: list[AuditEntry]) -> AuditProblem | None:
        try:
            head = self.head()
        except AuditError as exc:
            return AuditProblem(0, "unreadable", str(exc))
        last = entries[-1].seq if entries else 0
        if head is None:
            if entries:
                # The head is written after every append; without it the tail cannot be vouched
                # for, and deleting it is the first step of cutting entries off.
                return AuditProblem(last, "truncated", "the head file audit.head is missing")
            return None
        seq, digest = head
        if seq > last:
            return AuditProblem(
                last + 1,
                "truncated",
                f"missing: the head names entry {seq} but the log ends at entry {last}"
                " (entries were cut off the end)",
            )
        if seq >= 1 and entries[seq - 1].hash != digest:
            return AuditProblem(
                seq, "modified", "its hash differs from the one saved in audit.head"
            )
        return None

    # Lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_chain(entries: list[AuditEntry]) -> AuditProblem | None:
    """Walk the entries in seq order and report the first that does not fit the chain."""
    by_hash = {entry.hash: entry.seq for entry in entries}
    prev = GENESIS
    for expected, entry in enumerate(entries, start=1):
        if entry.seq != expected:
            where = (
                f"the log starts at entry {entry.seq}"
                if expected == 1
                else f"the log goes from entry {expected - 1} to entry {entry.seq}"
            )
            return AuditProblem(expected, "removed", f"missing (removed): {where}")
        if entry_hash(entry.body()) != entry.hash:
            moved_from = _written_as(entry, len(entries))
            if moved_from is not None:
                return AuditProblem(
                    entry.seq,
                    "reordered",
                    f"moved: it was written as entry {moved_from}",
                )
            return AuditProblem(entry.seq, "modified", "its content does not match its hash")
        if entry.prev_hash != prev:
            if entry.prev_hash in by_hash:
                return AuditProblem(
                    entry.seq,
                    "reordered",
                    f"out of order: it follows entry {by_hash[entry.prev_hash]}, "
                    f"not entry {entry.seq - 1}",
                )
            return AuditProblem(
                entry.seq,
                "broken_chain",
                f"its prev_hash does not match entry {entry.seq - 1}'s hash"
                " (an earlier entry was changed or replaced)",
            )
        prev = entry.hash
    return None


def _written_as(entry: AuditEntry, last: int) -> int | None:
    """The seq the entry's stored hash was made with, when only its number was changed."""
    for seq in range(1, last + 1):
        if seq != entry.seq and entry_hash({**entry.body(), "seq": seq}) == entry.hash:
            return seq
    return None
