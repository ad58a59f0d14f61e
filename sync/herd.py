"""The herd: many simulated kiosks reconnecting at once after an outage, against the platform.

Every kiosk is an asyncio task in this process with its own `Backoff`, `CircuitBreaker` and
start-up delay (sync.backoff), its own key and its own HTTP connection. They sit behind a
`FaultProxy` that is offline during the outage; when it ends, each kiosk hears "network back",
waits its random start-up delay and delivers its applications (a sealed payload with no pages:
`PUT /v1/applications/{id}`, then `POST .../commit`), retrying on 429, 5xx and dropped
connections, never sooner than Retry-After. The proxy counts the requests that reach the
platform in each second; the platform's own list says whether every application arrived once.
Used by tests/test_herd.py (light) and benchmarks/bench_sync_herd.py (1,000 kiosks).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.application import new_application_id
from kiosk.config import SyncConfig
from sync.backoff import RetryPolicy, jittered, parse_retry_after
from sync.faultproxy import FaultProxy, Faults, per_second
from sync.platform.server import PlatformServer
from sync.platform.store import PlatformStore
from sync.protocol import (
    SCHEMA,
    ProtocolError,
    b64,
    canonical_json,
    ed25519_public,
    payload_info,
    raw_public,
    seal,
    sha256_hex,
    sign_request,
    verify_receipt,
    x25519_public,
)

log = logging.getLogger(__name__)

_TRANSIENT = frozenset({429, 500, 502, 503, 504})


class HerdError(RuntimeError):
    """The herd could not be set up or run (the platform did not start, enrollment failed)."""


@dataclass(frozen=True)
class HerdConfig:
    kiosks: int = 100
    apps_per_kiosk: int = 2
    rate: float = 20.0  # the platform admits this many requests per second
    outage_s: float = 3.0  # the kiosks boot and fail this long before the network returns
    sync: SyncConfig = field(default_factory=SyncConfig)  # the kiosks' retry knobs
    platform: Literal["process", "thread"] = "process"  # a subprocess isolates its CPU
    request_timeout_s: float = 30.0
    deadline_s: float = 900.0  # give up waiting for the drain after this long
    seed: int = 0


def scaled_sync(factor: float) -> SyncConfig:
    """The default `[sync]` retry knobs with every duration multiplied by `factor`."""
    base = SyncConfig()
    return replace(
        base,
        backoff_base_s=base.backoff_base_s * factor,
        backoff_cap_s=base.backoff_cap_s * factor,
        breaker_open_min_s=base.breaker_open_min_s * factor,
        breaker_open_max_s=base.breaker_open_max_s * factor,
        startup_delay_max_s=base.startup_delay_max_s * factor,
    )


@dataclass(frozen=True)
class HerdResult:
    kiosks: int
    applications: int
    capacity: float  # requests/s the platform admits
    per_second: tuple[int, ...]  # requests reaching the platform in each second after the outage
    peak: int  # the largest of per_second
    peak_window: int  # the most requests in any sliding 1-s window
    drain_s: float  # network back → the last receipt
    committed: int  # receipts the kiosks verified
    on_platform: int  # applications in the platform's list
    duplicates: int  # extra copies in the platform's list (by kiosk id + application id)
    missing: int  # applications the platform does not list
    requests: int  # requests the kiosks sent after the outage
    refused: int  # 429 and 503 answers
    errors: int  # dropped connections, timeouts, other 5xx
    breaker_opened: int  # kiosks whose breaker was open when the network came back
    max_retry_after_s: float
    failures: tuple[str, ...] = ()  # definitive refusals (409/422...), by application id

    @property
    def peak_ratio(self) -> float:
        return self.peak / self.capacity

    @property
    def drained(self) -> bool:
        return self.committed == self.applications and self.missing == 0

    def summary(self) -> str:
        return (
            f"{self.kiosks} kiosks, {self.applications} applications at {self.capacity:g} req/s: "
            f"peak {self.peak} req/s ({self.peak_ratio:.2f}× capacity, sliding 1 s "
            f"{self.peak_window}), drained in {self.drain_s:.1f} s, "
            f"{self.committed} committed, {self.duplicates} duplicates, {self.missing} missing, "
            f"{self.requests} requests ({self.refused} refused 429/503, {self.errors} errors), "
            f"{self.breaker_opened} breakers open at network return"
        )


@dataclass
class _App:
    id: str
    body: bytes
    payload_sha256: str
    committed_at: float | None = None


@dataclass
class _Kiosk:
    kiosk_id: str
    key: Ed25519PrivateKey
    policy: RetryPolicy
    client: httpx.AsyncClient
    wake: asyncio.Event
    apps: list[_App] = field(default_factory=list)
    seal_key: str = ""
    receipt_key: str = ""


@dataclass
class _Tally:
    requests: int = 0
    refused: int = 0
    errors: int = 0
    max_retry_after_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    counting: bool = False  # only after the outage


class _Definitive(Exception):
    """An answer that retrying will not change (a 4xx other than 429)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sliding_peak(times: list[float], window: float = 1.0) -> int:
    """The most `times` in any interval of `window` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


class _Platform:
    """The reference platform, as a subprocess (`kiosk platform serve`) or a thread."""

    def __init__(self, data_dir: Path, rate: float, mode: str, log_path: Path) -> None:
        self.data_dir = data_dir
        self.rate = rate
        self.mode = mode
        self.log_path = log_path
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._server: PlatformServer | None = None

    def start(self) -> None:
        if self.mode == "thread":
            self._server = PlatformServer(self.data_dir, rate=self.rate).start()
            self.port = self._server.port
            return
        self.port = free_port()
        command = [
            sys.executable,
            "-c",
            "import sys; from ui.cli import main; sys.exit(main())",
            "platform",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--rate",
            f"{self.rate:g}",
        ]
        with self.log_path.open("wb") as out:
            self._process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise HerdError(f"the platform exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/v1/health", timeout=1).is_success:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.1)
        raise HerdError("the platform did not answer /v1/health within 30 s")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


class Herd:
    """One herd run: `Herd(config).run()` → HerdResult."""

    def __init__(self, config: HerdConfig, work_dir: Path | None = None) -> None:
        self.config = config
        self._work_dir = work_dir
        self._rng = random.Random(config.seed)
        self._tally = _Tally()

    def run(self) -> HerdResult:
        with contextlib.ExitStack() as stack:
            if self._work_dir is None:
                work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="herd-")))
            else:
                work = self._work_dir
            data_dir = work / "platform"
            codes = self._enrollment_codes(data_dir)
            platform = _Platform(data_dir, self.config.rate, self.config.platform, work / "log")
            platform.start()
            stack.callback(platform.stop)
            proxy = stack.enter_context(
                FaultProxy("127.0.0.1", platform.port, seed=self.config.seed)
            )
            _raise_fd_limit(self.config.kiosks * 4 + 256)
            result = asyncio.run(self._run(proxy, codes))
            platform.stop()
            return self._check(result, PlatformStore(data_dir))

    def _enrollment_codes(self, data_dir: Path) -> list[str]:
        store = PlatformStore(data_dir)
        try:
            return [store.new_enrollment_code() for _ in range(self.config.kiosks)]
        finally:
            store.close()

    async def _run(self, proxy: FaultProxy, codes: list[str]) -> _Partial:
        cfg = self.config
        kiosks = [self._kiosk(n, proxy.url) for n in range(cfg.kiosks)]
        try:
            enrolling = asyncio.Semaphore(50)
            await asyncio.gather(
                *(self._enroll(k, code, enrolling) for k, code in zip(kiosks, codes, strict=True))
            )
            for k in kiosks:
                self._make_apps(k)
            proxy.set(Faults(offline=True))
            tasks = [asyncio.create_task(self._deliver_all(k)) for k in kiosks]
            await asyncio.sleep(cfg.outage_s)
            opened = sum(1 for k in kiosks if k.policy.breaker.state != "closed")
            proxy.reset_counters()
            loop_t0 = time.monotonic()
            proxy.set(Faults())
            self._tally = _Tally(counting=True)
            for k in kiosks:
                k.wake.set()
            done, pending = await asyncio.wait(tasks, timeout=cfg.deadline_s)
            for task in pending:
                task.cancel()
            for task in done:
                task.result()  # a bug in the harness must not pass as a slow drain
            times = [r.at for r in proxy.request_log()]
            committed_at = [a.committed_at for k in kiosks for a in k.apps if a.committed_at]
            return _Partial(
                kiosks=kiosks,
                times=times,
                t0=loop_t0,
                last_commit=max(committed_at) if committed_at else None,
                opened=opened,
            )
        finally:
            for k in kiosks:
                await k.client.aclose()

    def _kiosk(self, n: int, url: str) -> _Kiosk:
        rng = random.Random(self._rng.getrandbits(64))
        return _Kiosk(
            kiosk_id=f"HERD-K{n:04d}",
            key=Ed25519PrivateKey.generate(),
            policy=RetryPolicy.from_config(self.config.sync, rng=rng),
            client=httpx.AsyncClient(
                base_url=url,
                timeout=self.config.request_timeout_s,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            ),
            wake=asyncio.Event(),
        )

    async def _enroll(self, k: _Kiosk, code: str, gate: asyncio.Semaphore) -> None:
        body = canonical_json(
            {"code": code, "kiosk_id": k.kiosk_id, "public_key": raw_public(k.key.public_key())}
        )
        async with gate:
            for _ in range(100):
                try:
                    response = await k.client.post(
                        "/v1/enroll", content=body, headers={"Content-Type": "application/json"}
                    )
                except httpx.TransportError:
                    await asyncio.sleep(0.5)
                    continue
                if response.status_code == 201:
                    doc = response.json()
                    k.seal_key, k.receipt_key = doc["seal_public_key"], doc["receipt_public_key"]
                    return
                if response.status_code not in _TRANSIENT:
                    raise HerdError(f"enrolling {k.kiosk_id}: HTTP {response.status_code}")
                wait = parse_retry_after(response.headers.get("Retry-After"), time.time())
                await asyncio.sleep(wait if wait is not None else 1.0)
        raise HerdError(f"enrolling {k.kiosk_id}: still refused after 100 tries")

    def _make_apps(self, k: _Kiosk) -> None:
        seal_key = x25519_public(k.seal_key)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        for seq in range(1, self.config.apps_per_kiosk + 1):
            app_id = new_application_id()
            payload = canonical_json(
                {"application_id": app_id, "thing_id": "newborn", "pages": [], "lang": "zh"}
            )
            sealed = seal(seal_key, payload, payload_info(app_id))
            digest = sha256_hex(sealed)
            body = canonical_json(
                {
                    "schema": SCHEMA,
                    "kiosk_seq": seq,
                    "thing_id": "newborn",
                    "catalog_version": "herd",
                    "created_at": now,
                    "receipt_number": f"{k.kiosk_id}-{seq:04d}",
                    "channel": "self",
                    "sealed_payload": b64(sealed),
                    "payload_sha256": digest,
                    "attachments": [],
                }
            )
            k.apps.append(_App(app_id, body, digest))

    # One kiosk ---------------------------------------------------------------------------------

    async def _deliver_all(self, k: _Kiosk) -> None:
        with contextlib.suppress(_NetworkBack):
            await self._pause(k, k.policy.startup_delay())  # start-up
        gap = self.config.sync.backlog_gap_s
        for n, app in enumerate(k.apps):
            if n and gap > 0:
                # As the relay does after an outage: the backlog goes out spaced.
                with contextlib.suppress(_NetworkBack):
                    await self._pause(k, jittered(gap, rng=k.policy.rng))
            try:
                await self._send(k, "PUT", f"/v1/applications/{app.id}", app.body)
                doc = await self._send(k, "POST", f"/v1/applications/{app.id}/commit", b"")
                self._check_receipt(k, app, doc)
            except _Definitive as exc:
                self._tally.failures.append(f"{app.id}: {exc}")
                continue
            app.committed_at = time.monotonic()

    def _check_receipt(self, k: _Kiosk, app: _App, doc: dict[str, Any]) -> None:
        receipt = doc.get("receipt")
        if not isinstance(receipt, dict) or receipt.get("payload_sha256") != app.payload_sha256:
            raise _Definitive("the receipt does not name the payload")
        try:
            verify_receipt(ed25519_public(k.receipt_key), receipt, str(doc.get("signature")))
        except ProtocolError as exc:
            raise _Definitive(str(exc)) from None

    async def _pause(self, k: _Kiosk, seconds: float) -> None:
        """Sleep; if the network comes back meanwhile (or came back since the last pause),
        wait the random start-up delay instead and raise _NetworkBack."""
        if not k.wake.is_set():
            if seconds <= 0:
                return
            try:
                await asyncio.wait_for(k.wake.wait(), seconds)
            except TimeoutError:
                return
        k.wake = asyncio.Event()  # heard; the next pause sleeps in full
        await asyncio.sleep(k.policy.startup_delay())
        raise _NetworkBack

    async def _send(self, k: _Kiosk, method: str, target: str, body: bytes) -> dict[str, Any]:
        """One request, retried until a definitive answer; the JSON of the 2xx."""
        attempt = 0
        breaker = k.policy.breaker
        while True:
            try:
                if not breaker.allow():
                    until = breaker.open_until()
                    await self._pause(k, (until - time.monotonic()) if until else 1.0)
                    continue
                outcome = await self._attempt(k, method, target, body)
                if isinstance(outcome, dict):
                    breaker.record_success()
                    return outcome
                status, retry_after = outcome
                if status == 429:
                    breaker.record_success()  # reachable and answering: only busy
                else:
                    breaker.record_failure()
                await self._pause(k, k.policy.retry_delay(attempt, retry_after))
                attempt += 1
            except _NetworkBack:
                attempt = 0

    async def _attempt(
        self, k: _Kiosk, method: str, target: str, body: bytes
    ) -> dict[str, Any] | tuple[int, float | None]:
        headers = sign_request(k.key, k.kiosk_id, method, target, body, time.time())
        headers["Content-Type"] = "application/json"
        tally = self._tally
        if tally.counting:
            tally.requests += 1
        try:
            response = await k.client.request(method, target, content=body, headers=headers)
        except httpx.TransportError:
            if tally.counting:
                tally.errors += 1
            return (0, None)
        if response.is_success:
            try:
                doc = response.json()
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                return doc
            if tally.counting:
                tally.errors += 1  # an answer that is not the promised JSON is transient
            return (response.status_code, None)
        if response.status_code in _TRANSIENT or response.status_code >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
            if tally.counting:
                if response.status_code in (429, 503):
                    tally.refused += 1
                else:
                    tally.errors += 1
                tally.max_retry_after_s = max(tally.max_retry_after_s, retry_after or 0.0)
            return (response.status_code, retry_after)
        raise _Definitive(f"HTTP {response.status_code} {response.text[:200]}")

    # The verdict -------------------------------------------------------------------------------

    def _check(self, partial: _Partial, store: PlatformStore) -> HerdResult:
        try:
            listed = store.list_committed()
        finally:
            store.close()
        expected = {(k.kiosk_id, a.id) for k in partial.kiosks for a in k.apps}
        copies = Counter((c.kiosk_id, c.id) for c in listed)
        numbers = Counter(c.platform_number for c in listed)
        duplicates = sum(n - 1 for n in copies.values()) + sum(n - 1 for n in numbers.values())
        times = partial.times
        buckets = per_second(times, since=partial.t0)
        tally = self._tally
        return HerdResult(
            kiosks=self.config.kiosks,
            applications=len(expected),
            capacity=self.config.rate,
            per_second=tuple(buckets),
            peak=max(buckets, default=0),
            peak_window=sliding_peak(times),
            drain_s=(partial.last_commit - partial.t0) if partial.last_commit else float("nan"),
            committed=sum(1 for k in partial.kiosks for a in k.apps if a.committed_at),
            on_platform=len(set(copies) & expected),
            duplicates=duplicates,
            missing=len(expected - set(copies)),
            requests=tally.requests,
            refused=tally.refused,
            errors=tally.errors,
            breaker_opened=partial.opened,
            max_retry_after_s=tally.max_retry_after_s,
            failures=tuple(tally.failures),
        )


class _NetworkBack(Exception):
    """The network came back during a pause: start the attempt count again."""


@dataclass(frozen=True)
class _Partial:
    kiosks: list[_Kiosk]
    times: list[float]
    t0: float
    last_commit: float | None
    opened: int


def _raise_fd_limit(wanted: int) -> None:
    """Each simulated kiosk holds a socket, and the proxy two more."""
    if os.name != "posix":
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main() -> int:
    """`python -m sync.herd [KIOSKS APPS RATE]`: one run, the summary on stdout."""
    args = [float(a) for a in sys.argv[1:4]]
    config = HerdConfig(
        kiosks=int(args[0]) if args else 100,
        apps_per_kiosk=int(args[1]) if len(args) > 1 else 2,
        rate=args[2] if len(args) > 2 else 20.0,
        sync=scaled_sync(1 / 12),
    )
    result = Herd(config).run()
    print(result.summary())
    print(json.dumps({"per_second": result.per_second}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
