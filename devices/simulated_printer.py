"""A simulated receipt printer: keeps each job as a PNG, with paper and cover fault triggers."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from devices.receipt_image import WIDTH_80MM, render_receipt_png
from kiosk.ports import PrinterStatus, PrintResult
from kiosk.receipt import Receipt

log = logging.getLogger(__name__)

_JOB_FILE = re.compile(r"job-(\d+)\.png")


def _not_ready_detail(status: PrinterStatus) -> str:
    problems = [
        text
        for flag, text in (
            (not status.online, "offline"),
            (status.paper_out, "paper out"),
            (status.cover_open, "cover open"),
        )
        if flag
    ]
    return ", ".join(problems)


class SimulatedPrinter:
    """A receipt printer that stores jobs in memory (`jobs`) and, optionally, as PNG files."""

    def __init__(self, job_dir: Path | None = None, width_dots: int = WIDTH_80MM) -> None:
        self.job_dir = job_dir
        self.width_dots = width_dots
        self.jobs: list[bytes] = []
        self._lock = threading.Lock()
        self._status = PrinterStatus(online=True)
        self._next_file_number: int | None = None

    # Fault triggers ---------------------------------------------------------------------------

    def set_paper_out(self, value: bool) -> None:
        """Fault trigger: the paper roll is empty."""
        self._set(paper_out=value)

    def set_cover_open(self, value: bool) -> None:
        """Fault trigger: the cover is open."""
        self._set(cover_open=value)

    def set_online(self, value: bool) -> None:
        """Fault trigger: the printer answers (True) or not (False)."""
        self._set(online=value)

    def set_paper_near_end(self, value: bool) -> None:
        """Fault trigger: the near-end sensor sees little paper left (printing still works)."""
        self._set(paper_near_end=value)

    def _set(self, **flags: bool) -> None:
        with self._lock:
            self._status = replace(self._status, **flags)

    # Port -------------------------------------------------------------------------------------

    def status(self) -> PrinterStatus:
        """The printer's current status."""
        with self._lock:
            return self._status

    def render(self, receipt: Receipt) -> bytes:
        """The receipt as a PNG, exactly as the paper shows it."""
        return render_receipt_png(receipt, self.width_dots)

    def print_receipt(self, receipt: Receipt) -> PrintResult:
        """Print when ready; never raises for printer trouble (reported in the result)."""
        # Rendered outside the lock so status() stays instant; the screen needs the image even
        # when the paper does not get it.
        png = self.render(receipt)
        with self._lock:
            status = self._status
            if not status.ready:
                detail = _not_ready_detail(status)
                log.warning("receipt not printed: %s", detail)
                return PrintResult(printed=False, status=status, image_png=png, detail=detail)
            if self.job_dir is not None:
                try:
                    path = self._write_job(self.job_dir, png)
                except OSError as exc:
                    log.error("receipt not printed: cannot write the job file: %s", exc)
                    return PrintResult(
                        printed=False,
                        status=status,
                        image_png=png,
                        detail=f"job file not written: {exc.strerror or exc}",
                    )
                log.info("receipt printed to %s", path.name)
            self.jobs.append(png)
        detail = "paper near end" if status.paper_near_end else ""
        return PrintResult(printed=True, status=status, image_png=png, detail=detail)

    def _write_job(self, job_dir: Path, png: bytes) -> Path:
        job_dir.mkdir(parents=True, exist_ok=True)
        if self._next_file_number is None:
            # Continue after the jobs of an earlier run instead of overwriting them.
            numbers = [
                int(m.group(1)) for p in job_dir.iterdir() if (m := _JOB_FILE.fullmatch(p.name))
            ]
            self._next_file_number = max(numbers, default=0) + 1
        path = job_dir / f"job-{self._next_file_number:04d}.png"
        # Written beside the target and renamed over it, so a reader never sees half a file.
        fd, temp = tempfile.mkstemp(prefix=".job-", suffix=".tmp", dir=job_dir)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(png)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        self._next_file_number += 1
        return path
