"""Named crash points: the kill -9 tests make the kiosk die exactly where durability matters.

`$KIOSK_CRASH_AT` names a point (`relay.after-put`), optionally with the hit on which to die
(`put.after-fsync#3`: the third time that point is reached). Unset, a crash point costs one
dictionary look-up. The process gets SIGKILL: no finally blocks, no atexit, no flushing, as when
the power cord is pulled from the software's point of view.
"""

from __future__ import annotations

import os
import signal
import threading

ENV_VAR = "KIOSK_CRASH_AT"

_hits: dict[str, int] = {}
_lock = threading.Lock()


def crashpoint(name: str) -> None:
    """Die here if $KIOSK_CRASH_AT names this point (and this is the named hit)."""
    target = os.environ.get(ENV_VAR)
    if not target:
        return
    point, _, nth = target.partition("#")
    if point != name:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        count = _hits[name]
    if count >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
