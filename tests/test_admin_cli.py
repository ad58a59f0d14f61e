"""`kiosk staff add|list|disable|set-pin|set-badge` and `kiosk audit verify|list`."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sqlite3
from pathlib import Path

import pytest

from kiosk.audit import AuditLog
from kiosk.config import load_config
from kiosk.staff import StaffSession, StaffStore
from ui import admin_cli
from ui.cli import _common

PIN = "482915"
NEW_PIN = "593017"


def kiosk(data_dir: Path, *argv: str, stdin: str | None = None) -> int:
    """`kiosk <argv>` through the admin commands' own parser, as ui/cli.py adds them."""
    parser = argparse.ArgumentParser(prog="kiosk")
    sub = parser.add_subparsers(dest="command")
    admin_cli.add_parser(sub, _common)
    args = parser.parse_args([*argv, "--data-dir", str(data_dir)])
    if stdin is not None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.stdin", io.StringIO(stdin))
            return int(args.handler(args, load_config(None, str(data_dir))))
    return int(args.handler(args, load_config(None, str(data_dir))))


def add(data_dir: Path, number: str = "S001", role: str = "staff", *extra: str) -> int:
    return kiosk(
        data_dir,
        "staff",
        "add",
        "--number",
        number,
        "--name",
        "欧阳明华",
        "--role",
        role,
        "--pin-stdin",
        *extra,
        stdin=f"{PIN}\n",
    )


def listed(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert kiosk(data_dir, "staff", "list", "--json") == 0
    staff: list[dict[str, object]] = json.loads(capsys.readouterr().out)["staff"]
    return staff


def login(data_dir: Path, number: str, pin: str) -> object:
    with AuditLog(data_dir) as audit, StaffStore(data_dir, audit=audit) as store:
        return store.login_with_pin(number, pin)


def test_add_list_disable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert add(tmp_path, "S001", "staff", "--badge", "04A1B2C3") == 0
    assert "added S001 (staff, badge …B2C3)" in capsys.readouterr().out
    assert add(tmp_path, "A001", "admin") == 0
    staff = listed(tmp_path, capsys)
    assert [(s["staff_number"], s["role"], s["enabled"], s["badge"]) for s in staff] == [
        ("A001", "admin", True, None),
        ("S001", "staff", True, "…B2C3"),
    ]
    assert PIN not in json.dumps(staff) and "pin_hash" not in json.dumps(staff)
    assert kiosk(tmp_path, "staff", "list") == 0
    text = capsys.readouterr().out
    assert "S001" in text and "enabled" in text and PIN not in text
    assert kiosk(tmp_path, "staff", "disable", "S001") == 0
    assert [s["enabled"] for s in listed(tmp_path, capsys)] == [True, False]
    assert kiosk(tmp_path, "staff", "disable", "S404") == 1
    assert "no staff number S404" in capsys.readouterr().err


def test_refused_requests_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert add(tmp_path) == 0
    assert add(tmp_path) == 1
    assert "exists already" in capsys.readouterr().err
    weak = kiosk(
        tmp_path,
        "staff",
        "add",
        "--number",
        "S002",
        "--name",
        "Li",
        "--role",
        "staff",
        "--pin-stdin",
        stdin="123456\n",
    )
    assert weak == 1
    assert "PIN refused" in capsys.readouterr().err
    assert [s["staff_number"] for s in listed(tmp_path, capsys)] == ["S001"]


def test_the_pin_is_asked_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([PIN, "482916"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    argv = ("staff", "add", "--number", "S001", "--name", "Li Na", "--role", "staff")
    assert kiosk(tmp_path, *argv) == 1
    assert "differ" in capsys.readouterr().err
    answers = iter([PIN, PIN])
    assert kiosk(tmp_path, *argv) == 0
    assert isinstance(login(tmp_path, "S001", PIN), StaffSession)


def test_set_pin_and_badge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert add(tmp_path) == 0
    assert kiosk(tmp_path, "staff", "set-pin", "S001", "--pin-stdin", stdin=f"{NEW_PIN}\n") == 0
    assert not isinstance(login(tmp_path, "S001", PIN), StaffSession)
    assert isinstance(login(tmp_path, "S001", NEW_PIN), StaffSession)
    assert kiosk(tmp_path, "staff", "set-pin", "S404", "--pin-stdin", stdin=f"{NEW_PIN}\n") == 1
    assert kiosk(tmp_path, "staff", "set-badge", "S001", "--uid", "04:11:22:33") == 0
    assert "badge …2233" in capsys.readouterr().out
    assert kiosk(tmp_path, "staff", "set-badge", "S001", "--clear") == 0
    assert [s["badge"] for s in listed(tmp_path, capsys)] == [None]


def test_every_change_is_audited_and_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert add(tmp_path) == 0
    assert kiosk(tmp_path, "staff", "set-pin", "S001", "--pin-stdin", stdin=f"{NEW_PIN}\n") == 0
    assert kiosk(tmp_path, "staff", "disable", "S001") == 0
    capsys.readouterr()
    assert kiosk(tmp_path, "audit", "list", "--json") == 0
    entries = json.loads(capsys.readouterr().out)["entries"]
    assert [e["action"] for e in entries] == ["staff_added", "pin_changed", "staff_disabled"]
    actor = admin_cli.cli_actor()
    assert actor.startswith("cli") and {e["actor"] for e in entries} == {actor}
    assert "欧阳明华" not in json.dumps(entries, ensure_ascii=False)
    assert kiosk(tmp_path, "audit", "list") == 0
    assert "pin_changed" in capsys.readouterr().out
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert kiosk(tmp_path, "audit", "list", "--json", "--since", tomorrow) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == []


def test_audit_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert add(tmp_path) == 0
    assert kiosk(tmp_path, "staff", "disable", "S001") == 0
    capsys.readouterr()
    assert kiosk(tmp_path, "audit", "verify") == 0
    assert "audit log ok: 2 entries" in capsys.readouterr().out
    db = sqlite3.connect(tmp_path / "audit.db")
    with db:
        db.execute("UPDATE entries SET actor = 'someone' WHERE seq = 1")
    db.close()
    assert kiosk(tmp_path, "audit", "verify") == 1
    assert "entry 1: its content does not match its hash" in capsys.readouterr().err


def test_a_bad_since_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        kiosk(tmp_path, "audit", "list", "--since", "last tuesday")
    assert exit_info.value.code == 2
