"""What every benchmark module shares: a result row and a median/p95 timer."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

Row = tuple[str, float, float, str]  # what, median ms, p95 ms, notes


def measure(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and 95th percentile in milliseconds, after one warm-up call."""
    fn()  # warm caches (fonts, imports) the way a running kiosk has them warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]
