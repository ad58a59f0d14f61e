"""Logging set-up with a last line of defence: personal numbers are masked before any write."""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{10}(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


_CARD_NUMBER = re.compile(r"(?<!\d)\d{13,19}(?!\d)")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = match.group(0)
    if not _luhn_ok(digits):
        return digits
    return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]


def redact(text: str) -> str:
    """Mask anything shaped like an ID number, a bank card number or a mobile number."""
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), text)
    text = _CARD_NUMBER.sub(_mask_card, text)
    return _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(2), text)


class RedactingFilter(logging.Filter):
    """Code must not log personal data; this catches the mistake if it does."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(log_dir: Path | None, level: int = logging.INFO) -> None:
    """Log to stderr and, when `log_dir` is given, to a rotating file there."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    problem = ""
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            handlers.append(
                logging.handlers.RotatingFileHandler(
                    log_dir / "kiosk.log", maxBytes=5_000_000, backupCount=5, encoding="utf-8"
                )
            )
        except OSError as exc:
            # Still log to stderr; whoever needs the data directory will say what is wrong.
            problem = f"cannot write logs to {log_dir}: {exc.strerror}"
    for handler in handlers:
        handler.setFormatter(fmt)
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    # The HTTP client logs a line per request: per upload chunk. Its failures reach our own
    # log lines through the relay.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    logging.getLogger("httpcore").setLevel(max(level, logging.WARNING))
    if problem:
        root.warning(problem)
