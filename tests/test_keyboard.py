"""The on-screen keyboard appears for text fields, follows the language, and goes away."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import sys, tempfile, time
from ui import keyboard
keyboard.enable()
from dataclasses import replace
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit
from kiosk.config import Config, StorageConfig
app = QApplication([])
from ui.app import build_kiosk
kiosk = build_kiosk(replace(Config(), storage=StorageConfig(data_dir=sys.argv[1])), app)
w = kiosk.window
w.resize(1080, 1920)
w.show()
w.activateWindow()
kiosk.finish_start()  # `kiosk run` does this once the home screen is painted

def settle(n=40):
    for _ in range(n):
        app.processEvents()
        time.sleep(0.01)

settle()
kb = w.keyboard
assert kb is not None and kb.ok, "keyboard did not load"
assert not kb.showing, "keyboard shown before any field was touched"
QTest.mouseClick(w.findChild(QLineEdit, "search"), Qt.MouseButton.LeftButton)
settle(80)
assert kb.showing and kb.height() >= 300, "a tap on a text field did not bring up the keys"
assert kb.rootObject().property("locale") == "zh_CN"
search = w.findChild(QLineEdit, "search")
QTest.mouseClick(kb, Qt.MouseButton.LeftButton, pos=kb.rect().center())  # a key in the middle
settle(40)
assert app.focusWidget() is search, "a key press took the focus away from the text field"
assert kb.showing, "the keys went away while typing"
w.findChild(type(w.lang_button), "lang").click()
settle()
assert kb.rootObject().property("locale") == "en_US"
kiosk.flow.choose_thing("newborn")
settle(40)
assert not kb.showing, "the keys stayed up on a new page"
kiosk.close()
print("keyboard ok")
"""


def test_keyboard_comes_and_goes(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("QT_IM_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "keyboard ok" in result.stdout


def test_kiosk_runs_with_the_keyboard_turned_off(tmp_path: Path) -> None:
    # A kiosk with a physical keyboard turns the on-screen one off; it still starts.
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("QT_IM_MODULE", None)
    code = (
        "import sys; from ui.cli import main; "
        "sys.exit(main(['demo', '--data-dir', sys.argv[1], '--exit-after', '1']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        env={**env, "KIOSK_CONFIG": str(_no_keyboard(tmp_path))},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "started (demo)" in result.stderr


def _no_keyboard(tmp: Path) -> Path:
    path = tmp / "k.toml"
    path.write_text("[ui]\nvirtual_keyboard = false\n", encoding="utf-8")
    return path
