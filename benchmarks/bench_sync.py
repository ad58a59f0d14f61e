"""Benchmarks for delivery to the platform: loopback throughput against plain HTTP PUTs, a
64 kbit/s link with a reset every 30 s, thousands of kill -9 cycles with the invariant, and
the poll of an unchanged 1 MB catalog.

`--quick` (or BENCH_SYNC_QUICK=1) runs small variants for a smoke check. The reference platform
runs in its own process (pinned to its own core when there are two), so kiosk and platform do
not share a CPU and killing kiosks never touches it. Shared machinery: tests/sync_harness.py.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import Row

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from sync_harness import (  # noqa: E402 (the tests' harness, after its directory is on the path)
    ChildHung,
    Kiosk,
    PlatformProcess,
    check_invariant,
    discover_crash_points,
    drain,
    fast_config,
    kiosk_cycle,
    kiosk_intake,
    make_kiosk,
    run_children,
    walk_to_review,
)

from kiosk.config import SyncConfig  # noqa: E402
from kiosk.demo import DEMO_CARDS  # noqa: E402
from sync.client import HttpPlatform  # noqa: E402
from sync.enrollment import enroll  # noqa: E402
from sync.faultproxy import FaultProxy, Faults  # noqa: E402

TITLE = "Sync (kiosk → platform)"
QUICK_ENV = "BENCH_SYNC_QUICK"
THING = "social_security_card"  # two scanned pages: the page size sets the application's size
CARD = DEMO_CARDS["adult"][1]
SINK = "/bench/put"
# The kiosk's own chunk settings (first chunk, then sized by the measured link), not the tests'.
SHIPPED = SyncConfig()


def run(full: bool, only: Sequence[str] = ()) -> list[Row]:
    """Every part, or those named in `only` (throughput, slow-link, kills, catalog)."""
    full = full and not os.environ.get(QUICK_ENV)
    # BENCH_SYNC_PARTS=throughput,catalog: `make bench` for some parts (the kills take 30 min).
    only = tuple(only) or tuple(p for p in os.environ.get("BENCH_SYNC_PARTS", "").split(",") if p)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        for name, part in PARTS.items():
            if not only or name in only:
                rows += part(Path(tmp) / name, full)
    return rows


# The platform process, with a plain-PUT sink for the baseline ------------------------------------


def serve(data_dir: Path) -> int:
    """`kiosk platform serve` plus `PUT /bench/put/{name}`: body to a file, fsync, 201."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response

    from sync.platform.server import PlatformServer

    sink = data_dir / "bench-put"
    sink.mkdir(parents=True, exist_ok=True)
    server = PlatformServer(data_dir)

    async def put(request: Request) -> Response:
        body = await request.body()
        path = sink / Path(request.path_params["name"]).name

        def store() -> None:
            with open(path, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())

        await run_in_threadpool(store)
        return Response(status_code=201)

    # A plain Starlette route: no FastAPI parameter parsing, no signature, no JSON.
    server.app.router.add_route(SINK + "/{name}", put, methods=["PUT"])
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print(f"platform listening on {server.url}", flush=True)
    stop.wait()
    server.stop()
    return 0


def _platform(data_dir: Path, *, sink: bool = False, demo: float | None = None) -> PlatformProcess:
    two_cores = (os.cpu_count() or 1) >= 2
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(data_dir)]
    return PlatformProcess(
        data_dir,
        demo_interval_s=demo,
        cpu=1 if two_cores else None,
        command=command if sink else None,
    )


@contextmanager
def _pinned(cpu: int) -> Iterator[None]:
    """Run this process on `cpu` only (when the machine has more than one)."""
    if (os.cpu_count() or 1) < 2 or not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _applications(kiosk: Kiosk, n: int, page_bytes: tuple[int, int], seed: int) -> list[str]:
    """`n` applications of two scanned pages each, through the applicant flow."""
    ids = []
    with kiosk.storage(collect_orphans=True) as storage:
        intake = kiosk_intake(kiosk, storage)
        for i in range(n):
            flow = walk_to_review(intake, CARD, THING, seed=seed + i, page_bytes=page_bytes)
            flow.next()
            assert flow.session.result is not None, flow.session.notice
            ids.append(flow.session.result.application_id)
            flow.finish()
    return ids


def _files(kiosk: Kiosk, ids: list[str]) -> list[list[Path]]:
    """Per application, the files the relay sends: the sealed payload and every page."""
    with kiosk.storage() as storage:
        out = []
        for app_id in ids:
            item = next(i for i in storage.outbox(None, limit=len(ids) + 10) if i.id == app_id)
            hashes = [item.payload_sha256, *(page.sha256 for page in item.pages)]
            out.append([storage.attachments.path(sha) for sha in hashes])
    return out


def _ms(values: list[float]) -> tuple[float, float]:
    ordered = sorted(v * 1000 for v in values)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


# 1. Loopback throughput --------------------------------------------------------------------------


class _TimedCommits(HttpPlatform):
    """Notes when each commit's answer arrives: per-application delivery times."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commits: list[float] = []

    def commit(self, app_id: str) -> tuple[dict[str, Any], str]:
        answer = super().commit(app_id)
        self.commits.append(time.perf_counter())
        return answer


def _throughput(root: Path, full: bool) -> list[Row]:
    n = 100 if full else 8
    page = (1_500_000, 1_500_000)  # two pages: about 3 MB an application
    root.mkdir(parents=True)
    with _platform(root / "platform", sink=True) as platform:
        kiosk = make_kiosk(
            root, platform, chunk_kib=SHIPPED.chunk_kib, chunk_max_kib=SHIPPED.chunk_max_kib
        )
        ids = _applications(kiosk, n, page, seed=1)
        files = _files(kiosk, ids)
        total = sum(p.stat().st_size for app in files for p in app)
        with _pinned(0):
            plain_times, plain_s = _plain_puts(platform.url, files)
            client = _TimedCommits(kiosk.config, kiosk.enrollment)
            with kiosk.relay() as relay:
                relay.platform = client
                start = time.perf_counter()
                while relay.storage.sync_counts()["pending"]:
                    relay.run_once(ignore_schedule=True)
                relay_s = time.perf_counter() - start
            client.close()
            plain_again, plain_s2 = _plain_puts(platform.url, files)
        report = check_invariant(kiosk, cli=False)
    relay_times = [b - a for a, b in zip([start, *client.commits], client.commits, strict=False)]
    best_plain = min(plain_s, plain_s2)  # the faster baseline: the stricter comparison
    mb = total / 1e6
    ratio = (mb / relay_s) / (mb / best_plain)
    median, p95 = _ms(relay_times)
    plain_median, plain_p95 = _ms(plain_times if plain_s <= plain_s2 else plain_again)
    invariant = "invariant ok" if report.ok else f"INVARIANT: {report.problems[:3]}"
    return [
        (
            f"Loopback delivery, {n} applications × {mb / n:.1f} MB, per application "
            "(target ≥ 80 % of plain PUTs)",
            median,
            p95,
            f"relay {mb / relay_s:.1f} MB/s vs plain PUT {mb / best_plain:.1f} MB/s: "
            f"{ratio * 100:.0f} %; {mb:.0f} MB; chunks {_chunks()}; signed, fsynced, committed; "
            f"{invariant}",
        ),
        (
            "… plain HTTP PUT of the same files to the same server, per application",
            plain_median,
            plain_p95,
            "one PUT per file, body written and fsynced once; keep-alive, HTTP/1.1",
        ),
    ]


def _plain_puts(url: str, files: list[list[Path]]) -> tuple[list[float], float]:
    import httpx

    times = []
    with httpx.Client(base_url=url, timeout=60.0) as client:
        start = time.perf_counter()
        for app in files:
            began = time.perf_counter()
            for path in app:
                response = client.put(f"{SINK}/{path.name}", content=path.read_bytes())
                response.raise_for_status()
            times.append(time.perf_counter() - began)
        return times, time.perf_counter() - start


# 2. 64 kbit/s with resets ------------------------------------------------------------------------


def _slow_link(root: Path, full: bool) -> list[Row]:
    """The same application over two 64 kbit/s links at once, one reset every `reset_s`: what
    the resets cost is the difference in bytes sent (chunk sizes, headers and all else equal)."""
    page = (2_500_000, 2_500_000) if full else (120_000, 120_000)
    reset_s = 30.0 if full else 15.0  # the 64 KiB first chunk alone takes 8 s at 64 kbit/s
    rate = 8000  # 64 kbit/s
    root.mkdir(parents=True)
    with _platform(root / "steady") as steady:
        # A second platform with the same keys, so the very same sealed bytes commit there too.
        shutil.copytree(steady.data_dir / "keys", root / "reset" / "keys")
        with _platform(root / "reset") as reset:
            kiosk = make_kiosk(
                root, steady, chunk_kib=SHIPPED.chunk_kib, chunk_max_kib=SHIPPED.chunk_max_kib
            )
            (app_id,) = _applications(kiosk, 1, page, seed=7)
            twin = _twin(kiosk, root / "twin", reset)
            size = sum(p.stat().st_size for p in _files(kiosk, [app_id])[0])
            links = [
                (kiosk, FaultProxy("127.0.0.1", _port(steady.url)), Faults(rate_bps=rate)),
                (
                    twin,
                    FaultProxy("127.0.0.1", _port(reset.url)),
                    Faults(rate_bps=rate, reset_every_s=reset_s),
                ),
            ]

            def deliver(k: Kiosk, proxy: FaultProxy) -> float:
                start = time.monotonic()
                drain(k, url=proxy.url, timeout_s=3600, max_passes=100_000)
                return time.monotonic() - start

            for _, proxy, faults in links:
                proxy.start()
                proxy.set(faults)
            try:
                with ThreadPoolExecutor(len(links)) as pool:
                    running = [pool.submit(deliver, k, proxy) for k, proxy, _ in links]
                    elapsed = [future.result() for future in running]
                stats = [proxy.stats() for _, proxy, _ in links]
            finally:
                for _, proxy, _ in links:
                    proxy.stop()
            ok = check_invariant(kiosk, cli=False).ok and check_invariant(twin, cli=False).ok
    clean, faulty = stats
    twice = faulty.bytes_up - clean.bytes_up
    return [
        (
            f"64 kbit/s, every connection reset every {reset_s:.0f} s: one {size / 1e6:.1f} MB "
            "application (target ≤ 5 % sent twice)",
            elapsed[1] * 1000,
            elapsed[1] * 1000,
            f"sent {faulty.bytes_up / 1e6:.3f} MB vs {clean.bytes_up / 1e6:.3f} MB on the same "
            f"link without resets ({elapsed[0]:.0f} s): {twice / size * 100:.1f} % of the "
            f"application sent twice; {faulty.cut} resets; {faulty.requests} vs "
            f"{clean.requests} requests; chunks {_chunks()}; "
            f"{'invariant ok' if ok else 'INVARIANT VIOLATED'}",
        )
    ]


def _chunks() -> str:
    return f"{SHIPPED.chunk_kib} KiB first, then sized to the link (≤ {SHIPPED.chunk_max_kib} KiB)"


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _twin(kiosk: Kiosk, data_dir: Path, platform: PlatformProcess) -> Kiosk:
    """A copy of `kiosk`'s data directory (same applications) enrolled with `platform`."""
    shutil.copytree(kiosk.data_dir, data_dir)
    config = fast_config(
        data_dir,
        kiosk_code=kiosk.config.hall.kiosk_code,
        url=platform.url,
        chunk_kib=SHIPPED.chunk_kib,
        chunk_max_kib=SHIPPED.chunk_max_kib,
    )
    enroll(config, platform.url, platform.new_enrollment_code())
    confirmed = data_dir.parent / "confirmed-twin.txt"
    shutil.copyfile(kiosk.confirmed_file, confirmed)
    twin = Kiosk(config, platform, confirmed)
    platform.kiosks.append(twin)
    return twin


# 3. kill -9 cycles -------------------------------------------------------------------------------


def _kills(root: Path, full: bool) -> list[Row]:
    target = 5000 if full else 60
    kiosks_n = 3
    rng = random.Random(5000)
    points = discover_crash_points()
    root.mkdir(parents=True)
    kills = finished = hung = failed = 0
    durations: list[float] = []
    lost: set[str] = set()
    duplicated: set[str] = set()
    problems: list[str] = []
    start = time.monotonic()
    with _platform(root / "platform", demo=0.3) as platform:
        kiosks = [make_kiosk(root, platform, retention_days=0.0) for _ in range(kiosks_n)]
        next_check = 500
        while kills < target:
            jobs: list[tuple[Callable[[], None], float | None]] = []
            for kiosk in kiosks:
                seed = rng.getrandbits(32)
                if rng.random() < 0.5:
                    point = rng.choice(points)
                    nth = rng.choice([1, 1, 2, 3, 5])
                    crash_at = point if nth == 1 else f"{point}#{nth}"
                    jobs.append((kiosk_cycle(kiosk, crash_at=crash_at, seed=seed), None))
                else:
                    work = kiosk_cycle(
                        kiosk, applications=rng.randint(1, 2), seed=seed, forever=True
                    )
                    jobs.append((work, rng.uniform(0.02, 1.2)))
            try:
                results = run_children(jobs, timeout_s=120)
            except ChildHung:
                hung += 1
                continue
            for result in results:
                durations.append(result.seconds)
                if result.killed:
                    kills += 1
                elif result.exit_code == 0:
                    finished += 1
                else:
                    failed += 1
            if kills >= next_check or kills >= target:
                next_check += 500
                for kiosk in kiosks:
                    drain(kiosk)
                entries = platform.committed(cli=False)
                for kiosk in kiosks:
                    report = check_invariant(kiosk, entries=entries, cli=False)
                    lost |= set(report.lost)
                    duplicated |= set(report.duplicated)
                    problems += report.problems
        confirmed = sum(len(k.confirmed()) for k in kiosks)
    elapsed = time.monotonic() - start
    median, p95 = _ms(durations)
    return [
        (
            f"kill -9 cycles: {kills} kills (named crash points and random moments), "
            f"{kiosks_n} kiosks",
            median,
            p95,
            f"lost {len(lost)}, duplicated {len(duplicated)}, invariant problems "
            f"{len(set(problems))}; {confirmed} applications "
            f"confirmed; {finished} cycles ended before their crash point; {failed} failed; "
            f"{hung} hung; {elapsed / 60:.1f} min; per kiosk process (ms)",
        )
    ]


# 4. An unchanged catalog ------------------------------------------------------------------------


def _big_catalog(at_least: int) -> bytes:
    """The shipped catalog grown to `at_least` bytes with renamed copies of its things: valid,
    and a newer version than the kiosk's."""
    import copy
    import json

    from kiosk.catalog import parse_catalog, shipped_catalog_text

    doc = json.loads(shipped_catalog_text())
    originals = list(doc["things"])
    n = 0
    while len(json.dumps(doc, ensure_ascii=False).encode()) < at_least:
        n += 1
        for thing in originals:
            copied = copy.deepcopy(thing)
            copied["id"] = f"{thing['id']}_r{n}"
            for service in copied["services"]:
                for key in ("code", "id"):
                    if key in service:
                        service[key] = f"{service[key]}-R{n}"
            doc["things"].append(copied)
    doc["version"] = doc["version"] + ".1"
    data = json.dumps(doc, ensure_ascii=False).encode()
    parse_catalog(data)  # refuses, rather than measuring a catalog no kiosk would adopt
    return data


def _catalog(root: Path, full: bool) -> list[Row]:
    """The catalog poll when nothing changed: one conditional GET answered 304, no body."""
    import subprocess

    from kiosk.catalog import CatalogStore

    root.mkdir(parents=True)
    data = _big_catalog(1_000_000)
    (root / "catalog.json").write_bytes(data)
    polls = 20 if full else 3
    with _platform(root / "platform") as platform:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ui.cli",
                "platform",
                "publish-catalog",
                "--data-dir",
                str(platform.data_dir),
                str(root / "catalog.json"),
            ],
            check=True,
            capture_output=True,
        )
        kiosk = make_kiosk(root, platform)
        with FaultProxy("127.0.0.1", _port(platform.url)) as proxy:
            catalogs = CatalogStore(kiosk.data_dir)
            with kiosk.relay(url=proxy.url, catalogs=catalogs) as relay:
                relay.run_once(ignore_schedule=True)  # first poll: the new catalog, adopted
                adopted = catalogs.catalog.version
                first_down = proxy.stats().bytes_down
                times, requests, down = [], [], []
                for _ in range(polls):
                    proxy.reset_counters()
                    before = relay.platform.requests_sent
                    start = time.perf_counter()
                    relay._catalog(relay_result())  # the catalog step alone, as a poll runs it
                    times.append(time.perf_counter() - start)
                    requests.append(relay.platform.requests_sent - before)
                    down.append(proxy.stats().bytes_down)
    median, p95 = _ms(times)
    return [
        (
            f"Unchanged catalog ({len(data) / 1e6:.2f} MB) polled again, {polls} polls",
            median,
            p95,
            f"{statistics.median(requests):.0f} request per poll, answered 304 with "
            f"{statistics.median(down):.0f} bytes down (headers only) vs {first_down / 1e6:.2f} MB "
            f"for the first poll; version {adopted} adopted once",
        )
    ]


def relay_result() -> Any:
    from sync.relay import PassResult

    return PassResult()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


PARTS: dict[str, Callable[[Path, bool], list[Row]]] = {
    "throughput": _throughput,
    "slow-link": _slow_link,
    "kills": _kills,
    "catalog": _catalog,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", metavar="DIR", help="serve the platform (used by run())")
    parser.add_argument("--quick", action="store_true", help="small variants (smoke check)")
    parser.add_argument("only", nargs="*", metavar="PART", help=f"any of {', '.join(PARTS)}")
    args = parser.parse_args()
    unknown = set(args.only) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    if args.serve:
        return serve(Path(args.serve))
    for what, median, p95, note in run(full=not args.quick, only=args.only):
        print(f"{what}: median {median:.1f} ms, p95 {p95:.1f} ms; {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
