"""Cold start of the kiosk: process start → home screen painted, for the venv and the bundle.

Each run is a new `kiosk run` process (full screen, the lock-down on, simulated devices and
platform unless --config says otherwise) on the offscreen platform unless a display is asked
for. The clock starts just before the process is spawned and stops when the kiosk logs
"home screen painted" (ui/cli.py logs it on the main window's first paint event). A first,
unmeasured run creates the data directory and python-escpos's cache, as the first start in a
hall does; the page cache is warm after it, as on a kiosk restarted by systemd. With
--drop-caches (root) the page cache is dropped before every run: a cold boot's disk.

    .venv/bin/python scripts/cold_start.py                     # venv and dist/kiosk, 5 runs each
    .venv/bin/python scripts/cold_start.py --only bundle --runs 9 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "home screen painted"


def _commands(bundle: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    venv_kiosk = ROOT / ".venv" / "bin" / "kiosk"
    found["venv"] = [str(venv_kiosk)] if venv_kiosk.exists() else [sys.executable, "-m", "ui.cli"]
    if bundle.exists():
        found["bundle"] = [str(bundle)]
    return found


def _drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n", encoding="ascii")
    except OSError:
        return False
    return True


def one_start(command: list[str], data_dir: Path, env: dict[str, str], timeout: float) -> float:
    """Seconds from spawning `kiosk run` to its first painted home screen; the process must
    then exit cleanly."""
    args = [*command, "run", "--data-dir", str(data_dir), "--exit-after", "0.5"]
    started = time.perf_counter()
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert process.stderr is not None
    painted: float | None = None
    tail: list[str] = []
    try:
        for line in process.stderr:
            if painted is None and MARKER in line:
                painted = time.perf_counter() - started
            tail = [*tail[-30:], line]
        code = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if painted is None or code != 0:
        raise RuntimeError(f"{' '.join(args)} exited {code}:\n{''.join(tail)}")
    return painted


def measure(
    name: str, command: list[str], runs: int, env: dict[str, str], drop: bool, timeout: float
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"cold-start-{name}-") as tmp:
        data_dir = Path(tmp) / "data"
        one_start(command, data_dir, env, timeout)  # first start: database, caches
        times = []
        for _ in range(runs):
            if drop and not _drop_caches():
                raise SystemExit("--drop-caches needs root (writes /proc/sys/vm/drop_caches)")
            times.append(one_start(command, data_dir, env, timeout))
    return {
        "name": name,
        "command": " ".join(command),
        "runs": runs,
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "times_s": [round(t, 3) for t in times],
        "page_cache": "dropped" if drop else "warm",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / "kiosk" / "kiosk")
    parser.add_argument("--only", choices=("venv", "bundle"))
    parser.add_argument("--display", action="store_true", help="use $DISPLAY, not offscreen")
    parser.add_argument("--drop-caches", action="store_true", help="cold page cache (root)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "QT_"))}
    if not args.display:
        env["QT_QPA_PLATFORM"] = "offscreen"
    commands = _commands(args.bundle)
    if args.only:
        if args.only not in commands:
            print(f"cold_start: no {args.only} at {args.bundle} (run `make bundle`)")
            return 2
        commands = {args.only: commands[args.only]}
    results = [
        measure(name, command, args.runs, env, args.drop_caches, args.timeout)
        for name, command in commands.items()
    ]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(
                f"{r['name']:6} median {r['median_s']:.2f} s  (min {r['min_s']:.2f}, "
                f"max {r['max_s']:.2f}, {r['runs']} runs, page cache {r['page_cache']})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
