"""`kiosk diag printer`: the printer's status, then a test page and a sample receipt.

    kiosk diag printer [--printer URL] [--width 58|80] [--raster] [--json]

The test page has both text sizes, Chinese with full-width punctuation (the case python-escpos
alone prints as "??"), a QR code and a barcode, then a sample receipt for a demo application,
each cut. With file:///some/path.bin the bytes land in that file. Exit status: 0 printed,
1 printer not ready or the job failed, 2 a URL this build cannot use.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import asdict
from typing import Any

from devices.printer.connection import PrinterUrl, PrinterUrlError, parse_printer_url
from devices.printer.escpos_printer import EscposPrinter
from devices.printer.escpos_render import EscposJob, write_receipt
from devices.printer.factory import SimulatedEscposPrinter, build_escpos_printer
from devices.printer.profile import PrinterProfile, ProfileError
from devices.printer.status import StatusReport
from kiosk.catalog import load_shipped_catalog
from kiosk.config import Config
from kiosk.demo import DEMO_CARDS
from kiosk.receipt import Receipt, ReceiptLine, promised_date

SAMPLE_THING = "newborn"
FULL_WIDTH_PUNCTUATION = "（全角标点）：，。；！？“”《》、"  # no Han character among them


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `kiosk diag printer`."""
    parser.add_argument(
        "--printer", metavar="URL", help="printer URL (default: devices.printer in the config)"
    )
    parser.add_argument(
        "--width", type=int, choices=(58, 80), help="paper width in mm (overrides the URL's)"
    )
    parser.add_argument(
        "--raster",
        action="store_true",
        help="print everything as images (printers without a Chinese font)",
    )


def sample_receipt(config: Config, now: dt.datetime) -> Receipt:
    """A receipt for a demo application (a demo person, a shipped bundle); number …-0000,
    which the kiosk never issues."""
    thing = load_shipped_catalog().thing(SAMPLE_THING)
    card = DEMO_CARDS["adult"][1]
    hall, calendar = config.hall, config.calendar
    day = now.date()

    def promised(promise: Any) -> str:
        when = promised_date(day, promise, calendar.holiday_dates(), calendar.workday_dates())
        return when.isoformat()

    number = f"{hall.code}-{hall.kiosk_code}-{now:%Y%m%d}-0000"
    lines = [
        ReceiptLine("办理事项", thing.name.zh),
        ReceiptLine("申请人", card.masked_name),
        ReceiptLine("证件号码", card.masked_id_number),
        ReceiptLine("受理时间", now.strftime("%Y-%m-%d %H:%M")),
        ReceiptLine("承诺办结", promised(thing.promise)),
        ReceiptLine("包含事项", style="heading"),
        *(
            ReceiptLine(s.name.zh, f"{s.department.zh} · {promised(s.promise)}")
            for s in thing.services
        ),
        ReceiptLine("已收材料", style="heading"),
        ReceiptLine("出生医学证明", "1 页"),
        ReceiptLine("结婚证", "免提交（电子证照）"),
        ReceiptLine("户口簿", "免提交（电子证照）"),
        ReceiptLine("已受理，网络恢复后将自动提交", style="text"),
        ReceiptLine("扫描二维码或凭回执编号查询办理进度", style="small"),
    ]
    return Receipt(
        title="受理回执",
        subtitle=hall.name_zh,
        number=number,
        qr_payload=f"{hall.progress_url}?r={number}",
        lines=tuple(lines),
        footer=(f"自助终端 {hall.code}-{hall.kiosk_code}", "打印机测试 · 样例回执"),
        issued_at=now,
    )


def test_page(profile: PrinterProfile, config: Config, now: dt.datetime) -> bytes:
    """The test page and the sample receipt as one job."""
    job = EscposJob(profile)
    job.text("打印机测试页", align="center", bold=True, size="double")
    job.text("Printer test page", align="center", bold=True)
    job.text(
        f"{profile.paper_mm} mm · {profile.dots} dots · {profile.columns} columns · "
        f"{profile.mode} · {profile.charset} · {profile.model}",
        align="center",
    )
    job.rule()
    job.text("正常字号 Normal size 0123456789")
    job.text("倍高倍宽 Double", bold=True, size="double")
    job.text(FULL_WIDTH_PUNCTUATION)
    job.text("中文：您好，欢迎使用政务服务自助终端！")
    job.text(f"时间 Time: {now:%Y-%m-%d %H:%M}")
    job.rule()
    job.text("二维码 QR code", align="center")
    job.qr(f"{config.hall.progress_url}?r=TEST")
    job.text("条形码 CODE128", align="center")
    job.barcode("TEST-0123456789")
    job.cut()
    write_receipt(job, sample_receipt(config, now))
    return job.output


def _url(args: argparse.Namespace, config: Config) -> PrinterUrl:
    url = parse_printer_url(args.printer or config.devices.printer)
    changes: dict[str, Any] = {}
    if args.width is not None:
        changes["paper_mm"] = args.width
    if args.raster:
        changes["mode"] = "raster"
    try:
        return url.with_profile(**changes)
    except ProfileError as exc:
        raise PrinterUrlError(str(exc)) from None


def _status_json(report: StatusReport, words: str) -> dict[str, Any]:
    return {**asdict(report), "ready": report.ready, "words": words}


def run(args: argparse.Namespace, config: Config) -> int:
    """Report the status, print the test page; 0 when it printed."""
    as_json = bool(getattr(args, "json", False))
    try:
        url = _url(args, config)
        printer = build_escpos_printer(url, config.data_dir)
    except PrinterUrlError as exc:
        return _fail(as_json, {"error": str(exc)}, f"kiosk diag printer: {exc}", 2)
    try:
        return _diagnose(printer, url, config, as_json)
    finally:
        printer.close()


def _diagnose(printer: EscposPrinter, url: PrinterUrl, config: Config, as_json: bool) -> int:
    profile = printer.profile
    result: dict[str, Any] = {
        "printer": url.where(),
        "width_mm": profile.paper_mm,
        "mode": profile.mode,
        "charset": profile.charset,
        "model": profile.model,
    }
    if isinstance(printer, SimulatedEscposPrinter):
        result["simulated"] = printer.simulator.url
    report, words = printer.check()
    result["status"] = _status_json(report, words)
    if not report.ready:
        message = f"kiosk diag printer: {url.where()}: {words}; nothing printed"
        return _fail(as_json, {**result, "printed": False, "bytes_written": 0}, message, 1)
    outcome = printer.print_job(test_page(profile, config, dt.datetime.now()), "test page")
    result.update(
        printed=outcome.printed,
        bytes_written=outcome.bytes_sent,
        detail=outcome.detail,
        status_after=_status_json(outcome.status, outcome.status.describe()),
    )
    if url.scheme == "file":
        result["file"] = url.path
    if not outcome.printed:
        message = f"kiosk diag printer: test page not printed: {outcome.detail}"
        return _fail(as_json, result, message, 1)
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"Printer  {url.where()} ({profile.paper_mm} mm, {profile.mode}, {profile.model})")
    print(f"Status   {words}")
    where = f" to {url.path}" if url.scheme == "file" else ""
    print(f"Printed  test page and sample receipt, {outcome.bytes_sent} bytes{where}")
    if outcome.detail:
        print(f"Note     {outcome.detail}")
    return 0


def _fail(as_json: bool, result: dict[str, Any], message: str, code: int) -> int:
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(message, file=sys.stderr)
    return code
