"""Idle detection for walk-away applicants: active → countdown → expired, on an injected clock."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class IdlePhase(StrEnum):
    ACTIVE = "active"
    COUNTDOWN = "countdown"  # show the visible countdown; a touch cancels it
    EXPIRED = "expired"  # wipe the session now


@dataclass(frozen=True)
class IdleState:
    phase: IdlePhase
    seconds_left: int  # in the countdown: whole seconds until the wipe


class IdleWatch:
    """Tracks the last touch; `poll(now)` says what the screen should do."""

    def __init__(self, timeout_s: float, countdown_s: float, now: float) -> None:
        self.timeout_s = timeout_s
        self.countdown_s = countdown_s
        self.last_touch = now

    def touch(self, now: float) -> None:
        self.last_touch = now

    def poll(self, now: float) -> IdleState:
        idle = now - self.last_touch
        if idle < self.timeout_s:
            return IdleState(IdlePhase.ACTIVE, math.ceil(self.timeout_s + self.countdown_s - idle))
        left = self.timeout_s + self.countdown_s - idle
        if left > 0:
            return IdleState(IdlePhase.COUNTDOWN, math.ceil(left))
        return IdleState(IdlePhase.EXPIRED, 0)
