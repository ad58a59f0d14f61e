"""The hash-chained audit log: appends, tamper detection (modified, removed, reordered, cut off
the end) by `verify()` and by `kiosk audit verify`, and two processes appending at once."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.audit import GENESIS, AuditLog, canonical, clean_details
from kiosk.config import load_config
from ui import admin_cli
from ui.cli import _common

CANARY = "110105194912310021"


class FakeClock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path, clock=FakeClock()) as log:
        yield log


def fill(audit: AuditLog, n: int = 6) -> None:
    for i in range(n):
        audit.append(f"S{i % 3:03d}", "reprint", {"application_id": f"app-{i}", "copy": i})


def kiosk(data_dir: Path, *argv: str) -> int:
    """`kiosk <argv>` through the admin commands' own parser, as ui/cli.py adds them."""
    parser = argparse.ArgumentParser(prog="kiosk")
    sub = parser.add_subparsers(dest="command")
    admin_cli.add_parser(sub, _common)
    args = parser.parse_args([*argv, "--data-dir", str(data_dir)])
    return int(args.handler(args, load_config(None, str(data_dir))))


def tamper(data_dir: Path, *statements: str) -> None:
    db = sqlite3.connect(data_dir / "audit.db")
    with db:
        for statement in statements:
            db.execute(statement)
    db.close()


def test_entries_chain_by_the_hash_of_their_canonical_json(audit: AuditLog) -> None:
    first = audit.append("S001", "login", {"method": "pin", "role": "staff"})
    second = audit.append("system", "diagnostics", {"ok": True, "failed": []})
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS and second.prev_hash == first.hash
    body = {k: v for k, v in second.as_json().items() if k != "hash"}
    assert second.hash == hashlib.sha256(canonical(body)).hexdigest()
    assert second.at.endswith("+08:00") and second.at_utc.endswith("Z")
    assert second.at_utc.startswith("2026-05-04T01:30:02")  # 09:30:02 at +08:00
    assert [e.as_json() for e in audit.entries()] == [first.as_json(), second.as_json()]
    assert audit.verify() is None
    assert audit.head() == (2, second.hash)


def test_unknown_actions_and_actors_are_refused(audit: AuditLog) -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.append("S001", "delete_everything")
    with pytest.raises(ValueError, match="actor"):
        audit.append("S 001\n", "login")
    assert audit.count() == 0


def test_details_never_hold_names_or_full_numbers(audit: AuditLog) -> None:
    for key in ("name", "applicant_name", "id_number", "phone", "address", "pin"):
        with pytest.raises(ValueError, match="personal data"):
            clean_details({key: "x"})
    entry = audit.append("S001", "manual_identity", {"note": f"typed {CANARY} by hand"})
    assert entry.details == {"note": "typed 1101**********0021 by hand"}
    raw = b"".join(p.read_bytes() for p in audit.data_dir.glob("audit.db*"))
    assert CANARY.encode() not in raw
    assert audit.verify() is None


def test_entries_since_a_time(audit: AuditLog) -> None:
    fill(audit, 4)
    third = audit.entries()[2]
    since = dt.datetime.fromisoformat(third.at)
    assert [e.seq for e in audit.entries(since=since)] == [3, 4]
    assert [e.seq for e in audit.entries(limit=1)] == [4]


@pytest.mark.parametrize(
    ("statements", "seq", "kind", "words"),
    [
        (
            ["UPDATE entries SET actor = 'S999' WHERE seq = 3"],
            3,
            "modified",
            "does not match its hash",
        ),
        (
            [
                """UPDATE entries SET details = '{"application_id":"app-X","copy":2}'
                WHERE seq = 3"""
            ],
            3,
            "modified",
            "does not match its hash",
        ),
        (["DELETE FROM entries WHERE seq = 4"], 4, "removed", "from entry 3 to entry 5"),
        (["DELETE FROM entries WHERE seq = 1"], 1, "removed", "starts at entry 2"),
        (
            [
                "UPDATE entries SET seq = -3 WHERE seq = 3",
                "UPDATE entries SET seq = 3 WHERE seq = 4",
                "UPDATE entries SET seq = 4 WHERE seq = -3",
            ],
            3,
            "reordered",
            "written as entry 4",
        ),
        (["DELETE FROM entries WHERE seq >= 5"], 5, "truncated", "ends at entry 4"),
    ],
    ids=["actor", "details", "removed", "first-removed", "swapped", "truncated"],
)
def test_tampering_is_named_by_verify_and_by_the_command(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    statements: list[str],
    seq: int,
    kind: str,
    words: str,
) -> None:
    with AuditLog(tmp_path, clock=FakeClock()) as audit:
        fill(audit)
        assert audit.verify() is None
    assert kiosk(tmp_path, "audit", "verify") == 0
    capsys.readouterr()
    tamper(tmp_path, *statements)
    with AuditLog(tmp_path) as audit:
        problem = audit.verify()
    assert problem is not None
    assert (problem.seq, problem.kind) == (seq, kind)
    assert words in problem.detail
    assert kiosk(tmp_path, "audit", "verify") == 1
    assert f"entry {seq}:" in capsys.readouterr().err
    assert kiosk(tmp_path, "audit", "verify", "--json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False and document["problem"]["seq"] == seq


def test_an_entry_rehashed_after_a_change_breaks_the_next_link(audit: AuditLog) -> None:
    fill(audit)
    entry = audit.entries()[2]
    body = {**entry.body(), "actor": "S999"}
    forged = hashlib.sha256(canonical(body)).hexdigest()
    tamper(
        audit.data_dir,
        f"UPDATE entries SET actor = 'S999', hash = '{forged}' WHERE seq = 3",
    )
    problem = audit.verify()
    assert problem is not None and (problem.seq, problem.kind) == (4, "broken_chain")


def test_cutting_the_tail_and_the_head_file_is_found(audit: AuditLog) -> None:
    fill(audit)
    tamper(audit.data_dir, "DELETE FROM entries WHERE seq = 6")
    problem = audit.verify()
    assert problem is not None and (problem.seq, problem.kind) == (6, "truncated")
    audit.head_path.unlink()
    problem = audit.verify()
    assert problem is not None and problem.kind == "truncated" and "audit.head" in problem.detail


def test_a_head_that_trails_after_a_crash_is_not_an_alarm(audit: AuditLog) -> None:
    fill(audit, 3)
    head = audit.head_path.read_bytes()
    audit.append("S001", "logout", {"reason": "user"})
    audit.head_path.write_bytes(head)  # as if the process died before updating the head
    assert audit.verify() is None


def _append_many(data_dir: str, actor: str, n: int, go: Any) -> None:
    with AuditLog(Path(data_dir)) as audit:
        go.wait(30)
        start = time.time()
        for i in range(n):
            audit.append(actor, "requeue", {"application_id": f"{actor}-{i}"})
        span = json.dumps([start, time.time()])
    (Path(data_dir) / f"span-{actor}.json").write_text(span)


def test_two_processes_appending_at_once_keep_one_chain(tmp_path: Path) -> None:
    AuditLog(tmp_path).close()  # created before the race, as the kiosk would have
    context = multiprocessing.get_context("spawn")
    go = context.Barrier(2)
    workers = [
        context.Process(target=_append_many, args=(str(tmp_path), actor, 40, go))
        for actor in ("kiosk", "cli")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with AuditLog(tmp_path) as audit:
        entries = audit.entries()
        assert audit.verify() is None
        assert audit.head() == (80, entries[-1].hash)
    assert [e.seq for e in entries] == list(range(1, 81))
    for actor in ("kiosk", "cli"):
        mine = [e.details["application_id"] for e in entries if e.actor == actor]
        assert mine == [f"{actor}-{i}" for i in range(40)]
    # Both really appended at the same time.
    (a_start, a_end), (b_start, b_end) = (
        json.loads((tmp_path / f"span-{actor}.json").read_text()) for actor in ("kiosk", "cli")
    )
    assert a_start < b_end and b_start < a_end
