"""Privacy canary: a planted ID number, name and address go through the real applicant flow,
are delivered and purged; afterwards not one byte of the kiosk's data directory (database,
-wal, -shm, attachments, logs, keys) holds them, in UTF-8, UTF-16-LE or GB 18030.

The plaintext is only ever sealed to the platform (docs/sync-protocol.md, Sealing), so this
guards against a leak: a log line, a summary or receipt that is not masked, a temp file left
behind, a deleted row still readable in a free page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sync_harness import (
    PlatformProcess,
    check_invariant,
    drain,
    kiosk_intake,
    make_kiosk,
    walk_to_review,
)

from kiosk.demo import DEMO_CARDS, DEMO_LICENCES
from kiosk.identity import IdentityDocument, check_digit, validate_id_number
from kiosk.logs import setup_logging
from sync.protocol import load_private_pem, open_sealed, payload_info

_FIRST17 = "33010219770707513"
CANARY_ID = _FIRST17 + check_digit(_FIRST17)
CANARY_NAME = "司马金丝雀"
CANARY_ADDRESS = "浙江省杭州市上城区金丝雀巷 77 号"
CANARY_CARD = dataclasses.replace(
    DEMO_CARDS["adult"][1],
    name=CANARY_NAME,
    id_number=CANARY_ID,
    sex="女",
    birth_date=dt.date(1977, 7, 7),
    address=CANARY_ADDRESS,
)


def needles(*values: str) -> dict[str, bytes]:
    """Each value as the bytes it would be on disk in the encodings a kiosk might use."""
    found: dict[str, bytes] = {}
    for value in values:
        for encoding in ("utf-8", "utf-16-le", "gb18030"):
            data = value.encode(encoding)
            found.setdefault(f"{value!r} in {encoding}", data)
    return found


def scan(root: Path, patterns: dict[str, bytes]) -> list[str]:
    """'<file>: <what>' for every pattern found in any file under `root`."""
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path.relative_to(root)}: {what}" for what, b in patterns.items() if b in data]
    return hits


@pytest.fixture
def kiosk_logging() -> Iterator[None]:
    """Let setup_logging() do what it does in the kiosk, then give pytest its handlers back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def test_the_canary_is_a_new_valid_person() -> None:
    assert validate_id_number(CANARY_ID) == CANARY_ID
    assert CANARY_ID not in DEMO_LICENCES
    assert all(card.id_number != CANARY_ID for _, card in DEMO_CARDS.values())
    assert isinstance(CANARY_CARD, IdentityDocument)


def test_nothing_of_the_applicant_is_left_after_purge(tmp_path: Path, kiosk_logging: None) -> None:
    with PlatformProcess(tmp_path / "platform", demo_interval_s=None) as platform:
        kiosk = make_kiosk(tmp_path, platform, retention_days=0.0)
        setup_logging(kiosk.data_dir / "logs")
        with kiosk.storage(collect_orphans=True) as storage, kiosk.client() as client:
            # The e-licence look-up goes to the platform over HTTP, as in the hall.
            intake = kiosk_intake(kiosk, storage, licences=client)
            flow = walk_to_review(intake, CANARY_CARD, "social_security_card", seed=1)
            flow.next()
            assert flow.session.result is not None, flow.session.notice
            app_id = flow.session.result.application_id
            # The canary really went in: the sealed payload opens, at the platform, to it.
            seal_key = load_private_pem((platform.data_dir / "keys" / "seal.pem").read_bytes())
            assert isinstance(seal_key, X25519PrivateKey)
            plain = open_sealed(seal_key, storage.sealed_payload(app_id), payload_info(app_id))
            identity = json.loads(plain)["identity"]
            assert (identity["id_number"], identity["name"]) == (CANARY_ID, CANARY_NAME)
            flow.finish()
        drain(kiosk)  # delivers, then purges at once (retention 0)
        check_invariant(kiosk).assert_ok()
        with kiosk.storage() as storage:
            assert storage.get(app_id).purged
    for handler in logging.getLogger().handlers:
        handler.flush()  # the kiosk's log file, before reading it
    log_text = "\n".join(p.read_text("utf-8") for p in (kiosk.data_dir / "logs").glob("*.log*"))
    assert app_id in log_text  # the scan covers a log that recorded this application
    assert (kiosk.data_dir / "kiosk.db").stat().st_size > 0
    assert scan(kiosk.data_dir, needles(CANARY_ID, CANARY_NAME, CANARY_ADDRESS)) == []


def test_the_scan_finds_a_planted_canary(tmp_path: Path) -> None:
    # Positive controls: the same scan, on places where the canary is.
    logger = logging.getLogger("canary-control")
    handler = logging.FileHandler(tmp_path / "kiosk.log", encoding="utf-8")
    logger.addHandler(handler)
    try:
        logger.warning("applicant %s %s", CANARY_NAME, CANARY_ID)
    finally:
        logger.removeHandler(handler)
        handler.close()
    (tmp_path / "qt-settings.ini").write_bytes(CANARY_ADDRESS.encode("utf-16-le"))
    # A row deleted without secure_delete stays readable in the file's free pages.
    conn = sqlite3.connect(tmp_path / "scratch.db")
    conn.execute("PRAGMA secure_delete=OFF")
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.execute("INSERT INTO t VALUES (?)", [CANARY_ID * 3])
    conn.commit()
    conn.execute("DELETE FROM t")
    conn.commit()
    conn.close()
    hits = scan(tmp_path, needles(CANARY_ID, CANARY_NAME, CANARY_ADDRESS))
    assert f"kiosk.log: {CANARY_NAME!r} in utf-8" in hits
    assert f"kiosk.log: {CANARY_ID!r} in utf-8" in hits
    assert f"qt-settings.ini: {CANARY_ADDRESS!r} in utf-16-le" in hits
    assert f"scratch.db: {CANARY_ID!r} in utf-8" in hits
