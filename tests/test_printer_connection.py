"""Printer URLs, DLE EOT status and the simulated network printer, over real TCP on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from escpos_decoder import decode

from devices.printer import status as printer_status
from devices.printer.connection import (
    PrinterUrl,
    PrinterUrlError,
    open_link,
    parse_printer_url,
)
from devices.printer.escpos_printer import EscposPrinter
from devices.printer.factory import SimulatedEscposPrinter, build_escpos_printer, build_printer
from devices.printer.network_simulator import SimulatedNetworkPrinter
from devices.printer.profile import PrinterProfile
from kiosk.ports import PrinterStatus
from kiosk.receipt import Receipt, ReceiptLine

RECEIPT = Receipt(
    title="受理回执",
    subtitle="市民中心政务服务大厅",
    number="HZ01-K01-20261127-0009",
    qr_payload="https://zwfw.example.gov.cn/progress?r=HZ01-K01-20261127-0009",
    lines=(ReceiptLine("申请人", "李*"), ReceiptLine("证件号码", "3301**********0036")),
    footer=("请妥善保管本回执",),
    issued_at=dt.datetime(2026, 11, 27, 10, 30),
)


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[SimulatedEscposPrinter]:
    built = build_escpos_printer("simulated://", tmp_path)
    assert isinstance(built, SimulatedEscposPrinter)
    yield built
    built.close()


# URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("usb://0416:5011", {"vendor_id": 0x0416, "product_id": 0x5011, "in_ep": 0x82}),
        (
            "usb://04b8:0e15?in_ep=0x81&out_ep=0x02",
            {"vendor_id": 0x04B8, "product_id": 0x0E15, "in_ep": 0x81, "out_ep": 0x02},
        ),
        ("serial:///dev/ttyS0?baud=9600", {"path": "/dev/ttyS0", "baud": 9600}),
        ("serial:///dev/ttyUSB1?baud=115200", {"path": "/dev/ttyUSB1", "baud": 115200}),
        ("tcp://192.168.1.50:9100", {"host": "192.168.1.50", "port": 9100}),
        ("tcp://printer.hall.local", {"host": "printer.hall.local", "port": 9100}),
        ("file:///dev/usb/lp0", {"path": "/dev/usb/lp0"}),
        ("cups://receipts", {"queue": "receipts"}),
        ("simulated://", {"scheme": "simulated"}),
    ],
)
def test_printer_urls_parse(text: str, expected: dict[str, object]) -> None:
    url = parse_printer_url(text)
    assert {key: getattr(url, key) for key in expected} == expected
    assert url.profile == PrinterProfile()


def test_profile_options_come_from_the_query() -> None:
    url = parse_printer_url(
        "tcp://10.0.0.5:9100?width=58&mode=raster&charset=gb18030&model=TM-T20II&status=off"
    )
    assert url.profile == PrinterProfile(58, "raster", "gb18030", "TM-T20II")
    assert not url.query_status
    assert parse_printer_url(f"tcp://127.0.0.1:9?{url.query()}").profile == url.profile


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lpt://1", "starts with one of"),
        ("usb://0416", "VID:PID"),
        ("usb://zz16:5011", "hexadecimal"),
        ("serial:///dev/ttyS0?baud=1234", "baud"),
        ("tcp://:9100", "tcp://host"),
        ("tcp://host:port", "not a number"),
        ("file://relative/path", "three slashes"),
        ("cups://", "queue"),
        ("tcp://host?width=76", "58 or 80"),
        ("tcp://host?mode=pdf", "mode"),
        ("tcp://host?colour=red", "unknown option"),
        ("tcp://host?timeout=60", "timeout"),
        ("simulated://extra", "options only"),
    ],
)
def test_bad_printer_urls_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(PrinterUrlError, match=message):
        parse_printer_url(text)


# Status ---------------------------------------------------------------------------------------


def test_status_bytes_decode() -> None:
    assert printer_status.decode(0x12, 0x12, 0x12).ready
    offline = printer_status.decode(0x1A, 0x16, 0x12)  # offline because the cover is open
    assert offline.cover_open and not offline.online and not offline.ready
    assert printer_status.decode(0x1A, 0x32, 0x72).to_port() == PrinterStatus(
        online=False, paper_out=True
    )
    near = printer_status.decode(0x12, 0x12, 0x1E)
    assert near.ready and near.paper_near_end
    assert not printer_status.is_status_byte(0x00) and not printer_status.is_status_byte(0x93)


class ScriptedLink:
    """A status link that replays what a printer would send back."""

    answers = True

    def __init__(self, replies: list[bytes]) -> None:
        self.replies = replies
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def read_reply(self, timeout: float) -> bytes:
        return self.replies.pop(0) if self.replies else b""

    def drain(self) -> None:
        """Nothing stale in a script."""


def test_status_query_skips_bytes_that_are_not_answers() -> None:
    link = ScriptedLink([b"\x00\x20", b"\x12", b"\xff\x16", b"\x12"])
    report = printer_status.query(link, timeout=0.5)
    assert link.sent == [b"\x10\x04\x01", b"\x10\x04\x02", b"\x10\x04\x04"]
    assert report.answered and report.cover_open


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("ready", PrinterStatus(online=True)),
        ("paper_out", PrinterStatus(online=False, paper_out=True)),
        ("cover_open", PrinterStatus(online=False, cover_open=True)),
        ("offline", PrinterStatus(online=False)),
        ("near_end", PrinterStatus(online=True, paper_near_end=True)),
    ],
)
def test_simulator_answers_dle_eot_from_its_state(
    printer: SimulatedEscposPrinter, fault: str, expected: PrinterStatus
) -> None:
    sim = printer.simulator
    {
        "ready": lambda: None,
        "paper_out": lambda: sim.set_paper_out(True),
        "cover_open": lambda: sim.set_cover_open(True),
        "offline": lambda: sim.set_online(False),
        "near_end": lambda: sim.set_paper_near_end(True),
    }[fault]()
    assert printer.status() == expected


# Printing through the simulator ---------------------------------------------------------------


def test_a_ready_printer_prints_and_keeps_the_job(printer: SimulatedEscposPrinter) -> None:
    result = printer.print_receipt(RECEIPT)
    assert result.printed and result.status.ready and result.detail == ""
    assert result.image_png == printer.render(RECEIPT)
    (job,) = printer.simulator.jobs
    assert job.data == printer.receipt_job(RECEIPT)  # exactly the bytes, nothing else
    paper = decode(job.data)
    assert paper.lines[0].text == "受理回执" and paper.barcodes[0].data == RECEIPT.number
    assert paper.status_queries == 0
    assert job.png.startswith(b"\x89PNG")
    assert printer.job_dir is not None
    assert (printer.job_dir / "job-0001.bin").read_bytes() == job.data
    assert (printer.job_dir / "job-0001.png").read_bytes() == job.png


def test_paper_out_prints_nothing_and_the_receipt_can_be_printed_later(
    printer: SimulatedEscposPrinter,
) -> None:
    sim = printer.simulator
    sim.set_paper_out(True)
    result = printer.print_receipt(RECEIPT)
    assert not result.printed and result.status.paper_out
    assert "paper out" in result.detail
    assert result.image_png.startswith(b"\x89PNG")  # the applicant still sees it on screen
    assert sim.all_jobs == []  # not even sent: nothing half-printed, nothing printed twice
    sim.set_paper_out(False)
    again = printer.print_receipt(RECEIPT)  # staff reprint once the roll is changed
    assert again.printed
    assert [job.data for job in sim.jobs] == [printer.receipt_job(RECEIPT)]


def test_cover_open_prints_nothing(printer: SimulatedEscposPrinter) -> None:
    printer.simulator.set_cover_open(True)
    result = printer.print_receipt(RECEIPT)
    assert not result.printed and result.status.cover_open
    assert printer.simulator.all_jobs == []


def test_paper_running_out_mid_job_is_not_printed(printer: SimulatedEscposPrinter) -> None:
    sim = printer.simulator
    sim.fail_next_job(after_bytes=300, fault="paper_out")
    result = printer.print_receipt(RECEIPT)
    assert not result.printed and result.status.paper_out
    (job,) = sim.all_jobs
    assert not job.printed and job.detail == "paper out"
    assert sim.jobs == []


def test_a_dropped_connection_mid_job_is_not_printed(printer: SimulatedEscposPrinter) -> None:
    printer.simulator.fail_next_job(after_bytes=300, fault="disconnect")
    result = printer.print_receipt(RECEIPT)
    assert not result.printed and not result.status.online
    assert printer.simulator.jobs == []


def test_a_silent_printer_gives_not_printed_instead_of_a_hang(
    printer: SimulatedEscposPrinter,
) -> None:
    printer.simulator.set_silent(True)
    assert printer.status() == PrinterStatus(online=False)
    result = printer.print_receipt(RECEIPT)
    assert not result.printed and "no answer" in result.detail
    assert result.image_png


@pytest.fixture
def mute_server() -> Iterator[int]:
    """A TCP port that accepts connections and reads everything but never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(0.1)
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_printer_that_never_answers_times_out(mute_server: int) -> None:
    printer = EscposPrinter(f"tcp://127.0.0.1:{mute_server}?timeout=0.2")
    assert printer.status() == PrinterStatus(online=False)
    result = printer.print_receipt(RECEIPT)
    assert not result.printed and "no answer to the status query" in result.detail


def test_an_unreachable_printer_is_reported_not_raised() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    printer = EscposPrinter(f"tcp://127.0.0.1:{port}")
    result = printer.print_receipt(RECEIPT)
    assert not result.printed and "cannot open" in result.detail
    assert result.image_png.startswith(b"\x89PNG")


def test_status_off_prints_without_asking(tmp_path: Path) -> None:
    sim = SimulatedNetworkPrinter()
    try:
        printer = EscposPrinter(f"{sim.url}?status=off")
        sim.set_paper_out(True)  # not asked, so not known: the printer takes the bytes
        result = printer.print_receipt(RECEIPT)
        assert result.printed
        (job,) = sim.wait_for_jobs(1)
        assert not job.printed
    finally:
        sim.stop()


def test_raster_mode_through_the_simulator(tmp_path: Path) -> None:
    printer = build_escpos_printer("simulated://?width=58&mode=raster", tmp_path)
    assert isinstance(printer, SimulatedEscposPrinter)
    try:
        result = printer.print_receipt(RECEIPT)
        assert result.printed
        paper = decode(printer.simulator.jobs[0].data, 384)
        assert [p.image.width for p in paper.pictures] == [384]
    finally:
        printer.close()


def test_a_file_printer_writes_the_job(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    printer = build_printer(f"file://{out}", tmp_path)
    assert isinstance(printer, EscposPrinter)
    assert printer.status() == PrinterStatus(online=True)  # a plain file cannot be asked
    result = printer.print_receipt(RECEIPT)
    assert result.printed
    assert out.read_bytes() == printer.receipt_job(RECEIPT)


def test_open_link_explains_a_missing_device(tmp_path: Path) -> None:
    from devices.printer.connection import PrinterConnectionError

    url: PrinterUrl = parse_printer_url(f"file://{tmp_path}/no/such/dir/lp0")
    with pytest.raises(PrinterConnectionError, match="cannot open"):
        open_link(url)


def test_the_simulator_continues_numbering_after_a_restart(tmp_path: Path) -> None:
    for expected in (1, 2):
        printer = build_escpos_printer("simulated://", tmp_path)
        assert isinstance(printer, SimulatedEscposPrinter)
        try:
            assert printer.print_receipt(RECEIPT).printed
            assert printer.simulator.jobs[-1].number == expected
        finally:
            printer.close()
    assert sorted(p.name for p in (tmp_path / "printer-sim").iterdir()) == [
        "job-0001.bin",
        "job-0001.png",
        "job-0002.bin",
        "job-0002.png",
    ]
