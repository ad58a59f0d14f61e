"""Make the README's screenshots: a whole trip through the real window, headless.

Usage: QT_QPA_PLATFORM=offscreen python scripts/screenshots.py docs/screenshots
Every picture is the real window with simulated devices, driven through its buttons.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import QApplication

from kiosk.config import Config, StorageConfig
from kiosk.flow import Step
from ui.app import build_kiosk
from ui.driver import KioskDriver


def shoot(app: QApplication, out: Path, size: tuple[int, int], prefix: str, full: bool) -> None:
    with tempfile.TemporaryDirectory() as data:
        config = replace(Config(), storage=StorageConfig(data_dir=data))
        kiosk = build_kiosk(config, app)
        window = kiosk.window
        window.resize(*size)
        window.show()
        driver = KioskDriver(window)

        def grab(name: str) -> None:
            QApplication.processEvents()
            path = out / f"{prefix}-{name}.png"
            window.grab().save(str(path))
            print(path)

        try:
            grab("1-home")
            driver.choose("newborn")
            grab("2-thing")
            driver.start()
            if full:
                grab("3-identify")
            driver.tap_card("elderly")
            driver.fill_form()
            if full:
                grab("4-form")
            driver.next(Step.MATERIALS)
            driver.scan_all()
            grab("5-materials")
            driver.next(Step.REVIEW)
            if full:
                grab("6-review")
            driver.agree_and_submit()
            grab("7-receipt")
            if full:
                driver.rate(5)
                grab("7b-receipt-rated")
                driver.press("next")
                driver.check_progress("elderly")
                grab("7c-progress")
                driver.press("cancel")
                driver.press("lang")
                grab("8-home-english")
                driver.choose("retirement")
                window.idle.last_touch -= config.session.idle_timeout_s + 3
                driver.wait_until(lambda: window.countdown.isVisible(), "the countdown")
                grab("9-idle-countdown")
        finally:
            window.close()
            kiosk.close()


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    shoot(app, out, (1080, 1920), "portrait", full=True)
    shoot(app, out, (1920, 1080), "landscape", full=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
