"""Receipts and tickets → ESC/POS bytes, read back through the independent decoder."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import zxingcpp
from escpos.printer import Dummy
from escpos_decoder import Barcode, Line, Paper, Picture, QrCode, code128_text, decode
from PIL import Image

from devices.printer.escpos_render import (
    EscposJob,
    PrinterProfile,
    code128_data,
    columns,
    receipt_job,
    ticket_job,
)
from devices.receipt_image import line_image, render_receipt
from kiosk.catalog import CatalogStore, load_shipped_catalog
from kiosk.config import Config, StorageConfig
from kiosk.demo import DEMO_CARDS, DEMO_LICENCES, sample_answers
from kiosk.flow import Session
from kiosk.form import UnifiedForm
from kiosk.i18n import Lang, Text
from kiosk.intake import Intake
from kiosk.ports import CapturedPage
from kiosk.receipt import Receipt, ReceiptLine
from kiosk.storage import Storage
from kiosk.ticket import QueueTicket, ticket_number
from sync.simulated import SimulatedPlatform

THINGS = [t.id for t in load_shipped_catalog().things]
CARD = DEMO_CARDS["adult"][1]
ISSUED = dt.datetime(2026, 11, 27, 10, 30)
WIDTHS = {58: 384, 80: 576}
NOT_SYNCED = "已受理，网络恢复后将自动提交"


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Intake]:
    tmp = tmp_path_factory.mktemp("intake")
    storage = Storage(tmp, hall_code="HZ01", kiosk_code="K01")
    config = Config(storage=StorageConfig(data_dir=str(tmp)))
    yield Intake(
        config, storage, CatalogStore(tmp), (p := SimulatedPlatform(DEMO_LICENCES)), p.sealer
    )
    storage.close()


def bundle_receipt(intake: Intake, thing_id: str, lang: Lang = "zh") -> Receipt:
    """What the kiosk prints for the adult demo card applying for `thing_id`."""
    thing = intake.catalog.thing(thing_id)
    licences = DEMO_LICENCES[CARD.id_number]
    form = UnifiedForm(intake.catalog, thing, CARD, licences)
    answers = sample_answers(form, form.prefilled())
    page = CapturedPage(b"\xff\xd8page\xff\xd9", 10, 14)
    pages = {need.id: [page, page] for need in form.to_scan(answers)}
    session = Session(
        lang=lang, thing=thing, identity=CARD, held_licences=licences, answers=answers, pages=pages
    )
    return intake.build_receipt(session, form, "HZ01-K01-20261127-0042", ISSUED, lang)


def read_codes(image: Image.Image) -> dict[str, str]:
    """The barcode and QR code a scanner finds on a picture of the paper."""
    found = zxingcpp.read_barcodes(image.convert("L"))
    return {str(r.format).split(".")[-1].replace(" ", ""): r.text for r in found}


def flat(paper: Paper) -> str:
    """The paper's text with line breaks removed: a wrapped value reads as one."""
    return "".join(line.text.strip() for line in paper.lines)


def assert_no_personal_data(data: bytes, paper: Paper) -> None:
    for secret in (CARD.id_number, CARD.name, CARD.address):
        assert secret not in paper.text()
        for encoding in ("gb18030", "utf-8"):
            assert secret.encode(encoding) not in data


# Text mode ------------------------------------------------------------------------------------


@pytest.mark.parametrize("paper_mm", [58, 80])
@pytest.mark.parametrize("thing_id", THINGS)
def test_every_bundle_reads_back_in_text_mode(intake: Intake, thing_id: str, paper_mm: int) -> None:
    receipt = bundle_receipt(intake, thing_id)
    profile = PrinterProfile(paper_mm=paper_mm)
    data = receipt_job(receipt, profile)
    # A printer that powers up in single-byte mode: the job must switch Chinese on itself.
    paper = decode(data, WIDTHS[paper_mm], chinese_at_power_on=False)

    title = paper.lines[0]
    assert (title.text, title.bold, title.width, title.height) == ("受理回执", True, 2, 2)
    assert title.align == "center"
    number = next(line for line in paper.lines if line.text == receipt.number)
    assert number.bold and number.height == 2
    # The number as a barcode: native at 80 mm, an image of 1-dot modules at 58 mm.
    if paper_mm == 80:
        assert [(b.kind, b.data) for b in paper.barcodes] == [("CODE128", receipt.number)]
    else:
        assert read_codes(paper.pictures[0].image)["Code128"] == receipt.number
    assert [q.payload for q in paper.qr_codes] == [receipt.qr_payload]
    assert paper.qr_codes[0].ec == "M"
    text = flat(paper)
    assert f"申请人：{CARD.masked_name}" in text
    assert f"证件号码：{CARD.masked_id_number}" in text
    assert NOT_SYNCED in text
    thing = intake.catalog.thing(thing_id)
    assert thing.name.zh in text
    for service in thing.services:
        assert service.name.zh in text and service.department.zh in text
    assert_no_personal_data(data, paper)
    # Nothing runs off the paper: the printer never had to break a line itself.
    assert all(not line.broken and line.dots <= WIDTHS[paper_mm] for line in paper.lines)
    assert len(paper.cuts) == 1 and isinstance(paper.items[-1], type(paper.cuts[0]))


def test_an_english_receipt_reads_back(intake: Intake) -> None:
    receipt = bundle_receipt(intake, "retirement", "en")
    paper = decode(receipt_job(receipt, PrinterProfile(paper_mm=58)), 384)
    assert [line.text for line in paper.lines[:2]] == ["Application", "receipt"]
    assert "Received. It will be sent automatically when the network is back" in " ".join(
        line.text.strip() for line in paper.lines
    )
    assert not any(line.broken for line in paper.lines)


def test_full_width_punctuation_without_a_han_character_survives() -> None:
    punctuation = "（：，。；！？“”《》、）"
    job = EscposJob(PrinterProfile())
    job.text(punctuation)
    assert decode(job.output).lines[0].text == punctuation
    # What python-escpos alone sends for it: a code page and question marks.
    plain = Dummy()
    plain.text("（）：\n")
    assert decode(plain.output).lines[0].text == "???"


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_cjk_counts_two_columns_when_wrapping_and_aligning(paper_mm: int) -> None:
    profile = PrinterProfile(paper_mm=paper_mm)
    value = "出生医学证明、户口登记、医疗保险参保登记、社会保障卡申领、预防接种证办理 2026-12-04"
    job = EscposJob(profile)
    job.pair("事项", value)
    paper = decode(job.output, profile.dots)
    lines = [line.text for line in paper.lines]
    assert len(lines) >= 2
    assert all(columns(text) <= profile.columns for text in lines)
    assert all(line.dots == 12 * columns(line.text) for line in paper.lines)
    # Continuation lines start under the value, past the label's four columns and the colon.
    assert lines[0].startswith("事项：")
    assert all(text.startswith(" " * 6) and text[6] != " " for text in lines[1:])
    assert "".join(text.replace(" ", "") for text in lines) == f"事项：{value}".replace(" ", "")
    # No line starts with closing punctuation (禁则).
    assert not any(text.strip()[0] in "，。、）：" for text in lines)


def test_a_name_outside_the_font_rom_prints_as_an_image_line() -> None:
    receipt = Receipt(
        title="受理回执",
        subtitle="市民中心政务服务大厅",
        number="HZ01-K01-20261127-0007",
        qr_payload="https://zwfw.example.gov.cn/progress?r=HZ01-K01-20261127-0007",
        lines=(ReceiptLine("申请人", "𠮷*"), ReceiptLine("证件号码", CARD.masked_id_number)),
        footer=("请妥善保管本回执",),
        issued_at=ISSUED,
    )
    gbk = decode(receipt_job(receipt, PrinterProfile(charset="gbk")))
    assert "𠮷" not in gbk.text() and "申请人" not in gbk.text()
    assert f"证件号码：{CARD.masked_id_number}" in gbk.text()
    stand_in = next(
        p for p in gbk.pictures if p.image.height < 60 and not read_codes(p.image)
    ).image
    expected = line_image("申请人：𠮷*", 576, 0, 24)
    assert np.array_equal(np.asarray(stand_in), np.asarray(expected))
    # A printer whose font ROM has the whole of GB18030 gets it as text.
    full = decode(receipt_job(receipt, PrinterProfile(charset="gb18030")))
    assert "申请人：𠮷*" in full.text()


def test_a_printer_without_native_codes_gets_them_as_images() -> None:
    receipt = Receipt(
        title="受理回执",
        subtitle="",
        number="HZ01-K01-20261127-0008",
        qr_payload="https://zwfw.example.gov.cn/progress?r=HZ01-K01-20261127-0008",
        lines=(),
        footer=(),
        issued_at=ISSUED,
    )
    profile = PrinterProfile(model="ZJ-5870")  # a 58 mm Chinese model: no GS ( k, no GS k
    assert not profile.native_qr and not profile.native_barcode
    paper = decode(receipt_job(receipt, profile))
    assert not paper.qr_codes and not paper.barcodes
    found: dict[str, str] = {}
    for picture in paper.pictures:
        found.update(read_codes(picture.image))
    assert found == {"Code128": receipt.number, "QRCode": receipt.qr_payload}


def test_code128_data_uses_code_set_c_for_digit_runs() -> None:
    for text in ["HZ01-K01-20261127-0001", "A{B", "12345", "X1234567Y", "0"]:
        data, modules = code128_data(text)
        assert code128_text(data.encode("latin-1")) == text
        assert modules % 11 == 2
    assert code128_data("HZ01-K01-20261127-0001")[1] == 244  # fits 80 mm at 2-dot modules


# Raster mode ----------------------------------------------------------------------------------


def find_text(image: Image.Image, text: str, sizes: list[int]) -> bool:
    """Whether `text` appears on the picture, drawn in the receipt font at one of `sizes`."""
    paper = np.asarray(image, dtype=np.uint8) * 255
    for size in sizes:
        for bold in (False, True):
            drawn = line_image(text, 1200, 0, size, bold)
            ink = np.argwhere(~np.asarray(drawn))
            if not len(ink):
                continue
            (top, left), (bottom, right) = ink.min(axis=0), ink.max(axis=0) + 1
            template = np.asarray(drawn, dtype=np.uint8)[top:bottom, left:right] * 255
            if template.shape[0] > paper.shape[0] or template.shape[1] > paper.shape[1]:
                continue
            scores = cv2.matchTemplate(paper, template, cv2.TM_SQDIFF)
            if scores.min() < 255 * 255 / 2:  # not one dot differs (the rest is float noise)
                return True
    return False


@pytest.mark.parametrize("paper_mm", [58, 80])
@pytest.mark.parametrize("thing_id", THINGS)
def test_every_bundle_reads_back_in_raster_mode(
    intake: Intake, thing_id: str, paper_mm: int
) -> None:
    receipt = bundle_receipt(intake, thing_id)
    dots = WIDTHS[paper_mm]
    data = receipt_job(receipt, PrinterProfile(paper_mm=paper_mm, mode="raster"))
    paper = decode(data, dots)
    assert not paper.lines or all(not line.text.strip() for line in paper.lines)
    (picture,) = paper.pictures
    # The paper gets exactly the dots the screen shows.
    screen = render_receipt(receipt, dots)
    assert picture.image.size == screen.size
    assert np.array_equal(np.asarray(picture.image), np.asarray(screen))
    codes = read_codes(picture.image)
    assert codes == {"Code128": receipt.number, "QRCode": receipt.qr_payload}
    assert isinstance(paper.items[-1], type(paper.cuts[0]))
    assert_no_personal_data(data, paper)


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_raster_receipt_shows_title_and_masked_identity(intake: Intake, paper_mm: int) -> None:
    receipt = bundle_receipt(intake, "newborn")
    paper = decode(receipt_job(receipt, PrinterProfile(paper_mm=paper_mm, mode="raster")))
    image = paper.pictures[0].image
    scale = WIDTHS[paper_mm] / 576
    body = max(20, round(26 * scale))
    assert find_text(image, "受理回执", [max(26, round(40 * scale))])
    assert find_text(image, CARD.masked_id_number, [body])
    assert find_text(image, CARD.masked_name, [body])
    assert find_text(image, NOT_SYNCED, [body])
    assert not find_text(image, CARD.id_number, [body])


# Queue ticket ---------------------------------------------------------------------------------

TICKET = QueueTicket(
    number="A023",
    counter_group=Text("综合受理窗口 1-6 号", "General counters 1-6"),
    people_ahead=12,
    issued_at=ISSUED,
    hall=Text("市民中心政务服务大厅", "Citizen Centre Service Hall"),
)


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_queue_ticket_reads_back(paper_mm: int) -> None:
    paper = decode(ticket_job(TICKET, PrinterProfile(paper_mm=paper_mm)), WIDTHS[paper_mm])
    number = next(line for line in paper.lines if line.text == "A023")
    assert (number.width, number.height, number.bold, number.align) == (4, 4, True, "center")
    text = " ".join(line.text.strip() for line in paper.lines)
    for expected in ("排队号 Queue number", "办理窗口 Counters", "前面等候 Waiting ahead", "12 人"):
        assert expected in text
    assert "12 people" in text and "2026-11-27 10:30" in text
    assert "General counters 1-6" in text
    assert not any(line.broken for line in paper.lines)
    assert len(paper.cuts) == 1


def test_queue_ticket_document() -> None:
    assert ticket_number("a", 23) == "A023"
    with pytest.raises(ValueError):
        ticket_number("AB", 1)
    with pytest.raises(ValueError, match="negative"):
        QueueTicket("A001", TICKET.counter_group, -1, ISSUED, TICKET.hall)
    lines = TICKET.text_lines()
    assert lines[3] == "A023" and "前面等候 Waiting ahead：12 人" in lines and "12 people" in lines


def test_queue_ticket_in_raster_mode_is_one_picture() -> None:
    paper = decode(ticket_job(TICKET, PrinterProfile(mode="raster")))
    (picture,) = paper.pictures
    assert find_text(picture.image, "A023", [132])


def test_decoder_reads_chinese_mode_switches_and_code_pages() -> None:
    data = b"\x1b@\x1c&\xc4\xe3\xba\xc3\n\x1c.\x1bt\x00\x82\n\x1d(k\x03\x001Q0"
    paper = decode(data + b"\x1dV\x00")
    assert [line.text for line in paper.lines] == ["你好", "é"]
    assert isinstance(paper.items[2], QrCode) and isinstance(paper.items[-1], type(paper.cuts[0]))
    assert paper.read()[0] == "你好"
    assert all(isinstance(i, Line | QrCode | Barcode | Picture) for i in paper.items[:-1])


def test_profile_rejects_unknown_settings(tmp_path: Path) -> None:
    from devices.printer.profile import ProfileError

    with pytest.raises(ProfileError, match="width"):
        PrinterProfile(paper_mm=76)
    with pytest.raises(ProfileError, match="model"):
        PrinterProfile(model="no-such-printer")
