"""The platform on a real socket: uvicorn in a background thread, for tests, the demo and
`kiosk platform serve`."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import uvicorn

from kiosk.storage import StorageError
from sync.platform.admission import Admission
from sync.platform.app import create_app
from sync.platform.store import PlatformStore

log = logging.getLogger("sync.platform")

_START_TIMEOUT_S = 15.0


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 32 << 20  # glibc's largest mmap threshold on 64-bit; above MAX_CHUNK (8 MiB)


def _keep_freed_memory() -> None:
    """Have glibc keep freed request bodies for the next ones.

    Its defaults hand a freed multi-megabyte body back to the OS (munmap or heap trim), so the
    next chunk's pages are faulted in and zeroed again: with several uploads in flight that
    was about a tenth of the platform's CPU time. Elsewhere than glibc this does nothing."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)
    mallopt(_M_TRIM_THRESHOLD, 2 * _KEEP_BYTES)


class PlatformServer:
    """The reference platform serving `data_dir` on `host:port` (0: an ephemeral port).

    `demo=True` moves committed applications along accepted → in_progress → completed every
    `demo_interval_s`; `rate` (requests/s) turns on admission control; `certfile`/`keyfile`
    (PEM) serve HTTPS.
    """

    def __init__(
        self,
        data_dir: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        demo: bool = False,
        demo_interval_s: float = 5.0,
        rate: float | None = None,
        certfile: Path | str | None = None,
        keyfile: Path | str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (certfile is None) != (keyfile is None):
            raise ValueError("give both certfile and keyfile, or neither")
        self.host = host
        self.port = port
        self.demo = demo
        self.demo_interval_s = demo_interval_s
        self.certfile = str(certfile) if certfile is not None else None
        self.keyfile = str(keyfile) if keyfile is not None else None
        self.store = PlatformStore(Path(data_dir), clock=clock)
        self.admission = Admission(rate) if rate is not None else None
        self.app = create_app(self.store, admission=self.admission, clock=clock)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._demo_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (https with a certificate); the port is known after start."""
        scheme = "https" if self.certfile else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def new_enrollment_code(self) -> str:
        """A one-time enrollment code (24 h)."""
        return self.store.new_enrollment_code()

    def start(self) -> PlatformServer:
        """Serve in a background thread; returns once the socket accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the platform server was already started")
        _keep_freed_memory()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto must say TCP: asyncio sets TCP_NODELAY on accepted connections only then, and
        # without it every answer with a body waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_config=None,  # the application's logging setup stays as it is
            log_level="warning",
            access_log=False,
            date_header=False,  # the app sets Date itself, also for TestClient
            server_header=False,
            lifespan="off",
            timeout_keep_alive=30,
            ssl_certfile=self.certfile,
            ssl_keyfile=self.keyfile,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=self._serve, args=(server, sock), name="platform-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                self._thread.join(5.0)
                sock.close()
                raise RuntimeError(f"the platform server did not start: {self._failure!r}")
            time.sleep(0.005)
        if self.demo:
            self._demo_thread = threading.Thread(
                target=self._demo_loop, name="platform-demo", daemon=True
            )
            self._demo_thread.start()
        log.info("platform listening on %s (data in %s)", self.url, self.store.data_dir)
        return self

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            # uvicorn's own loop choice (uvloop when installed); asyncio.run would not use it.
            with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
                runner.run(server.serve(sockets=[sock]))
        except BaseException as exc:
            self._failure = exc
            log.exception("the platform server stopped with an error")

    def _demo_loop(self) -> None:
        while not self._stopping.wait(self.demo_interval_s):
            try:
                moved = self.store.demo_step()
            except StorageError as exc:
                log.error("demo: cannot advance applications: %s", exc)
                continue
            if moved:
                log.info("demo: %d application(s) moved one step", moved)

    def stop(self) -> None:
        """Stop serving (open connections are closed) and close the store."""
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15.0)
        if self._demo_thread is not None:
            self._demo_thread.join(15.0)
        self.store.close()

    def __enter__(self) -> PlatformServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
