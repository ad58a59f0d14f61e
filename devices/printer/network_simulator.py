"""SimulatedNetworkPrinter: a network ESC/POS printer on 127.0.0.1, for tests and the demo.

A TCP server in its own thread, like a printer's port 9100: it keeps each job's bytes (one job
per connection) and a picture of its paper, answers DLE EOT from its simulated state (paper out,
near end, cover open, offline) and can be told to fail in the middle of the next job or to go
silent. The kiosk reaches it through the same tcp:// code path as a real network printer.
"""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from devices.printer.profile import PAPER

log = logging.getLogger(__name__)

Fault = Literal["paper_out", "cover_open", "disconnect"]
_POLL = 0.1  # seconds between checks for stop() while waiting on a socket
_JOB_FILE = re.compile(r"job-(\d+)")


@dataclass(frozen=True)
class SimulatedJob:
    """One job as the simulated printer took it."""

    number: int
    data: bytes = field(repr=False)
    printed: bool
    detail: str = ""  # why it was not (fully) printed
    png: bytes = field(default=b"", repr=False)  # the paper as it came out


@dataclass
class _State:
    online: bool = True
    paper_out: bool = False
    paper_near_end: bool = False
    cover_open: bool = False
    silent: bool = False

    @property
    def ready(self) -> bool:
        return self.online and not self.paper_out and not self.cover_open

    def problem(self) -> str:
        return ", ".join(
            text
            for flag, text in (
                (not self.online, "offline"),
                (self.paper_out, "paper out"),
                (self.cover_open, "cover open"),
            )
            if flag
        )

    def answer(self, n: int) -> int:
        """The status byte for DLE EOT n (fixed bits 1 and 4 set)."""
        value = 0x12
        if n == 1 and not self.ready:
            value |= 0x08  # offline: a printer with its cover open or no paper stops
        elif n == 2:
            value |= (0x04 if self.cover_open else 0) | (0x20 if self.paper_out else 0)
        elif n == 4:
            value |= (0x0C if self.paper_near_end else 0) | (0x60 if self.paper_out else 0)
        return value


class SimulatedNetworkPrinter:
    """A network receipt printer on 127.0.0.1 with fault triggers; `port=0` picks a free port."""

    def __init__(
        self, job_dir: Path | None = None, width_dots: int = PAPER[80][0], port: int = 0
    ) -> None:
        self.job_dir = job_dir
        self.width_dots = width_dots
        self._state = _State()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._jobs: list[SimulatedJob] = []
        self._fail_after: tuple[int, Fault] | None = None
        self._next_number = 1
        self._stopping = threading.Event()
        self._server = socket.create_server(("127.0.0.1", port))
        self._server.settimeout(_POLL)
        self.port: int = self._server.getsockname()[1]
        self._thread = threading.Thread(
            target=self._serve, name=f"printer-sim:{self.port}", daemon=True
        )
        self._thread.start()
        log.info("simulated network printer on 127.0.0.1:%d", self.port)

    @property
    def url(self) -> str:
        """tcp://127.0.0.1:<port>, the address a kiosk prints to."""
        return f"tcp://127.0.0.1:{self.port}"

    # Fault triggers ---------------------------------------------------------------------------

    def set_online(self, value: bool) -> None:
        """Fault trigger: the printer is online (True) or offline (False, e.g. after an error)."""
        self._set(online=value)

    def set_paper_out(self, value: bool) -> None:
        """Fault trigger: the paper roll is empty."""
        self._set(paper_out=value)

    def set_paper_near_end(self, value: bool) -> None:
        """Fault trigger: the near-end sensor sees little paper left (printing still works)."""
        self._set(paper_near_end=value)

    def set_cover_open(self, value: bool) -> None:
        """Fault trigger: the cover is open."""
        self._set(cover_open=value)

    def set_silent(self, value: bool) -> None:
        """Fault trigger: accept connections and data but never answer (hung firmware)."""
        self._set(silent=value)

    def fail_next_job(self, after_bytes: int, fault: Fault) -> None:
        """Fault trigger: `after_bytes` into the next job, run out of paper, open the cover, or
        drop the connection."""
        with self._lock:
            self._fail_after = (after_bytes, fault)

    def _set(self, **flags: bool) -> None:
        with self._lock:
            for name, value in flags.items():
                setattr(self._state, name, value)

    # Jobs -------------------------------------------------------------------------------------

    @property
    def jobs(self) -> list[SimulatedJob]:
        """The jobs that printed completely, oldest first."""
        with self._lock:
            return [job for job in self._jobs if job.printed]

    @property
    def all_jobs(self) -> list[SimulatedJob]:
        """Every job received, printed or not."""
        with self._lock:
            return list(self._jobs)

    def wait_for_jobs(self, count: int, timeout: float = 5.0) -> list[SimulatedJob]:
        """Every job received, once there are at least `count` (TimeoutError otherwise)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._jobs) >= count, timeout):
                raise TimeoutError(f"{len(self._jobs)} of {count} jobs after {timeout} s")
            return list(self._jobs)

    def stop(self) -> None:
        """Stop serving and close the port; idempotent."""
        self._stopping.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._server.close()

    # Serving ----------------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the server socket was closed
            with conn:
                try:
                    self._session(conn)
                except OSError as exc:
                    log.info("printer simulator: connection ended: %s", exc)

    def _session(self, conn: socket.socket) -> None:
        """One connection: status requests answered in order, everything else is the job."""
        # The paper renderer (numpy, Pillow, qrcode) loads with the first job, not with the
        # kiosk's start-up.
        from devices.printer.paper import Incomplete, command_length

        conn.settimeout(_POLL)
        pending = bytearray()
        job = bytearray()
        trouble = ""  # why the job in progress will not print
        while not self._stopping.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            with self._lock:
                if self._state.silent:
                    continue
            pending += chunk
            pos = 0
            while pos < len(pending):
                try:
                    size = command_length(pending, pos)
                except Incomplete:
                    break
                command = bytes(pending[pos : pos + size])
                pos += size
                if command[:2] == b"\x10\x04":
                    if job:
                        self._finish(bytes(job), trouble)
                        job.clear()
                        trouble = ""
                    with self._lock:
                        reply = self._state.answer(command[2])
                    conn.sendall(bytes((reply,)))
                    continue
                if not job:
                    with self._lock:
                        trouble = self._state.problem()
                job += command
                fault = self._check_fault(len(job))
                if fault == "disconnect":
                    self._finish(bytes(job), "connection dropped")
                    return
                if fault and not trouble:
                    trouble = fault.replace("_", " ")
            del pending[:pos]
        if job:
            self._finish(bytes(job), trouble)

    def _check_fault(self, received: int) -> Fault | None:
        with self._lock:
            if self._fail_after is None or received < self._fail_after[0]:
                return None
            fault = self._fail_after[1]
            self._fail_after = None
            if fault == "paper_out":
                self._state.paper_out = True
            elif fault == "cover_open":
                self._state.cover_open = True
            return fault

    def _finish(self, data: bytes, trouble: str) -> None:
        from devices.printer.paper import render_paper

        buffer = io.BytesIO()
        render_paper(data, self.width_dots).save(buffer, format="PNG")
        png = buffer.getvalue()
        with self._changed:
            number = self._next_file_number()
            job = SimulatedJob(number, data, printed=not trouble, detail=trouble, png=png)
            self._jobs.append(job)
            self._changed.notify_all()
        if self.job_dir is not None:
            try:
                self._write(job)
            except OSError as exc:
                log.error("printer simulator: cannot keep job %d: %s", number, exc)
        log.info(
            "printer simulator: job %d, %d bytes, %s",
            number,
            len(data),
            "printed" if job.printed else f"not printed ({trouble})",
        )

    def _next_file_number(self) -> int:
        if self._next_number == 1 and self.job_dir is not None and self.job_dir.is_dir():
            # Continue after the jobs of an earlier run instead of overwriting them.
            numbers = [
                int(m.group(1)) for p in self.job_dir.iterdir() if (m := _JOB_FILE.match(p.name))
            ]
            self._next_number = max(numbers, default=0) + 1
        number = self._next_number
        self._next_number += 1
        return number

    def _write(self, job: SimulatedJob) -> None:
        assert self.job_dir is not None
        self.job_dir.mkdir(parents=True, exist_ok=True)
        stem = f"job-{job.number:04d}" + ("" if job.printed else "-not-printed")
        for suffix, content in ((".bin", job.data), (".png", job.png)):
            # Written beside the target and renamed over it: a reader never sees half a file.
            fd, temp = tempfile.mkstemp(prefix=".job-", suffix=".tmp", dir=self.job_dir)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(content)
                os.replace(temp, self.job_dir / f"{stem}{suffix}")
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
