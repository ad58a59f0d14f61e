"""`kiosk diag camera`: what the document camera (高拍仪) sees, for a technician.

It grabs preview frames for about a second and reports the resolution, the frame rate, a
sharpness score (variance of the Laplacian) and whether the picture is blank; then whether a
page lies on the pad, where, how long finding it took, and what the applicant would be told
about it. `--capture` also takes a full still through the scanning pipeline. `--save FILE`
writes the last preview frame as a JPEG, so that focus and framing can be judged by eye: use
a test page, since whatever lies on the pad is in the picture.

No Qt here; `ui/diagnostics.py` runs `measure` as the overall report's camera check.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.ports import CameraError, DocumentCamera

MIN_FPS = 5.0  # below this the live view stutters and page detection lags
BLANK_STDDEV = 2.0  # a frame this flat is a covered lens or a dead sensor
SAMPLE_S = 1.0


@dataclass
class PageReport:
    found: bool
    detect_ms: float
    corners: list[list[float]] = field(default_factory=list)  # TL TR BR BL, preview pixels
    issues: list[str] = field(default_factory=list)  # the checks' codes, e.g. "blurred"
    sharpness: float = 0.0  # of the straightened page, the blur check's measure
    glare: float = 0.0


@dataclass
class StillReport:
    width: int
    height: int
    jpeg_bytes: int
    seconds: float
    issues: list[str]


@dataclass
class CameraReport:
    camera: str
    ok: bool = False
    width: int = 0
    height: int = 0
    fps: float = 0.0
    sharpness: float = 0.0
    blank: bool = False
    page: PageReport | None = None
    still: StillReport | None = None
    saved: str | None = None
    problems: list[str] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line: the overall report's detail for the camera check."""
        if self.error is not None:
            return self.error
        text = (
            f"{self.width}x{self.height}, {self.fps:.1f} frames/s, sharpness {self.sharpness:.0f}"
        )
        return text + (f": {'; '.join(self.problems)}" if self.problems else "")


def measure(
    camera: DocumentCamera,
    spec: str,
    *,
    seconds: float = SAMPLE_S,
    capture: bool = False,
    save: Path | None = None,
) -> CameraReport:
    """Look through `camera` for `seconds`; never raises for camera trouble."""
    import cv2

    from devices import scanning

    report = CameraReport(spec)
    try:
        first = camera.preview()
        last = first
        frames = 0
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            last = camera.preview()
            frames += 1
    except CameraError as exc:
        report.error = f"no picture: {exc}"
        return report
    report.fps = round(frames / elapsed, 1) if elapsed > 0 else 0.0
    grey = cv2.cvtColor(first.pixels, cv2.COLOR_BGR2GRAY)
    report.sharpness = round(float(cv2.Laplacian(grey, cv2.CV_64F).var()), 1)
    report.blank = float(grey.std()) < BLANK_STDDEV
    report.height, report.width = (int(n) for n in grey.shape[:2])
    if report.fps < MIN_FPS:
        report.problems.append(f"only {report.fps:.1f} frames/s")
    if report.blank:
        report.problems.append("the picture is blank (lens covered or sensor fault)")

    began = time.perf_counter()
    corners = scanning.detect_document(last.pixels)
    detect_ms = (time.perf_counter() - began) * 1000
    quality = scanning.check_quality(last.pixels, corners)
    report.page = PageReport(
        found=corners is not None,
        detect_ms=round(detect_ms, 1),
        corners=[] if corners is None else [[round(float(v), 1) for v in c] for c in corners],
        issues=[issue.code for issue in quality.issues],
        sharpness=round(quality.sharpness, 1),
        glare=round(quality.glare, 4),
    )
    if capture:
        try:
            began = time.perf_counter()
            page = camera.capture("diagnostics", "a4", "diagnostics")
        except CameraError as exc:
            report.problems.append(f"no still: {exc}")
        else:
            report.still = StillReport(
                page.width,
                page.height,
                len(page.jpeg),
                round(time.perf_counter() - began, 2),
                [issue.code for issue in page.issues],
            )
    if save is not None:
        ok, encoded = cv2.imencode(".jpg", last.pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
        try:
            if not ok:
                raise OSError("the frame could not be encoded")
            save.write_bytes(encoded.tobytes())
        except OSError as exc:
            report.problems.append(f"cannot save {save}: {exc}")
        else:
            report.saved = str(save)
    report.ok = not report.problems
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--camera",
        metavar="SPEC",
        help="the camera to check (default: devices.camera from the config): 'simulated', "
        "an index, /dev/videoN, a device name, a video file or a folder of images",
    )
    parser.add_argument(
        "--seconds", type=float, default=SAMPLE_S, help="how long to sample frames (1 s)"
    )
    parser.add_argument(
        "--capture", action="store_true", help="also take a full still through the pipeline"
    )
    parser.add_argument(
        "--save",
        metavar="FILE.jpg",
        type=Path,
        help="write the last preview frame here (use a test page: it shows what is on the pad)",
    )


def run(args: argparse.Namespace, config: Config) -> int:
    """`kiosk diag camera`: 0 when there is a picture at a usable rate, else non-zero."""
    from devices.camera_factory import build_camera

    spec = args.camera or config.devices.camera
    try:
        camera = build_camera(spec)
    except ValueError as exc:
        print(f"kiosk diag camera: {exc}", file=sys.stderr)
        return 2
    try:
        report = measure(
            camera, spec, seconds=max(0.1, args.seconds), capture=args.capture, save=args.save
        )
    finally:
        camera.close()
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        _print_text(report)
    if report.error is not None:
        print(f"kiosk diag camera: {report.error}", file=sys.stderr)
    return 0 if report.ok else 1


def _print_text(report: CameraReport) -> None:
    print(f"camera       {report.camera}")
    if report.error is not None:
        print(f"picture      none: {report.error}")
        return
    print(f"preview      {report.width}x{report.height}, {report.fps:.1f} frames/s")
    blank = ", BLANK" if report.blank else ""
    print(f"sharpness    {report.sharpness:.0f} (variance of the Laplacian){blank}")
    page = report.page
    if page is not None:
        if page.found:
            issues = ", ".join(page.issues) or "passes every check"
            print(f"page         found in {page.detect_ms:.1f} ms; {issues}")
            print(f"corners      {page.corners}")
        else:
            print(f"page         none on the pad ({page.detect_ms:.1f} ms to look)")
    if report.still is not None:
        s = report.still
        issues = ", ".join(s.issues) or "passes every check"
        print(
            f"still        {s.width}x{s.height}, {s.jpeg_bytes} bytes JPEG, {s.seconds} s; {issues}"
        )
    if report.saved:
        print(f"saved        {report.saved}")
    for problem in report.problems:
        print(f"PROBLEM      {problem}")
    print("result       " + ("ok" if report.ok else "NOT OK"))
