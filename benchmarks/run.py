"""Run every benchmarks/bench_*.py module and write benchmarks/results.md (the README quotes it).

Each module has TITLE and run(full: bool) -> list[Row]. `--quick` runs the smaller variants
(for a smoke check); the default is the full run the README's figures come from. Speed and
memory targets are checked here, never in timed unit tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("only", nargs="*", help="module names (e.g. bench_idcard); default all")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    names = args.only or sorted(p.stem for p in HERE.glob("bench_*.py"))
    sections = []
    for name in names:
        module = importlib.import_module(name)
        print(f"== {module.TITLE}", flush=True)
        rows = module.run(full=not args.quick)
        lines = [
            f"## {module.TITLE}",
            "",
            "| what | median ms | p95 ms | notes |",
            "|---|---:|---:|---|",
        ]
        lines += [f"| {what} | {m:.2f} | {p:.2f} | {note} |" for what, m, p, note in rows]
        print("\n".join(lines[2:]), flush=True)
        sections.append("\n".join(lines))
    stamp = (
        f"_Run {dt.datetime.now():%Y-%m-%d %H:%M} on {platform.machine()}, {os.cpu_count()} "
        f"cores, Python {sys.version.split()[0]}{' (quick)' if args.quick else ''}._"
    )
    # Sections of modules not run this time are kept, so one area can be re-measured alone.
    kept = _sections(OUT.read_text(encoding="utf-8")) if OUT.exists() else {}
    for section in sections:
        kept[section.splitlines()[0]] = section.replace("\n\n", f"\n\n{stamp}\n\n", 1)
    body = "\n\n".join(kept[k] for k in sorted(kept))
    OUT.write_text(
        "# Benchmark results\n\n`make bench` rewrites this file; `make bench ARGS=bench_idcard` "
        "re-measures one area.\n\n" + body + "\n",
        encoding="utf-8",
    )
    return 0


def _sections(text: str) -> dict[str, str]:
    parts = text.split("\n## ")[1:]
    return {f"## {p.splitlines()[0]}": f"## {p.strip()}" for p in parts}


if __name__ == "__main__":
    raise SystemExit(main())
