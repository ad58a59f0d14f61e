"""The fault proxy against a tiny local HTTP(S) server: every fault observable, counters right."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import trustme

from sync.faultproxy import FaultProxy, Faults, per_second


@dataclass
class Upstream:
    port: int
    seen: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, body bytes
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, method: str) -> int:
        with self.lock:
            return sum(1 for m, _, _ in self.seen if m == method)


def _serve(context: ssl.SSLContext | None = None) -> Iterator[Upstream]:
    upstream = Upstream(0)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive
        disable_nagle_algorithm = True  # head and body are two writes

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet test output

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if len(body) < length:
                raise ConnectionError("the request ended early")  # as any real server would
            return body

        def _reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            with upstream.lock:
                upstream.seen.append(("GET", self.path, 0))
            size = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/bytes/") else 5
            self._reply(b"x" * size)

        def do_POST(self) -> None:
            body = self._body()
            with upstream.lock:
                upstream.seen.append(("POST", self.path, len(body)))
            self._reply(str(len(body)).encode() * 100)

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            return  # a cut connection is what these tests cause on purpose

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    upstream.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    yield from _serve()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", upstream.port, seed=1) as p:
        yield p


def _client(proxy: FaultProxy, timeout: float = 5.0) -> httpx.Client:
    return httpx.Client(base_url=proxy.url, timeout=timeout)


def test_listens_on_loopback_only(proxy: FaultProxy) -> None:
    assert proxy.port > 0
    addresses = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    for address in addresses - {"127.0.0.1", "127.0.1.1"}:
        with pytest.raises(OSError), socket.create_connection((address, proxy.port), timeout=1):
            pass


def test_forwards_with_keep_alive_and_counts(proxy: FaultProxy, upstream: Upstream) -> None:
    with _client(proxy) as client:
        assert client.get("/a").content == b"xxxxx"
        assert client.post("/b", content=b"y" * 1000).content == b"1000" * 100
        assert client.get("/bytes/70000").content == b"x" * 70000
    stats = proxy.stats()
    assert stats.connections == 1  # one keep-alive connection for all three
    assert stats.requests == 3
    assert [(r.method, r.target, r.action) for r in proxy.request_log()] == [
        ("GET", "/a", "forwarded"),
        ("POST", "/b", "forwarded"),
        ("GET", "/bytes/70000", "forwarded"),
    ]
    assert stats.bytes_up > 1000
    assert stats.bytes_down > 70000 + 400 + 5
    assert [m for m, _, _ in upstream.seen] == ["GET", "POST", "GET"]
    assert sum(proxy.requests_per_second()) == 3


@pytest.mark.parametrize(("status", "retry_after"), [(429, 7), (503, 30), (500, None)])
def test_answers_instead_of_forwarding(
    proxy: FaultProxy, upstream: Upstream, status: int, retry_after: int | None
) -> None:
    proxy.set(Faults(answer=status, retry_after=retry_after))
    with _client(proxy) as client:
        response = client.post("/apps", content=b"z" * 5000)
        assert response.status_code == status
        assert response.headers.get("Retry-After") == (
            str(retry_after) if retry_after is not None else None
        )
        assert response.headers["Date"]
        assert response.json()["from"] == "fault-proxy"
        proxy.set(Faults())
        assert client.post("/apps", content=b"z" * 10).status_code == 200  # same connection
    assert upstream.count("POST") == 1
    assert proxy.stats().answered == 1
    assert proxy.stats().connections == 1
    assert [r.action for r in proxy.request_log()] == [f"answered {status}", "forwarded"]


def test_probability_applies_to_a_seeded_fraction(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set(Faults(answer=503, retry_after=7, probability=0.3))
    with _client(proxy) as client:
        codes = [client.get("/x").status_code for _ in range(300)]
    assert 60 <= codes.count(503) <= 120
    assert codes.count(503) + codes.count(200) == 300
    assert upstream.count("GET") == codes.count(200)
    assert proxy.stats().answered == codes.count(503)


def test_drop_mid_request_never_reaches_the_upstream_whole(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy.set(Faults(drop_request_after=1000))
    with _client(proxy) as client, pytest.raises(httpx.TransportError):
        client.post("/apps", content=b"q" * 20_000)
    time.sleep(0.2)
    assert upstream.count("POST") == 0
    assert proxy.request_log()[0].action == "dropped request"
    assert proxy.stats().cut == 1
    assert 1000 <= proxy.stats().bytes_up <= 1000  # exactly the first 1000 bytes went on
    proxy.set(Faults())
    with _client(proxy) as client:
        assert client.post("/apps", content=b"q" * 20_000).status_code == 200


def test_drop_mid_response_after_the_upstream_acted(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set(Faults(drop_response_after=30))
    with _client(proxy) as client, pytest.raises(httpx.TransportError):
        client.post("/commit", content=b"c" * 300)
    assert upstream.count("POST") == 1  # the platform committed; the kiosk never heard
    assert proxy.request_log()[0].action == "dropped response"
    assert proxy.stats().bytes_down == 30


def test_delay_holds_each_request(proxy: FaultProxy) -> None:
    proxy.set(Faults(delay_s=0.4))
    with _client(proxy) as client:
        start = time.monotonic()
        client.get("/a")
        client.get("/b")
        assert time.monotonic() - start >= 0.8


def test_throttle_64_kbit_s_for_16_kb(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set(Faults(rate_bps=64_000 / 8))
    with _client(proxy, timeout=30) as client:
        start = time.monotonic()
        assert client.post("/scan", content=b"s" * 16_000).status_code == 200
        elapsed = time.monotonic() - start
    # 16,000 bytes up plus ~700 of heads at 8,000 bytes/s: about 2.1 s.
    assert 1.9 <= elapsed <= 3.5, elapsed
    assert upstream.seen == [("POST", "/scan", 16_000)]


def test_reset_every_cuts_open_connections(proxy: FaultProxy) -> None:
    proxy.set(Faults(reset_every_s=0.5, rate_bps=4000))
    with _client(proxy, timeout=10) as client:
        start = time.monotonic()
        with pytest.raises(httpx.TransportError):
            client.get("/bytes/20000")  # would take 5 s at 4,000 bytes/s
        assert time.monotonic() - start < 2.0
    assert proxy.stats().cut >= 1


def test_offline_refuses_then_comes_back_on_the_same_port(proxy: FaultProxy) -> None:
    port = proxy.port
    with _client(proxy) as client:
        assert client.get("/a").status_code == 200
        proxy.set(Faults(offline=True))
        with pytest.raises(httpx.ConnectError):
            client.get("/a")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1)
        proxy.set(Faults())
        assert proxy.port == port
        assert client.get("/a").status_code == 200


def test_chunked_request_bodies_keep_their_boundaries(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    def parts() -> Iterator[bytes]:
        yield b"a" * 3000
        yield b"b" * 5000

    with _client(proxy) as client:
        assert client.post("/c", content=parts()).content == b"8000" * 100
        proxy.set(Faults(answer=429, retry_after=3))
        assert client.post("/c", content=parts()).status_code == 429
        proxy.set(Faults())
        assert client.get("/after").status_code == 200
    assert upstream.seen == [("POST", "/c", 8000), ("GET", "/after", 0)]
    assert proxy.stats().connections == 1


def test_upstream_down_is_a_502(upstream: Upstream) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with FaultProxy("127.0.0.1", dead) as proxy, _client(proxy) as client:
        assert client.get("/a").status_code == 502


def test_tls_passes_through_and_tcp_faults_apply() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    serving = _serve(server_context)
    upstream = next(serving)
    try:
        with FaultProxy("127.0.0.1", upstream.port) as proxy:
            url = f"https://127.0.0.1:{proxy.port}"
            with httpx.Client(base_url=url, verify=client_context, timeout=5) as client:
                assert client.get("/bytes/3000").content == b"x" * 3000
            # Over TLS the faults are drawn per connection, when it opens.
            proxy.set(Faults(drop_response_after=2000))
            with (
                httpx.Client(base_url=url, verify=client_context, timeout=5) as client,
                pytest.raises(httpx.TransportError),
            ):
                client.get("/bytes/100000")
            assert proxy.stats().requests == 0  # opaque bytes: no HTTP request counted
            assert proxy.stats().cut >= 1
            assert upstream.count("GET") == 2
    finally:
        serving.close()


def test_stop_closes_everything(upstream: Upstream) -> None:
    proxy = FaultProxy("127.0.0.1", upstream.port).start()
    port = proxy.port
    with _client(proxy) as client:
        client.get("/a")
        proxy.stop()
        with pytest.raises(httpx.TransportError):
            client.get("/a")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_per_second_buckets() -> None:
    assert per_second([]) == []
    assert per_second([10.0, 10.2, 10.99, 11.0, 13.5]) == [3, 1, 0, 1]
    assert per_second([10.0, 12.5], since=9.5) == [1, 0, 0, 1]


def test_faults_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        Faults(probability=1.5)
    with pytest.raises(ValueError):
        Faults(rate_bps=0)
    with pytest.raises(ValueError):
        Faults(answer=42)


def test_cut_all_and_reset_counters(proxy: FaultProxy) -> None:
    with _client(proxy) as client:
        client.get("/a")
        assert proxy.cut_all() == 1
        time.sleep(0.1)
        assert client.get("/a").status_code == 200  # the client reconnects
    assert proxy.stats().connections == 2
    assert proxy.stats().cut == 1
    proxy.reset_counters()
    stats = proxy.stats()
    assert (stats.bytes_up, stats.bytes_down, stats.connections, stats.requests) == (0, 0, 0, 0)
