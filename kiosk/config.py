"""Configuration: one TOML file, every key documented with its default in docs/config.md.

The file is chosen by `--config PATH`, else the KIOSK_CONFIG environment variable, else none
(all defaults). `--data-dir` on any command overrides `[storage] data_dir`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import platformdirs

ENV_VAR = "KIOSK_CONFIG"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the key."""


@dataclass(frozen=True)
class HallConfig:
    code: str = "HZ01"  # hall code, first part of receipt numbers
    name_zh: str = "市民中心政务服务大厅"
    name_en: str = "Citizen Centre Service Hall"
    kiosk_code: str = "K01"  # this kiosk, unique within the hall
    progress_url: str = "https://zwfw.example.gov.cn/progress"  # printed in the receipt QR code


@dataclass(frozen=True)
class SessionConfig:
    idle_timeout_s: int = 90  # no touch for this long starts the countdown
    idle_countdown_s: int = 15  # visible countdown before the session is wiped
    receipt_screen_s: int = 60  # the receipt screen returns home after this long
    language: str = "zh"  # default language at the start of each session


@dataclass(frozen=True)
class DevicesConfig:
    id_reader: str = "simulated"  # "simulated" or "serial:///dev/ttyUSB0?baud=115200"
    camera: str = "simulated"  # "simulated", or a camera index or path (later issue)
    printer: str = "simulated://"  # printer URL: simulated://, tcp://host:9100, ...
    smart_card: str = "none"  # "none" or "pcsc"


@dataclass(frozen=True)
class PlatformConfig:
    # "simulated" (in-process, no network), "embedded" (a reference platform on 127.0.0.1
    # started with the kiosk, enrolled automatically: the demo), or the platform's https URL.
    url: str = "simulated"
    ca_file: str = ""  # PEM file of the CA the platform's certificate must chain to (pinned)
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 60.0  # per request, and per chunk of an upload
    lookup_timeout_s: float = 3.0  # e-licence look-up while the applicant waits


@dataclass(frozen=True)
class SyncConfig:
    backoff_base_s: float = 2.0  # full-jitter backoff: random(0, min(cap, base * 2^attempt))
    backoff_cap_s: float = 300.0
    breaker_failures: int = 5  # consecutive failures that open the circuit breaker
    breaker_open_min_s: float = 60.0  # the breaker stays open a random time in [min, max]
    breaker_open_max_s: float = 300.0
    startup_delay_max_s: float = 60.0  # random wait after start-up or network return
    status_poll_s: float = 300.0  # status feed and catalog poll, ±20 %
    # After an outage, Retry-After or an open breaker, queued applications go out this far
    # apart (±20 %) until a pass meets no trouble: a hall's backlog does not arrive at once.
    backlog_gap_s: float = 1.0
    parallel_uploads: int = 3  # applications in flight at once while the link is healthy
    chunk_kib: int = 64  # the first upload chunk; later ones are sized to take about 2 s
    chunk_max_kib: int = 8192  # the largest chunk (the protocol allows 8 MiB)
    retention_days: float = 30.0  # sealed data kept this long after the platform's receipt


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str = ""  # empty: the platform's user data directory (platformdirs)


@dataclass(frozen=True)
class CalendarConfig:
    holidays: tuple[str, ...] = ()  # ISO dates that are not working days
    extra_workdays: tuple[str, ...] = ()  # ISO weekend dates that are working days (调休)

    def holiday_dates(self) -> tuple[dt.date, ...]:
        return tuple(dt.date.fromisoformat(d) for d in self.holidays)

    def workday_dates(self) -> tuple[dt.date, ...]:
        return tuple(dt.date.fromisoformat(d) for d in self.extra_workdays)


@dataclass(frozen=True)
class UiConfig:
    font_family: str = "Noto Sans CJK SC"
    base_font_pt: int = 20  # at least 18
    orientation: str = "auto"  # auto, portrait or landscape
    virtual_keyboard: bool = True  # the on-screen keyboard (pinyin) for text fields


@dataclass(frozen=True)
class StaffConfig:
    idle_logout_s: int = 120  # a staff session ends after this long without a touch
    max_failed_pins: int = 5  # wrong PINs in a row that lock the account
    lockout_s: int = 300  # how long a locked account stays locked
    long_press_s: float = 3.0  # holding the top-left corner this long opens the PIN pad
    pin_pad_timeout_s: int = 30  # an untouched PIN pad goes back to the applicant's screen


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True)
class KioskModeConfig:
    """The screen lock-down of `kiosk run` (ui/lockdown.py); `kiosk demo` ignores it."""

    opening_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")  # [calendar] applies
    opening_hours: str = "08:00-18:00"  # the screen never blanks in these hours
    blank_after_s: int = 600  # outside opening hours, blank after this long untouched; 0: never
    hide_cursor: str = "auto"  # auto (when a touch screen is found), always or never
    block_shortcuts: bool = True  # Alt+F4, Alt+Tab, Ctrl+Alt+Backspace... never leave the kiosk

    def hours(self) -> tuple[dt.time, dt.time | None]:
        """Opening and closing time; closing None means midnight (`-24:00`)."""
        match = _HOURS.match(self.opening_hours)
        if match is None:
            raise ValueError(f"opening hours {self.opening_hours!r} are not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start = dt.time(h1, m1)
        if h2 == 24:
            if m2:
                raise ValueError("24:MM is not a time: use 24:00 for midnight")
            return start, None
        return start, dt.time(h2, m2)


@dataclass(frozen=True)
class Config:
    hall: HallConfig = field(default_factory=HallConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    devices: DevicesConfig = field(default_factory=DevicesConfig)
    platform: PlatformConfig = field(default_factory=PlatformConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    kiosk_mode: KioskModeConfig = field(default_factory=KioskModeConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)

    @property
    def data_dir(self) -> Path:
        if self.storage.data_dir:
            return Path(self.storage.data_dir).expanduser()
        return Path(platformdirs.user_data_dir("hall-kiosk", appauthor=False))


def _build(cls: type[Any], raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{where}] must be a table")
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(
                f"unknown key '{where}.{key}'" if where else f"unknown section '{key}'"
            )
        default = getattr(cls(), key)
        if is_dataclass(default):
            kwargs[key] = _build(type(default), value, key)
            continue
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"'{where}.{key}' must be a list of strings")
            value = tuple(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # `backoff_cap_s = 300` means 300.0
        elif isinstance(default, bool) != isinstance(value, bool) or not isinstance(
            value, type(default)
        ):
            # bool is an int in Python: `idle_timeout_s = true` must not pass as 1.
            raise ConfigError(
                f"'{where}.{key}' must be {type(default).__name__}, got {type(value).__name__}"
            )
        kwargs[key] = value
    return cls(**kwargs)


def parse_config(text: str) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    config: Config = _build(Config, raw, "")
    _check(config)
    return config


def _check(config: Config) -> None:
    s = config.session
    if s.idle_timeout_s < 10 or s.idle_countdown_s < 3:
        raise ConfigError("session.idle_timeout_s must be ≥ 10 and idle_countdown_s ≥ 3")
    if s.language not in ("zh", "en"):
        raise ConfigError("session.language must be 'zh' or 'en'")
    if config.ui.base_font_pt < 18:
        raise ConfigError("ui.base_font_pt must be at least 18 (适老化)")
    if config.ui.orientation not in ("auto", "portrait", "landscape"):
        raise ConfigError("ui.orientation must be auto, portrait or landscape")
    y = config.sync
    if not (0 < y.backoff_base_s <= y.backoff_cap_s):
        raise ConfigError("sync.backoff_base_s must be > 0 and ≤ sync.backoff_cap_s")
    if y.breaker_failures < 1 or not (0 <= y.breaker_open_min_s <= y.breaker_open_max_s):
        raise ConfigError("sync.breaker_failures ≥ 1 and 0 ≤ breaker_open_min_s ≤ max")
    if not (4 <= y.chunk_kib <= y.chunk_max_kib <= 8192):
        raise ConfigError("sync.chunk_kib ≥ 4 and ≤ sync.chunk_max_kib ≤ 8192")
    if (
        y.startup_delay_max_s < 0
        or y.status_poll_s <= 0
        or y.retention_days < 0
        or y.backlog_gap_s < 0
        or not 1 <= y.parallel_uploads <= 8
    ):
        raise ConfigError("sync delays must not be negative; parallel_uploads is 1 to 8")
    st = config.staff
    if st.idle_logout_s < 15 or st.max_failed_pins < 1 or st.lockout_s < 1:
        raise ConfigError(
            "staff.idle_logout_s must be ≥ 15, staff.max_failed_pins ≥ 1 and staff.lockout_s ≥ 1"
        )
    if not 1.0 <= st.long_press_s <= 10.0 or st.pin_pad_timeout_s < 10:
        raise ConfigError("staff.long_press_s must be 1 to 10 and staff.pin_pad_timeout_s ≥ 10")
    url = config.platform.url
    if url not in ("simulated", "embedded") and not (
        url.startswith("https://")
        or url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
    ):
        raise ConfigError(
            "platform.url must be 'simulated', 'embedded' or an https:// URL "
            "(plain http only to this machine)"
        )
    _check_kiosk_mode(config.kiosk_mode)
    try:
        config.calendar.holiday_dates()
        config.calendar.workday_dates()
    except ValueError as exc:
        raise ConfigError(f"calendar: {exc}") from None


def _check_kiosk_mode(mode: KioskModeConfig) -> None:
    unknown = [d for d in mode.opening_days if d not in WEEKDAYS]
    if unknown:
        raise ConfigError(f"kiosk_mode.opening_days: {unknown[0]!r} is not one of {WEEKDAYS}")
    try:
        start, end = mode.hours()
    except ValueError as exc:
        raise ConfigError(f"kiosk_mode.opening_hours: {exc}") from None
    if end is not None and end <= start:
        raise ConfigError("kiosk_mode.opening_hours must close after it opens, on the same day")
    if mode.blank_after_s < 0:
        raise ConfigError("kiosk_mode.blank_after_s must not be negative (0: never blank)")
    if mode.hide_cursor not in ("auto", "always", "never"):
        raise ConfigError("kiosk_mode.hide_cursor must be auto, always or never")


def load_config(path: str | os.PathLike[str] | None = None, data_dir: str | None = None) -> Config:
    """Read the config file (explicit path, else $KIOSK_CONFIG, else defaults)."""
    chosen = path or os.environ.get(ENV_VAR)
    config = Config()
    if chosen:
        try:
            text = Path(chosen).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config {chosen}: {exc.strerror}") from None
        config = parse_config(text)
    if data_dir:
        config = replace(config, storage=replace(config.storage, data_dir=str(data_dir)))
    return config
