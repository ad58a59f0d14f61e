"""The simulated devices and the receipt renderer, without Qt."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from devices.idcard import SimulatedIdCardReader
from devices.printer.factory import SimulatedEscposPrinter, build_escpos_printer
from devices.receipt_image import FONT_LOCK, cjk_font, render_receipt, render_receipt_png, wrap_text
from devices.registry import DeviceConfigError, Devices, build_devices
from devices.simulated_camera import Aspect, SimulatedCamera
from kiosk.config import Config, DevicesConfig
from kiosk.ports import (
    CameraError,
)
from kiosk.receipt import Receipt, ReceiptLine

TIMEOUT = 5.0


# Receipt image --------------------------------------------------------------------------------


def make_receipt(*lines: ReceiptLine, qr: str = "https://zwfw.example.gov.cn/p?n=1") -> Receipt:
    return Receipt(
        title="受理回执",
        subtitle="市民中心政务服务大厅 · 自助终端 K01",
        number="HZ01-K01-20250314-0007",
        qr_payload=qr,
        lines=lines,
        footer=("扫码查询办理进度", "请妥善保管本回执。"),
        issued_at=dt.datetime(2025, 3, 14, 10, 32),
    )


SHORT = make_receipt(
    ReceiptLine("申请事项", style="heading"),
    ReceiptLine("事项", "新生儿出生一件事"),
    ReceiptLine("承诺办结", "2025-03-21（5 个工作日）"),
    ReceiptLine("结婚证：免提交，已调取电子证照。", style="text"),
    ReceiptLine("如有疑问请拨打 12345。", style="small"),
)


@pytest.mark.parametrize("width", [576, 384])
def test_receipt_is_exactly_the_paper_width(width: int) -> None:
    image = render_receipt(SHORT, width)
    assert image.width == width
    assert image.mode in ("1", "L")
    png = Image.open(io.BytesIO(render_receipt_png(SHORT, width)))
    assert png.size == image.size


def test_long_chinese_value_wraps() -> None:
    long_value = "出生医学证明、户口登记、医疗保险参保登记、社会保障卡申领、预防接种证办理" * 2
    short = render_receipt(make_receipt(ReceiptLine("事项", "出生登记")))
    long = render_receipt(make_receipt(ReceiptLine("事项", long_value)))
    assert long.width == short.width
    assert long.height > short.height


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(alphabet="办理事项出生医学证明户口登记abcXYZ019 /.-，。：（）“”", max_size=120),
    width=st.integers(min_value=60, max_value=540),
)
def test_wrapping_keeps_every_character_within_the_width(text: str, width: int) -> None:
    with FONT_LOCK:
        font = cjk_font(24)
        lines = wrap_text(text, font, width)
        widest_char = max((font.getlength(c) for c in text), default=0)
        assert all(font.getlength(line) <= max(width, widest_char * 2) for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_wrapping_keeps_ascii_words_whole_and_punctuation_off_line_starts() -> None:
    text = "请拨打 12345 或登录 zwfw.example 查询进度，材料（原件）已收到。结婚证：免提交。"
    with FONT_LOCK:
        font = cjk_font(24)
        for width in range(160, 420, 7):  # from the width of the longest word
            lines = wrap_text(text, font, width)
            assert {"12345", "zwfw.example"} <= set(" ".join(lines).split())
            assert not any(line[0] in "，。：）" for line in lines), lines
            assert not any(line[-1] == "（" for line in lines), lines


def decode_qr(image: Image.Image) -> str:
    pixels = np.asarray(image.convert("L"))
    text, _points, _code = cv2.QRCodeDetector().detectAndDecode(pixels)
    return str(text)


@pytest.mark.parametrize("width", [576, 384])
def test_qr_code_decodes_to_the_payload(width: int) -> None:
    payload = "https://zwfw.example.gov.cn/progress?n=HZ01-K01-20250314-0007"
    image = render_receipt(make_receipt(qr=payload), width)
    assert decode_qr(image) == payload


def test_rendering_is_deterministic() -> None:
    assert render_receipt_png(SHORT) == render_receipt_png(SHORT)


# Printer --------------------------------------------------------------------------------------
# The simulated printer is an EscposPrinter over tcp:// to a SimulatedNetworkPrinter; the wire
# level is tested in test_printer_connection.py, this is the view from the port.


@pytest.fixture
def sim_printer(tmp_path: Path) -> Iterator[SimulatedEscposPrinter]:
    printer = build_escpos_printer("simulated://", tmp_path)
    assert isinstance(printer, SimulatedEscposPrinter)
    yield printer
    printer.close()


def test_paper_out_prints_nothing_but_still_renders(sim_printer: SimulatedEscposPrinter) -> None:
    sim_printer.simulator.set_paper_out(True)
    result = sim_printer.print_receipt(SHORT)
    assert not result.printed
    assert result.status.paper_out
    assert "paper out" in result.detail
    assert result.image_png.startswith(b"\x89PNG")
    assert sim_printer.simulator.all_jobs == []
    assert sim_printer.job_dir is not None and not sim_printer.job_dir.exists()


def test_ready_printer_stores_the_job(sim_printer: SimulatedEscposPrinter) -> None:
    result = sim_printer.print_receipt(SHORT)
    assert result.printed
    assert result.image_png == sim_printer.render(SHORT)
    assert [job.data for job in sim_printer.simulator.jobs] == [sim_printer.receipt_job(SHORT)]
    sim_printer.print_receipt(SHORT)
    assert sim_printer.job_dir is not None
    assert sorted(p.name for p in sim_printer.job_dir.iterdir()) == [
        "job-0001.bin",
        "job-0001.png",
        "job-0002.bin",
        "job-0002.png",
    ]


def test_printer_faults_and_recovery(sim_printer: SimulatedEscposPrinter) -> None:
    sim = sim_printer.simulator
    sim.set_cover_open(True)
    assert not sim_printer.status().ready
    assert not sim_printer.print_receipt(SHORT).printed
    sim.set_cover_open(False)
    sim.set_online(False)
    assert sim_printer.print_receipt(SHORT).detail == "offline"
    sim.set_online(True)
    sim.set_paper_near_end(True)
    result = sim_printer.print_receipt(SHORT)
    assert result.printed
    assert result.status.paper_near_end
    assert len(sim.jobs) == 1


# Camera ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aspect", "size"), [("a4", (1240, 1754)), ("id_card", (1011, 638)), ("free", (1240, 1240))]
)
def test_capture_is_a_jpeg_of_the_expected_size(aspect: Aspect, size: tuple[int, int]) -> None:
    camera = SimulatedCamera(seed=7)
    page = camera.capture("birth_certificate", aspect, "出生医学证明（正面）")
    pixels = cv2.imdecode(np.frombuffer(page.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None
    assert (pixels.shape[1], pixels.shape[0]) == size == (page.width, page.height)
    camera.close()


def test_unplugged_camera_raises_until_plugged_back() -> None:
    camera = SimulatedCamera(seed=1)
    camera.unplug()
    with pytest.raises(CameraError, match="camera not found"):
        camera.capture("household_register", "a4", "户口簿")
    with pytest.raises(CameraError):
        camera.capture("household_register", "a4", "户口簿")
    camera.plug()
    assert camera.capture("household_register", "a4", "户口簿").jpeg
    camera.close()
    camera.close()


# Registry -------------------------------------------------------------------------------------


def test_default_config_gives_the_simulators(tmp_path: Path) -> None:
    devices = build_devices(Config(), tmp_path)
    try:
        assert isinstance(devices, Devices)
        assert isinstance(devices.id_reader, SimulatedIdCardReader)
        assert not devices.camera.built  # OpenCV waits until the home screen is up
        assert isinstance(devices.camera.camera(), SimulatedCamera)
        assert isinstance(devices.printer, SimulatedEscposPrinter)
        assert devices.printer.job_dir == tmp_path / "printer-sim"
    finally:
        devices.close()
        devices.close()


@pytest.mark.parametrize(
    ("key", "value"),
    [("camera", ""), ("id_reader", "/dev/ttyUSB0")],  # a bare path: serial://… is required
)
def test_unknown_device_value_names_the_key(tmp_path: Path, key: str, value: str) -> None:
    config = Config(devices=replace(DevicesConfig(), **{key: value}))
    with pytest.raises(DeviceConfigError, match=f"devices\\.{key}"):
        build_devices(config, tmp_path)


def test_bad_printer_url_names_the_key(tmp_path: Path) -> None:
    config = Config(devices=replace(DevicesConfig(), printer="lpt://1"))
    with pytest.raises(DeviceConfigError, match=r"devices\.printer"):
        build_devices(config, tmp_path)


def test_the_camera_is_built_on_first_use_or_warm_up_and_keeps_its_listener() -> None:
    from devices.lazy_camera import LazyCamera
    from kiosk.ports import CameraError, CameraLost

    built: list[SimulatedCamera] = []

    def build() -> SimulatedCamera:
        built.append(SimulatedCamera())
        return built[-1]

    events: list[object] = []
    lazy = LazyCamera(build)
    lazy.set_listener(events.append)  # before the camera exists
    assert not lazy.built and built == []
    lazy.warm_up().join(30)
    assert lazy.built and len(built) == 1
    assert lazy.preview().pixels.ndim == 3 and len(built) == 1  # built once
    built[0].unplug()
    with pytest.raises(CameraError):
        lazy.preview()
    assert any(isinstance(e, CameraLost) for e in events)
    lazy.close()
    with pytest.raises(CameraError, match="closed"):
        lazy.preview()

    def broken() -> SimulatedCamera:
        raise OSError("no such device")

    failing = LazyCamera(broken)
    failing.warm_up().join(30)
    with pytest.raises(CameraError, match="cannot be started"):
        failing.capture("m", "a4", "")
