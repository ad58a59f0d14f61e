"""The `kiosk` command: help, version, and plain messages instead of tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import __version__
from ui.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "demo", "diag", "--data-dir"):
        assert command in out


def test_a_bad_config_is_a_plain_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "k.toml"
    bad.write_text("[hall]\ncolour = 1\n", encoding="utf-8")
    assert main(["demo", "--config", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert "hall.colour" in capsys.readouterr().err


def test_an_unusable_data_directory_is_a_plain_message(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ui.cli",
            "demo",
            "--data-dir",
            str(blocker / "data"),
            "--exit-after",
            "1",
        ],
        cwd=ROOT,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "cannot open the data directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_starts_headless_and_quits(tmp_path: Path) -> None:
    shot = tmp_path / "home.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ui.cli",
            "demo",
            "--data-dir",
            str(tmp_path / "d"),
            "--exit-after",
            "2",
            "--screenshot",
            str(shot),
        ],
        cwd=ROOT,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    assert (tmp_path / "d" / "kiosk.db").exists()
    assert (tmp_path / "d" / "logs" / "kiosk.log").exists()
