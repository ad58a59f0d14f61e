"""What the end-to-end sync tests and benchmarks share: a platform (in this process or its own),
enrolled kiosks with fast retry settings, drain(), kill -9 cycles and the invariant checker.

The invariant (issue: "exactly once under crashes and faults"): once faults stop, the platform
holds exactly the applications the kiosk confirmed to applicants (and may hold ones the kiosk
saved but died before confirming), each once, with the kiosk's payload and attachment hashes;
the kiosk's database and files verify, and its queue is empty.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from kiosk import crash
from kiosk.application import Status
from kiosk.config import Config, load_config
from kiosk.demo import DEMO_LICENCES, sample_answers
from kiosk.flow import ApplicantFlow, Step
from kiosk.identity import IdentityDocument
from kiosk.intake import Intake
from kiosk.storage import Storage
from sync.backoff import RetryPolicy
from sync.client import HttpPlatform
from sync.enrollment import Enrollment, enroll, load_enrollment
from sync.protocol import ProtocolError, verify_receipt
from sync.relay import PassResult, Relay

ROOT = Path(__file__).resolve().parent.parent
HALL = "HZ01"
DELIVERED = frozenset(
    {
        Status.ACCEPTED,
        Status.IN_PROGRESS,
        Status.COMPLETED,
        Status.REJECTED,
        Status.NEEDS_SUPPLEMENT,
    }
)
# Small pages keep hundreds of cycles fast; each is still several 16 KiB chunks (min 200 kpx).
SMALL_PAGES = (20_000, 40_000)
_CRASH_CALL = re.compile(r"""crashpoint\(\s*["']([^"']+)["']\s*\)""")


# Crash points -----------------------------------------------------------------------------------


def discover_crash_points(*packages: str) -> list[str]:
    """Every `crashpoint("name")` in the source tree (kiosk/ and sync/ by default), sorted."""
    names: set[str] = set()
    for package in packages or ("kiosk", "sync"):
        for path in (ROOT / package).rglob("*.py"):
            names.update(_CRASH_CALL.findall(path.read_text(encoding="utf-8")))
    return sorted(names)


# Configuration ----------------------------------------------------------------------------------


def fast_config(data_dir: Path, *, kiosk_code: str, url: str, **sync: Any) -> Config:
    """The kiosk's config with `[sync]` delays small enough for tests (overridable)."""
    config = load_config(None, str(data_dir))
    settings: dict[str, Any] = {
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.5,
        "breaker_failures": 5,
        "breaker_open_min_s": 0.05,
        "breaker_open_max_s": 0.2,
        "startup_delay_max_s": 0.0,
        "status_poll_s": 0.5,
        # Fixed 16 KiB chunks: every page is several chunks, so `relay.mid-chunk#N` is reached
        # on a fast link too. Pass chunk_kib/chunk_max_kib to test the adaptive sizing.
        "chunk_kib": 16,
        "chunk_max_kib": 16,
        "retention_days": 30.0,
    }
    settings.update(sync)
    if "chunk_kib" in sync and "chunk_max_kib" not in sync:
        settings["chunk_max_kib"] = max(sync["chunk_kib"], config.sync.chunk_max_kib)
    return dataclasses.replace(
        config,
        hall=dataclasses.replace(config.hall, code=HALL, kiosk_code=kiosk_code),
        platform=dataclasses.replace(
            config.platform, url=url, connect_timeout_s=5.0, request_timeout_s=20.0
        ),
        sync=dataclasses.replace(config.sync, **settings),
    )


# Platforms --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PlatformEntry:
    """One committed application as `kiosk platform list --json` shows it."""

    id: str
    platform_number: str
    payload_sha256: str
    attachments: tuple[str, ...]

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PlatformEntry:
        return cls(
            str(doc["id"]),
            str(doc["platform_number"]),
            str(doc["payload_sha256"]),
            tuple(str(a) for a in doc["attachments"]),
        )


class _PlatformBase:
    """What both platform flavours offer the tests; `kiosks` are those enrolled through it."""

    data_dir: Path
    url: str

    def __init__(self) -> None:
        self.kiosks: list[Kiosk] = []

    def new_enrollment_code(self) -> str:
        raise NotImplementedError

    def committed(self, *, cli: bool = True) -> list[PlatformEntry]:
        raise NotImplementedError

    def blob_path(self, sha256: str) -> Path:
        return self.data_dir / "blobs" / sha256[:2] / sha256


class PlatformProcess(_PlatformBase):
    """`kiosk platform serve` in its own process, so that killing kiosks never touches it."""

    def __init__(
        self,
        data_dir: Path,
        *,
        demo_interval_s: float | None = 0.5,
        cpu: int | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        """`command` replaces `kiosk platform serve ...` (it must print the same line)."""
        super().__init__()
        self.data_dir = Path(data_dir)
        self.demo_interval_s = demo_interval_s
        self.cpu = cpu
        self.command = list(command) if command is not None else None
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> PlatformProcess:
        args = ["platform", "serve", "--data-dir", str(self.data_dir), "--port", "0"]
        if self.demo_interval_s is not None:
            args += ["--demo", "--demo-interval", str(self.demo_interval_s)]
        self._proc = subprocess.Popen(
            self.command or kiosk_command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=_pin(self.cpu),
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if not line:
                break
            match = re.search(r"platform listening on (\S+)", line)
            if match:
                self.url = match.group(1)
                return self
        self.stop()
        raise RuntimeError(f"`kiosk platform serve` did not start (exit {self._proc.poll()})")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def new_enrollment_code(self) -> str:
        out = _run_kiosk("platform", "enrollment-code", "--data-dir", str(self.data_dir))
        return out.strip().splitlines()[-1]

    def committed(self, *, cli: bool = True) -> list[PlatformEntry]:
        """`kiosk platform list --json`; `cli=False` reads the same list in this process (the
        CLI's own code path, without its second of start-up)."""
        if cli:
            out = _run_kiosk("platform", "list", "--data-dir", str(self.data_dir), "--json")
            return [PlatformEntry.from_json(doc) for doc in json.loads(out)]
        from sync.platform.store import PlatformStore

        store = PlatformStore(self.data_dir)
        try:
            return [PlatformEntry.from_json(app.as_json()) for app in store.list_committed()]
        finally:
            store.close()

    def __enter__(self) -> PlatformProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class InProcessPlatform(_PlatformBase):
    """The reference platform on a thread of this process (`PlatformServer`)."""

    def __init__(self, data_dir: Path, **server_kwargs: Any) -> None:
        from sync.platform.server import PlatformServer

        super().__init__()
        self.data_dir = Path(data_dir)
        self.server = PlatformServer(self.data_dir, **server_kwargs)
        self.url = ""

    def start(self) -> InProcessPlatform:
        self.server.start()
        self.url = self.server.url
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def port(self) -> int:
        return self.server.port

    def new_enrollment_code(self) -> str:
        return self.server.new_enrollment_code()

    def committed(self, *, cli: bool = True) -> list[PlatformEntry]:
        """The committed list as `kiosk platform list --json` gives it (read in-process)."""
        return [PlatformEntry.from_json(a.as_json()) for a in self.server.store.list_committed()]

    def __enter__(self) -> InProcessPlatform:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


Platform = PlatformProcess | InProcessPlatform


def kiosk_command(*args: str) -> list[str]:
    """The `kiosk` command of this virtualenv with `args`."""
    script = Path(sys.executable).parent / "kiosk"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from ui.cli import main; raise SystemExit(main())", *args]


def _run_kiosk(*args: str) -> str:
    done = subprocess.run(
        kiosk_command(*args), capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"kiosk {' '.join(args[:2])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def _pin(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    chosen = cpu

    def pin() -> None:
        os.sched_setaffinity(0, {chosen})

    return pin


# Kiosks -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Kiosk:
    """An enrolled kiosk's data directory and config, plus the applicant-confirmed ids."""

    config: Config
    platform: Platform
    confirmed_file: Path

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def enrollment(self) -> Enrollment:
        enrollment = load_enrollment(self.data_dir)
        assert enrollment is not None, f"{self.data_dir} is not enrolled"
        return enrollment

    def storage(
        self, *, collect_orphans: bool = False, synchronous: Literal["FULL", "NORMAL"] = "FULL"
    ) -> Storage:
        # Orphan collection is the kiosk's own start-up business; checks must not change state.
        return Storage(
            self.data_dir,
            hall_code=self.config.hall.code,
            kiosk_code=self.config.hall.kiosk_code,
            collect_orphans=collect_orphans,
            synchronous=synchronous,
        )

    def client(self, url: str | None = None) -> HttpPlatform:
        return HttpPlatform(self.config, self.enrollment, url=url or self.config.platform.url)

    @contextmanager
    def relay(self, url: str | None = None, **kwargs: Any) -> Iterator[Relay]:
        """A relay on its own Storage and client, closed afterwards (one kiosk process's),
        opened as sync.connect opens the kiosk's."""
        storage = self.storage(synchronous="NORMAL")
        client = self.client(url)
        try:
            policy = RetryPolicy.from_config(self.config.sync)
            yield Relay(self.config, storage, client, policy=policy, **kwargs)
        finally:
            client.close()
            storage.close()

    def record_confirmed(self, app_id: str) -> None:
        """The applicant was told it is saved: remember it durably (survives our own kill)."""
        fd = os.open(self.confirmed_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{app_id}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def confirmed(self) -> list[str]:
        """Ids recorded by `record_confirmed`; a line cut by a kill was never confirmed."""
        if not self.confirmed_file.exists():
            return []
        text = self.confirmed_file.read_text(encoding="ascii")
        lines = text.split("\n")
        return [line for line in lines[:-1] if line]  # the last piece lacks its newline

    def simulate(
        self, n: int, *, seed: int | None = None, page_bytes: tuple[int, int] = SMALL_PAGES
    ) -> list[str]:
        """`n` applications through the real applicant flow; confirmed ones are recorded."""
        from sync.simulate import simulate_applications

        return simulate_applications(
            self.config, n, seed=seed, on_saved=self.record_confirmed, page_bytes=page_bytes
        )


def make_kiosk(
    root: Path,
    platform: Platform,
    *,
    kiosk_code: str | None = None,
    url: str | None = None,
    **sync: Any,
) -> Kiosk:
    """A fresh kiosk data directory under `root`, enrolled with `platform` (through `url`,
    e.g. a fault proxy's, when given)."""
    code = kiosk_code or f"K{len(platform.kiosks) + 1:03d}"
    data_dir = Path(root) / f"kiosk-{code}"
    data_dir.mkdir(parents=True, exist_ok=False)
    config = fast_config(data_dir, kiosk_code=code, url=url or platform.url, **sync)
    enroll(config, url or platform.url, platform.new_enrollment_code())
    kiosk = Kiosk(config, platform, Path(root) / f"confirmed-{code}.txt")
    platform.kiosks.append(kiosk)
    return kiosk


# Drain ------------------------------------------------------------------------------------------


class DrainTimeout(AssertionError):
    """The outbox did not empty without faults within the bound: a liveness failure."""


def queue_sizes(kiosk: Kiosk) -> tuple[int, int]:
    """(pending applications, queued ratings)."""
    with kiosk.storage() as storage:
        return storage.sync_counts()["pending"], storage.rating_counts().get("queued", 0)


def drain(
    kiosk: Kiosk, *, url: str | None = None, timeout_s: float = 60.0, max_passes: int = 200
) -> int:
    """Run relay passes (no faults assumed) until nothing is pending; returns the passes used.

    Waits out Retry-After and the breaker like the relay thread would, bounded by `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    passes = 0
    last: PassResult | None = None
    with kiosk.relay(url) as relay:
        while True:
            pending, ratings = (
                relay.storage.sync_counts()["pending"],
                len(relay.storage.ratings_due(None)),
            )
            if pending == 0 and ratings == 0:
                return passes
            if passes >= max_passes or time.monotonic() > deadline:
                raise DrainTimeout(
                    f"{pending} application(s) and {ratings} rating(s) still queued after "
                    f"{passes} passes; last pass: {last}"
                )
            last = relay.run_once(ignore_schedule=True)
            passes += 1
            if last.stopped:
                time.sleep(0.1)


# The invariant ----------------------------------------------------------------------------------


@dataclasses.dataclass
class InvariantReport:
    """What the checker found; `problems` empty means the invariant holds."""

    confirmed: int = 0
    local: int = 0
    delivered: int = 0
    platform: int = 0
    lost: list[str] = dataclasses.field(default_factory=list)
    duplicated: list[str] = dataclasses.field(default_factory=list)
    foreign: list[str] = dataclasses.field(default_factory=list)
    mismatched: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def assert_ok(self) -> None:
        if self.problems:
            shown = "\n  ".join(self.problems[:30])
            raise AssertionError(f"sync invariant violated ({len(self.problems)}):\n  {shown}")


def local_problems(data_dir: Path, storage: Storage) -> list[str]:
    """verify() and SQLite's own integrity_check on a separate read-only connection."""
    problems = [f"verify: {p}" for p in storage.verify()]
    uri = f"file:{data_dir / 'kiosk.db'}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()
    if result != ["ok"]:
        problems.append(f"PRAGMA integrity_check: {result[:5]}")
    return problems


def _local_rows(data_dir: Path) -> dict[str, tuple[str, str | None]]:
    """{id: (status, payload_sha256)}: the outbox columns Storage has no getter for."""
    uri = f"file:{data_dir / 'kiosk.db'}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute("SELECT id, status, payload_sha256 FROM applications").fetchall()
    finally:
        conn.close()
    return {str(i): (str(s), None if p is None else str(p)) for i, s, p in rows}


def check_invariant(
    kiosk: Kiosk,
    *,
    settled: bool = True,
    quarantined: Sequence[str] = (),
    entries: Sequence[PlatformEntry] | None = None,
    check_platform_bytes: bool = True,
    cli: bool = True,
) -> InvariantReport:
    """Compare the platform with the kiosk's database.

    Always: no id twice at the platform; nothing there that no kiosk of this platform holds;
    each of this kiosk's delivered applications is there with the same payload hash,
    attachments and 办件编号, its stored receipt verifies; local verify() and integrity_check.
    `settled` (after drain): every confirmed id is delivered (or in `quarantined`, then set
    aside and absent from the platform), nothing is pending, and nothing the platform
    committed is still undelivered at the kiosk.
    """
    report = InvariantReport()
    problems = report.problems
    if entries is None:
        entries = kiosk.platform.committed(cli=cli)
    entries = list(entries)
    report.platform = len(entries)
    counts = Counter(e.id for e in entries)
    report.duplicated = sorted(i for i, n in counts.items() if n > 1)
    payloads = Counter(e.payload_sha256 for e in entries)
    report.duplicated += sorted(
        e.id for e in entries if payloads[e.payload_sha256] > 1 and e.id not in report.duplicated
    )
    numbers = Counter(e.platform_number for e in entries)
    problems += [f"duplicated at the platform: {i}" for i in report.duplicated]
    problems += [f"办件编号 {n} given twice" for n, c in numbers.items() if c > 1]
    known: set[str] = set()
    for other in kiosk.platform.kiosks:
        known |= set(_local_rows(other.data_dir))
    report.foreign = sorted({e.id for e in entries} - known)
    problems += [f"at the platform but on no kiosk: {i}" for i in report.foreign]

    by_id = {e.id: e for e in entries}
    confirmed = kiosk.confirmed()
    report.confirmed = len(confirmed)
    problems += [
        f"confirmed twice to applicants: {i}" for i, n in Counter(confirmed).items() if n > 1
    ]
    rows = _local_rows(kiosk.data_dir)
    report.local = len(rows)
    receipt_key = kiosk.enrollment.receipt_public_key
    with kiosk.storage() as storage:
        problems += local_problems(kiosk.data_dir, storage)
        counts_now = storage.sync_counts()
        for app in storage.list_applications():
            status, payload_sha = rows[app.id]
            entry = by_id.get(app.id)
            if app.status in DELIVERED:
                report.delivered += 1
                if entry is None:
                    problems.append(f"{app.id} accepted at the kiosk but not at the platform")
                    report.lost.append(app.id)
                    continue
                mine = sorted(p.sha256 for p in app.pages)
                if entry.payload_sha256 != payload_sha or sorted(entry.attachments) != mine:
                    report.mismatched.append(app.id)
                    problems.append(f"{app.id}: the platform's hashes differ from the kiosk's")
                if entry.platform_number != app.platform_number:
                    problems.append(
                        f"{app.id}: 办件编号 {app.platform_number} at the kiosk, "
                        f"{entry.platform_number} at the platform (a second receipt?)"
                    )
                stored = storage.platform_receipt(app.id)
                problems += _receipt_problems(app.id, stored, receipt_key, entry)
            elif entry is not None and settled:
                problems.append(f"{app.id} committed at the platform but {status} at the kiosk")
            if app.status is Status.QUARANTINED and app.id not in quarantined:
                problems.append(f"{app.id} set aside: {storage.quarantine_reason(app.id)}")
        if settled:
            if counts_now["pending"]:
                problems.append(f"{counts_now['pending']} application(s) still queued")
            queued = storage.rating_counts().get("queued", 0)
            if queued:
                problems.append(f"{queued} rating(s) still queued")
    for app_id in confirmed:
        if app_id not in rows:
            report.lost.append(app_id)
            problems.append(f"confirmed {app_id} is not in the kiosk's database")
            continue
        status = Status(rows[app_id][0])
        if app_id in quarantined:
            if status is not Status.QUARANTINED or app_id in by_id:
                problems.append(f"{app_id} should be set aside and absent from the platform")
        elif settled and (status not in DELIVERED or app_id not in by_id):
            report.lost.append(app_id)
            problems.append(f"confirmed {app_id} not delivered ({status.value})")
    if check_platform_bytes:
        problems += platform_blob_problems(kiosk.platform, [by_id[i] for i in rows if i in by_id])
    return report


def _receipt_problems(
    app_id: str, stored: dict[str, Any] | None, key: Any, entry: PlatformEntry
) -> list[str]:
    if stored is None:
        return [f"{app_id}: delivered without a stored receipt"]
    receipt = stored["receipt"]
    try:
        verify_receipt(key, receipt, stored["signature"])
    except ProtocolError as exc:
        return [f"{app_id}: stored receipt does not verify: {exc}"]
    if receipt.get("platform_number") != entry.platform_number:
        return [f"{app_id}: the stored receipt names another 办件编号"]
    return []


def platform_blob_problems(platform: Platform, entries: Sequence[PlatformEntry]) -> list[str]:
    """Every attachment the platform committed is a file whose bytes hash to its name."""
    problems = []
    for entry in entries:
        for sha in entry.attachments:
            path = platform.blob_path(sha)
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except FileNotFoundError:
                problems.append(f"{entry.id}: the platform has no file for {sha}")
                continue
            if digest != sha:
                problems.append(f"{entry.id}: the platform's file {sha} has other bytes")
    return problems


# Kill -9 cycles ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ChildResult:
    killed: bool  # ended by SIGKILL (its crash point, or the parent's random kill)
    exit_code: int | None  # when it ended by itself
    seconds: float


class ChildHung(AssertionError):
    """A kiosk child neither finished nor died within its time limit (a deadlock?)."""


def run_child(
    work: Callable[[], None], *, kill_after_s: float | None = None, timeout_s: float = 60.0
) -> ChildResult:
    """Fork a kiosk process that runs `work`, optionally SIGKILL it after `kill_after_s`."""
    return run_children([(work, kill_after_s)], timeout_s=timeout_s)[0]


def run_children(
    jobs: Sequence[tuple[Callable[[], None], float | None]], *, timeout_s: float = 60.0
) -> list[ChildResult]:
    """Fork one kiosk process per (work, kill_after_s) at once and wait for all of them.

    Call with no SQLite connection open in this process on the kiosks' databases: SQLite's
    lock bookkeeping must not be inherited. Each child ends with os._exit, never returning
    into the test runner.
    """
    start = time.monotonic()
    pids: list[int] = []
    for work, _ in jobs:
        pid = os.fork()
        if pid == 0:
            code = 70  # also for SystemExit or KeyboardInterrupt: never back into pytest
            try:
                work()
                code = 0
            except Exception:  # noqa: BLE001 (the child reports any failure by its exit code)
                traceback.print_exc()
                sys.stderr.flush()
            finally:
                os._exit(code)
        pids.append(pid)
    results: dict[int, ChildResult] = {}
    killed: set[int] = set()
    while len(results) < len(pids):
        now = time.monotonic()
        for index, pid in enumerate(pids):
            if index in results:
                continue
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                seconds = time.monotonic() - start
                if os.WIFSIGNALED(status):
                    sig = os.WTERMSIG(status)
                    results[index] = ChildResult(sig == signal.SIGKILL, None, seconds)
                else:
                    results[index] = ChildResult(False, os.WEXITSTATUS(status), seconds)
                continue
            kill_after = jobs[index][1]
            if kill_after is not None and index not in killed and now - start >= kill_after:
                os.kill(pid, signal.SIGKILL)
                killed.add(index)
        if now - start > timeout_s:
            hung = [p for i, p in enumerate(pids) if i not in results]
            for pid in hung:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            raise ChildHung(f"kiosk children {hung} still running after {timeout_s} s")
        time.sleep(0.002)
    return [results[i] for i in range(len(pids))]


def kiosk_cycle(
    kiosk: Kiosk,
    *,
    crash_at: str | None = None,
    applications: int = 1,
    seed: int = 0,
    rate: bool = True,
    forever: bool = False,
) -> Callable[[], None]:
    """What one kiosk process does: start up, take applications, rate one, run a relay pass.

    With `crash_at`, the named crash point SIGKILLs it ($KIOSK_CRASH_AT, `name#N` for the
    N-th hit). With `forever`, it keeps going until the parent kills it.
    """

    def work() -> None:
        crash._hits.clear()
        if crash_at:
            os.environ[crash.ENV_VAR] = crash_at
        else:
            os.environ.pop(crash.ENV_VAR, None)
        rng = random.Random(seed)
        while True:
            # simulate_applications opens Storage as the kiosk's start-up does (orphans too).
            made = kiosk.simulate(applications, seed=rng.getrandbits(32))
            with kiosk.relay() as relay:
                for app_id in made if rate else []:
                    relay.storage.add_rating(app_id, rng.randint(1, 5))
                relay.run_once(ignore_schedule=True)
            if not forever:
                return

    return work


@dataclasses.dataclass
class KillTally:
    kills: int = 0
    finished: int = 0  # cycles whose crash point was not reached (they ended by themselves)
    by_point: Counter[str] = dataclasses.field(default_factory=Counter)

    def add(self, label: str, result: ChildResult) -> None:
        if result.killed:
            self.kills += 1
            self.by_point[label] += 1
        elif result.exit_code == 0:
            self.finished += 1
        else:
            raise AssertionError(f"kiosk child ({label}) failed with exit code {result.exit_code}")


# The applicant's side -----------------------------------------------------------------------------


def walk_to_review(
    intake: Intake,
    card: IdentityDocument,
    thing_id: str,
    *,
    seed: int = 0,
    page_bytes: tuple[int, int] = SMALL_PAGES,
) -> ApplicantFlow:
    """Walk the applicant flow as a person would, up to the agreed review step (not submitted)."""
    from sync.simulate import scan_page

    rng = random.Random(seed)
    flow = ApplicantFlow(intake)
    flow.choose_thing(thing_id)
    flow.start()
    flow.card_read(card)
    _expect(flow, Step.FORM)
    for key, value in sample_answers(flow.form, dict(flow.session.answers)).items():
        if not flow.form.is_locked(key):
            flow.set_answer(key, value)
    flow.next()
    _expect(flow, Step.MATERIALS)
    for need in flow.form.to_scan(flow.session.answers):
        for _ in range(max(1, need.definition.pages)):
            flow.add_page(need.id, scan_page(rng, rng.randint(*page_bytes)))
    flow.next()
    flow.agree(True)
    _expect(flow, Step.REVIEW)
    return flow


def _expect(flow: ApplicantFlow, step: Step) -> None:
    assert flow.step is step, (flow.step, flow.session.notice, sorted(flow.session.errors))


def kiosk_intake(kiosk: Kiosk, storage: Storage, licences: Any = None) -> Intake:
    """The flow's backend as the kiosk app wires it: sealing to the enrolled platform's key."""
    from sync.sealing import HpkeSealer
    from sync.simulate import build_intake
    from sync.simulated import SimulatedPlatform

    platform = licences if licences is not None else SimulatedPlatform(DEMO_LICENCES)
    intake = build_intake(
        kiosk.config, storage, platform, HpkeSealer(kiosk.enrollment.seal_public_key)
    )
    intake.on_saved = kiosk.record_confirmed
    return intake
