"""deploy/: the session script and the units keep an admin's "leave kiosk mode" (exit 3) left."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SESSION = ROOT / "deploy" / "kiosk-session"
UNITS = sorted((ROOT / "deploy" / "systemd").glob("hall-kiosk-*.service"))


def run_session(tmp_path: Path, exit_status: int) -> int:
    kiosk = tmp_path / "kiosk"
    kiosk.write_text(
        f'#!/bin/sh\necho "$QT_QPA_PLATFORM $*" > "{tmp_path}/ran"\nexit {exit_status}\n'
    )
    kiosk.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "KIOSK_BIN": str(kiosk), "RUNTIME_DIRECTORY": str(tmp_path)}
    return subprocess.run(["sh", str(SESSION)], env=env, timeout=30).returncode


@pytest.mark.parametrize("status", [0, 1, 3])
def test_the_session_passes_the_status_on_and_marks_only_a_left_kiosk_mode(
    tmp_path: Path, status: int
) -> None:
    assert run_session(tmp_path, status) == status
    assert (tmp_path / "ran").read_text().split() == ["xcb", "run"]
    assert (tmp_path / "left-kiosk-mode").exists() == (status == 3)


def test_both_units_refuse_to_start_while_the_marker_is_there() -> None:
    assert len(UNITS) == 2
    for unit in UNITS:
        text = unit.read_text()
        assert "RuntimeDirectory=hall-kiosk" in text and "RuntimeDirectoryPreserve=yes" in text
        condition = next(
            line.partition("=")[2]
            for line in text.splitlines()
            if line.startswith("ExecCondition=")
        )
        assert "/run/hall-kiosk/left-kiosk-mode" in condition
        assert "deploy/kiosk-session" in text  # the one place that keeps the exit status
