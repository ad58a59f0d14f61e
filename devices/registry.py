"""The one place that chooses real or simulated devices, from the [devices] config section."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from devices.lazy_camera import LazyCamera
from kiosk.config import Config, DevicesConfig
from kiosk.ports import DocumentCamera, IdDocumentReader, ReceiptPrinter, SmartCardReader

log = logging.getLogger(__name__)

SIMULATED = "simulated"


class DeviceConfigError(ValueError):
    """A [devices] value this build cannot turn into a device; the message names the key."""


@dataclass
class Devices:
    """The kiosk's devices, built together and closed together."""

    id_reader: IdDocumentReader
    camera: LazyCamera  # the configured camera, built by camera.warm_up() or on first use
    printer: ReceiptPrinter
    smart_card: SmartCardReader | None = None  # None: devices.smart_card = "none"

    def close(self) -> None:
        """Stop the readers, release the camera and the printer; idempotent."""
        with ExitStack() as stack:  # each closes even if an earlier one raised
            stack.callback(self.printer.close)
            stack.callback(self.camera.close)
            stack.callback(self.id_reader.stop)
            if self.smart_card is not None:
                stack.callback(self.smart_card.stop)


# One function per device, one branch per driver: a real driver is one more `if` here. Drivers
# are imported only when chosen, so a build never needs the libraries of drivers it does not use.


def _id_reader(config: DevicesConfig) -> IdDocumentReader:
    # "simulated" runs the real SAM reader code over a wire-level simulator.
    from devices.idcard.factory import ReaderSpecError, build_id_reader

    try:
        return build_id_reader(config.id_reader)
    except ReaderSpecError as exc:
        raise DeviceConfigError(f"devices.id_reader = {config.id_reader!r}: {exc}") from None


def _camera(config: DevicesConfig) -> LazyCamera:
    # "simulated" renders synthetic frames through the real scanning pipeline; anything else is
    # a cv2.VideoCapture source (index, /dev/videoN, name, video file or folder of images).
    # Built after the first screen (LazyCamera.warm_up): OpenCV is not needed to show it.
    spec = config.camera

    def build() -> DocumentCamera:
        from devices.camera_factory import build_camera

        return build_camera(spec)

    if not spec.strip():
        raise DeviceConfigError(
            f"devices.camera = {spec!r}: no camera given: use 'simulated', an index, a path "
            "or a name"
        )
    return LazyCamera(build)


def _printer(config: DevicesConfig, data_dir: Path) -> ReceiptPrinter:
    # Every URL form, simulated:// included, goes through the one ESC/POS printer code path.
    from devices.printer.connection import PrinterUrlError
    from devices.printer.factory import build_printer

    try:
        return build_printer(config.printer, data_dir)
    except PrinterUrlError as exc:
        raise DeviceConfigError(f"devices.printer = {config.printer!r}: {exc}") from None


def _smart_card(config: DevicesConfig) -> SmartCardReader | None:
    if config.smart_card == "none":
        return None
    if config.smart_card == "pcsc":
        # pyscard is loaded only when chosen; the reader holds nothing until start().
        from devices.pcsc.reader import PcscCardReader

        return PcscCardReader()
    raise DeviceConfigError(f"devices.smart_card = {config.smart_card!r}: use 'none' or 'pcsc'")


def build_devices(config: Config, data_dir: Path) -> Devices:
    """Build every device `config.devices` asks for; raises DeviceConfigError."""
    devices = config.devices
    with ExitStack() as opened:
        # A bad later value must not leave an earlier device open.
        printer = _printer(devices, data_dir)
        opened.callback(printer.close)
        camera = _camera(devices)
        opened.callback(camera.close)
        id_reader = _id_reader(devices)
        smart_card = _smart_card(devices)
        opened.pop_all()
    log.info(
        "devices: id_reader=%s camera=%s printer=%s smart_card=%s",
        devices.id_reader,
        devices.camera,
        devices.printer,
        devices.smart_card,
    )
    return Devices(id_reader=id_reader, camera=camera, printer=printer, smart_card=smart_card)
