"""Printer URL → ReceiptPrinter: a real ESC/POS printer, or one wired to the network simulator."""

from __future__ import annotations

import weakref
from dataclasses import replace
from pathlib import Path

from devices.printer.connection import PrinterUrl, parse_printer_url
from devices.printer.escpos_printer import EscposPrinter
from devices.printer.network_simulator import SimulatedNetworkPrinter
from kiosk.ports import ReceiptPrinter

SIMULATOR_DIR = "printer-sim"  # under the data directory: job-0001.bin, job-0001.png, ...


class SimulatedEscposPrinter(EscposPrinter):
    """An EscposPrinter printing over tcp:// to its own SimulatedNetworkPrinter (simulated://):
    the bytes take exactly the path they take to a real network printer."""

    def __init__(self, simulator: SimulatedNetworkPrinter, url: PrinterUrl) -> None:
        super().__init__(url)
        self.simulator = simulator
        # A kiosk that is dropped without close() must not leave the port served.
        self._finalizer = weakref.finalize(self, simulator.stop)

    @property
    def job_dir(self) -> Path | None:
        """Where the simulator keeps each job's bytes and paper picture."""
        return self.simulator.job_dir

    def close(self) -> None:
        """Stop the simulator; idempotent."""
        self._finalizer()


def build_escpos_printer(url: str | PrinterUrl, data_dir: Path) -> EscposPrinter:
    """The printer `url` names; `simulated://` starts a SimulatedNetworkPrinter first.

    Raises PrinterUrlError for a URL this build cannot use. Nothing is contacted yet.
    """
    parsed = url if isinstance(url, PrinterUrl) else parse_printer_url(url)
    if parsed.scheme != "simulated":
        return EscposPrinter(parsed)
    simulator = SimulatedNetworkPrinter(
        job_dir=data_dir / SIMULATOR_DIR, width_dots=parsed.profile.dots
    )
    query = parsed.query()
    tcp = replace(
        parsed,
        text=simulator.url + (f"?{query}" if query else ""),
        scheme="tcp",
        host="127.0.0.1",
        port=simulator.port,
    )
    return SimulatedEscposPrinter(simulator, tcp)


def build_printer(url: str, data_dir: Path) -> ReceiptPrinter:
    """The kiosk's receipt printer from its config URL (devices.printer); see docs/printing.md."""
    return build_escpos_printer(url, data_dir)
