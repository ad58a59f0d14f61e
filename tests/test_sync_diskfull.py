"""Disk full or an fsync I/O error at submission: the applicant is told it failed (and nothing
half-saved is kept), earlier applications stay intact, and the kiosk keeps working once the
fault is gone: the same session submits, later ones too, and everything is delivered.

A real full disk is a small tmpfs in a private mount namespace (`unshare -m`, needs root or
CAP_SYS_ADMIN); the fsync errors are injected into os.fsync.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_harness import (
    InProcessPlatform,
    Kiosk,
    check_invariant,
    drain,
    kiosk_intake,
    make_kiosk,
    walk_to_review,
)

from kiosk.application import Status
from kiosk.config import load_config
from kiosk.demo import DEMO_CARDS
from kiosk.flow import Step
from kiosk.storage import Storage
from sync.simulate import build_intake
from sync.simulated import SimulatedPlatform

CARD = DEMO_CARDS["adult"][1]
THING = "social_security_card"
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessPlatform]:
    with InProcessPlatform(tmp_path_factory.mktemp("platform")) as p:
        yield p


def _submit(kiosk: Kiosk, storage: Storage, seed: int) -> str:
    flow = walk_to_review(kiosk_intake(kiosk, storage), CARD, THING, seed=seed)
    flow.next()
    assert flow.session.result is not None, flow.session.notice
    return flow.session.result.application_id


@pytest.mark.parametrize(
    ("code", "notice"), [(errno.EIO, "submit_failed"), (errno.ENOSPC, "submit_disk_full")]
)
def test_an_fsync_error_at_submission_is_told_and_harms_nothing(
    tmp_path: Path,
    platform: InProcessPlatform,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    notice: str,
) -> None:
    kiosk = make_kiosk(tmp_path, platform)
    with kiosk.storage(collect_orphans=True) as storage:
        earlier = [_submit(kiosk, storage, seed) for seed in (1, 2)]
        before = {app_id: storage.sealed_payload(app_id) for app_id in earlier}
        flow = walk_to_review(kiosk_intake(kiosk, storage), CARD, THING, seed=3)
        real_fsync = os.fsync

        def failing_fsync(fd: int) -> None:
            raise OSError(code, os.strerror(code))

        with monkeypatch.context() as patch:
            patch.setattr(os, "fsync", failing_fsync)
            flow.next()
        assert flow.session.result is None
        assert flow.session.notice is not None and flow.session.notice.key == notice
        assert flow.step is Step.REVIEW  # the applicant can try again
        assert os.fsync is real_fsync
        assert storage.verify() == []
        assert [a.id for a in storage.list_applications()] == earlier
        assert {app_id: storage.sealed_payload(app_id) for app_id in earlier} == before
        assert kiosk.confirmed() == earlier  # the failed one was never confirmed
        # The fault is gone: the same session goes through, and so does the next applicant.
        flow.next()
        assert flow.session.result is not None and flow.step is Step.RECEIPT
        later = _submit(kiosk, storage, seed=4)
        assert storage.verify() == []
        assert {storage.get(app_id).status for app_id in [*earlier, later]} == {Status.QUEUED}
    drain(kiosk)
    check_invariant(kiosk).assert_ok()


def full_disk_child(data_dir: str) -> None:
    """Runs inside the private mount namespace, on the small tmpfs: prints a JSON report."""
    config = load_config(None, data_dir)
    storage = Storage(Path(data_dir), hall_code="HZ01", kiosk_code="K01")
    licences = SimulatedPlatform({})
    intake = build_intake(config, storage, licences, licences.sealer)
    confirmed: list[str] = []
    intake.on_saved = confirmed.append

    def submit(seed: int) -> dict[str, object]:
        flow = walk_to_review(intake, CARD, THING, seed=seed)
        flow.next()
        result = flow.session.result
        notice = flow.session.notice
        return {
            "id": None if result is None else result.application_id,
            "notice": None if notice is None else notice.key,
            "step": flow.step.name,
        }

    report: dict[str, object] = {"first": submit(1)}
    filler = Path(data_dir) / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            report["fill_errno"] = exc.errno
    report["full"] = submit(2)
    report["verify_full"] = storage.verify()
    report["ids_full"] = [a.id for a in storage.list_applications()]
    filler.unlink()
    report["after"] = submit(3)
    report["verify_after"] = storage.verify()
    report["ids_after"] = [a.id for a in storage.list_applications()]
    report["confirmed"] = confirmed
    storage.close()
    print(json.dumps(report))


def test_a_really_full_disk_at_submission(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]); import test_sync_diskfull as t; "
        "t.full_disk_child(sys.argv[1])"
    )
    script = 'mount -t tmpfs -o size=3m tmpfs "$1" || exit 97; exec "$2" -c "$3" "$1" "$4"'
    done = subprocess.run(
        [unshare, "-m", "sh", "-c", script, "sh", str(mount), sys.executable, code, str(TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode == 97 or "unshare failed" in done.stderr:
        pytest.skip(f"no private tmpfs here (needs root): {done.stderr.strip()[-200:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    first, full, after = report["first"], report["full"], report["after"]
    assert report["fill_errno"] == errno.ENOSPC
    assert first["id"] and first["step"] == "RECEIPT"
    assert full == {"id": None, "notice": "submit_disk_full", "step": "REVIEW"}
    assert report["verify_full"] == [] and report["ids_full"] == [first["id"]]
    assert after["id"] and after["step"] == "RECEIPT"
    assert report["verify_after"] == [] and report["ids_after"] == [first["id"], after["id"]]
    assert report["confirmed"] == [first["id"], after["id"]]
