"""The core stays free of Qt, hardware and network libraries; layers point one way."""

from __future__ import annotations

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
