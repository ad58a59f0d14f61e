"""`kiosk diag printer`: status, then a test page the decoder reads back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zxingcpp
from escpos_decoder import decode

from devices.printer.diag import FULL_WIDTH_PUNCTUATION
from kiosk.demo import DEMO_CARDS
from ui.cli import main

CARD = DEMO_CARDS["adult"][1]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(["diag", "printer", *argv, "--json"])
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1, out  # one JSON object, nothing else on stdout
    return code, json.loads(out)


def test_test_page_lands_in_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.bin"
    code, result = run_json(
        capsys, "--printer", f"file://{out}", "--data-dir", str(tmp_path / "data")
    )
    assert code == 0
    data = out.read_bytes()
    assert result["printed"] is True and result["bytes_written"] == len(data)
    assert result["file"] == str(out)
    status = result["status"]
    assert isinstance(status, dict) and status["ready"] is True

    paper = decode(data, 576)
    lines = [line.text.strip() for line in paper.lines]
    assert lines[0] == "打印机测试页"
    normal = next(line for line in paper.lines if line.text.startswith("正常字号"))
    double = next(line for line in paper.lines if line.text.startswith("倍高倍宽"))
    assert (normal.width, normal.height) == (1, 1) and (double.width, double.height) == (2, 2)
    assert FULL_WIDTH_PUNCTUATION in lines
    assert "中文：您好，欢迎使用政务服务自助终端！" in lines
    assert paper.qr_codes[0].payload.endswith("?r=TEST")
    assert paper.barcodes[0].data == "TEST-0123456789"
    # Then a sample receipt for a demo application, each part cut.
    assert "受理回执" in lines
    number = paper.barcodes[1].data
    assert number.endswith("-0000") and number in lines
    assert paper.qr_codes[1].payload.endswith(f"?r={number}")
    text = "".join(lines)
    assert f"证件号码：{CARD.masked_id_number}" in text and CARD.id_number not in text
    assert len(paper.cuts) == 2 and not any(line.broken for line in paper.lines)


def test_58mm_raster_test_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out58.bin"
    code, result = run_json(
        capsys,
        "--printer",
        f"file://{out}",
        "--width",
        "58",
        "--raster",
        "--data-dir",
        str(tmp_path),
    )
    assert code == 0 and result["width_mm"] == 58 and result["mode"] == "raster"
    paper = decode(out.read_bytes(), 384)
    assert not any(line.text.strip() for line in paper.lines)  # no font ROM needed
    assert all(p.image.width == 384 for p in paper.pictures)
    assert paper.qr_codes[0].payload.endswith("?r=TEST")
    assert [b.data for b in paper.barcodes] == ["TEST-0123456789"]
    # The sample receipt is one picture, the screen's own image of it.
    receipt = max(paper.pictures, key=lambda p: p.image.height).image
    found = {r.text for r in zxingcpp.read_barcodes(receipt.convert("L"))}
    assert any(text.endswith("-0000") for text in found)


def test_out_of_paper_exits_non_zero_with_a_plain_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from devices.printer.network_simulator import SimulatedNetworkPrinter

    sim = SimulatedNetworkPrinter()
    sim.set_paper_out(True)
    try:
        code, result = run_json(capsys, "--printer", sim.url, "--data-dir", str(tmp_path))
        assert code == 1 and result["printed"] is False and result["bytes_written"] == 0
        status = result["status"]
        assert isinstance(status, dict) and status["paper_out"] is True
        assert main(["diag", "printer", "--printer", sim.url, "--data-dir", str(tmp_path)]) == 1
        assert "paper out" in capsys.readouterr().err
        assert sim.all_jobs == []
    finally:
        sim.stop()


def test_the_simulated_printer_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = run_json(capsys, "--data-dir", str(tmp_path))
    assert code == 0 and result["printer"] == "simulated://"
    assert sorted(p.name for p in (tmp_path / "printer-sim").iterdir()) == [
        "job-0001.bin",
        "job-0001.png",
    ]


def test_a_bad_url_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diag", "printer", "--printer", "lpt://1", "--data-dir", str(tmp_path)]) == 2
    assert "printer URL" in capsys.readouterr().err
