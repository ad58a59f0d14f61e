"""sqlite-utils, imported without making it load numpy.

sqlite-utils imports numpy whenever it is installed, only to map numpy's scalar types to
column types. The kiosk never stores numpy values, and at a cold start numpy and its OpenBLAS
are about 40 MB to read before the first screen (the scanning pipeline loads numpy later, when
the camera starts). So numpy is hidden from that one import; if something loaded numpy before,
nothing changes.
"""

from __future__ import annotations

import sys

_hide = "numpy" not in sys.modules
if _hide:
    sys.modules["numpy"] = None  # type: ignore[assignment]  # import numpy → ImportError
try:
    import sqlite_utils
finally:
    if _hide and "numpy" in sys.modules and sys.modules["numpy"] is None:
        del sys.modules["numpy"]

__all__ = ["sqlite_utils"]
