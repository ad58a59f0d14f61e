"""Generate the document-scanning data set: synthetic 高拍仪 frames with their true page corners.

Usage: python benchmarks/make_scan_dataset.py [--pages 520] [--empty 200] [--out DIR]

Writes DIR/frames/*.jpg (the camera's MJPG frames, 1600×1200) and DIR/truth.json. The set is
cached: it is regenerated only when the generator's source or the counts change. Documents and
backgrounds are balanced (every document kind on every background); the troubles (blur, glare,
shadow, uneven light, a hand over an edge, keystone, folds) are drawn at random per frame.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = HERE / "data" / "scan"
PAGES = 520
EMPTY = 200
# Seeds kept apart from those the detector was developed and tuned on (pages 0–999,
# 30 000–30 519, 40 000–40 519, 50 000–50 519; empty tables 100 000–100 999, 300 000–300 199,
# 400 000–400 199, 500 000–500 099), so the benchmark measures frames it was never tuned on.
PAGE_SEED_BASE = 10_000
EMPTY_SEED_BASE = 200_000

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devices import synthetic_docs  # noqa: E402
from devices.synthetic_docs import (  # noqa: E402
    BACKGROUNDS,
    PREVIEW_SIZE,
    RANDOM_DOCUMENTS,
    random_scene,
    render_jpeg,
)


def _fingerprint(pages: int, empty: int) -> str:
    source = Path(synthetic_docs.__file__).read_bytes()
    recipe = f"{pages}/{empty}/{PREVIEW_SIZE}/{PAGE_SEED_BASE}/{EMPTY_SEED_BASE}"
    return hashlib.sha256(source + recipe.encode()).hexdigest()[:16]


def _describe(scene: synthetic_docs.Scene) -> dict[str, Any]:
    return {
        "document": scene.document,
        "background": scene.background,
        "hand": scene.hand is not None,
        "glare": scene.glare > 0,
        "shadow": scene.shadow > 0,
        "blur_mm": round(scene.blur_mm, 2),
        "motion": any(scene.motion_mm),
        "keystone": max(abs(t) for t in scene.tilt) > 0.02,
        "landscape": scene.landscape,
    }


def make(out: Path = DEFAULT_OUT, pages: int = PAGES, empty: int = EMPTY) -> Path:
    """Build the set into `out` unless an identical one is there; returns truth.json's path."""
    truth_path = out / "truth.json"
    fingerprint = _fingerprint(pages, empty)
    if truth_path.is_file():
        cached = json.loads(truth_path.read_text(encoding="utf-8"))
        if cached.get("fingerprint") == fingerprint:
            return truth_path
    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    for old in frames_dir.glob("*.jpg"):
        old.unlink()
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    plan: list[tuple[int, bool]] = [(PAGE_SEED_BASE + i, False) for i in range(pages)]
    plan += [(EMPTY_SEED_BASE + i, True) for i in range(empty)]
    for n, (seed, is_empty) in enumerate(plan):
        document = None if is_empty else RANDOM_DOCUMENTS[seed % len(RANDOM_DOCUMENTS)]
        background = BACKGROUNDS[(seed // len(RANDOM_DOCUMENTS)) % len(BACKGROUNDS)]
        scene = random_scene(seed, document, background, empty=is_empty)
        data, frame = render_jpeg(scene, PREVIEW_SIZE)
        name = f"{'empty' if is_empty else 'page'}-{seed:06d}.jpg"
        (frames_dir / name).write_bytes(data)
        corners = None if frame.corners is None else frame.corners.round(3).tolist()
        records.append({"file": name, "corners": corners, **_describe(scene)})
        if (n + 1) % 50 == 0:
            rate = (time.perf_counter() - started) / (n + 1)
            print(f"  {n + 1}/{len(plan)} frames, {rate * 1000:.0f} ms each", flush=True)
    truth = {"fingerprint": fingerprint, "size": list(PREVIEW_SIZE), "frames": records}
    truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return truth_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=PAGES, help="frames with a document")
    parser.add_argument("--empty", type=int, default=EMPTY, help="background-only frames")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    path = make(args.out, args.pages, args.empty)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
