"""Retry policy: full-jitter backoff, Retry-After, start-up jitter and the circuit breaker."""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import statistics
import threading
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kiosk.config import SyncConfig
from sync.backoff import (
    Backoff,
    CircuitBreaker,
    RetryPolicy,
    jittered,
    parse_retry_after,
    retry_delay,
    startup_delay,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# Backoff ---------------------------------------------------------------------------------------


@given(
    base=st.floats(0, 100, allow_nan=False),
    cap=st.floats(0, 1000, allow_nan=False),
    attempt=st.integers(0, 5000),
    seed=st.integers(0, 2**32),
)
def test_delay_is_within_zero_and_the_capped_ceiling(
    base: float, cap: float, attempt: int, seed: int
) -> None:
    backoff = Backoff(base, cap, random.Random(seed))
    delay = backoff.delay(attempt)
    ceiling = float(min(Fraction(cap), Fraction(base) * 2**attempt))  # exact, no overflow
    assert 0.0 <= delay <= ceiling
    assert backoff.ceiling(attempt) == pytest.approx(ceiling)


def test_delay_uses_the_whole_range_not_a_fixed_step() -> None:
    backoff = Backoff(2.0, 300.0, random.Random(7))
    draws = [backoff.delay(3) for _ in range(4000)]  # ceiling 16 s
    assert min(draws) < 0.5
    assert max(draws) > 15.5
    assert statistics.mean(draws) == pytest.approx(8.0, rel=0.05)
    capped = [backoff.delay(20) for _ in range(2000)]
    assert max(capped) <= 300.0
    assert statistics.mean(capped) == pytest.approx(150.0, rel=0.05)


def test_first_retry_is_attempt_zero() -> None:
    backoff = Backoff(2.0, 300.0, random.Random(1))
    assert backoff.ceiling(0) == 2.0
    assert backoff.ceiling(1) == 4.0
    assert all(backoff.delay(0) <= 2.0 for _ in range(200))


@pytest.mark.parametrize(("base", "cap"), [(-1.0, 10.0), (1.0, float("inf")), (float("nan"), 1)])
def test_backoff_rejects_nonsense(base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        Backoff(base, cap)


def test_negative_attempt_is_an_error() -> None:
    with pytest.raises(ValueError):
        Backoff(1.0, 10.0).delay(-1)


@given(
    attempt=st.integers(0, 200),
    retry_after=st.one_of(st.none(), st.floats(0, 10_000, allow_nan=False)),
    seed=st.integers(0, 2**32),
)
def test_retry_delay_is_never_sooner_than_retry_after(
    attempt: int, retry_after: float | None, seed: int
) -> None:
    backoff = Backoff(2.0, 300.0, random.Random(seed))
    delay = retry_delay(backoff, attempt, retry_after)
    if retry_after is not None:
        assert delay >= retry_after
    assert delay <= max(backoff.ceiling(attempt), retry_after or 0.0)


def test_retry_delay_keeps_the_jitter_above_a_small_retry_after() -> None:
    backoff = Backoff(2.0, 300.0, random.Random(3))
    delays = [retry_delay(backoff, 6, 1.0) for _ in range(500)]  # ceiling 128 s
    assert min(delays) >= 1.0
    assert max(delays) > 100.0


# Retry-After -----------------------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 27, 2, 0, 0, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Fri, 27 Nov 2026 02:00:30 GMT", 30.0),  # IMF-fixdate
        ("Friday, 27-Nov-26 02:01:00 GMT", 60.0),  # obsolete RFC 850
        ("Fri Nov 27 02:00:05 2026", 5.0),  # obsolete asctime
        ("Fri, 27 Nov 2026 01:00:00 GMT", 0.0),  # in the past: now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("٣", None),  # a non-ASCII digit is not delta-seconds
        ("Fri, 27 Nov 99999 02:00:30 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@given(st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_http_date_round_trips_to_seconds_from_now(when: dt.datetime) -> None:
    when = when.replace(microsecond=0, tzinfo=dt.UTC)
    header = email.utils.format_datetime(when, usegmt=True)
    assert parse_retry_after(header, NOW) == max(0.0, when.timestamp() - NOW)


@given(st.text(max_size=40))
def test_parse_retry_after_never_raises_and_never_goes_negative(text: str) -> None:
    result = parse_retry_after(text, NOW)
    assert result is None or result >= 0.0


# Start-up and poll jitter ----------------------------------------------------------------------


@given(max_s=st.floats(0, 3600, allow_nan=False), seed=st.integers(0, 2**32))
def test_startup_delay_within_range(max_s: float, seed: int) -> None:
    assert 0.0 <= startup_delay(max_s, random.Random(seed)) <= max_s


def test_startup_delay_spreads_a_hall() -> None:
    rng = random.Random(11)
    delays = [startup_delay(60.0, rng) for _ in range(1000)]
    per_ten_seconds = [sum(1 for d in delays if k <= d < k + 10) for k in range(0, 60, 10)]
    assert all(120 <= n <= 215 for n in per_ten_seconds), per_ten_seconds


@given(
    interval=st.floats(0, 10_000, allow_nan=False),
    spread=st.floats(0, 1, allow_nan=False),
    seed=st.integers(0, 2**32),
)
def test_jittered_within_spread(interval: float, spread: float, seed: int) -> None:
    value = jittered(interval, spread, random.Random(seed))
    assert interval * (1 - spread) <= value <= interval * (1 + spread)


def test_jittered_rejects_a_spread_over_one() -> None:
    with pytest.raises(ValueError):
        jittered(300.0, 1.5)


# Circuit breaker -------------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_only() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(3, 60, 300, clock=clock, rng=random.Random(1))
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # not consecutive any more
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    until = breaker.open_until()
    assert until is not None
    assert clock.now + 60 <= until <= clock.now + 300


def test_half_open_lets_one_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 10, 20, clock=clock, rng=random.Random(2))
    breaker.record_failure()
    until = breaker.open_until()
    assert until is not None
    clock.now = until - 0.001
    assert not breaker.allow()
    clock.now = until
    assert breaker.state == "half_open"
    assert breaker.open_until() is None
    assert breaker.allow()  # the probe
    assert not breaker.allow()
    assert not breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.allow()
    assert breaker.allow()


def test_failed_probe_reopens_for_a_new_random_time() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(2, 10, 20, clock=clock, rng=random.Random(3))
    breaker.record_failure()
    breaker.record_failure()
    openings = []
    for _ in range(20):
        until = breaker.open_until()
        assert until is not None
        openings.append(until - clock.now)
        clock.now = until
        assert breaker.allow()
        breaker.record_failure()  # one failed probe re-opens; no need for 2 more
        assert breaker.state == "open"
    assert all(10 <= o <= 20 for o in openings)
    assert len(set(openings)) == len(openings)


def test_a_probe_that_never_reports_is_presumed_lost() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 10, 20, clock=clock, rng=random.Random(4))
    breaker.record_failure()
    until = breaker.open_until()
    assert until is not None
    clock.now = until
    assert breaker.allow()
    clock.now = until + 19.9
    assert not breaker.allow()
    clock.now = until + 20
    assert breaker.allow()


def test_only_one_thread_gets_the_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 5, 5, clock=clock, rng=random.Random(5))
    breaker.record_failure()
    clock.now += 5
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        results.append(breaker.allow())

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


@pytest.mark.parametrize(("failures", "low", "high"), [(0, 1, 2), (3, 5, 1), (3, -1, 2)])
def test_breaker_rejects_nonsense(failures: int, low: float, high: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failures, low, high)


class BreakerModel(RuleBasedStateMachine):
    """The breaker against a plain model of the state machine the relay relies on."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.breaker = CircuitBreaker(3, 10, 50, clock=self.clock, rng=random.Random(0))
        self.state = "closed"
        self.consecutive = 0
        self.until: float | None = None
        self.probe_out = False
        self.probe_at = 0.0

    def _refresh(self) -> None:
        if self.state == "open" and self.until is not None and self.clock.now >= self.until:
            self.state = "half_open"

    @rule(seconds=st.floats(0, 80, allow_nan=False))
    def wait(self, seconds: float) -> None:
        self.clock.now += seconds
        self._refresh()
        if self.probe_out and self.clock.now - self.probe_at >= 50:
            self.probe_out = False

    @rule()
    def allow(self) -> None:
        allowed = self.breaker.allow()
        if self.state == "closed":
            assert allowed
        elif self.state == "open":
            assert not allowed
        else:
            assert allowed == (not self.probe_out)
            if allowed:
                self.probe_out = True
                self.probe_at = self.clock.now

    @rule()
    def success(self) -> None:
        self.breaker.record_success()
        self.state, self.consecutive, self.until, self.probe_out = "closed", 0, None, False

    @rule()
    def failure(self) -> None:
        self.breaker.record_failure()
        self.consecutive += 1
        if self.state == "half_open" or (self.state == "closed" and self.consecutive >= 3):
            self.state = "open"
            self.probe_out = False
            self.until = self.breaker.open_until()
            assert self.until is not None
            assert self.clock.now + 10 <= self.until <= self.clock.now + 50

    @invariant()
    def same_state(self) -> None:
        assert self.breaker.state == self.state
        if self.state == "open":
            assert self.breaker.open_until() == self.until
        else:
            assert self.breaker.open_until() is None

    @precondition(lambda self: self.state == "open")
    @rule()
    def never_allows_while_open(self) -> None:
        assert not self.breaker.allow()


TestBreakerModel = BreakerModel.TestCase
TestBreakerModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


# The policy as the relay builds it -------------------------------------------------------------


def test_policy_from_config() -> None:
    config = SyncConfig(
        backoff_base_s=1.0,
        backoff_cap_s=30.0,
        breaker_failures=2,
        breaker_open_min_s=5.0,
        breaker_open_max_s=6.0,
        startup_delay_max_s=9.0,
        status_poll_s=100.0,
    )
    clock = FakeClock()
    policy = RetryPolicy.from_config(config, rng=random.Random(9), clock=clock)
    assert policy.backoff.ceiling(0) == 1.0
    assert policy.backoff.ceiling(10) == 30.0
    assert 0 <= policy.startup_delay() <= 9.0
    assert 80.0 <= policy.poll_interval() <= 120.0
    assert policy.retry_delay(0, 7.0) >= 7.0
    policy.breaker.record_failure()
    policy.breaker.record_failure()
    until = policy.breaker.open_until()
    assert until is not None
    assert clock.now + 5.0 <= until <= clock.now + 6.0


def test_policy_with_a_seed_is_reproducible() -> None:
    a = RetryPolicy.from_config(SyncConfig(), rng=random.Random(42))
    b = RetryPolicy.from_config(SyncConfig(), rng=random.Random(42))
    assert [a.retry_delay(n) for n in range(10)] == [b.retry_delay(n) for n in range(10)]
