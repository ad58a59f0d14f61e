"""The core stays free of Qt, hardware and network libraries; layers point one way."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import kiosk

ROOT = Path(__file__).resolve().parent.parent
BLOCKED = [
    "PySide6",
    "shiboken6",
    "cv2",
    "serial",
    "smartcard",
    "escpos",
    "httpx",
    "fastapi",
    "uvicorn",
    "ui",
    "devices",
    "sync",
]


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken" in result.stdout


def test_every_core_module_imports_with_those_libraries_unavailable() -> None:
    modules = [m.name for m in pkgutil.walk_packages(kiosk.__path__, "kiosk.")]
    assert "kiosk.flow" in modules and "kiosk.storage" in modules
    script = f"""
import importlib, importlib.abc, sys
BLOCKED = {BLOCKED!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked for the core")
sys.meta_path.insert(0, Block())
for name in {modules!r}:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not loaded, loaded
print("ok", len({modules!r}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


# What waits until the home screen is painted (docs/deploy.md, cold start): none of these may
# load while the kiosk starts. Each was once a measurable part of the start-up.
LOADED_AFTER_START = (
    "cv2",  # the scanning pipeline: with the first camera frame (ui.camera_view)
    "numpy",  # with the camera; hidden from sqlite-utils (kiosk.sqlite_utils_lean)
    "escpos",  # with the first print (devices.printer.escpos_printer)
    "qrcode",
    "PIL",
    "PySide6.QtQuickWidgets",  # the on-screen keyboard: Kiosk.finish_start()
    "devices.scanning",
    "devices.simulated_camera",
    "sync.platform",  # the reference platform: only `kiosk demo` and `platform` commands
    "httpx",  # the platform client: only with a platform URL, not `simulated`
)


def test_starting_the_kiosk_leaves_the_heavy_libraries_for_later(tmp_path: Path) -> None:
    script = f"""
import sys
from dataclasses import replace
from PySide6.QtWidgets import QApplication
from kiosk.config import Config, StorageConfig
from ui.app import build_kiosk
app = QApplication([])
kiosk = build_kiosk(replace(Config(), storage=StorageConfig(data_dir={str(tmp_path)!r})), app)
kiosk.window.show()
app.processEvents()
early = sorted(m for m in {LOADED_AFTER_START!r} if m in sys.modules)
kiosk.finish_start()
kiosk.devices.camera.preview()
kiosk.close()
print("early", early)
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "early []" in result.stdout, result.stdout
