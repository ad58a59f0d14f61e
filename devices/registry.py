"""The one place that chooses real or simulated devices, from the [devices] config section."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kiosk.config import Config, DevicesConfig
from kiosk.ports import DocumentCamera, IdDocumentReader, ReceiptPrinter

log = logging.getLogger(__name__)

SIMULATED = "simulated"
SIMULATED_PRINTER_URL = "simulated://"


class DeviceConfigError(ValueError):
    """A [devices] value this build cannot turn into a device; the message names the key."""


def _not_available(key: str, value: str, driver: str, simulated: str) -> DeviceConfigError:
    return DeviceConfigError(
        f"devices.{key} = {value!r}: the {driver} driver is not installed in this build; "
        f"use {simulated!r}"
    )


@dataclass
class Devices:
    """The kiosk's devices, built together and closed together."""

    id_reader: IdDocumentReader
    camera: DocumentCamera
    printer: ReceiptPrinter

    def close(self) -> None:
        """Stop the reader and release the camera; idempotent."""
        try:
            self.id_reader.stop()
        finally:
            self.camera.close()


# One function per device, one branch per driver: a real driver is one more `if` here. Drivers
# are imported only when chosen, so a build never needs the libraries of drivers it does not use.


def _id_reader(config: DevicesConfig) -> IdDocumentReader:
    if config.id_reader == SIMULATED:
        from devices.simulated_idreader import SimulatedIdReader

        return SimulatedIdReader()
    raise _not_available("id_reader", config.id_reader, "SAM serial ID card reader", SIMULATED)


def _camera(config: DevicesConfig) -> DocumentCamera:
    if config.camera == SIMULATED:
        from devices.simulated_camera import SimulatedCamera

        return SimulatedCamera()
    raise _not_available("camera", config.camera, "OpenCV document camera", SIMULATED)


def _printer(config: DevicesConfig, data_dir: Path) -> ReceiptPrinter:
    if config.printer == SIMULATED_PRINTER_URL:
        from devices.simulated_printer import SimulatedPrinter

        return SimulatedPrinter(job_dir=data_dir / "printer-sim")
    raise _not_available("printer", config.printer, "ESC/POS printer", SIMULATED_PRINTER_URL)


def build_devices(config: Config, data_dir: Path) -> Devices:
    """Build every device `config.devices` asks for; raises DeviceConfigError."""
    devices = config.devices
    # The printer and the reader hold nothing open until used; the camera must not be left
    # open when a later value is bad.
    printer = _printer(devices, data_dir)
    camera = _camera(devices)
    try:
        id_reader = _id_reader(devices)
    except BaseException:
        camera.close()
        raise
    log.info(
        "devices: id_reader=%s camera=%s printer=%s",
        devices.id_reader,
        devices.camera,
        devices.printer,
    )
    return Devices(id_reader=id_reader, camera=camera, printer=printer)
