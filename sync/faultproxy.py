"""A fault-injecting TCP proxy between the kiosk and the platform, for tests and benchmarks.

It listens on 127.0.0.1 only and runs its own asyncio loop in a background thread, so a
synchronous test can change the faults at any moment with `proxy.set(Faults(...))`. Plain HTTP/1.1
is recognised by its first bytes: then the proxy follows request boundaries (Content-Length,
chunked, keep-alive), counts requests per second and can answer a request itself (500, 503,
429 with Retry-After). Anything else (TLS) is forwarded as opaque bytes, and the TCP faults
(drops, delay, throttle, resets, offline) still apply per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, TypeVar

log = logging.getLogger(__name__)

_READ = 64 << 10
_MAX_HEAD = 64 << 10
_HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"OPTIONS ")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Faults:
    """What the proxy does to traffic; the default forwards everything untouched.

    Per-request faults (`drop_request_after`, `drop_response_after`, `delay_s`, `answer`) apply
    to a `probability` fraction of requests (of connections, for non-HTTP traffic), drawn from
    the proxy's seeded generator. Link faults (`rate_bps`, `reset_every_s`, `offline`) always apply.
    """

    # Forward this many bytes of a longer request (of the connection, for non-HTTP), then cut.
    drop_request_after: int | None = None
    # Forward this many bytes of the answer, then cut: the upstream has already acted on the
    # request ("the response was lost after the platform committed").
    drop_response_after: int | None = None
    delay_s: float = 0.0  # hold each request (each new connection, for non-HTTP) this long
    rate_bps: float | None = None  # bytes per second, each direction (64 kbit/s = 8000)
    reset_every_s: float | None = None  # cut every open connection this often
    answer: int | None = None  # answer this HTTP status instead of forwarding
    retry_after: int | str | None = None  # the Retry-After header of `answer`
    probability: float = 1.0
    offline: bool = False  # the listening socket is closed: connections are refused

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {self.probability}")
        if self.rate_bps is not None and self.rate_bps <= 0:
            raise ValueError(f"rate_bps must be > 0, got {self.rate_bps}")
        if self.reset_every_s is not None and self.reset_every_s <= 0:
            raise ValueError(f"reset_every_s must be > 0, got {self.reset_every_s}")
        if self.delay_s < 0:
            raise ValueError(f"delay_s must be ≥ 0, got {self.delay_s}")
        for name in ("drop_request_after", "drop_response_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be ≥ 0, got {value}")
        if self.answer is not None and not 100 <= self.answer <= 599:
            raise ValueError(f"answer must be an HTTP status, got {self.answer}")

    @property
    def per_request(self) -> bool:
        return (
            self.drop_request_after is not None
            or self.drop_response_after is not None
            or self.delay_s > 0
            or self.answer is not None
        )


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the proxy saw: when (time.monotonic()), what, and what it did to it."""

    at: float
    method: str
    target: str
    action: str  # "forwarded", "answered 429", "dropped request", "dropped response"


@dataclass(frozen=True)
class ProxyStats:
    bytes_up: int  # client → upstream, forwarded
    bytes_down: int  # upstream → client, forwarded
    connections: int  # accepted
    open_connections: int
    requests: int  # HTTP request heads read
    answered: int  # answered by the proxy instead of the upstream
    cut: int  # connections cut by a fault (drop, reset, going offline)


class _Cut(Exception):
    """A fault ends this connection."""


class _Pacer:
    """Shared pacing for one direction of the simulated link."""

    def __init__(self) -> None:
        self._next = 0.0

    async def send(self, size: int, rate: float) -> None:
        now = time.monotonic()
        self._next = max(self._next, now) + size / rate
        await asyncio.sleep(self._next - now)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.up_reader: asyncio.StreamReader | None = None
        self.up_writer: asyncio.StreamWriter | None = None
        self.down_task: asyncio.Task[None] | None = None
        # The response fault of the request now in flight (HTTP has no pipelining in httpx).
        self.response_limit: int | None = None
        self.response_bytes = 0
        self.request_index = -1
        self.cut = False
        _flush_each_write(writer)

    def abort(self) -> None:
        """End both sides at once, as a cut link would."""
        self.cut = True
        for writer in (self.writer, self.up_writer):
            if writer is not None:
                writer.transport.abort()

    def close(self) -> None:
        """End both sides after what was written has gone out."""
        for writer in (self.writer, self.up_writer):
            if writer is not None:
                writer.close()


def _flush_each_write(writer: asyncio.StreamWriter) -> None:
    # drain() then waits until the kernel has every byte: the throttle is exact, and a cut after
    # N bytes has really sent those N bytes.
    transport = writer.transport
    if isinstance(transport, asyncio.WriteTransport):
        transport.set_write_buffer_limits(high=0)


class FaultProxy:
    """`FaultProxy(host, port)`: start(), stop(), `.port`, `set(Faults(...))`, counters."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        listen_port: int = 0,
        seed: int = 0,
        faults: Faults | None = None,
    ) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self._listen_port = listen_port
        self._faults = faults or Faults()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._up_pacer = _Pacer()
        self._down_pacer = _Pacer()
        self._last_reset = time.monotonic()
        self._bytes_up = 0
        self._bytes_down = 0
        self._accepted = 0
        self._answered = 0
        self._cut = 0
        self._records: list[RequestRecord] = []
        self.port = listen_port

    # Life cycle --------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._thread is not None:
            raise RuntimeError("the proxy is already running")
        loop = asyncio.new_event_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop, ready), name="fault-proxy", daemon=True
        )
        self._thread.start()
        self._call(self._started(ready))
        log.info(
            "fault proxy 127.0.0.1:%d → %s:%d", self.port, self.upstream_host, self.upstream_port
        )
        return self

    def _run(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(self._main(ready))
        loop.close()

    async def _main(self, ready: asyncio.Future[None]) -> None:
        self._stopping = asyncio.Event()
        try:
            if not self._faults.offline:
                await self._listen()
        except OSError as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        resets = asyncio.create_task(self._reset_loop())
        await self._stopping.wait()
        resets.cancel()
        await self._close_listener()
        for conn in list(self._connections):
            conn.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(resets, *tasks, return_exceptions=True)

    async def _started(self, ready: asyncio.Future[None]) -> None:
        await ready

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, _T], timeout: float = 10.0) -> _T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the proxy is not running")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("call this from another thread than the proxy's")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # Faults ------------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set(self, faults: Faults) -> None:
        """Apply `faults` from now on; returns once going offline/online has taken effect."""
        with self._lock:
            before, self._faults = self._faults, faults
            self._last_reset = time.monotonic()
        if self._loop is not None and before.offline != faults.offline:
            self._call(self._apply_offline())

    def cut_all(self) -> int:
        """Cut every open connection now (a network blip); returns how many were cut."""
        return self._call(self._cut_all())

    async def _apply_offline(self) -> None:
        if self.faults.offline:
            await self._close_listener()
            await self._cut_all()
        elif self._server is None:
            await self._listen()

    async def _listen(self) -> None:
        # Rebinding the port after `offline` keeps the kiosk's URL valid (SO_REUSEADDR is on).
        for attempt in range(50):
            try:
                self._server = await asyncio.start_server(
                    self._handle, "127.0.0.1", self.port, reuse_address=True
                )
                break
            except OSError:
                if self.port == 0 or attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        assert self._server is not None
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

    async def _cut_all(self) -> int:
        conns = list(self._connections)
        for conn in conns:
            if not conn.cut:
                self._count_cut()
            conn.abort()
        return len(conns)

    async def _reset_loop(self) -> None:
        while True:
            await asyncio.sleep(0.02)
            with self._lock:
                every, last = self._faults.reset_every_s, self._last_reset
            now = time.monotonic()
            if every is not None and now - last >= every:
                with self._lock:
                    self._last_reset = now
                cut = await self._cut_all()
                log.debug("fault proxy reset %d connections", cut)

    # Counters ----------------------------------------------------------------------------------

    def stats(self) -> ProxyStats:
        with self._lock:
            return ProxyStats(
                bytes_up=self._bytes_up,
                bytes_down=self._bytes_down,
                connections=self._accepted,
                open_connections=len(self._connections),
                requests=len(self._records),
                answered=self._answered,
                cut=self._cut,
            )

    @property
    def bytes_up(self) -> int:
        return self.stats().bytes_up

    @property
    def bytes_down(self) -> int:
        return self.stats().bytes_down

    @property
    def connections(self) -> int:
        return self.stats().connections

    @property
    def requests(self) -> int:
        return self.stats().requests

    def request_log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def requests_per_second(self, since: float | None = None) -> list[int]:
        """HTTP requests arriving in each whole second from `since` (default: the first)."""
        times = [r.at for r in self.request_log()]
        return per_second(times, since)

    def reset_counters(self) -> None:
        with self._lock:
            self._bytes_up = self._bytes_down = self._accepted = 0
            self._answered = self._cut = 0
            self._records = []

    def _count_cut(self) -> None:
        with self._lock:
            self._cut += 1

    # Forwarding --------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        conn = _Connection(reader, writer)
        with self._lock:
            self._accepted += 1
            self._connections.add(conn)
            self._tasks.add(task)
        try:
            first = await reader.read(_READ)
            if first:
                if first.startswith(_HTTP_METHODS):
                    await self._serve_http(conn, first)
                else:
                    await self._serve_tcp(conn, first)
        except (_Cut, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the connection ends, as a cut link would end it
        except OSError as exc:
            log.debug("fault proxy connection failed: %s", exc)
        finally:
            conn.abort()
            if conn.down_task is not None:
                conn.down_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError, _Cut, OSError):
                    await conn.down_task
            with self._lock:
                self._connections.discard(conn)
                self._tasks.discard(task)

    async def _connect_upstream(self, conn: _Connection) -> None:
        conn.up_reader, conn.up_writer = await asyncio.open_connection(
            self.upstream_host, self.upstream_port
        )
        _flush_each_write(conn.up_writer)
        conn.down_task = asyncio.create_task(self._pump_down(conn))

    def _draw(self, faults: Faults) -> bool:
        if not faults.per_request:
            return False
        with self._lock:
            return self._rng.random() < faults.probability

    async def _send(self, conn: _Connection, data: bytes, upward: bool) -> None:
        """Forward `data` one way through the (maybe throttled) link."""
        writer = conn.up_writer if upward else conn.writer
        assert writer is not None
        pacer = self._up_pacer if upward else self._down_pacer
        view = memoryview(data)
        while view:
            rate = self.faults.rate_bps
            size = len(view) if rate is None else max(1, min(len(view), int(rate / 50)))
            piece, view = view[:size], view[size:]
            if rate is not None:
                await pacer.send(size, rate)
            if conn.cut:
                raise _Cut
            writer.write(piece)
            await writer.drain()
            with self._lock:
                if upward:
                    self._bytes_up += size
                else:
                    self._bytes_down += size

    async def _pump_down(self, conn: _Connection) -> None:
        assert conn.up_reader is not None
        try:
            while data := await conn.up_reader.read(_READ):
                limit = conn.response_limit
                if limit is not None and conn.response_bytes + len(data) > limit:
                    await self._send(conn, data[: limit - conn.response_bytes], upward=False)
                    self._record_action("dropped response", conn.request_index)
                    self._count_cut()
                    conn.abort()
                    return
                conn.response_bytes += len(data)
                await self._send(conn, data, upward=False)
        except (_Cut, ConnectionError, OSError):
            conn.abort()
            return
        # The upstream closed: the client's connection ends with it, after the last bytes.
        conn.close()

    def _record(self, method: str, target: str) -> int:
        with self._lock:
            self._records.append(RequestRecord(time.monotonic(), method, target, "forwarded"))
            return len(self._records) - 1

    def _record_action(self, action: str, index: int) -> None:
        with self._lock:
            if 0 <= index < len(self._records):
                old = self._records[index]
                self._records[index] = RequestRecord(old.at, old.method, old.target, action)

    async def _serve_tcp(self, conn: _Connection, first: bytes) -> None:
        faults = self.faults
        hit = self._draw(faults)
        if hit and faults.delay_s:
            await asyncio.sleep(faults.delay_s)
        await self._connect_upstream(conn)
        if hit and faults.drop_response_after is not None:
            conn.response_limit = faults.drop_response_after
        up_limit = faults.drop_request_after if hit else None
        sent = 0
        data = first
        while data:
            if up_limit is not None and sent + len(data) > up_limit:
                await self._send(conn, data[: up_limit - sent], upward=True)
                self._count_cut()
                raise _Cut
            sent += len(data)
            await self._send(conn, data, upward=True)
            data = await conn.reader.read(_READ)
        await self._finish_upward(conn)

    async def _finish_upward(self, conn: _Connection) -> None:
        """The client sent EOF: pass it on and let the answer finish."""
        if conn.up_writer is not None and conn.up_writer.can_write_eof():
            with contextlib.suppress(OSError):
                conn.up_writer.write_eof()
        if conn.down_task is not None:
            await conn.down_task

    async def _serve_http(self, conn: _Connection, first: bytes) -> None:
        stream = _Stream(conn.reader, first)
        while True:
            head = await stream.read_head()
            if head is None:
                await self._finish_upward(conn)
                return
            method, target, framing = _parse_head(head)
            index = self._record(method, target)
            faults = self.faults
            hit = self._draw(faults)
            if hit and faults.delay_s:
                await asyncio.sleep(faults.delay_s)
            if conn.cut:
                raise _Cut
            if hit and faults.answer is not None:
                async for _ in stream.body(framing):
                    pass  # read and discard: the connection stays usable for the next request
                with self._lock:
                    self._answered += 1
                self._record_action(f"answered {faults.answer}", index)
                await self._answer(conn, faults.answer, faults.retry_after, method)
                continue
            if conn.up_writer is None:
                try:
                    await self._connect_upstream(conn)
                except OSError:
                    self._record_action("answered 502", index)
                    await self._answer(conn, 502, None, method)
                    raise _Cut from None
            conn.response_bytes = 0
            conn.response_limit = faults.drop_response_after if hit else None
            conn.request_index = index
            limit = faults.drop_request_after if hit else None
            sent = await self._forward_limited(conn, head, 0, limit, index)
            async for piece in stream.body(framing):
                sent = await self._forward_limited(conn, piece, sent, limit, index)

    async def _forward_limited(
        self, conn: _Connection, piece: bytes, sent: int, limit: int | None, index: int
    ) -> int:
        if limit is not None and sent + len(piece) > limit:
            await self._send(conn, piece[: limit - sent], upward=True)
            self._record_action("dropped request", index)
            self._count_cut()
            raise _Cut
        await self._send(conn, piece, upward=True)
        return sent + len(piece)

    async def _answer(
        self, conn: _Connection, status: int, retry_after: int | str | None, method: str
    ) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        body = json.dumps({"error": phrase.lower().replace(" ", "_"), "from": "fault-proxy"})
        payload = b"" if method == "HEAD" else body.encode()
        lines = [
            f"HTTP/1.1 {status} {phrase}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
            "Content-Type: application/json",
            f"Content-Length: {len(body.encode())}",
        ]
        if retry_after is not None:
            lines.append(f"Retry-After: {retry_after}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        await self._send(conn, data, upward=False)


def per_second(times: list[float], since: float | None = None) -> list[int]:
    """Counts of `times` in each whole second from `since` (default: the earliest)."""
    if not times:
        return []
    start = min(times) if since is None else since
    buckets = Counter(int(t - start) for t in times if t >= start)
    if not buckets:
        return []
    return [buckets.get(k, 0) for k in range(max(buckets) + 1)]


@dataclass(frozen=True)
class _Framing:
    length: int = 0
    chunked: bool = False


def _parse_head(head: bytes) -> tuple[str, str, _Framing]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise _Cut
    method, target = parts[0], parts[1]
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            if not value.strip().isdigit():
                raise _Cut
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    return method, target, _Framing(length, chunked)


class _Stream:
    """The client's bytes, with the ones already read but not yet used in front."""

    def __init__(self, reader: asyncio.StreamReader, pending: bytes) -> None:
        self.reader = reader
        self.pending = pending

    async def _more(self) -> bool:
        data = await self.reader.read(_READ)
        if not data:
            return False
        self.pending += data
        return True

    async def read_head(self) -> bytes | None:
        """The next request head with its blank line, or None at a clean end of stream."""
        while b"\r\n\r\n" not in self.pending:
            if len(self.pending) > _MAX_HEAD:
                raise _Cut
            if not await self._more():
                if self.pending:
                    raise _Cut  # ended mid-head
                return None
        end = self.pending.index(b"\r\n\r\n") + 4
        head, self.pending = self.pending[:end], self.pending[end:]
        return head

    async def _exactly(self, size: int) -> AsyncIterator[bytes]:
        """Yield up to `size` bytes as they arrive."""
        left = size
        while left:
            if not self.pending and not await self._more():
                raise _Cut
            piece, self.pending = self.pending[:left], self.pending[left:]
            left -= len(piece)
            yield piece

    async def _line(self) -> bytes:
        while b"\r\n" not in self.pending:
            if len(self.pending) > _MAX_HEAD or not await self._more():
                raise _Cut
        end = self.pending.index(b"\r\n") + 2
        line, self.pending = self.pending[:end], self.pending[end:]
        return line

    async def body(self, framing: _Framing) -> AsyncIterator[bytes]:
        """Yield the body's raw bytes (chunk framing included) as they arrive."""
        if not framing.chunked:
            async for piece in self._exactly(framing.length):
                yield piece
            return
        while True:
            line = await self._line()
            yield line
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _Cut from None
            if size == 0:
                while True:  # trailers up to the blank line
                    trailer = await self._line()
                    yield trailer
                    if trailer == b"\r\n":
                        return
            async for piece in self._exactly(size + 2):
                yield piece
