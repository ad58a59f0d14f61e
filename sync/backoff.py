"""When to retry the platform: full-jitter backoff, Retry-After, a circuit breaker, start-up jitter.

Full jitter (`uniform(0, min(cap, base * 2**attempt))`, AWS's "Exponential Backoff and Jitter")
spreads a hall of kiosks that failed together; `Retry-After` is a floor, never shortened
(RFC 9110 §10.2.3); the breaker stops a kiosk from hammering a platform that is down and lets
exactly one probe through after a random open time (Fowler's half-open state). Every object here
is safe to share between the relay thread and the UI thread.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from kiosk.config import SyncConfig

BreakerState = Literal["closed", "open", "half_open"]


def _check_finite(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")


class Backoff:
    """Full-jitter exponential backoff; `delay(0)` is the wait before the first retry."""

    def __init__(self, base_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        _check_finite("base_s", base_s)
        _check_finite("cap_s", cap_s)
        self.base_s = float(base_s)
        self.cap_s = float(cap_s)
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()

    def ceiling(self, attempt: int) -> float:
        """The largest delay `attempt` may draw: min(cap, base * 2**attempt)."""
        if attempt < 0:
            raise ValueError(f"attempt must be ≥ 0, got {attempt}")
        try:
            grown = math.ldexp(self.base_s, attempt)
        except OverflowError:
            return self.cap_s
        return min(self.cap_s, grown)

    def delay(self, attempt: int) -> float:
        ceiling = self.ceiling(attempt)
        with self._lock:
            drawn = self._rng.uniform(0.0, ceiling)
        # uniform() may round a hair past its bound; the contract is the closed interval.
        return min(max(drawn, 0.0), ceiling)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); None if unusable.

    `now` is Unix time (time.time()), used for the HTTP-date form; a date in the past means 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # HTTP dates are always GMT; asctime dates and "-0000" come back naive.
        when = when.replace(tzinfo=dt.UTC)
    try:
        seconds = when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retry_delay(backoff: Backoff, attempt: int, retry_after_s: float | None) -> float:
    """The jittered delay for `attempt`, never shorter than what the platform asked for."""
    delay = backoff.delay(attempt)
    if retry_after_s is None:
        return delay
    return max(delay, retry_after_s)


_module_rng = random.Random()
_module_lock = threading.Lock()


def _draw(rng: random.Random | None, low: float, high: float) -> float:
    if rng is not None:
        return rng.uniform(low, high)
    with _module_lock:
        return _module_rng.uniform(low, high)


def jittered(interval_s: float, spread: float = 0.2, rng: random.Random | None = None) -> float:
    """`interval_s` ± `spread` (a fraction), so periodic polls of many kiosks drift apart."""
    _check_finite("interval_s", interval_s)
    if not 0.0 <= spread <= 1.0:
        raise ValueError(f"spread must be within [0, 1], got {spread!r}")
    low, high = interval_s * (1.0 - spread), interval_s * (1.0 + spread)
    return min(max(_draw(rng, low, high), low), high)


def startup_delay(max_s: float, rng: random.Random | None = None) -> float:
    """A random wait in [0, max_s] after start-up or network return."""
    _check_finite("max_s", max_s)
    return min(max(_draw(rng, 0.0, max_s), 0.0), max_s)


class CircuitBreaker:
    """Closed → open after `failures` consecutive failures → half-open after a random open time.

    Half-open lets one probe through; its success closes the breaker, its failure re-opens it
    for a new random time. A probe that never reports (its caller died) is presumed failed
    after `open_max_s`, so a lost probe cannot stop a kiosk from syncing until a restart.
    """

    def __init__(
        self,
        failures: int,
        open_min_s: float,
        open_max_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if failures < 1:
            raise ValueError(f"failures must be ≥ 1, got {failures}")
        _check_finite("open_min_s", open_min_s)
        _check_finite("open_max_s", open_max_s)
        if open_max_s < open_min_s:
            raise ValueError(f"open_max_s ({open_max_s}) is below open_min_s ({open_min_s})")
        self.failures = failures
        self.open_min_s = float(open_min_s)
        self.open_max_s = float(open_max_s)
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._consecutive = 0
        self._open_until: float | None = None  # set while open (and half-open, as history)
        self._probe_since: float | None = None  # clock time the half-open probe went out

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state(self._clock())

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._consecutive

    def _state(self, now: float) -> BreakerState:
        if self._open_until is None:
            return "closed"
        if now < self._open_until:
            return "open"
        return "half_open"

    def allow(self) -> bool:
        """May a request go out now? In half-open, True for exactly one caller (the probe)."""
        with self._lock:
            now = self._clock()
            state = self._state(now)
            if state == "closed":
                return True
            if state == "open":
                return False
            if self._probe_since is not None and now - self._probe_since < self.open_max_s:
                return False
            self._probe_since = now
            return True

    def record_success(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._open_until = None
            self._probe_since = None

    def record_failure(self) -> None:
        with self._lock:
            now = self._clock()
            self._consecutive += 1
            state = self._state(now)
            if state == "half_open" or (state == "closed" and self._consecutive >= self.failures):
                self._open(now)
            # A failure reported while open (a request that left before the breaker opened)
            # does not push the reopening further away.

    def _open(self, now: float) -> None:
        self._open_until = now + self._rng.uniform(self.open_min_s, self.open_max_s)
        self._probe_since = None

    def open_until(self) -> float | None:
        """Clock time at which the breaker half-opens, or None when it is not open."""
        with self._lock:
            if self._state(self._clock()) != "open":
                return None
            return self._open_until


@dataclass
class RetryPolicy:
    """The retry knobs of one kiosk, built from `[sync]` by `from_config`."""

    backoff: Backoff
    breaker: CircuitBreaker
    startup_delay_max_s: float = 0.0
    status_poll_s: float = 300.0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def from_config(
        cls,
        sync_config: SyncConfig,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> RetryPolicy:
        rng = rng if rng is not None else random.Random()
        return cls(
            backoff=Backoff(sync_config.backoff_base_s, sync_config.backoff_cap_s, rng),
            breaker=CircuitBreaker(
                sync_config.breaker_failures,
                sync_config.breaker_open_min_s,
                sync_config.breaker_open_max_s,
                clock=clock,
                rng=rng,
            ),
            startup_delay_max_s=sync_config.startup_delay_max_s,
            status_poll_s=sync_config.status_poll_s,
            rng=rng,
        )

    def retry_delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        return retry_delay(self.backoff, attempt, retry_after_s)

    def startup_delay(self) -> float:
        return startup_delay(self.startup_delay_max_s, self.rng)

    def poll_interval(self) -> float:
        return jittered(self.status_poll_s, 0.2, self.rng)
