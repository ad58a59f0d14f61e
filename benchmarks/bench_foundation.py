"""Benchmarks for the foundation: catalog, unified form, durable submit, receipt image."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from common import Row, measure

from devices.receipt_image import render_receipt_png
from devices.simulated_camera import SimulatedCamera
from kiosk.catalog import CatalogStore, load_shipped_catalog, parse_catalog, shipped_catalog_text
from kiosk.config import Config, StorageConfig
from kiosk.demo import DEMO_CARDS, DEMO_LICENCES, sample_answers
from kiosk.flow import ApplicantFlow, Step
from kiosk.form import UnifiedForm
from kiosk.intake import Intake
from kiosk.storage import Storage
from sync.simulated import SimulatedPlatform

TITLE = "Foundation"


def run(full: bool) -> list[Row]:
    rows: list[Row] = []
    text = shipped_catalog_text()
    median, p95 = measure(lambda: parse_catalog(text), 50)
    rows.append(
        (
            "Parse and validate the shipped catalog",
            median,
            p95,
            f"{len(text) / 1024:.0f} KiB, {len(load_shipped_catalog().things)} things",
        )
    )

    catalog = load_shipped_catalog()
    card = DEMO_CARDS["adult"][1]

    def merge_all() -> None:
        for thing in catalog.things:
            form = UnifiedForm(catalog, thing, card, DEMO_LICENCES[card.id_number])
            answers = sample_answers(form, form.prefilled())
            form.validate(answers, dt.date(2026, 11, 27))
            form.materials(answers)

    median, p95 = measure(merge_all, 50)
    rows.append(
        (
            "Unified form: fill, validate and list materials for every bundle",
            median,
            p95,
            "all bundles, one pass",
        )
    )

    camera = SimulatedCamera(seed=1)
    pages = [camera.capture("m", "a4", "样张").jpeg for _ in range(6)]
    size_mb = sum(len(p) for p in pages) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(storage=StorageConfig(data_dir=tmp))
        storage = Storage(Path(tmp), hall_code="HZ01", kiosk_code="K01")
        intake = Intake(
            config,
            storage,
            CatalogStore(Path(tmp)),
            (p := SimulatedPlatform(DEMO_LICENCES)),
            p.sealer,
        )
        flow = ApplicantFlow(intake)
        from kiosk.ports import CapturedPage

        def submit_one() -> None:
            flow.choose_thing("newborn")
            flow.start()
            flow.card_read(card)
            for k, v in sample_answers(flow.form, dict(flow.session.answers)).items():
                if not flow.form.is_locked(k):
                    flow.set_answer(k, v)
            flow.next()
            for i, need in enumerate(flow.form.to_scan(flow.session.answers)):
                # Distinct bytes per page so every submission really writes its files.
                data = pages[i % len(pages)] + os.urandom(16)
                flow.add_page(need.id, CapturedPage(data, 1240, 1754))
            flow.next()
            flow.agree(True)
            flow.next()
            assert flow.step is Step.RECEIPT
            flow.finish()

        median, p95 = measure(submit_one, 20)
        rows.append(
            (
                "Durable submit of a 新生儿出生 application (fsync'd scans + commit)",
                median,
                p95,
                f"scans ≈ {size_mb / len(pages):.2f} MB a page",
            )
        )
        stored = storage.list_applications()[0]
        doc = storage.receipt_document(stored.id)
        storage.close()
    from kiosk.receipt import receipt_from_json

    assert doc is not None
    rec = receipt_from_json(doc)
    median, p95 = measure(lambda: render_receipt_png(rec, 576), 30)
    rows.append(("Render a receipt to the screen/paper PNG (80 mm, 576 dots)", median, p95, ""))
    median, p95 = measure(lambda: camera.capture("m", "a4", "样张"), 30)
    rows.append(
        (
            "Simulated camera: one A4 capture through the scanning pipeline (5 MP still)",
            median,
            p95,
            "",
        )
    )

    return rows
