"""Benchmarks for the receipt printer: a receipt document → ESC/POS bytes at 80 mm."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from common import Row, measure

from devices.printer.escpos_render import receipt_job
from devices.printer.profile import PrinterProfile
from devices.receipt_image import render_receipt_png
from kiosk.catalog import CatalogStore, load_shipped_catalog
from kiosk.config import Config, StorageConfig
from kiosk.demo import DEMO_CARDS, DEMO_LICENCES, sample_answers
from kiosk.flow import Session
from kiosk.form import UnifiedForm
from kiosk.intake import Intake
from kiosk.ports import CapturedPage
from kiosk.receipt import Receipt
from kiosk.storage import Storage
from sync.simulated import SimulatedPlatform

TITLE = "Receipt printer"
THING = "newborn"  # the bundle with the most services: the longest receipt


def _receipt() -> Receipt:
    card = DEMO_CARDS["adult"][1]
    with tempfile.TemporaryDirectory() as tmp:
        storage = Storage(Path(tmp), hall_code="HZ01", kiosk_code="K01")
        config = Config(storage=StorageConfig(data_dir=tmp))
        intake = Intake(
            config,
            storage,
            CatalogStore(Path(tmp)),
            (p := SimulatedPlatform(DEMO_LICENCES)),
            p.sealer,
        )
        thing = load_shipped_catalog().thing(THING)
        form = UnifiedForm(intake.catalog, thing, card, DEMO_LICENCES[card.id_number])
        answers = sample_answers(form, form.prefilled())
        page = CapturedPage(b"\xff\xd8page\xff\xd9", 10, 14)
        session = Session(
            thing=thing,
            identity=card,
            held_licences=DEMO_LICENCES[card.id_number],
            answers=answers,
            pages={need.id: [page] for need in form.to_scan(answers)},
        )
        receipt = intake.build_receipt(
            session, form, "HZ01-K01-20261127-0001", dt.datetime(2026, 11, 27, 10, 30), "zh"
        )
        storage.close()
    return receipt


def run(full: bool) -> list[Row]:
    receipt = _receipt()
    repeat = 200 if full else 20
    rows: list[Row] = []
    text = PrinterProfile(paper_mm=80, mode="text")
    size = len(receipt_job(receipt, text))
    median, p95 = measure(lambda: receipt_job(receipt, text), repeat)
    rows.append(
        (
            "Receipt → ESC/POS bytes, text mode, 80 mm (target ≤ 5 ms)",
            median,
            p95,
            f"{THING}, {len(receipt.lines)} lines, {size / 1024:.1f} KiB",
        )
    )
    raster = PrinterProfile(paper_mm=80, mode="raster")
    size = len(receipt_job(receipt, raster))
    median, p95 = measure(lambda: receipt_job(receipt, raster), repeat // 4)
    rows.append(
        (
            "Receipt → ESC/POS bytes, raster mode, 80 mm (target ≤ 50 ms)",
            median,
            p95,
            f"one 1-bit image, {size / 1024:.0f} KiB",
        )
    )
    median, p95 = measure(lambda: render_receipt_png(receipt, 576), repeat // 4)
    rows.append(("Receipt → the screen's PNG, 80 mm", median, p95, "same renderer as raster"))
    return rows
