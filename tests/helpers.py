"""Shared test helpers."""

from __future__ import annotations

import datetime as dt

from kiosk.demo import sample_answer as valid_answer
from kiosk.demo import sample_answers as fill_all

TODAY = dt.date(2026, 11, 27)

__all__ = ["TODAY", "fill_all", "valid_answer"]
