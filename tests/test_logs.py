"""The logging filter masks personal numbers that code should never have logged."""

from __future__ import annotations

import logging
from pathlib import Path

from kiosk.logs import redact, setup_logging


def test_redact_masks_id_and_mobile_numbers_but_not_receipt_numbers() -> None:
    line = "id 11010519491231002X phone 13812345678 receipt HZ01-K01-20261127-0001"
    out = redact(line)
    assert "11010519491231002X" not in out and "1101**********002X" in out
    assert "13812345678" not in out and "138****5678" in out
    assert "HZ01-K01-20261127-0001" in out
    pan = "6217002870012345672"  # passes the Luhn check
    assert "6217002870012345672" not in redact(f"card {pan}")
    assert "6217***********5672" in redact(f"card {pan}")
    assert "1234567890123" in redact("not a card 1234567890123")  # fails Luhn: left alone


def test_file_log_never_holds_a_planted_number(tmp_path: Path) -> None:
    setup_logging(tmp_path)
    try:
        logging.getLogger("test").warning("oops %s", "330106198503120036")
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = (tmp_path / "kiosk.log").read_text(encoding="utf-8")
        assert "330106198503120036" not in text
        assert "3301**********0036" in text
    finally:
        for handler in list(logging.getLogger().handlers):
            handler.close()
            logging.getLogger().removeHandler(handler)
