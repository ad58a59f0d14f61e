"""Admission control: a token bucket in front of the signed endpoints, and a randomised
`Retry-After` whose window grows with the number of kiosks already told to come back, so a
hall of kiosks returning after an outage spreads out instead of arriving in step."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


class Admission:
    """`rate` requests per second with a burst of rate/4; `admit()` says yes or how long to wait.

    Refused requests are booked into future seconds, at most rate/2 returning in any one
    second, so returns arrive below the capacity however large the herd.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        # A quarter second's worth: a full bucket plus a second's refill would admit 1.25x
        # the rate in one second, where a burst of `rate` would admit 2x.
        self.burst = max(1.0, self.rate / 4)
        self._clock = clock
        self._rng = rng or random.Random()
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()
        self._returns: dict[int, int] = {}  # whole second → refused requests told to return then
        self._return_quota = max(1.0, self.rate / 2)
        self.admitted = 0
        self.refused = 0
        self.admitted_per_second: dict[int, int] = {}

    def admit(self) -> int | None:
        """None when the request may proceed, else the Retry-After in whole seconds."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            second = int(now)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self.admitted += 1
                if second not in self.admitted_per_second:
                    # Keep the last hour: enough to read a herd's peak, bounded for a long run.
                    for old in [s for s in self.admitted_per_second if s < second - 3600]:
                        del self.admitted_per_second[old]
                self.admitted_per_second[second] = self.admitted_per_second.get(second, 0) + 1
                return None
            for past in [s for s in self._returns if s <= second]:
                del self._returns[past]
            # A calendar of returns: each refused request is told to come back in a second
            # that has room, at most half the rate returning in any one second (the other
            # half is for requests that were never refused). Random among the first few
            # seconds with room, so the returns do not line up either.
            room: list[int] = []
            wait = 1
            while len(room) < 3:
                if self._returns.get(second + wait, 0) < self._return_quota:
                    room.append(wait)
                wait += 1
            wait = self._rng.choice(room)
            self._returns[second + wait] = self._returns.get(second + wait, 0) + 1
            self.refused += 1
            return wait

    def backlog(self) -> int:
        """Refused requests told to come back later than now."""
        with self._lock:
            second = int(self._clock())
            return sum(n for s, n in self._returns.items() if s > second)
