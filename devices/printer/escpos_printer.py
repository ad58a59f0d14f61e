"""EscposPrinter: the kiosk's receipt printer port over any connection python-escpos offers."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devices.printer import status as printer_status
from devices.printer.connection import (
    PrinterConnectionError,
    PrinterLink,
    PrinterUrl,
    PrinterUrlError,
    open_link,
    parse_printer_url,
)
from devices.printer.profile import PrinterProfile
from devices.printer.status import StatusReport
from kiosk.ports import PrinterStatus, PrintResult
from kiosk.receipt import Receipt
from kiosk.ticket import QueueTicket

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutcome:
    """What became of one job: printed or not, and the status around it."""

    printed: bool
    status: StatusReport  # the latest status known: after the job, or what stopped it
    bytes_sent: int
    detail: str  # plain words for the technician's log; never the job's content


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class EscposPrinter:
    """A receipt printer speaking ESC/POS: status before and after each job, never raising for
    printer trouble; the screen's PNG comes from the same renderer as raster mode.

    The renderers (python-escpos, qrcode, Pillow, numpy) are imported on the first print, not
    when the kiosk starts: they were a quarter of a second of its start-up."""

    def __init__(
        self,
        url: str | PrinterUrl,
        *,
        connect: Callable[[PrinterUrl], PrinterLink] = open_link,
    ) -> None:
        self.url = url if isinstance(url, PrinterUrl) else parse_printer_url(url)
        if self.url.scheme == "simulated":
            raise PrinterUrlError("simulated:// printers are built by devices.printer.factory")
        self._connect = connect
        self._lock = threading.Lock()  # one job or status query on the wire at a time

    @property
    def profile(self) -> PrinterProfile:
        """Paper, mode and features of this printer."""
        return self.url.profile

    # Status -----------------------------------------------------------------------------------

    def _query(self, link: PrinterLink) -> StatusReport:
        if not self.url.query_status:
            return printer_status.UNQUERIED
        return printer_status.query(link, self.url.status_timeout)

    def check(self) -> tuple[StatusReport, str]:
        """The printer's status and plain words about it (including why it cannot be reached)."""
        with self._lock:
            try:
                link = self._connect(self.url)
            except PrinterConnectionError as exc:
                return printer_status.SILENT, str(exc)
            try:
                report = self._query(link)
            except OSError as exc:
                report = printer_status.SILENT
                return report, f"the connection failed during the status query: {exc}"
            finally:
                self._close(link)
            return report, report.describe()

    def status(self) -> PrinterStatus:
        """Online, cover, paper: asked now, within the status timeout."""
        return self.check()[0].to_port()

    # Rendering --------------------------------------------------------------------------------

    def render(self, receipt: Receipt) -> bytes:
        """The receipt as a PNG, dot for dot what raster mode prints."""
        from devices.receipt_image import render_receipt

        return _png(render_receipt(receipt, self.profile.dots))

    def receipt_job(self, receipt: Receipt) -> bytes:
        """The receipt as the ESC/POS bytes this printer gets."""
        from devices.printer.escpos_render import receipt_job

        return receipt_job(receipt, self.profile)

    def _receipt_job_and_png(self, receipt: Receipt) -> tuple[bytes, bytes]:
        from devices.printer.escpos_render import image_job, receipt_job
        from devices.receipt_image import render_receipt

        image = render_receipt(receipt, self.profile.dots)
        if self.profile.mode == "raster":
            return image_job(image, self.profile), _png(image)  # one rendering for both
        return receipt_job(receipt, self.profile), _png(image)

    # Printing ---------------------------------------------------------------------------------

    def print_receipt(self, receipt: Receipt) -> PrintResult:
        """Print when the printer is ready; never raises for printer trouble."""
        job, png = self._receipt_job_and_png(receipt)
        outcome = self.print_job(job, f"receipt {receipt.number}")
        return PrintResult(outcome.printed, outcome.status.to_port(), png, outcome.detail)

    def print_ticket(self, ticket: QueueTicket) -> PrintResult:
        """Print a queue ticket (取号); never raises for printer trouble."""
        from devices.printer.escpos_render import image_job, ticket_job
        from devices.receipt_image import render_ticket

        image = render_ticket(ticket, self.profile.dots)
        if self.profile.mode == "raster":
            job = image_job(image, self.profile)
        else:
            job = ticket_job(ticket, self.profile)
        outcome = self.print_job(job, f"ticket {ticket.number}")
        return PrintResult(outcome.printed, outcome.status.to_port(), _png(image), outcome.detail)

    def print_job(self, job: bytes, what: str = "job") -> JobOutcome:
        """Status, the job, status again; printed only when the printer confirms it is still
        fine afterwards (or cannot be asked at all, like a plain file)."""
        with self._lock:
            try:
                link = self._connect(self.url)
            except PrinterConnectionError as exc:
                return self._failed(what, printer_status.SILENT, 0, str(exc))
            try:
                return self._print_on(link, job, what)
            finally:
                self._close(link)

    def _print_on(self, link: PrinterLink, job: bytes, what: str) -> JobOutcome:
        try:
            before = self._query(link)
        except OSError as exc:
            return self._failed(what, printer_status.SILENT, 0, f"status query failed: {exc}")
        if not before.ready:
            return self._failed(what, before, 0, before.describe())
        try:
            link.send(job)
        except OSError as exc:
            reason = str(exc) or type(exc).__name__
            return self._failed(what, before, 0, f"the printer stopped taking data: {reason}")
        try:
            after = self._query(link)
        except OSError as exc:
            after = printer_status.SILENT
            log.warning("status after %s failed: %s", what, exc)
        if not after.ready:
            return self._failed(what, after, len(job), f"after the job: {after.describe()}")
        detail = "paper near end" if after.paper_near_end else ""
        log.info("%s printed on %s (%d bytes)", what, self.url.where(), len(job))
        return JobOutcome(True, after, len(job), detail)

    def _failed(self, what: str, report: StatusReport, sent: int, detail: str) -> JobOutcome:
        log.warning("%s not printed on %s: %s", what, self.url.where(), detail)
        return JobOutcome(False, report, sent, detail)

    def _close(self, link: PrinterLink) -> None:
        try:
            link.close()
        except (OSError, PrinterConnectionError) as exc:
            log.warning("closing %s: %s", self.url.where(), exc)

    def close(self) -> None:
        """Nothing stays open between jobs; here for symmetry with the simulated printer."""
