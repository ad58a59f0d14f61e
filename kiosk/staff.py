"""Staff accounts: counter staff, technicians and administrators, their PINs, badges and logins.

Accounts live in their own SQLite file, `DATA/staff.db` (WAL, synchronous=FULL, secure_delete,
schema versioned with user_version), so the applications database never holds a PIN hash.

- A PIN is 6 digits, stored only as an argon2id hash; trivial ones (000000, 123456, 121212, the
  staff number's own digits) are refused.
- A badge UID is stored as HMAC-SHA256 under a key of this kiosk (`DATA/staff-badge.key`, 0600),
  plus its last two bytes as a hint for the admin. A UID is read in clear by any reader and is
  easy to emulate, so a copy of staff.db must not hand out a list of UIDs to clone; the keyed hash
  still finds the account in one indexed look-up. A badge alone never logs anyone in: the PIN is
  always asked.
- `max_failed_pins` wrong PINs in a row lock the account for `lockout_s`; while locked no PIN is
  even checked. A correct PIN resets the count. Checking a PIN and counting a failure happen in
  one IMMEDIATE transaction, so two processes cannot both use the last try.
- Every login, failed login, logout and account change goes to the audit log (kiosk/audit.py).
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import hashlib
import hmac
import itertools
import logging
import os
import re
import secrets
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, get_args

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from kiosk.audit import AuditLog
from kiosk.config import StaffConfig
from kiosk.identity import mask_name
from kiosk.storage import StorageError, failure_reason

log = logging.getLogger(__name__)

DB_NAME = "staff.db"
BADGE_KEY_NAME = "staff-badge.key"
SCHEMA_VERSION = 1

Role = Literal["staff", "technician", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
RefusalReason = Literal["unknown", "wrong_pin", "locked", "disabled"]
LoginMethod = Literal["pin", "badge"]
LogoutReason = Literal["user", "idle", "exit"]
Clock = Callable[[], dt.datetime]

# What each role may do. An admin may do everything; a technician the device work; counter staff
# the work for applicants. The UI asks can(session.role, action) before showing a button.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "assisted_application": frozenset({"staff", "admin"}),
    "agent_application": frozenset({"staff", "admin"}),
    "manual_identity": frozenset({"staff", "admin"}),
    "todays_work": frozenset({"staff", "admin"}),
    "reprint": frozenset({"staff", "admin"}),
    "requeue": frozenset({"staff", "admin"}),
    "set_aside": frozenset({"staff", "admin"}),
    "void": frozenset({"staff", "admin"}),
    "diagnostics": frozenset({"technician", "admin"}),
    "support_bundle": frozenset({"technician", "admin"}),
    "exit": frozenset({"admin"}),
    "restart": frozenset({"admin"}),
    "manage_staff": frozenset({"admin"}),
}

PIN_LENGTH = 6
_STAFF_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,19}")
_RESERVED_NUMBERS = {"system", "cli", "unknown"}  # audit actors that are not staff
_UID_BYTES = range(4, 11)  # ISO 14443 UIDs: 4, 7 or 10 bytes (some readers report 8)
# Common PINs in China beyond the patterns _pin_problem catches.
_COMMON_PINS = frozenset(
    {
        "112233",
        "123321",
        "147258",
        "258369",
        "159357",
        "123654",
        "456123",
        "789456",
        "654123",
        "111222",
        "000111",
        "666888",
        "520131",
        "201314",
        "131420",
    }
)


class StaffError(ValueError):
    """A staff request that cannot be done (duplicate number, bad name...); says why."""


class WeakPin(StaffError):
    """The PIN is not 6 digits or is too easy to guess."""


class UnknownStaff(KeyError):
    """No staff account with this number."""


def can(role: str, action: str) -> bool:
    """Whether `role` may do `action`; ValueError for an action nobody knows (a typo)."""
    if action not in PERMISSIONS:
        raise ValueError(f"unknown staff action {action!r}")
    return role in PERMISSIONS[action]


def _pin_problem(pin: str, staff_number: str | None) -> str | None:
    if len(pin) != PIN_LENGTH or not pin.isascii() or not pin.isdigit():
        return f"a PIN is {PIN_LENGTH} digits"
    digits = [int(c) for c in pin]
    steps = {(b - a) % 10 for a, b in itertools.pairwise(digits)}
    if steps == {0}:
        return "all six digits are the same"
    if steps in ({1}, {9}):
        return "the digits run in order"
    if pin[:2] * 3 == pin or pin[:3] * 2 == pin:
        return "the PIN repeats a short pattern"
    if pin in _COMMON_PINS:
        return "this PIN is one of the most common"
    if staff_number:
        own = "".join(c for c in staff_number if c.isdigit())
        if len(own) >= 4 and (pin in own or own in pin):
            return "the PIN contains the staff number"
    return None


def check_pin(pin: str, staff_number: str | None = None) -> None:
    """Raise WeakPin when `pin` is not 6 digits or is trivial to guess."""
    problem = _pin_problem(pin, staff_number)
    if problem is not None:
        raise WeakPin(problem)


def normalize_badge_uid(uid: str | bytes) -> bytes:
    """A badge UID as bytes, from bytes or hex ("04A1B2C3", "04:a1:b2:c3", "04 A1 B2 C3")."""
    if isinstance(uid, bytes):
        raw = uid
    else:
        text = re.sub(r"[\s:-]", "", uid)
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise StaffError("a badge UID is hexadecimal (e.g. 04:A1:B2:C3)") from None
    if len(raw) not in _UID_BYTES:
        raise StaffError(f"a badge UID is 4 to 10 bytes, not {len(raw)}")
    return raw


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


def default_hasher() -> PasswordHasher:
    """argon2id with the library's defaults (RFC 9106 low-memory: t=3, m=64 MiB, p=4)."""
    return PasswordHasher(type=Type.ID)


@dataclass(frozen=True)
class StaffAccount:
    """An account as the admin sees it: never the PIN hash or the badge's keyed hash."""

    staff_number: str
    name: str
    role: Role
    enabled: bool
    badge_hint: str  # "…A1B2" (last two bytes) or "" without a badge
    failed_pins: int
    locked_until: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def has_badge(self) -> bool:
        return bool(self.badge_hint)

    def locked(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def as_json(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "staff_number": self.staff_number,
            "name": self.name,
            "role": self.role,
            "enabled": self.enabled,
            "badge": self.badge_hint or None,
            "failed_pins": self.failed_pins,
            "locked_until": (
                self.locked_until.isoformat()
                if self.locked_until is not None and now < self.locked_until
                else None
            ),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass
class StaffSession:
    """A logged-in staff member; ends after `idle_logout_s` without touch()."""

    staff_number: str
    name: str
    role: Role
    started: dt.datetime
    last_activity: dt.datetime
    idle_logout_s: float
    method: LoginMethod

    def touch(self, now: dt.datetime) -> None:
        """The staff member did something: the idle time starts again."""
        self.last_activity = max(self.last_activity, now)

    def idle_s(self, now: dt.datetime) -> float:
        return max(0.0, (now - self.last_activity).total_seconds())

    def remaining_s(self, now: dt.datetime) -> float:
        """Seconds left before the automatic logout."""
        return max(0.0, self.idle_logout_s - self.idle_s(now))

    def expired(self, now: dt.datetime) -> bool:
        """Whether the session has been idle for `idle_logout_s` or longer."""
        return self.idle_s(now) >= self.idle_logout_s

    def can(self, action: str) -> bool:
        return can(self.role, action)


@dataclass(frozen=True)
class LoginRefused:
    """Why a login failed. The screen shows one message for unknown and wrong_pin alike."""

    reason: RefusalReason
    locked_until: dt.datetime | None = None  # set when reason is "locked"
    attempts_left: int | None = None  # set when reason is "wrong_pin"


LoginResult = StaffSession | LoginRefused


def _load_or_create_key(path: Path) -> bytes:
    """The badge key, made once: written to a temp file, fsynced, then linked into place so
    that two processes starting together end up with the same key."""
    with contextlib.suppress(FileNotFoundError):
        key = path.read_bytes()
        if len(key) == 32:
            return key
        raise StorageError(f"the badge key {path} is damaged", "damaged badge key")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-badge-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # fails if another process made it first: use theirs
    finally:
        os.unlink(tmp)
    if hasattr(os, "O_DIRECTORY"):
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return path.read_bytes()


_COLUMNS = (
    "staff_number, name, role, enabled, badge_hint, failed_count, locked_until,"
    " created_at, updated_at"
)


def _account(row: Sequence[Any]) -> StaffAccount:
    number, name, role, enabled, hint, failed, locked, created, updated = row
    return StaffAccount(
        staff_number=str(number),
        name=str(name),
        role=role,
        enabled=bool(enabled),
        badge_hint=str(hint),
        failed_pins=int(failed),
        locked_until=dt.datetime.fromisoformat(locked) if locked else None,
        created_at=dt.datetime.fromisoformat(created),
        updated_at=dt.datetime.fromisoformat(updated),
    )


class StaffStore:
    """Staff accounts and logins of one data directory; safe across threads and processes."""

    def __init__(
        self,
        data_dir: Path,
        *,
        audit: AuditLog,
        config: StaffConfig | None = None,
        clock: Clock = _local_now,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.config = config or StaffConfig()
        self.audit = audit
        self._clock = clock
        self._hasher = hasher or default_hasher()
        self._dummy_hash: str | None = None
        self._lock = threading.RLock()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._badge_key = _load_or_create_key(self.data_dir / BADGE_KEY_NAME)
            self._db = sqlite3.connect(
                self.data_dir / DB_NAME,
                timeout=15.0,
                check_same_thread=False,
                isolation_level=None,
            )
        except (OSError, sqlite3.Error) as exc:
            reason = failure_reason(exc)
            raise StorageError(f"cannot open the staff accounts: {reason}", reason) from exc
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("SQLite refused WAL mode for staff.db (journal_mode=%s)", mode)
            self._db.execute("PRAGMA synchronous=FULL")
            # A replaced PIN hash is overwritten on disk, not left in a free page.
            self._db.execute("PRAGMA secure_delete=ON")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            self._db.close()
            reason = failure_reason(exc)
            raise StorageError(f"cannot open the staff accounts: {reason}", reason) from exc
        except BaseException:
            self._db.close()
            raise

    # Database plumbing ------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._write("cannot set up the staff accounts") as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"staff.db is schema version {version}, newer than this software "
                    f"({SCHEMA_VERSION}); update the kiosk software",
                    "staff database from newer software",
                )
            if version == 0:
                db.execute(
                    """CREATE TABLE accounts (
                        staff_number TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        role TEXT NOT NULL CHECK (role IN ('staff', 'technician', 'admin')),
                        pin_hash TEXT NOT NULL,
                        badge_hash TEXT UNIQUE,
                        badge_hint TEXT NOT NULL DEFAULT '',
                        enabled INTEGER NOT NULL DEFAULT 1,
                        failed_count INTEGER NOT NULL DEFAULT 0,
                        locked_until TEXT,
                        created_at TEXT NOT NULL,
                        updated_at TEXT NOT NULL
                    )"""
                )
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
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
                raise StorageError(f"{what}: {reason}", reason) from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> builtins.list[tuple[Any, ...]]:
        with self._lock:
            try:
                return builtins.list(self._db.execute(sql, builtins.list(params)).fetchall())
            except sqlite3.Error as exc:
                reason = failure_reason(exc)
                raise StorageError(f"cannot read the staff accounts: {reason}", reason) from exc

    def _now(self) -> dt.datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.astimezone()

    def _badge_hash(self, uid: bytes) -> str:
        return hmac.new(self._badge_key, uid, hashlib.sha256).hexdigest()

    # Accounts ---------------------------------------------------------------------------------

    def add(
        self,
        staff_number: str,
        name: str,
        role: str,
        pin: str,
        *,
        badge_uid: str | bytes | None = None,
        actor: str,
    ) -> StaffAccount:
        """Create an account; StaffError (or WeakPin) says what is wrong with the request."""
        if not _STAFF_NUMBER.fullmatch(staff_number) or staff_number in _RESERVED_NUMBERS:
            raise StaffError("a staff number is 1-20 letters, digits or dashes")
        name = name.strip()
        if not name or len(name) > 40 or any(not c.isprintable() for c in name):
            raise StaffError("a name is 1-40 printable characters")
        if role not in ROLES:
            raise StaffError(f"a role is one of {', '.join(ROLES)}")
        check_pin(pin, staff_number)
        uid = normalize_badge_uid(badge_uid) if badge_uid is not None else None
        pin_hash = self._hasher.hash(pin)
        stamp = self._now().isoformat()
        with self._write("cannot save the staff account") as db:
            if db.execute(
                "SELECT 1 FROM accounts WHERE staff_number = ?", [staff_number]
            ).fetchone():
                raise StaffError(f"staff number {staff_number} exists already")
            badge_hash = self._badge_hash(uid) if uid else None
            if (
                badge_hash
                and db.execute(
                    "SELECT 1 FROM accounts WHERE badge_hash = ?", [badge_hash]
                ).fetchone()
            ):
                raise StaffError("this badge belongs to another account")
            db.execute(
                "INSERT INTO accounts (staff_number, name, role, pin_hash, badge_hash,"
                " badge_hint, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    staff_number,
                    name,
                    role,
                    pin_hash,
                    badge_hash,
                    "…" + uid[-2:].hex().upper() if uid else "",
                    stamp,
                    stamp,
                ],
            )
        self.audit.append(
            actor,
            "staff_added",
            {
                "staff_number": staff_number,
                "role": role,
                "masked": mask_name(name),
                "badge": uid is not None,
            },
        )
        log.info("staff account %s added (%s)", staff_number, role)
        return self.get(staff_number)

    def get(self, staff_number: str) -> StaffAccount:
        rows = self._read(f"SELECT {_COLUMNS} FROM accounts WHERE staff_number = ?", [staff_number])
        if not rows:
            raise UnknownStaff(staff_number)
        return _account(rows[0])

    def list(self) -> builtins.list[StaffAccount]:
        """Every account, by staff number."""
        return [
            _account(row)
            for row in self._read(f"SELECT {_COLUMNS} FROM accounts ORDER BY staff_number")
        ]

    def disable(self, staff_number: str, *, actor: str) -> None:
        """The account can no longer log in (it stays, for the audit trail)."""
        self._update(
            staff_number, "UPDATE accounts SET enabled = 0, updated_at = ? WHERE staff_number = ?"
        )
        self.audit.append(actor, "staff_disabled", {"staff_number": staff_number})
        log.info("staff account %s disabled", staff_number)

    def set_pin(self, staff_number: str, pin: str, *, actor: str) -> None:
        """A new PIN (WeakPin if trivial); also clears the failed count and any lock."""
        check_pin(pin, staff_number)
        pin_hash = self._hasher.hash(pin)
        self._update(
            staff_number,
            "UPDATE accounts SET pin_hash = ?, failed_count = 0, locked_until = NULL,"
            " updated_at = ? WHERE staff_number = ?",
            [pin_hash],
        )
        self.audit.append(actor, "pin_changed", {"staff_number": staff_number})
        log.info("staff account %s: PIN changed", staff_number)

    def set_badge(self, staff_number: str, badge_uid: str | bytes | None, *, actor: str) -> None:
        """Give the account a badge (replacing its old one), or take it away with None."""
        uid = normalize_badge_uid(badge_uid) if badge_uid is not None else None
        badge_hash = self._badge_hash(uid) if uid else None
        hint = "…" + uid[-2:].hex().upper() if uid else ""
        with self._write("cannot save the badge") as db:
            if badge_hash:
                owner = db.execute(
                    "SELECT staff_number FROM accounts WHERE badge_hash = ?", [badge_hash]
                ).fetchone()
                if owner and owner[0] != staff_number:
                    raise StaffError("this badge belongs to another account")
            cursor = db.execute(
                "UPDATE accounts SET badge_hash = ?, badge_hint = ?, updated_at = ?"
                " WHERE staff_number = ?",
                [badge_hash, hint, self._now().isoformat(), staff_number],
            )
            if cursor.rowcount == 0:
                raise UnknownStaff(staff_number)
        self.audit.append(
            actor, "badge_changed", {"staff_number": staff_number, "badge": uid is not None}
        )

    def _update(self, staff_number: str, sql: str, params: Sequence[Any] = ()) -> None:
        with self._write("cannot save the staff account") as db:
            cursor = db.execute(sql, [*params, self._now().isoformat(), staff_number])
            if cursor.rowcount == 0:
                raise UnknownStaff(staff_number)

    # Logins -----------------------------------------------------------------------------------

    def login_with_pin(self, staff_number: str, pin: str) -> LoginResult:
        """Log in by staff number and PIN: a session, or why not (audited either way)."""
        return self._login("staff_number = ?", staff_number.strip(), pin, "pin")

    def login_with_badge(self, uid: str | bytes, pin: str) -> LoginResult:
        """Log in by the badge's UID (from the PC/SC reader) and the PIN."""
        try:
            badge_hash = self._badge_hash(normalize_badge_uid(uid))
        except StaffError:
            return self._refuse(None, "badge", LoginRefused("unknown"))
        return self._login("badge_hash = ?", badge_hash, pin, "badge")

    def _login(self, where: str, key: str, pin: str, method: LoginMethod) -> LoginResult:
        now = self._now()
        number: str | None = None
        result: LoginResult
        with self._write("cannot check the login") as db:
            row = db.execute(
                "SELECT staff_number, name, role, enabled, pin_hash, failed_count, locked_until"
                f" FROM accounts WHERE {where}",
                [key],
            ).fetchone()
            if row is None:
                # As slow as a wrong PIN, so that timing does not tell which numbers exist.
                self._verify(self._dummy(), pin)
                result = LoginRefused("unknown")
            else:
                number, name, role, enabled, pin_hash, failed, locked = row
                locked_until = dt.datetime.fromisoformat(locked) if locked else None
                if not enabled:
                    result = LoginRefused("disabled")
                elif locked_until is not None and now < locked_until:
                    result = LoginRefused("locked", locked_until=locked_until)
                elif self._verify(pin_hash, pin):
                    db.execute(
                        "UPDATE accounts SET failed_count = 0, locked_until = NULL"
                        " WHERE staff_number = ?",
                        [number],
                    )
                    if self._hasher.check_needs_rehash(pin_hash):
                        db.execute(
                            "UPDATE accounts SET pin_hash = ? WHERE staff_number = ?",
                            [self._hasher.hash(pin), number],
                        )
                    result = StaffSession(
                        staff_number=number,
                        name=name,
                        role=role,
                        started=now,
                        last_activity=now,
                        idle_logout_s=float(self.config.idle_logout_s),
                        method=method,
                    )
                else:
                    failed = int(failed) + 1
                    limit = self.config.max_failed_pins
                    if failed >= limit:
                        until = now + dt.timedelta(seconds=self.config.lockout_s)
                        db.execute(
                            "UPDATE accounts SET failed_count = 0, locked_until = ?"
                            " WHERE staff_number = ?",
                            [until.isoformat(), number],
                        )
                        result = LoginRefused("locked", locked_until=until)
                    else:
                        db.execute(
                            "UPDATE accounts SET failed_count = ? WHERE staff_number = ?",
                            [failed, number],
                        )
                        result = LoginRefused("wrong_pin", attempts_left=limit - failed)
        if isinstance(result, StaffSession):
            self.audit.append(result.staff_number, "login", {"method": method, "role": result.role})
            log.info("staff %s logged in (%s)", result.staff_number, method)
            return result
        return self._refuse(number, method, result)

    def _refuse(
        self, number: str | None, method: LoginMethod, refusal: LoginRefused
    ) -> LoginResult:
        details: dict[str, Any] = {"method": method, "reason": refusal.reason}
        if refusal.locked_until is not None:
            details["locked_until"] = refusal.locked_until.isoformat()
        # What was typed for an unknown number is not recorded: it may be anything.
        self.audit.append(number or "system", "login_failed", details)
        log.info("staff login refused (%s, %s)", method, refusal.reason)
        return refusal

    def _verify(self, pin_hash: str, pin: str) -> bool:
        try:
            return bool(self._hasher.verify(pin_hash, pin))
        except VerificationError:
            return False
        except InvalidHashError:
            log.error("a stored PIN hash is damaged; set a new PIN for that account")
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_hex(8))
        return self._dummy_hash

    def logout(self, session: StaffSession, reason: LogoutReason = "user") -> None:
        """End the session (the staff member left, was idle too long, or the app exits)."""
        now = self._now()
        self.audit.append(
            session.staff_number,
            "logout",
            {"reason": reason, "minutes": round((now - session.started).total_seconds() / 60, 1)},
        )
        log.info("staff %s logged out (%s)", session.staff_number, reason)

    def counts(self) -> dict[str, int]:
        """Accounts per role and how many are disabled (for the support bundle: no rows)."""
        rows = self._read("SELECT role, enabled, COUNT(*) FROM accounts GROUP BY role, enabled")
        counts: dict[str, int] = {role: 0 for role in ROLES} | {"disabled": 0}
        for role, enabled, n in rows:
            counts[str(role)] += int(n)
            if not enabled:
                counts["disabled"] += int(n)
        return counts

    # Lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> StaffStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
