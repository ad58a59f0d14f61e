"""The `pcscd` fixture: a pcscd with vsmartcard's vpcd reader for the virtual card.

Import it into a test module (`from pcsc_service import pcscd`) and ask for it with
`pytestmark = pytest.mark.usefixtures("pcscd")` or `request.getfixturevalue("pcscd")`.

A pcscd that is already running is used as it is (and left running) when it offers the vpcd
reader; otherwise `pcscd -f` is started here and stopped by its pid at the end (SIGTERM, then
wait). Missing packages, a pcscd without vpcd, or another virtual-card session holding vpcd
fail the tests with what to do: nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devices.pcsc.virtual_card import PcscDaemon, PcscdError


@pytest.fixture(scope="module")
def pcscd() -> Iterator[PcscDaemon]:
    """pcscd with the vpcd reader, for the test module (the lock on vpcd goes with it)."""
    try:
        daemon = PcscDaemon.ensure()
    except PcscdError as exc:
        pytest.fail(f"these tests need pcscd with the vpcd reader: {exc}", pytrace=False)
    try:
        yield daemon
    finally:
        daemon.stop()
