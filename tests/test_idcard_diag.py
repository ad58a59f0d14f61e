"""`kiosk diag idcard`: SAM checks, one card read, masked fields, exit status, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices.idcard.diag import diagnose
from devices.idcard.reader import SamSerialIdReader
from devices.idcard.simulator import (
    SimulatedIdCardReader,
    SimulatedSamDevice,
    SimulatedSamPty,
    demo_sim_cards,
)
from kiosk.demo import DEMO_CARDS
from ui.cli import main

ADULT = DEMO_CARDS["adult"][1]
FULL_DATA = [ADULT.name, ADULT.id_number, ADULT.address, ADULT.id_number[6:14]]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["diag", "idcard", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_on_the_simulated_reader(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run_cli(capsys, "--json", "--data-dir", str(tmp_path))
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True and report["error"] is None
    assert report["reader"] == "simulated" and report["baud"] == 115200
    assert report["sam"] == {"ok": True, "id": "05.01-20230915-000012345-001234567"}
    steps = [s["step"] for s in report["steps"]]
    assert steps == [
        "open port",
        "SAM status",
        "SAM id",
        "find card",
        "select card",
        "read base info",
        "parse text",
        "read appended address",
    ]
    assert all(s["ok"] and s["ms"] >= 0 for s in report["steps"])
    card = report["card"]
    assert card["kind"] == "resident"
    assert card["name"] == "李*"
    assert card["id_number"] == "3301**********0036"
    assert card["valid_to"] == "2039-06-01"
    assert "1024 bytes of WLT" in card["photo"]
    for value in FULL_DATA:
        assert value not in out


def test_text_output_shows_steps_and_masked_fields_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = run_cli(capsys, "--data-dir", str(tmp_path))
    assert code == 0
    for expected in ("SAM status", "05.01-", "read base info", "李*", "3301**********0036"):
        assert expected in out
    for value in FULL_DATA:
        assert value not in out


def test_a_missing_port_fails_with_a_plain_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "ttyNONE"
    code, out, err = run_cli(
        capsys, "--json", "--data-dir", str(tmp_path), "--reader", f"serial://{missing}"
    )
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False and report["card"] is None and report["sam"]["ok"] is False
    assert "cannot be opened" in report["error"]
    assert "cannot be opened" in err and "Traceback" not in err


def test_a_bad_reader_spec_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--data-dir", str(tmp_path), "--reader", "usb://reader")
    assert code == 2
    assert out == "" and "not an ID card reader" in err


def test_the_config_names_the_reader(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text('[devices]\nid_reader = "serial:///nonexistent/ttySAM"\n', encoding="utf-8")
    code, out, _err = run_cli(
        capsys, "--json", "--config", str(config), "--data-dir", str(tmp_path)
    )
    assert code == 1
    assert json.loads(out)["device"] == "/nonexistent/ttySAM"


def test_a_real_serial_path_with_a_card_on_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = SimulatedSamDevice(demo_sim_cards().values(), realtime=False)
    device.place("foreigner")
    pty = SimulatedSamPty(device, tmp_path / "ttySAM0")
    path = pty.start()
    try:
        code, out, _err = run_cli(
            capsys, "--json", "--data-dir", str(tmp_path), "--reader", f"serial://{path}"
        )
    finally:
        pty.close()
    assert code == 0
    report = json.loads(out)
    assert report["card"]["kind"] == "foreign_permanent_2023"
    assert report["card"]["english_name"] == "S***** J***"
    # A foreigner's card has no address: the appended-address step is skipped.
    assert "read appended address" not in [s["step"] for s in report["steps"]]


def test_a_failed_sam_is_reported_and_exits_non_zero() -> None:
    reader = SimulatedIdCardReader(realtime=False)
    reader.sim.fail_sam(0x60)
    report = diagnose(reader, "simulated", wait_s=0.2)
    assert not report.ok and not report.sam_ok and report.card is None
    assert report.error is not None and "SAM is not ready" in report.error
    assert "self-test failed" in report.error
    assert report.steps[-1].name == "SAM status" and not report.steps[-1].ok


def test_no_card_within_the_wait_is_reported() -> None:
    # A plain reader on the simulator: no demo card is tapped, as on a real reader nobody uses.
    reader = SamSerialIdReader("simulated", opener=SimulatedSamDevice(realtime=False).open)
    report = diagnose(reader, "simulated", wait_s=0.2)
    assert report.sam_ok and not report.ok
    assert report.error == "no card was placed on the reader within 0.2 s"
    assert report.steps[-1].name == "find card" and not report.steps[-1].ok
