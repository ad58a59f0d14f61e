"""Every test runs headless unless the environment chose a platform (make test sets it too)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
