"""Staff accounts: argon2id PINs, trivial PINs refused, lockout after wrong PINs, badge login,
disabled accounts, inactivity logout, roles, and the audit trail of all of it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type

from kiosk.audit import AuditLog
from kiosk.config import ConfigError, StaffConfig, parse_config
from kiosk.staff import (
    LoginRefused,
    StaffError,
    StaffSession,
    StaffStore,
    UnknownStaff,
    WeakPin,
    can,
    check_pin,
    default_hasher,
)

PIN = "482915"
OTHER_PIN = "730264"
BADGE = "04:A1:B2:C3:D4:E5:F6"
NAME = "欧阳明华"
TZ = dt.timezone(dt.timedelta(hours=8))


class FakeClock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 5, 4, 9, 0, tzinfo=TZ)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def cheap_hasher() -> PasswordHasher:
    # Fast enough for many logins per test; the production parameters are tested once below.
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path) as log:
        yield log


def open_store(
    tmp_path: Path, audit: AuditLog, clock: FakeClock, config: StaffConfig | None = None
) -> StaffStore:
    return StaffStore(tmp_path, audit=audit, config=config, clock=clock, hasher=cheap_hasher())


@pytest.fixture
def store(tmp_path: Path, audit: AuditLog, clock: FakeClock) -> Iterator[StaffStore]:
    with open_store(tmp_path, audit, clock) as staff:
        staff.add("S001", NAME, "staff", PIN, badge_uid=BADGE, actor="cli:root")
        yield staff


def actions(audit: AuditLog) -> list[tuple[str, str]]:
    return [(e.actor, e.action) for e in audit.entries()]


def test_accounts_are_added_and_listed_without_their_secrets(store: StaffStore) -> None:
    store.add("T002", "Zhang Wei", "technician", OTHER_PIN, actor="cli:root")
    accounts = store.list()
    assert [(a.staff_number, a.role, a.enabled) for a in accounts] == [
        ("S001", "staff", True),
        ("T002", "technician", True),
    ]
    assert accounts[0].badge_hint == "…E5F6" and accounts[0].has_badge
    assert not accounts[1].has_badge
    assert store.get("S001").name == NAME
    with pytest.raises(StaffError, match="exists already"):
        store.add("S001", "Someone", "admin", OTHER_PIN, actor="cli:root")
    with pytest.raises(StaffError, match="role"):
        store.add("X003", "Someone", "janitor", OTHER_PIN, actor="cli:root")
    with pytest.raises(StaffError, match="staff number"):
        store.add("system", "Someone", "admin", OTHER_PIN, actor="cli:root")
    with pytest.raises(UnknownStaff):
        store.get("NOPE")


def test_the_database_holds_argon2id_hashes_not_pins_or_badge_uids(
    tmp_path: Path, store: StaffStore
) -> None:
    rows = store._read("SELECT pin_hash, badge_hash FROM accounts")
    pin_hash, badge_hash = rows[0]
    assert pin_hash.startswith("$argon2id$")
    assert len(badge_hash) == 64
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("staff.db*"))
    assert raw, "the scan must cover the database files"
    assert pin_hash.encode() in raw  # the scan does see what is stored...
    uid = bytes.fromhex(BADGE.replace(":", ""))
    for secret in (PIN.encode(), uid, uid.hex().encode(), uid.hex().upper().encode()):
        assert secret not in raw  # ...and neither the PIN nor the badge UID is
    audit_raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))
    assert NAME.encode() not in audit_raw and PIN.encode() not in audit_raw


def test_the_default_hasher_is_argon2id_with_rfc_9106_parameters() -> None:
    hashed = default_hasher().hash(PIN)
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert default_hasher().verify(hashed, PIN)


@pytest.mark.parametrize(
    "pin",
    [
        "000000",
        "999999",
        "123456",
        "654321",
        "890123",
        "121212",
        "123123",
        "112233",
        "12345",
        "1234567",
        "12a456",
        "１２３４５６",
    ],
)
def test_trivial_or_malformed_pins_are_refused(store: StaffStore, pin: str) -> None:
    with pytest.raises(WeakPin):
        check_pin(pin)
    with pytest.raises(WeakPin):
        store.set_pin("S001", pin, actor="cli:root")
    assert isinstance(store.login_with_pin("S001", PIN), StaffSession)  # the old PIN stands


def test_a_pin_containing_the_staff_number_is_refused(store: StaffStore) -> None:
    with pytest.raises(WeakPin, match="staff number"):
        store.add("HZ2024", "Li Na", "staff", "202413", actor="cli:root")
    check_pin("202413", "HZ0001")  # fine for someone else


def test_five_wrong_pins_lock_for_five_minutes(store: StaffStore, clock: FakeClock) -> None:
    for left in (4, 3, 2, 1):
        assert store.login_with_pin("S001", OTHER_PIN) == LoginRefused(
            "wrong_pin", attempts_left=left
        )
    locked = store.login_with_pin("S001", OTHER_PIN)
    until = clock.now + dt.timedelta(minutes=5)
    assert locked == LoginRefused("locked", locked_until=until)
    assert store.get("S001").locked(clock.now)
    # While locked even the right PIN is refused (and not checked).
    assert store.login_with_pin("S001", PIN) == LoginRefused("locked", locked_until=until)
    clock.advance(299)
    assert store.login_with_pin("S001", PIN) == LoginRefused("locked", locked_until=until)
    clock.advance(1)
    session = store.login_with_pin("S001", PIN)
    assert isinstance(session, StaffSession) and session.staff_number == "S001"
    assert not store.get("S001").locked(clock.now)


def test_a_right_pin_resets_the_count(store: StaffStore) -> None:
    for _ in range(4):
        store.login_with_pin("S001", OTHER_PIN)
    assert isinstance(store.login_with_pin("S001", PIN), StaffSession)
    assert store.get("S001").failed_pins == 0
    for _ in range(4):
        assert store.login_with_pin("S001", OTHER_PIN).reason == "wrong_pin"  # type: ignore[union-attr]
    assert isinstance(store.login_with_pin("S001", PIN), StaffSession)


def test_lockout_follows_the_config(tmp_path: Path, audit: AuditLog, clock: FakeClock) -> None:
    config = StaffConfig(max_failed_pins=3, lockout_s=60)
    with open_store(tmp_path, audit, clock, config) as store:
        store.add("S001", NAME, "staff", PIN, actor="cli:root")
        assert store.login_with_pin("S001", OTHER_PIN).attempts_left == 2  # type: ignore[union-attr]
        store.login_with_pin("S001", OTHER_PIN)
        refused = store.login_with_pin("S001", OTHER_PIN)
        assert isinstance(refused, LoginRefused) and refused.reason == "locked"
        assert refused.locked_until == clock.now + dt.timedelta(seconds=60)
        clock.advance(60)
        assert isinstance(store.login_with_pin("S001", PIN), StaffSession)


def test_the_lock_holds_across_store_instances(
    tmp_path: Path, audit: AuditLog, clock: FakeClock, store: StaffStore
) -> None:
    with open_store(tmp_path, audit, clock) as other:
        for _ in range(5):
            other.login_with_pin("S001", OTHER_PIN)
    assert store.login_with_pin("S001", PIN).reason == "locked"  # type: ignore[union-attr]


def test_setting_a_pin_unlocks(store: StaffStore, clock: FakeClock) -> None:
    for _ in range(5):
        store.login_with_pin("S001", OTHER_PIN)
    store.set_pin("S001", "593017", actor="A001")
    assert store.login_with_pin("S001", PIN) == LoginRefused("wrong_pin", attempts_left=4)
    assert isinstance(store.login_with_pin("S001", "593017"), StaffSession)


def test_badge_and_pin_log_in(store: StaffStore) -> None:
    session = store.login_with_badge("04a1b2c3d4e5f6", PIN)
    assert isinstance(session, StaffSession)
    assert (session.staff_number, session.method, session.role) == ("S001", "badge", "staff")
    assert store.login_with_badge(bytes.fromhex("04A1B2C3D4E5F6"), OTHER_PIN).reason == (  # type: ignore[union-attr]
        "wrong_pin"
    )
    assert store.login_with_badge("04:00:00:00", PIN) == LoginRefused("unknown")
    assert store.login_with_badge("not hex", PIN) == LoginRefused("unknown")


def test_badges_are_replaced_cleared_and_never_shared(store: StaffStore) -> None:
    store.add("S002", "Wang Fang", "staff", OTHER_PIN, actor="cli:root")
    with pytest.raises(StaffError, match="another account"):
        store.set_badge("S002", BADGE, actor="cli:root")
    with pytest.raises(StaffError, match="another account"):
        store.add("S003", "Chen Jie", "staff", "593017", badge_uid=BADGE, actor="cli:root")
    store.set_badge("S001", "08 11 22 33", actor="cli:root")
    assert store.login_with_badge(BADGE, PIN) == LoginRefused("unknown")
    assert isinstance(store.login_with_badge("08112233", PIN), StaffSession)
    store.set_badge("S001", None, actor="cli:root")
    assert not store.get("S001").has_badge
    with pytest.raises(StaffError, match="4 to 10 bytes"):
        store.set_badge("S001", "0102", actor="cli:root")


def test_unknown_numbers_and_disabled_accounts_are_refused(store: StaffStore) -> None:
    assert store.login_with_pin("S404", PIN) == LoginRefused("unknown")
    store.disable("S001", actor="A001")
    assert not store.get("S001").enabled
    assert store.login_with_pin("S001", PIN) == LoginRefused("disabled")
    assert store.login_with_badge(BADGE, PIN) == LoginRefused("disabled")
    with pytest.raises(UnknownStaff):
        store.disable("S404", actor="A001")


def test_a_session_ends_after_the_idle_time(store: StaffStore, clock: FakeClock) -> None:
    session = store.login_with_pin("S001", PIN)
    assert isinstance(session, StaffSession)
    assert session.idle_logout_s == 120 and session.started == clock.now
    clock.advance(119)
    assert not session.expired(clock.now) and session.remaining_s(clock.now) == 1
    session.touch(clock.now)
    clock.advance(119)
    assert not session.expired(clock.now)
    clock.advance(1)
    assert session.expired(clock.now) and session.remaining_s(clock.now) == 0
    store.logout(session, "idle")


def test_roles() -> None:
    assert can("staff", "assisted_application") and can("staff", "reprint")
    assert can("staff", "requeue") and can("staff", "void")
    assert not can("staff", "diagnostics") and not can("staff", "exit")
    assert can("technician", "diagnostics") and can("technician", "support_bundle")
    assert not can("technician", "void") and not can("technician", "restart")
    assert can("admin", "exit") and can("admin", "restart") and can("admin", "reprint")
    assert not can("nobody", "reprint")
    with pytest.raises(ValueError, match="unknown staff action"):
        can("admin", "exti")


def test_every_login_and_change_is_audited(store: StaffStore, audit: AuditLog) -> None:
    store.login_with_pin("S001", OTHER_PIN)
    session = store.login_with_badge(BADGE, PIN)
    assert isinstance(session, StaffSession)
    store.logout(session)
    store.login_with_pin("S404", PIN)
    store.set_pin("S001", "593017", actor="A001")
    store.set_badge("S001", None, actor="A001")
    store.disable("S001", actor="A001")
    assert actions(audit) == [
        ("cli:root", "staff_added"),
        ("S001", "login_failed"),
        ("S001", "login"),
        ("S001", "logout"),
        ("system", "login_failed"),
        ("A001", "pin_changed"),
        ("A001", "badge_changed"),
        ("A001", "staff_disabled"),
    ]
    entries = audit.entries()
    assert entries[0].details["masked"] == "欧***"
    assert entries[1].details == {"method": "pin", "reason": "wrong_pin"}
    assert entries[2].details == {"method": "badge", "role": "staff"}
    assert "S404" not in str(entries[4].details)
    assert audit.verify() is None


def test_the_staff_section_of_the_config() -> None:
    config = parse_config("[staff]\nidle_logout_s = 300\nmax_failed_pins = 3\nlockout_s = 900\n")
    assert config.staff == StaffConfig(idle_logout_s=300, max_failed_pins=3, lockout_s=900)
    assert parse_config("").staff == StaffConfig(120, 5, 300)
    with pytest.raises(ConfigError, match="staff"):
        parse_config("[staff]\nmax_failed_pins = 0\n")
