"""Config: TOML with defaults, precise errors, and every key documented in docs/config.md."""

from __future__ import annotations

import re
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from kiosk.config import Config, ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    config = load_config()
    assert config.session.idle_timeout_s == 90
    assert config.session.idle_countdown_s == 15
    assert config.session.language == "zh"


def test_file_from_environment_and_data_dir_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "k.toml"
    path.write_text(
        '[hall]\ncode = "SZ02"\n[session]\nidle_timeout_s = 120\n'
        '[calendar]\nholidays = ["2026-10-01"]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("KIOSK_CONFIG", str(path))
    config = load_config(data_dir=str(tmp_path / "d"))
    assert config.hall.code == "SZ02"
    assert config.session.idle_timeout_s == 120
    assert config.data_dir == tmp_path / "d"
    assert config.calendar.holiday_dates()[0].month == 10
    assert parse_config("[ui]\nvirtual_keyboard = false\n").ui.virtual_keyboard is False


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[hall]\ncolour = 1\n", "hall.colour"),
        ("[nonsense]\n", "nonsense"),
        ("[session]\nidle_timeout_s = 'ninety'\n", "session.idle_timeout_s"),
        ("[session]\nidle_timeout_s = 2\n", "idle_timeout_s"),
        ("[ui]\nbase_font_pt = 12\n", "base_font_pt"),
        ("[session]\nidle_timeout_s = true\n", "session.idle_timeout_s"),
        ("[ui]\nvirtual_keyboard = 1\n", "ui.virtual_keyboard"),
        ("[calendar]\nholidays = ['2026-13-01']\n", "calendar"),
        ("this is = = not toml", "TOML"),
    ],
)
def test_bad_config_names_the_key(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)):
        parse_config(text)


def _keys(cls: type, prefix: str = "") -> list[str]:
    out = []
    for f in fields(cls):
        default = getattr(cls(), f.name)
        if is_dataclass(default):
            out += _keys(type(default), f"{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def test_every_key_is_documented_with_its_default() -> None:
    doc = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    for key in _keys(Config):
        assert f"`{key}`" in doc, f"docs/config.md does not document {key}"
