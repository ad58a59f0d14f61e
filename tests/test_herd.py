"""The herd, light: 100 simulated kiosks come back after an outage to a platform admitting 20 req/s.

The full version (1,000 kiosks at 100 req/s) is benchmarks/bench_sync_herd.py.
"""

from __future__ import annotations

from pathlib import Path

from sync.faultproxy import per_second
from sync.herd import Herd, HerdConfig, scaled_sync, sliding_peak


def test_a_hall_returning_after_an_outage_does_not_stampede(tmp_path: Path) -> None:
    config = HerdConfig(
        kiosks=100,
        apps_per_kiosk=1,
        rate=20.0,
        outage_s=4.0,
        sync=scaled_sync(0.06),  # 60 s start-up delay → 3.6 s, breaker 60–300 s → 3.6–18 s
        deadline_s=120.0,
        seed=1,
    )
    result = Herd(config, work_dir=tmp_path).run()
    assert result.breaker_opened > 50  # the outage really tripped the breakers
    assert result.drained, result.summary()
    assert result.committed == result.on_platform == 100
    assert result.duplicates == 0
    assert result.failures == ()
    assert sum(result.per_second) >= 200  # every PUT and commit went through the proxy
    assert result.peak <= 1.5 * config.rate, result.summary()


def test_per_second_and_sliding_peak() -> None:
    times = [0.0, 0.5, 0.9, 1.2, 1.3, 1.4, 3.0]
    assert per_second(times, since=0.0) == [3, 3, 0, 1]
    assert sliding_peak(times) == 5  # 0.5 … 1.4
    assert sliding_peak([]) == 0
