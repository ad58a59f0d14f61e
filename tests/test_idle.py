"""The walk-away timer: active, then a visible countdown a touch cancels, then the wipe."""

from __future__ import annotations

from kiosk.idle import IdlePhase, IdleWatch


def test_phases_follow_the_clock() -> None:
    watch = IdleWatch(timeout_s=90, countdown_s=15, now=0.0)
    assert watch.poll(89.9).phase is IdlePhase.ACTIVE
    state = watch.poll(90.0)
    assert state.phase is IdlePhase.COUNTDOWN and state.seconds_left == 15
    assert watch.poll(100.2).seconds_left == 5
    assert watch.poll(105.0).phase is IdlePhase.EXPIRED


def test_a_touch_during_the_countdown_starts_over() -> None:
    watch = IdleWatch(timeout_s=90, countdown_s=15, now=0.0)
    assert watch.poll(95.0).phase is IdlePhase.COUNTDOWN
    watch.touch(95.0)
    assert watch.poll(150.0).phase is IdlePhase.ACTIVE
    assert watch.poll(185.0).phase is IdlePhase.COUNTDOWN
