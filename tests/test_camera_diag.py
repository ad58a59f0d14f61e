"""`kiosk diag camera`: the simulated camera, a folder of frames, a camera that is not there."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from devices.synthetic_docs import Scene, render
from ui.cli import main


def run_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str
) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["diag", "camera", *argv, "--json", "--data-dir", str(tmp_path / "data")])
    return code, json.loads(capsys.readouterr().out)


def test_the_simulated_camera_shows_a_page_and_takes_a_still(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = tmp_path / "snap.jpg"
    code, report = run_json(
        capsys, tmp_path, "--camera", "simulated", "--capture", "--save", str(snapshot)
    )
    assert code == 0 and report["ok"] is True, report
    assert (report["width"], report["height"]) == (1280, 960)
    assert 5.0 <= float(str(report["fps"])) <= 17.0  # paced like a real stream (~15/s)
    assert report["blank"] is False and float(str(report["sharpness"])) > 50
    page = report["page"]
    assert isinstance(page, dict) and page["found"] is True and len(page["corners"]) == 4
    still = report["still"]
    assert isinstance(still, dict) and still["jpeg_bytes"] > 50_000
    assert still["height"] / still["width"] == pytest.approx(297 / 210, rel=0.01)
    frame = cv2.imread(str(snapshot))
    assert frame is not None and frame.shape[:2] == (960, 1280)


def test_a_blank_picture_is_a_problem_and_no_page_is_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:02d}.png"), np.full((600, 800, 3), 40, np.uint8))
    code, report = run_json(capsys, tmp_path, "--camera", str(frames), "--seconds", "0.3")
    assert code == 1 and report["ok"] is False
    assert report["blank"] is True
    assert any("blank" in str(p) for p in report["problems"])  # type: ignore[attr-defined]
    page = report["page"]
    assert isinstance(page, dict) and page["found"] is False and page["issues"] == ["no_page"]


def test_a_page_on_a_folder_source_is_found_where_it_lies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = render(Scene(seed=3, background="wood", document="a4_text", angle_deg=6.0))
    assert scene.corners is not None
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "00.png"), scene.image)
    _, report = run_json(capsys, tmp_path, "--camera", str(frames), "--seconds", "0.2")
    page = report["page"]
    assert isinstance(page, dict) and page["found"] is True
    found = np.array(page["corners"], np.float64)
    diagonal = float(np.hypot(*scene.image.shape[:2]))
    assert np.abs(found - scene.corners).max() < 0.02 * diagonal


def test_a_missing_camera_says_so_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_json(capsys, tmp_path, "--camera", str(tmp_path / "no-such-video.mp4"))
    assert code == 1 and report["ok"] is False
    assert "no picture" in str(report["error"])
