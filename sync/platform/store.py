"""The platform's durable state: `platform.db` (SQLite) and the blob files under one data dir.

Layout of the platform data directory (PDATA):

    platform.db            kiosks, codes, applications, status feed, ratings, licences
                           (a `nonces` table from schema 1 stays unused: nonces live in memory)
    blobs/<sha[:2]>/<sha>  whole attachments (sealed page ciphertexts), verified against the name
    blobs/partial/<sha>    uploads in progress
    keys/seal.pem          X25519 sealing key (HPKE), 0600
    keys/receipt.pem       Ed25519 receipt signing key, 0600
    catalog.json           the published catalog (absent: the kiosk's shipped catalog is served)

Every write is one `BEGIN IMMEDIATE` transaction with `synchronous=FULL` (WAL), except an
application's PUT, which is sent again if a power cut takes it back (the commit's fsync makes it
durable). Nonces are kept in memory for 600 s; requests signed before a restart are refused.
File data is written and fsynced outside the database lock.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from kiosk.catalog import Catalog, CatalogError, parse_catalog, shipped_catalog_text
from kiosk.demo import DEMO_LICENCES
from kiosk.durable import fsync_dir, make_dir
from kiosk.identity import normalize_id_number
from kiosk.storage import StorageError, failure_reason
from sync.platform.blobs import SHA256_HEX, BlobStore
from sync.platform.errors import (
    Conflict,
    Forbidden,
    Gone,
    Incomplete,
    Invalid,
    NotFound,
)
from sync.protocol import (
    MAX_ATTACHMENTS,
    MAX_BLOB,
    NONCE_TTL_S,
    PLATFORM_STATUSES,
    SCHEMA,
    ProtocolError,
    canonical_json,
    ed25519_public,
    load_private_pem,
    open_sealed,
    page_info,
    payload_info,
    private_pem,
    raw_public,
    sha256_hex,
    sign_receipt,
)

log = logging.getLogger("sync.platform")

DB_NAME = "platform.db"
CODE_TTL_S = 24 * 3600
TERMINAL_STATUSES = frozenset({"completed", "rejected"})
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud, typed by hand
_KIOSK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ITEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_NONCE_PRUNE_EVERY_S = 60.0
_PrivateKey = TypeVar("_PrivateKey", Ed25519PrivateKey, X25519PrivateKey)


class UnknownApplication(KeyError):
    """No committed application with this id."""


class AdvanceRefused(ValueError):
    """An operator's status change that the platform does not allow (why in the message)."""


@dataclass(frozen=True)
class CommittedApplication:
    """An application the platform has given a receipt; ids and hashes only."""

    kiosk_id: str
    id: str
    platform_number: str
    server_seq: int
    payload_sha256: str
    attachments: tuple[str, ...]
    status: str
    services: Mapping[str, str]

    def as_json(self) -> dict[str, Any]:
        """The `kiosk platform list --json` entry."""
        return {
            "id": self.id,
            "platform_number": self.platform_number,
            "payload_sha256": self.payload_sha256,
            "attachments": list(self.attachments),
        }


@dataclass(frozen=True)
class StatusChange:
    seq: int
    application_id: str
    status: str
    platform_number: str
    services: Mapping[str, str]
    note: str
    at: str

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "application_id": self.application_id,
            "status": self.status,
            "platform_number": self.platform_number,
            "services": dict(self.services),
            "note": self.note,
            "at": self.at,
        }


@dataclass(frozen=True)
class _Declared:
    """A validated `PUT /v1/applications/{id}` body."""

    kiosk_seq: int
    thing_id: str
    catalog_version: str
    created_at: str
    receipt_number: str
    channel: str
    sealed_payload: bytes
    payload_sha256: str
    attachments: tuple[tuple[str, int], ...]


# Migrations -----------------------------------------------------------------------------------


def _licence_key(id_number: str) -> str:
    # The table never holds an ID number in clear.
    return sha256_hex(f"hall-kiosk/licence/{normalize_id_number(id_number)}".encode())


def _migration_1_initial(conn: sqlite3.Connection) -> None:
    for statement in (
        """CREATE TABLE kiosks (
            id TEXT PRIMARY KEY,
            public_key TEXT NOT NULL,
            enrolled_at TEXT NOT NULL
        )""",
        """CREATE TABLE enrollment_codes (
            code_hash TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL,
            used_by TEXT
        )""",
        """CREATE TABLE nonces (
            kiosk_id TEXT NOT NULL,
            nonce TEXT NOT NULL,
            seen_at REAL NOT NULL,
            PRIMARY KEY (kiosk_id, nonce)
        ) WITHOUT ROWID""",
        "CREATE INDEX nonces_seen_at ON nonces(seen_at)",
        """CREATE TABLE applications (
            kiosk_id TEXT NOT NULL REFERENCES kiosks(id),
            id TEXT NOT NULL,
            kiosk_seq INTEGER NOT NULL,
            thing_id TEXT NOT NULL,
            catalog_version TEXT NOT NULL,
            created_at TEXT NOT NULL,
            receipt_number TEXT NOT NULL,
            channel TEXT NOT NULL,
            sealed_payload BLOB NOT NULL,
            payload_sha256 TEXT NOT NULL,
            attachments TEXT NOT NULL,
            received_at TEXT NOT NULL,
            platform_number TEXT UNIQUE,
            server_seq INTEGER UNIQUE,
            receipt TEXT,
            signature TEXT,
            status TEXT,
            services TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (kiosk_id, id)
        )""",
        "CREATE INDEX applications_status ON applications(status)",
        "CREATE INDEX applications_id ON applications(id)",
        """CREATE TABLE declared_blobs (
            kiosk_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            application_id TEXT NOT NULL,
            size INTEGER NOT NULL,
            PRIMARY KEY (kiosk_id, sha256, application_id)
        ) WITHOUT ROWID""",
        """CREATE TABLE number_counters (
            day TEXT PRIMARY KEY,
            last INTEGER NOT NULL
        )""",
        """CREATE TABLE changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            kiosk_id TEXT NOT NULL,
            application_id TEXT NOT NULL,
            status TEXT NOT NULL,
            platform_number TEXT NOT NULL,
            services TEXT NOT NULL,
            note TEXT NOT NULL,
            at TEXT NOT NULL
        )""",
        "CREATE INDEX changes_kiosk ON changes(kiosk_id, seq)",
        """CREATE TABLE ratings (
            kiosk_id TEXT NOT NULL,
            id TEXT NOT NULL,
            document TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (kiosk_id, id)
        )""",
        """CREATE TABLE licences (
            id_key TEXT NOT NULL,
            material_id TEXT NOT NULL,
            PRIMARY KEY (id_key, material_id)
        ) WITHOUT ROWID""",
    ):
        conn.execute(statement)
    conn.executemany(
        "INSERT INTO licences (id_key, material_id) VALUES (?, ?)",
        [
            (_licence_key(number), material)
            for number, materials in DEMO_LICENCES.items()
            for material in sorted(materials)
        ],
    )


Migration = Callable[[sqlite3.Connection], None]
# Append only: the position in this list is the schema version it produces.
MIGRATIONS: tuple[Migration, ...] = (_migration_1_initial,)


# Helpers --------------------------------------------------------------------------------------


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def iso_utc(ts: float) -> str:
    """Unix seconds as the protocol writes times: `2026-11-27T02:01:05Z`."""
    return _utc(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def _code_hash(code: str) -> str:
    normal = "".join(ch for ch in code.upper() if ch.isalnum())
    return sha256_hex(f"hall-kiosk/enrollment/{normal}".encode())


def _load_or_create_key(
    path: Path, make: Callable[[], _PrivateKey]
) -> Ed25519PrivateKey | X25519PrivateKey:
    """The private key in `path`, created (0600, durably) on first use."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        key = make()
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(private_pem(key))
                f.flush()
                os.fsync(f.fileno())
            try:
                # link() never replaces: a second process starting at the same moment keeps
                # the first key instead of overwriting it.
                os.link(tmp, path)
            except FileExistsError:
                return _load_or_create_key(path, make)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
        log.info("created the platform key %s", path.name)
        return key
    return load_private_pem(data)


def _text(doc: Mapping[str, Any], key: str, *, empty: bool = False) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or (not empty and not value):
        raise Invalid(f"'{key}' must be a{'' if empty else ' non-empty'} string")
    return value


def _integer(doc: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise Invalid(f"'{key}' must be an integer from {low} to {high}")
    return value


def _timestamp(doc: Mapping[str, Any], key: str) -> str:
    value = _text(doc, key)
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"'{key}' must be an ISO 8601 date and time") from None
    return value


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("the body is not JSON") from None
    if not isinstance(doc, dict):
        raise Invalid("the body must be a JSON object")
    return doc


def check_item_id(item_id: str, what: str = "id") -> str:
    """An application or rating id as it may appear in a path (the kiosk's ULID)."""
    if not _ITEM_ID.fullmatch(item_id):
        raise Invalid(f"malformed {what}")
    return item_id


def parse_application(body: bytes) -> _Declared:
    """Validate a `PUT /v1/applications/{id}` body (Invalid says what is wrong)."""
    doc = _json_object(body)
    if doc.get("schema") != SCHEMA:
        raise Invalid(f"'schema' must be {SCHEMA}")
    try:
        sealed = base64.b64decode(_text(doc, "sealed_payload").encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise Invalid("'sealed_payload' is not base64") from None
    payload_sha = _text(doc, "payload_sha256")
    if not SHA256_HEX.fullmatch(payload_sha):
        raise Invalid("'payload_sha256' is not a lower-case hex SHA-256")
    if sha256_hex(sealed) != payload_sha:
        raise Invalid("'payload_sha256' is not the hash of 'sealed_payload'")
    raw_attachments = doc.get("attachments")
    if not isinstance(raw_attachments, list):
        raise Invalid("'attachments' must be a list")
    if len(raw_attachments) > MAX_ATTACHMENTS:
        raise Invalid(f"more than {MAX_ATTACHMENTS} attachments")
    attachments: list[tuple[str, int]] = []
    sizes: dict[str, int] = {}
    for n, item in enumerate(raw_attachments):
        if not isinstance(item, dict):
            raise Invalid(f"attachment {n} must be an object")
        sha = item.get("sha256")
        if not isinstance(sha, str) or not SHA256_HEX.fullmatch(sha):
            raise Invalid(f"attachment {n}: 'sha256' is not a lower-case hex SHA-256")
        size = _integer(item, "size", 1, MAX_BLOB)
        if sizes.setdefault(sha, size) != size:
            raise Invalid(f"attachment {n}: the same hash with two sizes")
        attachments.append((sha, size))
    return _Declared(
        kiosk_seq=_integer(doc, "kiosk_seq", 0, 2**63 - 1),
        thing_id=_text(doc, "thing_id"),
        catalog_version=_text(doc, "catalog_version"),
        created_at=_timestamp(doc, "created_at"),
        receipt_number=_text(doc, "receipt_number"),
        channel=_text(doc, "channel"),
        sealed_payload=sealed,
        payload_sha256=payload_sha,
        attachments=tuple(attachments),
    )


def parse_rating(body: bytes) -> dict[str, Any]:
    """Validate a `PUT /v1/ratings/{id}` body; the rating as it is kept."""
    doc = _json_object(body)
    unknown = sorted(set(doc) - {"application_id", "score", "created_at"})
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)}")
    return {
        "application_id": check_item_id(_text(doc, "application_id"), "application_id"),
        "score": _integer(doc, "score", 1, 5),
        "created_at": _timestamp(doc, "created_at"),
    }


# The store ------------------------------------------------------------------------------------


class PlatformStore:
    """The platform's database, blob files and keys under one data directory (PDATA)."""

    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.data_dir = Path(data_dir)
        self._clock = clock
        # FastAPI's worker threads share the one connection; the lock keeps its use serial.
        self._lock = threading.RLock()
        try:
            make_dir(self.data_dir / "keys")
            self.blobs = BlobStore(self.data_dir / "blobs")
            seal_key = _load_or_create_key(
                self.data_dir / "keys" / "seal.pem", X25519PrivateKey.generate
            )
            receipt_key = _load_or_create_key(
                self.data_dir / "keys" / "receipt.pem", Ed25519PrivateKey.generate
            )
        except OSError as exc:
            reason = failure_reason(exc)
            raise StorageError(f"cannot prepare the platform data dir: {reason}", reason) from exc
        except (ProtocolError, ValueError) as exc:
            raise StorageError(f"a platform key cannot be read: {exc}", "damaged key") from exc
        if not isinstance(seal_key, X25519PrivateKey) or not isinstance(
            receipt_key, Ed25519PrivateKey
        ):
            raise StorageError("a platform key file holds the wrong kind of key", "wrong key")
        self._seal_key = seal_key
        self._receipt_key = receipt_key
        self.catalog_path = self.data_dir / "catalog.json"
        self._conn = self._open(self.data_dir / DB_NAME)
        try:
            self._migrate()
        except BaseException:
            self._conn.close()
            raise
        self._kiosk_keys: dict[str, Ed25519PublicKey] = {}
        self._last_prune = 0.0
        # Nonces seen in the last NONCE_TTL_S, in memory: a database write per request would
        # queue every request behind the commits' fsyncs. A restart forgets them, so requests
        # signed before this process started are refused (`signed_before_start`).
        self._nonces: dict[tuple[str, str], float] = {}
        self._nonce_lock = threading.Lock()
        self.started_at = clock()
        self._catalog_lock = threading.Lock()
        self._catalog_cache: tuple[Any, bytes, str] | None = None
        self._services_cache: tuple[str, dict[str, tuple[str, ...]]] | None = None
        self._shipped_services: dict[str, tuple[str, ...]] | None = None

    # Opening ----------------------------------------------------------------------------------

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                path, timeout=10.0, check_same_thread=False, isolation_level=None
            )
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("SQLite refused WAL mode (journal_mode=%s)", mode)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as exc:
            if conn is not None:
                conn.close()
            reason = failure_reason(exc)
            raise StorageError(f"cannot open the platform database: {reason}", reason) from exc
        return conn

    def _migrate(self) -> None:
        latest = len(MIGRATIONS)
        while True:
            with self._write("cannot upgrade the platform database") as conn:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version > latest:
                    raise StorageError(
                        f"the platform database is schema version {version}, newer than this "
                        f"software ({latest})",
                        "database from newer software",
                    )
                if version == latest:
                    return
                MIGRATIONS[version](conn)
                conn.execute(f"PRAGMA user_version = {version + 1:d}")
            log.info("platform database migrated to schema version %d", version + 1)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _write(self, what: str, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction; OS and SQLite failures become StorageError(what: reason).

        `durable=False` commits without an fsync (WAL with synchronous=NORMAL): the
        transaction survives a crash of the process but maybe not a power cut.
        """
        with self._lock:
            conn = self._conn
            try:
                if not durable:
                    conn.execute("PRAGMA synchronous=NORMAL")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield conn
                        conn.execute("COMMIT")
                    except BaseException:
                        # A failing ROLLBACK must not hide the error that caused it.
                        with contextlib.suppress(sqlite3.Error):
                            if conn.in_transaction:
                                conn.execute("ROLLBACK")
                        raise
                finally:
                    if not durable:
                        conn.execute("PRAGMA synchronous=FULL")
            except (OSError, sqlite3.Error) as exc:
                reason = failure_reason(exc)
                raise StorageError(f"{what}: {reason}", reason) from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, params).fetchall())
            except sqlite3.Error as exc:
                reason = failure_reason(exc)
                raise StorageError(f"cannot read the platform database: {reason}", reason) from exc

    # Keys and enrollment ----------------------------------------------------------------------

    @property
    def seal_public_key(self) -> X25519PublicKey:
        return self._seal_key.public_key()

    @property
    def receipt_public_key(self) -> Ed25519PublicKey:
        return self._receipt_key.public_key()

    def new_enrollment_code(self, ttl_s: float = CODE_TTL_S) -> str:
        """A one-time code for `POST /v1/enroll`, valid for `ttl_s`; only its hash is kept."""
        return self.new_enrollment_codes(1, ttl_s)[0]

    def new_enrollment_codes(self, count: int, ttl_s: float = CODE_TTL_S) -> list[str]:
        """`count` one-time codes in one transaction (a herd of simulated kiosks)."""
        codes = []
        for _ in range(count):
            raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
            codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
        now = self._clock()
        with self._write("cannot save the enrollment code") as conn:
            conn.executemany(
                "INSERT INTO enrollment_codes (code_hash, created_at, expires_at) VALUES (?, ?, ?)",
                [(_code_hash(code), now, now + ttl_s) for code in codes],
            )
        return codes

    def enroll(self, body: bytes) -> dict[str, str]:
        """Handle `POST /v1/enroll`: use up the code, (re)register the kiosk's key."""
        doc = _json_object(body)
        code = _text(doc, "code")
        kiosk_id = _text(doc, "kiosk_id")
        if not _KIOSK_ID.fullmatch(kiosk_id):
            raise Invalid("malformed kiosk_id")
        try:
            public = ed25519_public(_text(doc, "public_key"))
        except ProtocolError:
            raise Invalid("'public_key' is not a base64 raw Ed25519 public key") from None
        now = self._clock()
        with self._write("cannot enroll the kiosk") as conn:
            row = conn.execute(
                "SELECT expires_at, used_at FROM enrollment_codes WHERE code_hash = ?",
                [_code_hash(code)],
            ).fetchone()
            if row is None:
                raise Forbidden("unknown enrollment code")
            if row[1] is not None:
                raise Forbidden("the enrollment code was already used")
            if now > float(row[0]):
                raise Forbidden("the enrollment code has expired")
            conn.execute(
                "UPDATE enrollment_codes SET used_at = ?, used_by = ? WHERE code_hash = ?",
                [now, kiosk_id, _code_hash(code)],
            )
            conn.execute(
                "INSERT INTO kiosks (id, public_key, enrolled_at) VALUES (?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET public_key = excluded.public_key,"
                " enrolled_at = excluded.enrolled_at",
                [kiosk_id, raw_public(public), iso_utc(now)],
            )
        with self._lock:
            self._kiosk_keys[kiosk_id] = public
        log.info("kiosk %s enrolled", kiosk_id)
        return {
            "kiosk_id": kiosk_id,
            "seal_public_key": raw_public(self.seal_public_key),
            "receipt_public_key": raw_public(self.receipt_public_key),
        }

    def kiosk_key(self, kiosk_id: str) -> Ed25519PublicKey | None:
        """The enrolled signing key of `kiosk_id`, or None for an unknown kiosk."""
        # Every request asks this first: a known key must not wait behind another request's
        # commit, which holds the database lock through its fsync (a dict read is atomic).
        key = self._kiosk_keys.get(kiosk_id)
        if key is not None:
            return key
        with self._lock:  # a miss: read and cache together, so a re-enrollment cannot interleave
            rows = self._read("SELECT public_key FROM kiosks WHERE id = ?", [kiosk_id])
            if not rows:
                return None
            key = ed25519_public(rows[0][0])
            self._kiosk_keys[kiosk_id] = key
            return key

    def remember_nonce(self, kiosk_id: str, nonce: str, now: float) -> bool:
        """Record a request's nonce; False when it was already seen in the last 600 s."""
        with self._nonce_lock:
            if now - self._last_prune > _NONCE_PRUNE_EVERY_S:
                cutoff = now - NONCE_TTL_S
                self._nonces = {k: t for k, t in self._nonces.items() if t >= cutoff}
                self._last_prune = now
            key = (kiosk_id, nonce)
            if key in self._nonces:
                return False
            self._nonces[key] = now
            return True

    def signed_before_start(self, timestamp: int) -> bool:
        """A request signed before this process started: its nonce may have been forgotten, so
        it could be a replay. The kiosk signs again (it is told "clock skew")."""
        return timestamp < int(self.started_at)

    # Applications -----------------------------------------------------------------------------

    def put_application(self, kiosk_id: str, app_id: str, body: bytes) -> tuple[bool, list[str]]:
        """Handle `PUT /v1/applications/{id}`: (created, the attachment hashes still missing)."""
        check_item_id(app_id)
        declared = parse_application(body)
        for sha, size in declared.attachments:
            held = self.blobs.whole_size(sha)
            if held is not None and held != size:
                raise Invalid(f"attachment {sha} is {held} bytes, not {size}")
        attachments_json = json.dumps([list(a) for a in declared.attachments])
        now = self._clock()
        # Not fsynced: a PUT lost to a power cut is sent again identically (the kiosk has no
        # receipt yet), and the commit's fsync makes every earlier WAL frame durable with it.
        with self._write("cannot save the application", durable=False) as conn:
            row = conn.execute(
                "SELECT payload_sha256, attachments FROM applications"
                " WHERE kiosk_id = ? AND id = ?",
                [kiosk_id, app_id],
            ).fetchone()
            if row is not None:
                if row[0] != declared.payload_sha256 or row[1] != attachments_json:
                    raise Conflict("this id was received with different content")
                created = False
            else:
                for sha, size in declared.attachments:
                    other = conn.execute(
                        "SELECT size FROM declared_blobs WHERE kiosk_id = ? AND sha256 = ?"
                        " AND size != ? LIMIT 1",
                        [kiosk_id, sha, size],
                    ).fetchone()
                    if other is not None:
                        raise Invalid(f"attachment {sha} was declared with another size")
                conn.execute(
                    """INSERT INTO applications (kiosk_id, id, kiosk_seq, thing_id,
                        catalog_version, created_at, receipt_number, channel, sealed_payload,
                        payload_sha256, attachments, received_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [
                        kiosk_id,
                        app_id,
                        declared.kiosk_seq,
                        declared.thing_id,
                        declared.catalog_version,
                        declared.created_at,
                        declared.receipt_number,
                        declared.channel,
                        declared.sealed_payload,
                        declared.payload_sha256,
                        attachments_json,
                        iso_utc(now),
                    ],
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO declared_blobs (kiosk_id, sha256, application_id, size)"
                    " VALUES (?, ?, ?, ?)",
                    [(kiosk_id, sha, app_id, size) for sha, size in declared.attachments],
                )
                created = True
        if created:
            log.info(
                "application %s from kiosk %s received (%d attachment(s))",
                app_id,
                kiosk_id,
                len(declared.attachments),
            )
        missing = [
            sha
            for sha in dict.fromkeys(sha for sha, _ in declared.attachments)
            if self.blobs.whole_size(sha) is None
        ]
        return created, missing

    def declared_size(self, kiosk_id: str, sha256: str) -> int:
        """The size an application of this kiosk declares for `sha256`; Forbidden if none."""
        rows = self._read(
            "SELECT size FROM declared_blobs WHERE kiosk_id = ? AND sha256 = ? LIMIT 1",
            [kiosk_id, sha256],
        )
        if not rows:
            raise Forbidden("no application of this kiosk declares this blob")
        return int(rows[0][0])

    def blob_offset(self, kiosk_id: str, sha256: str) -> tuple[int, int]:
        """`HEAD /v1/blobs/{sha}`: (offset, length); NotFound when nothing was received."""
        length = self.declared_size(kiosk_id, sha256)
        whole = self.blobs.whole_size(sha256)
        if whole is not None:
            return whole, length
        received = self.blobs.received(sha256)
        if received is None:
            raise NotFound("nothing received yet")
        return received, length

    def append_blob(
        self,
        kiosk_id: str,
        sha256: str,
        offset: int,
        length: int,
        chunk: bytes,
        chunk_sha256: bytes | None = None,
    ) -> int:
        """`PATCH /v1/blobs/{sha}`: append a chunk (fsynced); the new offset."""
        declared = self.declared_size(kiosk_id, sha256)
        if length != declared:
            raise Invalid(f"Upload-Length {length} is not the declared size {declared}")
        try:
            return self.blobs.append(sha256, offset, length, chunk, chunk_sha256)
        except OSError as exc:
            reason = failure_reason(exc)
            raise StorageError(f"cannot store blob {sha256}: {reason}", reason) from exc

    def commit(self, kiosk_id: str, app_id: str) -> tuple[dict[str, Any], str]:
        """`POST /v1/applications/{id}/commit`: (receipt, signature), the same on every replay."""
        rows = self._read(
            "SELECT receipt, signature, sealed_payload, attachments, thing_id, payload_sha256"
            " FROM applications WHERE kiosk_id = ? AND id = ?",
            [kiosk_id, app_id],
        )
        if not rows:
            raise NotFound("this application was never received")
        receipt_json, signature, sealed, attachments_json, thing_id, payload_sha = rows[0]
        if receipt_json is not None:
            return json.loads(receipt_json), str(signature)
        attachments = [(str(sha), int(size)) for sha, size in json.loads(attachments_json)]
        hashes = [sha for sha, _ in attachments]
        try:
            missing = [sha for sha, size in attachments if not self.blobs.complete(sha, size)]
            if missing:
                raise Incomplete(list(dict.fromkeys(missing)))
            self.blobs.make_durable(hashes)  # the receipt below promises every blob survives
        except OSError as exc:
            reason = failure_reason(exc)
            raise StorageError(f"cannot make the blobs durable: {reason}", reason) from exc
        thing_id = self._check_payload(app_id, bytes(sealed), attachments) or thing_id
        services = dict.fromkeys(self.services_for(thing_id), "accepted")
        now = self._clock()
        with self._write("cannot commit the application") as conn:
            row = conn.execute(
                "SELECT receipt, signature FROM applications WHERE kiosk_id = ? AND id = ?",
                [kiosk_id, app_id],
            ).fetchone()
            if row[0] is not None:  # a concurrent replay committed it first
                return json.loads(row[0]), str(row[1])
            number = self._next_number(conn, _utc(now).strftime("%Y%m%d"))
            seq = self._append_change(conn, kiosk_id, app_id, "accepted", number, services, "", now)
            receipt = {
                "application_id": app_id,
                "kiosk_id": kiosk_id,
                "platform_number": number,
                "received_at": iso_utc(now),
                "server_seq": seq,
                "payload_sha256": payload_sha,
                "attachments": hashes,
            }
            signature = sign_receipt(self._receipt_key, receipt)
            conn.execute(
                """UPDATE applications SET platform_number = ?, server_seq = ?, receipt = ?,
                    signature = ?, status = 'accepted', services = ?, thing_id = ?
                    WHERE kiosk_id = ? AND id = ?""",
                [
                    number,
                    seq,
                    canonical_json(receipt).decode(),
                    signature,
                    json.dumps(services),
                    thing_id,
                    kiosk_id,
                    app_id,
                ],
            )
        log.info("application %s from kiosk %s committed as %s", app_id, kiosk_id, number)
        return receipt, signature

    def _check_payload(
        self, app_id: str, sealed: bytes, attachments: list[tuple[str, int]]
    ) -> str | None:
        """Open the sealed payload; Invalid unless its pages are exactly the attachments.
        Returns the payload's thing id (the plaintext itself is dropped here)."""
        try:
            plain = open_sealed(self._seal_key, sealed, payload_info(app_id))
        except ProtocolError:
            log.warning("application %s: the sealed payload cannot be opened", app_id)
            raise Invalid("the sealed payload cannot be opened") from None
        try:
            payload = json.loads(plain)
        except (ValueError, UnicodeDecodeError):
            raise Invalid("the sealed payload is not JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("pages"), list):
            raise Invalid("the sealed payload has no page list")
        pages: list[tuple[Any, Any]] = [
            (page.get("sha256"), page.get("size")) if isinstance(page, dict) else (None, None)
            for page in payload["pages"]
        ]
        if pages != attachments:
            log.warning("application %s: the payload's pages are not the attachments", app_id)
            raise Invalid("the payload's pages are not the declared attachments")
        thing = payload.get("thing_id")
        return thing if isinstance(thing, str) and thing else None

    @staticmethod
    def _next_number(conn: sqlite3.Connection, day: str) -> str:
        """The 办件编号: BJ, the UTC day, a 6-digit sequence within the day."""
        row = conn.execute("SELECT last FROM number_counters WHERE day = ?", [day]).fetchone()
        seq = (int(row[0]) if row else 0) + 1
        conn.execute(
            "INSERT INTO number_counters (day, last) VALUES (?, ?)"
            " ON CONFLICT(day) DO UPDATE SET last = excluded.last",
            [day, seq],
        )
        return f"BJ{day}{seq:06d}"

    @staticmethod
    def _append_change(
        conn: sqlite3.Connection,
        kiosk_id: str,
        app_id: str,
        status: str,
        number: str,
        services: Mapping[str, str],
        note: str,
        now: float,
    ) -> int:
        cursor = conn.execute(
            "INSERT INTO changes (kiosk_id, application_id, status, platform_number, services,"
            " note, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [kiosk_id, app_id, status, number, json.dumps(dict(services)), note, iso_utc(now)],
        )
        seq = cursor.lastrowid
        assert seq is not None
        return int(seq)

    # Status feed ------------------------------------------------------------------------------

    def changes(self, kiosk_id: str, cursor: int, limit: int) -> tuple[list[StatusChange], bool]:
        """This kiosk's changes after `cursor` (at most `limit`) and whether more follow."""
        with self._lock:
            last = int(self._read("SELECT COALESCE(MAX(seq), 0) FROM changes")[0][0])
            if cursor > last:
                raise Gone(f"cursor {cursor} is beyond the platform's last sequence {last}")
            rows = self._read(
                "SELECT seq, application_id, status, platform_number, services, note, at"
                " FROM changes WHERE kiosk_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                [kiosk_id, cursor, limit + 1],
            )
        changes = [
            StatusChange(int(seq), app, status, number, json.loads(services), note, at)
            for seq, app, status, number, services, note, at in rows[:limit]
        ]
        return changes, len(rows) > limit

    def advance(
        self,
        application_id: str,
        status: str,
        note: str = "",
        services: Mapping[str, str] | None = None,
        *,
        kiosk_id: str | None = None,
    ) -> StatusChange:
        """An operator's decision: append a change to the status feed.

        `services` updates per-service statuses (service ids from the catalog). A completed or
        rejected application does not go back. UnknownApplication if it was never committed.
        """
        if status not in PLATFORM_STATUSES:
            raise AdvanceRefused(f"unknown status {status!r}; one of {PLATFORM_STATUSES}")
        updates = dict(services or {})
        for service_id, service_status in updates.items():
            if service_status not in PLATFORM_STATUSES:
                raise AdvanceRefused(f"unknown status {service_status!r} for {service_id}")
        now = self._clock()
        with self._write("cannot record the status change") as conn:
            query = (
                "SELECT kiosk_id, status, platform_number, services, thing_id FROM applications"
                " WHERE id = ? AND receipt IS NOT NULL"
            )
            params: list[Any] = [application_id]
            if kiosk_id is not None:
                query += " AND kiosk_id = ?"
                params.append(kiosk_id)
            rows = conn.execute(query, params).fetchall()
            if not rows:
                raise UnknownApplication(application_id)
            if len(rows) > 1:
                raise AdvanceRefused(f"{application_id} exists for several kiosks; name one")
            owner, current, number, services_json, thing_id = rows[0]
            if current in TERMINAL_STATUSES and status != current:
                raise AdvanceRefused(f"{application_id} is {current}; it does not go back")
            known = self.services_for(thing_id)
            unknown = sorted(set(updates) - set(known)) if known else []
            if unknown:
                raise AdvanceRefused(f"not a service of {thing_id}: {', '.join(unknown)}")
            merged = {**json.loads(services_json), **updates}
            seq = self._append_change(
                conn, owner, application_id, status, number, merged, note, now
            )
            conn.execute(
                "UPDATE applications SET status = ?, services = ? WHERE kiosk_id = ? AND id = ?",
                [status, json.dumps(merged), owner, application_id],
            )
        log.info("application %s (%s) is now %s", application_id, number, status)
        return StatusChange(seq, application_id, status, number, merged, note, iso_utc(now))

    def demo_step(self) -> int:
        """Move each committed application one step: accepted → in_progress → completed."""
        rows = self._read(
            "SELECT kiosk_id, id, status, thing_id FROM applications"
            " WHERE status IN ('accepted', 'in_progress') ORDER BY server_seq"
        )
        moved = 0
        for kiosk_id, app_id, current, thing_id in rows:
            step = "in_progress" if current == "accepted" else "completed"
            services = dict.fromkeys(self.services_for(thing_id), step)
            note = "办理中" if step == "in_progress" else "已办结"
            try:
                self.advance(app_id, step, note, services, kiosk_id=kiosk_id)
            except AdvanceRefused as exc:  # an operator got there first
                log.info("demo: %s not advanced: %s", app_id, exc)
                continue
            moved += 1
        return moved

    def list_committed(self) -> list[CommittedApplication]:
        """Every application with a receipt, in commit order."""
        rows = self._read(
            "SELECT kiosk_id, id, platform_number, server_seq, payload_sha256, attachments,"
            " status, services FROM applications WHERE receipt IS NOT NULL ORDER BY server_seq"
        )
        return [
            CommittedApplication(
                kiosk_id=kiosk_id,
                id=app_id,
                platform_number=number,
                server_seq=int(seq),
                payload_sha256=payload_sha,
                attachments=tuple(sha for sha, _ in json.loads(attachments)),
                status=status,
                services=json.loads(services),
            )
            for kiosk_id, app_id, number, seq, payload_sha, attachments, status, services in rows
        ]

    def open_committed(self, key: str) -> tuple[CommittedApplication, dict[str, Any]]:
        """A committed application by id or 办件编号, with its payload opened (the plaintext
        form and identity: for the back office, never for logs). UnknownApplication if none."""
        committed = [app for app in self.list_committed() if key in (app.id, app.platform_number)]
        if len(committed) != 1:
            raise UnknownApplication(key)
        app = committed[0]
        rows = self._read(
            "SELECT sealed_payload FROM applications WHERE kiosk_id = ? AND id = ?",
            [app.kiosk_id, app.id],
        )
        plain = open_sealed(self._seal_key, bytes(rows[0][0]), payload_info(app.id))
        payload = json.loads(plain)
        if not isinstance(payload, dict):
            raise Invalid("the sealed payload is not a JSON object")
        return app, payload

    def open_page(self, app: CommittedApplication, sha256: str) -> bytes:
        """One of the application's pages, decrypted (the JPEG the kiosk scanned)."""
        if sha256 not in app.attachments:
            raise Invalid("not a page of this application")
        try:
            sealed = self.blobs.read(sha256)
        except OSError as exc:
            reason = failure_reason(exc)
            raise StorageError(f"cannot read blob {sha256}: {reason}", reason) from exc
        return open_sealed(self._seal_key, sealed, page_info(app.id))

    # Catalog ----------------------------------------------------------------------------------

    def catalog(self) -> tuple[bytes, str]:
        """The catalog served to kiosks and its ETag value (the SHA-256 hex of the bytes)."""
        try:
            st = os.stat(self.catalog_path)
            key: Any = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            key = None
        with self._catalog_lock:
            if self._catalog_cache is None or self._catalog_cache[0] != key:
                try:
                    data = self.catalog_path.read_bytes() if key else shipped_catalog_text()
                except FileNotFoundError:  # replaced or removed since the stat
                    data = shipped_catalog_text()
                self._catalog_cache = (key, data, sha256_hex(data))
            return self._catalog_cache[1], self._catalog_cache[2]

    def publish_catalog(self, text: bytes) -> Catalog:
        """Validate a catalog document and serve it from now on (atomic replace)."""
        catalog = parse_catalog(text)  # CatalogError with every problem
        tmp = self.catalog_path.with_name(f".catalog.json.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.catalog_path)
            fsync_dir(self.data_dir)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            reason = failure_reason(exc)
            raise StorageError(f"cannot publish the catalog: {reason}", reason) from exc
        log.info("catalog version %s published", catalog.version)
        return catalog

    def services_for(self, thing_id: str) -> tuple[str, ...]:
        """The service ids (实施编码) of a thing: from the served catalog, else the shipped one."""
        data, etag = self.catalog()
        with self._catalog_lock:
            if self._services_cache is None or self._services_cache[0] != etag:
                try:
                    table = _services_table(parse_catalog(data))
                except CatalogError as exc:
                    log.error("the served catalog does not parse: %s", exc)
                    table = {}
                self._services_cache = (etag, table)
            found = self._services_cache[1].get(thing_id)
            if found is not None:
                return found
            if self._shipped_services is None:
                self._shipped_services = _services_table(parse_catalog(shipped_catalog_text()))
            return self._shipped_services.get(thing_id, ())

    # Ratings and e-licences -------------------------------------------------------------------

    def put_rating(self, kiosk_id: str, rating_id: str, body: bytes) -> bool:
        """`PUT /v1/ratings/{id}`: True when new, False for an identical replay."""
        check_item_id(rating_id)
        document = canonical_json(parse_rating(body)).decode()
        with self._write("cannot save the rating") as conn:
            row = conn.execute(
                "SELECT document FROM ratings WHERE kiosk_id = ? AND id = ?", [kiosk_id, rating_id]
            ).fetchone()
            if row is not None:
                if row[0] != document:
                    raise Conflict("this rating id was received with different content")
                return False
            conn.execute(
                "INSERT INTO ratings (kiosk_id, id, document, received_at) VALUES (?, ?, ?, ?)",
                [kiosk_id, rating_id, document, iso_utc(self._clock())],
            )
        log.info("rating %s from kiosk %s received", rating_id, kiosk_id)
        return True

    def held_licences(self, body: bytes) -> list[str]:
        """`POST /v1/licences`: the e-licence types held for an ID number (never logged)."""
        id_number = _text(_json_object(body), "id_number")
        rows = self._read(
            "SELECT material_id FROM licences WHERE id_key = ? ORDER BY material_id",
            [_licence_key(id_number)],
        )
        return [row[0] for row in rows]

    def add_licence(self, id_number: str, material_id: str) -> None:
        """Record that the government holds this e-licence for an ID number."""
        with self._write("cannot save the licence") as conn:
            conn.execute(
                "INSERT OR IGNORE INTO licences (id_key, material_id) VALUES (?, ?)",
                [_licence_key(id_number), material_id],
            )


def _services_table(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    return {thing.id: tuple(s.code for s in thing.services) for thing in catalog.things}
