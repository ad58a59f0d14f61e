"""`kiosk diag [--json] [--bundle FILE.zip]`: the overall report on simulated devices, broken
devices and storage, time limits, the platform checks, and the support bundle's privacy."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.server
import json
import logging
import socket
import ssl
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from sync_harness import InProcessPlatform, make_kiosk

from kiosk.audit import AuditLog
from kiosk.config import Config, load_config, parse_config
from kiosk.demo import DEMO_CARDS
from kiosk.identity import check_digit
from kiosk.logs import setup_logging
from kiosk.storage import Storage
from sync.simulate import simulate_applications
from ui import diagnostics
from ui.diagnostics import (
    Check,
    Options,
    Report,
    add_overall_arguments,
    certificate_check,
    overall_report,
    run_overall,
    write_support_bundle,
)

CHECKS = [
    "idcard.sam",
    "idcard.read",
    "printer",
    "camera",
    "platform",
    "platform.tls",
    "platform.clock",
    "storage.integrity",
    "storage.queue",
    "storage.disk",
    "audit",
    "versions",
]
_FIRST17 = "44030419880808123"
CANARY_ID = _FIRST17 + check_digit(_FIRST17)
CANARY_NAME = "欧阳金丝雀"


def demo_config(data_dir: Path, **devices: str) -> Config:
    config = load_config(None, str(data_dir))
    return dataclasses.replace(config, devices=dataclasses.replace(config.devices, **devices))


def diag(config: Config, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    """`kiosk diag --json <argv>` through run_overall, as ui/cli.py calls it."""
    parser = argparse.ArgumentParser(prog="kiosk diag")
    add_overall_arguments(parser)
    capsys.readouterr()
    code = run_overall(parser.parse_args(["--json", *argv]), config)
    out = capsys.readouterr().out
    return code, json.loads(out)


def by_name(document: dict) -> dict[str, dict]:
    return {check["name"]: check for check in document["checks"]}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def kiosk_logging() -> Iterator[None]:
    """Let setup_logging() do what it does in the kiosk, then give pytest its handlers back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def test_every_check_passes_on_simulated_devices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = diag(demo_config(tmp_path), capsys)
    assert [c["name"] for c in document["checks"]] == CHECKS
    assert all(set(c) == {"name", "ok", "detail"} for c in document["checks"])
    failed = [c for c in document["checks"] if not c["ok"]]
    assert failed == [] and document["ok"] is True and code == 0
    checks = by_name(document)
    assert "SAM 05.01-20230915-000012345-001234567" in checks["idcard.sam"]["detail"]
    assert "resident ID card" in checks["idcard.read"]["detail"]
    assert "ready" in checks["printer"]["detail"]
    assert "simulated platform" in checks["platform"]["detail"]
    assert "integrity_check ok" in checks["storage.integrity"]["detail"]
    measured = document["measurements"]
    assert measured["camera"]["width"] > 0 and measured["camera"]["fps"] >= diagnostics.MIN_FPS
    assert measured["camera"]["sharpness"] > 0
    assert measured["storage.queue"]["pending"] == 0
    assert measured["versions"]["catalog"] in checks["versions"]["detail"]
    # The run is in the audit log.
    with AuditLog(tmp_path) as audit:
        (entry,) = audit.entries()
    assert entry.action == "diagnostics" and entry.details == {"ok": True, "failed": []}


def test_a_printer_that_does_not_answer_fails_its_check_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_config(tmp_path, printer=f"tcp://127.0.0.1:{closed_port()}")
    code, document = diag(config, capsys)
    assert code == 1 and document["ok"] is False
    assert [c["name"] for c in document["checks"] if not c["ok"]] == ["printer"]
    with AuditLog(tmp_path) as audit:
        assert audit.entries()[-1].details == {"ok": False, "failed": ["printer"]}


def test_a_bad_device_setting_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_config(tmp_path, id_reader="serial:///dev/kiosk-no-such-port")
    code, document = diag(config, capsys)
    checks = by_name(document)
    assert code == 1
    assert not checks["idcard.sam"]["ok"] and not checks["idcard.read"]["ok"]
    assert "/dev/kiosk-no-such-port" in checks["idcard.sam"]["detail"]


def test_a_corrupt_scan_and_an_old_queue_fail_the_storage_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_config(tmp_path)
    (app_id,) = simulate_applications(config, 1, seed=3, page_bytes=(20_000, 30_000))
    with Storage(tmp_path, hall_code="HZ01", kiosk_code="K01") as storage:
        page = storage.get(app_id).pages[0]
        path = storage.attachments.path(page.sha256)
        storage._db.execute(
            "UPDATE applications SET created_at = ? WHERE id = ?",
            [(dt.datetime.now().astimezone() - dt.timedelta(days=2)).isoformat(), app_id],
        )
    path.write_bytes(b"not the scan any more")
    code, document = diag(config, capsys)
    checks = by_name(document)
    assert code == 1
    assert not checks["storage.integrity"]["ok"]
    assert page.sha256 in checks["storage.integrity"]["detail"]
    assert "corrupt" in checks["storage.integrity"]["detail"]
    assert not checks["storage.queue"]["ok"]
    assert "1 to send (oldest waiting 2 days)" in checks["storage.queue"]["detail"]


def test_a_tampered_audit_log_fails_its_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with AuditLog(tmp_path) as audit:
        audit.append("S001", "login", {"method": "pin", "role": "staff"})
        audit.append("S001", "logout", {"reason": "user"})
        audit._db.execute("DELETE FROM entries WHERE seq = 2")
    code, document = diag(demo_config(tmp_path), capsys)
    assert code == 1
    assert "entry 2" in by_name(document)["audit"]["detail"]


def test_each_probe_has_a_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hangs(results: diagnostics._Results) -> None:
        release.wait(30)

    def raises(results: diagnostics._Results) -> None:
        raise RuntimeError("the device said no")

    def answers(results: diagnostics._Results) -> None:
        results.add("quick", True, "fine")

    monkeypatch.setattr(
        diagnostics,
        "probes",
        lambda config, options, devices=None: [
            diagnostics._Probe(("slow.a", "slow.b"), hangs, 0.3),
            diagnostics._Probe(("broken",), raises, 5.0),
            diagnostics._Probe(("quick",), answers, 5.0),
        ],
    )
    seen: list[Check] = []
    start = time.monotonic()
    try:
        report = overall_report(demo_config(tmp_path), on_check=seen.append)
    finally:
        release.set()
    assert time.monotonic() - start < 5
    assert report.checks == [
        Check("slow.a", False, "no answer within 0.3 s"),
        Check("slow.b", False, "no answer within 0.3 s"),
        Check("broken", False, "the check failed: RuntimeError: the device said no"),
        Check("quick", True, "fine"),
    ]
    assert sorted(c.name for c in seen) == ["broken", "quick", "slow.a", "slow.b"]


def test_an_enrolled_platform_is_reached_and_its_clock_compared(tmp_path: Path) -> None:
    with InProcessPlatform(tmp_path / "platform") as platform:
        kiosk = make_kiosk(tmp_path, platform)
        report = overall_report(kiosk.config, options=Options())
        checks = {c.name: c for c in report.checks}
        assert checks["platform"].ok, checks["platform"].detail
        assert "reachable" in checks["platform"].detail
        assert report.measurements["platform"]["latency_ms"] < 5000
        assert checks["platform.tls"] == Check(
            "platform.tls", True, "plain http to this machine: no certificate"
        )
        assert checks["platform.clock"].ok, checks["platform.clock"].detail
        assert abs(report.measurements["platform.clock"]["skew_s"]) < 5
    # The platform is gone: reported, not raised.
    report = overall_report(kiosk.config)
    checks = {c.name: c for c in report.checks}
    assert not checks["platform"].ok and "not reachable" in checks["platform"].detail
    assert not checks["platform.clock"].ok


def test_a_kiosk_that_is_not_enrolled_says_so(tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    config = dataclasses.replace(
        config, platform=dataclasses.replace(config.platform, url="https://platform.invalid")
    )
    report = overall_report(config)
    assert [c.name for c in report.checks if not c.ok] == [
        "platform",
        "platform.tls",
        "platform.clock",
    ]
    assert "not enrolled" in report.checks[4].detail


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """An HTTPS server with a trustme certificate; yields (url, its CA, another CA)."""
    ca, other = trustme.CA(), trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ca_file, other_file = tmp_path / "ca.pem", tmp_path / "other.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other.cert_pem.write_to_path(str(other_file))
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", ca_file, other_file
    finally:
        server.shutdown()
        server.server_close()


def test_the_certificate_is_verified_and_its_days_counted(
    tls_server: tuple[str, Path, Path],
) -> None:
    url, ca_file, other_file = tls_server
    ok, detail, days = certificate_check(url, str(ca_file), 5.0)
    assert ok and days is not None and days > 300, detail
    assert "valid (pinned CA)" in detail
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=days - 3)
    ok, detail, left = certificate_check(url, str(ca_file), 5.0, now=soon)
    assert not ok and left is not None and left < diagnostics.TLS_MIN_DAYS
    assert "expires in" in detail
    ok, detail, days = certificate_check(url, str(other_file), 5.0)
    assert not ok and days is None and "not trusted" in detail


# The support bundle ---------------------------------------------------------------------------


def needles(value: str) -> dict[str, bytes]:
    return {
        f"{value} in {encoding}": value.encode(encoding)
        for encoding in ("utf-8", "utf-16-le", "utf-16-be", "gb18030")
    }


def scan_zip(path: Path, patterns: dict[str, bytes]) -> list[str]:
    """'<member>: <what>' for every pattern in any member (decompressed) or the raw zip."""
    hits = []
    raw = path.read_bytes()
    hits += [f"(zip file): {what}" for what, data in patterns.items() if data in raw]
    with zipfile.ZipFile(path) as bundle:
        for name in bundle.namelist():
            member = bundle.read(name)
            hits += [f"{name}: {what}" for what, data in patterns.items() if data in member]
    return hits


def test_the_scan_finds_a_planted_canary(tmp_path: Path) -> None:
    """Positive control: the privacy scan below would see the canary in a member."""
    bundle = tmp_path / "control.zip"
    diagnostics._write_zip(
        bundle,
        {"a.txt": "nothing", "logs/kiosk.log": f"x {CANARY_ID} y"},
    )
    hits = scan_zip(bundle, needles(CANARY_ID))
    assert f"logs/kiosk.log: {CANARY_ID} in utf-8" in hits
    assert not [hit for hit in hits if not hit.startswith("logs/kiosk.log:")]
    with zipfile.ZipFile(bundle, "a") as z:
        z.writestr("wide.txt", CANARY_ID.encode("utf-16-le"))
    assert f"wide.txt: {CANARY_ID} in utf-16-le" in scan_zip(bundle, needles(CANARY_ID))


def test_the_support_bundle_holds_no_personal_data_or_keys(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kiosk_logging: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir = tmp_path / "data"
    config = demo_config(data_dir)
    setup_logging(data_dir / "logs")
    # The canary applies at this kiosk: its ID number and name go into a real application.
    canary = dataclasses.replace(DEMO_CARDS["adult"][1], id_number=CANARY_ID, name=CANARY_NAME)
    for key in ("adult", "elderly"):
        monkeypatch.setitem(DEMO_CARDS, key, (DEMO_CARDS[key][0], canary))
    (app_id,) = simulate_applications(config, 1, seed=7, page_bytes=(20_000, 30_000))
    with Storage(data_dir, hall_code="HZ01", kiosk_code="K01") as storage:
        summary = storage.get(app_id).summary
    assert (summary["id_number"], summary["name"]) == ("4403**********" + CANARY_ID[-4:], "欧****")
    # A careless log line through the real logging set-up (the filter masks it)...
    logging.getLogger("kiosk.test").warning("applicant %s looked up", CANARY_ID)
    # ...and an old log written before the filter existed, with a UTF-16 fragment in it.
    (data_dir / "logs" / "kiosk.log.1").write_bytes(
        f"2026-01-01 INFO kiosk: applicant {CANARY_ID}\n".encode()
        + CANARY_ID.encode("utf-16-le")
        + b"\n"
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    logs = b"".join(p.read_bytes() for p in (data_dir / "logs").iterdir())
    assert CANARY_ID.encode() in logs and app_id.encode() in logs  # the logs did have it
    key_files = [data_dir / "id-hash.key"]
    assert all(p.is_file() for p in key_files)

    path = tmp_path / "out" / "bundle.zip"
    code, document = diag(config, capsys, "--bundle", str(path))
    assert code == 0, [c for c in document["checks"] if not c["ok"]]
    assert document["bundle"]["path"] == str(path)

    patterns = needles(CANARY_ID) | needles(CANARY_NAME)
    for key_file in key_files:
        secret = key_file.read_bytes()
        patterns |= {f"{key_file.name} raw": secret, f"{key_file.name} hex": secret.hex().encode()}
    assert scan_zip(path, patterns) == []

    with zipfile.ZipFile(path) as bundle:
        names = bundle.namelist()
        assert {"README.txt", "report.json", "config.toml", "db-stats.json"} <= set(names)
        assert {"logs/kiosk.log", "logs/kiosk.log.1", "audit-verify.json"} <= set(names)
        assert not [n for n in names if "key" in n or n.endswith((".db", ".pem"))]
        log_text = bundle.read("logs/kiosk.log").decode()
        assert app_id in log_text and "4403**********" in log_text  # masked, not dropped
        assert "4403**********" in bundle.read("logs/kiosk.log.1").decode()
        config_back = parse_config(bundle.read("config.toml").decode())
        assert config_back == config
        stats = json.loads(bundle.read("db-stats.json"))
        assert stats["kiosk.db"]["tables"]["applications"] == {
            "rows": 1,
            "by_status": {"queued": 1},
        }
        assert stats["attachments"]["files"] >= 2
        assert json.loads(bundle.read("audit-verify.json"))["ok"] is True
        report = json.loads(bundle.read("report.json"))
        assert [c["name"] for c in report["checks"]] == CHECKS
    with AuditLog(data_dir) as audit:
        assert [e.action for e in audit.entries()] == ["diagnostics", "support_bundle"]


def test_secret_looking_config_keys_are_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True)
    class Section:
        url: str = "https://platform.example"
        api_token: str = "tok-123"
        client_password: str = "hunter2"

    @dataclasses.dataclass(frozen=True)
    class WithSecrets:
        platform: Section = dataclasses.field(default_factory=Section)

    text = diagnostics.config_toml(WithSecrets())  # type: ignore[arg-type]
    assert "tok-123" not in text and "hunter2" not in text
    assert "# api_token: removed" in text and 'url = "https://platform.example"' in text


def test_a_report_is_reused_for_the_bundle(tmp_path: Path) -> None:
    report = Report([Check("x", True, "fine")], dt.datetime.now().astimezone(), 0.1)
    summary = write_support_bundle(demo_config(tmp_path), tmp_path / "b.zip", report=report)
    with zipfile.ZipFile(summary.path) as bundle:
        assert json.loads(bundle.read("report.json"))["checks"] == [
            {"name": "x", "ok": True, "detail": "fine"}
        ]
    assert summary.size == (tmp_path / "b.zip").stat().st_size
    assert not list(tmp_path.glob(".tmp-bundle-*"))
