"""kill -9 of the kiosk at every named crash point and at random moments: 0 lost, 0 duplicated.

Kiosk processes are forked children of this test (imports already warm): each one starts up,
takes applications through the real applicant flow (recording the ids it confirmed to the
applicant, fsynced), rates them and runs a relay pass against `kiosk platform serve` running in
its own process. A crash point SIGKILLs the child ($KIOSK_CRASH_AT); random kills come from
this process. The next child is the restarted kiosk. After each batch the outbox is drained
without faults and the invariant is checked against `kiosk platform list`.
"""

from __future__ import annotations

import dataclasses
import random
import zlib
from collections.abc import Iterator

import pytest
from sync_harness import (
    KillTally,
    Kiosk,
    PlatformProcess,
    check_invariant,
    discover_crash_points,
    drain,
    kiosk_cycle,
    local_problems,
    make_kiosk,
    run_children,
)

KIOSKS = 3  # kiosk processes at once, each with its own data directory
ROUNDS = 2  # each (point, hit) variant is struck this many times on every kiosk

# (hit number, applications per cycle) for each crash point. Hit N > 1 strikes later in a
# sequence (the third page's fsync, the second application's commit, the seventh chunk).
VARIANTS: dict[str, tuple[tuple[int, int], ...]] = {
    "put.before-fsync": ((1, 1), (2, 1), (4, 1)),
    "put.after-fsync": ((1, 1), (3, 1), (5, 1)),
    "put.after-rename": ((1, 1), (2, 1), (6, 1)),
    "submit.files-written": ((1, 1), (2, 2)),
    "submit.before-commit": ((1, 1), (2, 2)),
    "submit.after-commit": ((1, 1), (2, 2)),
    "relay.before-put": ((1, 1), (2, 2)),
    "relay.after-put": ((1, 1), (2, 2)),
    "relay.mid-chunk": ((1, 1), (3, 1), (7, 2)),
    "relay.before-commit": ((1, 1), (2, 2)),
    "relay.after-commit-response": ((1, 1), (2, 2)),
    "relay.after-accept": ((1, 1), (2, 2)),
    "relay.rating.after-put": ((1, 1), (2, 2)),
    "relay.status.after-fetch": ((1, 1),),
    "status.after-commit": ((1, 1),),
    "purge.after-commit": ((1, 1),),
    "purge.mid-delete": ((1, 1), (3, 1)),
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    # --demo moves committed applications along, so the status feed has changes to apply.
    with PlatformProcess(tmp_path_factory.mktemp("platform"), demo_interval_s=0.3) as p:
        yield p


@pytest.fixture(scope="module")
def kiosks(platform: PlatformProcess, tmp_path_factory: pytest.TempPathFactory) -> list[Kiosk]:
    # One set of kiosks lives through every test here, as one hall's kiosks live through
    # hundreds of power cuts; retention 0 makes every pass purge, so purge points are reached.
    root = tmp_path_factory.mktemp("kiosks")
    return [make_kiosk(root, platform, retention_days=0.0) for _ in range(KIOSKS)]


def _settle(kiosks: list[Kiosk], *, cli: bool = False) -> None:
    for kiosk in kiosks:
        drain(kiosk)
    for kiosk in kiosks:
        check_invariant(kiosk, cli=cli).assert_ok()


def _after_kill(kiosks: list[Kiosk], label: str) -> None:
    """Right after the kill, before any recovery: nothing confirmed is missing locally, and the
    database and files verify."""
    for kiosk in kiosks:
        with kiosk.storage() as storage:
            problems = local_problems(kiosk.data_dir, storage)
            known = {app.id for app in storage.list_applications()}
        lost = [app_id for app_id in kiosk.confirmed() if app_id not in known]
        assert not problems and not lost, (label, kiosk.data_dir.name, problems, lost)


def test_every_crash_point_in_the_tree_is_struck() -> None:
    found = discover_crash_points()
    assert len(found) >= 15, found  # the scan itself works
    assert sorted(VARIANTS) == found, "a crash point without kill tests, or a stale one"


@pytest.mark.parametrize("point", sorted(VARIANTS))
def test_kill_at_named_point(point: str, kiosks: list[Kiosk]) -> None:
    tally = KillTally()
    for round_ in range(ROUNDS):
        for nth, applications in VARIANTS[point]:
            target = point if nth == 1 else f"{point}#{nth}"
            jobs = [
                (
                    kiosk_cycle(
                        k,
                        crash_at=target,
                        applications=applications,
                        seed=zlib.crc32(f"{target} {round_}".encode()),
                    ),
                    None,
                )
                for k in kiosks
            ]
            for result in run_children(jobs, timeout_s=60):
                tally.add(target, result)
            _after_kill(kiosks, target)
    expected = ROUNDS * len(VARIANTS[point]) * len(kiosks)
    # Every variant is reachable by construction: a cycle that ended by itself means the point
    # moved or the workload no longer reaches it.
    assert tally.kills == expected, tally
    _settle(kiosks)


def test_kill_at_random_moments(kiosks: list[Kiosk]) -> None:
    rng = random.Random(20261127)
    tally = KillTally()
    for _ in range(25):
        jobs = [
            (
                kiosk_cycle(
                    k, applications=rng.randint(1, 2), seed=rng.getrandbits(32), forever=True
                ),
                rng.uniform(0.02, 1.2),
            )
            for k in kiosks
        ]
        for result in run_children(jobs, timeout_s=60):
            tally.add("random", result)
        _after_kill(kiosks, "random")
    assert tally.kills == 25 * len(kiosks) and tally.finished == 0
    # The last check goes through `kiosk platform list --json` itself.
    _settle(kiosks, cli=True)


def test_the_invariant_checker_sees_lost_duplicated_and_foreign_applications(
    kiosks: list[Kiosk],
) -> None:
    # The checker must be able to fail: a confirmed id the kiosk never stored is lost.
    kiosk = kiosks[0]
    entries = kiosk.platform.committed(cli=False)
    with kiosk.confirmed_file.open("a", encoding="ascii") as f:
        f.write("01ZZZZZZZZZZZZZZZZZZZZZZZZ\n")
    try:
        report = check_invariant(kiosk, entries=entries)
        assert report.lost == ["01ZZZZZZZZZZZZZZZZZZZZZZZZ"]
        doubled = [*entries, entries[0]]
        report = check_invariant(kiosk, entries=doubled)
        assert entries[0].id in report.duplicated
        stranger = dataclasses.replace(entries[0], id="01YYYYYYYYYYYYYYYYYYYYYYYY")
        report = check_invariant(kiosk, entries=[*entries, stranger])
        assert report.foreign == [stranger.id]
    finally:
        lines = kiosk.confirmed_file.read_text(encoding="ascii").splitlines()
        kiosk.confirmed_file.write_text(
            "".join(f"{line}\n" for line in lines if not line.startswith("01ZZZZ")),
            encoding="ascii",
        )
    check_invariant(kiosk, entries=entries).assert_ok()
