"""`kiosk enroll`, `kiosk sync once|run|status` against the reference platform on 127.0.0.1,
including HTTPS with a pinned trustme CA and kill -9 at the relay's crash points."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import trustme

from kiosk.config import Config, load_config
from kiosk.storage import Storage
from sync.platform.server import PlatformServer
from sync.simulate import simulate_applications
from ui.cli import main

ROOT = Path(__file__).resolve().parent.parent
SMALL_PAGES = (20_000, 60_000)


def write_config(tmp_path: Path, url: str, ca_file: str = "") -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "kiosk"}"\n'
        f'[platform]\nurl = "{url}"\nca_file = "{ca_file}"\n'
        "connect_timeout_s = 5.0\nrequest_timeout_s = 10.0\n"
        "[sync]\nstartup_delay_max_s = 0.0\nchunk_kib = 16\nchunk_max_kib = 16\n"
        "status_poll_s = 1.0\n",
        encoding="utf-8",
    )
    return path


def kiosk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def status(config_file: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["sync", "status", "--json", "--config", str(config_file)]) == 0
    report: dict[str, object] = json.loads(capsys.readouterr().out)
    return report


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """main() points the root logger at the captured stderr; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PlatformServer]:
    with PlatformServer(tmp_path / "platform") as platform:
        yield platform


@pytest.fixture
def enrolled(
    tmp_path: Path, server: PlatformServer, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Config]:
    config_file = write_config(tmp_path, server.url)
    code = server.new_enrollment_code()
    assert (
        main(["enroll", "--platform", server.url, "--code", code, "--config", str(config_file)])
        == 0
    )
    assert "enrolled as HZ01-K01" in capsys.readouterr().out
    return config_file, load_config(config_file)


def test_status_json_has_the_fixed_fields_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = write_config(tmp_path, "https://platform.invalid")
    report = status(config_file, capsys)
    assert list(report)[:3] == ["pending", "accepted", "quarantined"]
    assert (report["pending"], report["accepted"], report["quarantined"]) == (0, 0, 0)
    assert report["enrolled"] is False


def test_sync_without_enrollment_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = write_config(tmp_path, "https://platform.invalid")
    assert main(["sync", "once", "--config", str(config_file)]) == 2
    assert "not enrolled" in capsys.readouterr().err


def test_a_used_code_is_refused(
    tmp_path: Path, server: PlatformServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = write_config(tmp_path, server.url)
    code = server.new_enrollment_code()
    args = ["enroll", "--platform", server.url, "--code", code, "--config", str(config_file)]
    assert main(args) == 0
    assert main([*args[:3], "--data-dir", str(tmp_path / "second"), "--code", code]) == 1
    assert "refused the code" in capsys.readouterr().err


def test_enroll_simulate_sync_once_and_status(
    enrolled: tuple[Path, Config], server: PlatformServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file, config = enrolled
    ids = simulate_applications(config, 3, seed=1, page_bytes=SMALL_PAGES)
    assert status(config_file, capsys)["pending"] == 3
    assert main(["sync", "once", "--config", str(config_file)]) == 0
    report = status(config_file, capsys)
    assert (report["pending"], report["accepted"], report["quarantined"]) == (0, 3, 0)
    assert report["last_success_at"] is not None
    committed = server.store.list_committed()
    assert sorted(app.id for app in committed) == sorted(ids)
    with Storage(config.data_dir, hall_code="HZ01", kiosk_code="K01") as storage:
        numbers = {storage.get(i).platform_number for i in ids}
    assert None not in numbers and len(numbers) == 3


def test_https_with_the_pinned_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    with PlatformServer(tmp_path / "platform", certfile=cert_file, keyfile=key_file) as server:
        assert server.url.startswith("https://")
        config_file = write_config(tmp_path, server.url)  # no CA in the config: from enroll
        code = server.new_enrollment_code()
        enroll = ["enroll", "--platform", server.url, "--code", code, "--config", str(config_file)]
        assert main([*enroll, "--ca-file", str(ca_file)]) == 0
        simulate_applications(load_config(config_file), 1, seed=2, page_bytes=SMALL_PAGES)
        assert main(["sync", "once", "--config", str(config_file)]) == 0
        assert status(config_file, capsys)["accepted"] == 1
        # Another CA in the config overrides the enrolled one: the connection is refused.
        other = tmp_path / "other.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
        config = load_config(config_file)
        simulate_applications(config, 1, seed=3, page_bytes=SMALL_PAGES)
        bad = write_config(tmp_path, server.url, ca_file=str(other))
        assert main(["sync", "once", "--config", str(bad)]) == 1
        assert status(config_file, capsys)["pending"] == 1


@pytest.mark.parametrize(
    "point",
    [
        "relay.before-put",
        "relay.after-put",
        "relay.mid-chunk#3",
        "relay.before-commit",
        "relay.after-commit-response",
        "relay.after-accept",
        "relay.status.after-fetch",
    ],
)
def test_kill_9_at_a_crash_point_loses_and_duplicates_nothing(
    enrolled: tuple[Path, Config],
    server: PlatformServer,
    capsys: pytest.CaptureFixture[str],
    point: str,
) -> None:
    config_file, config = enrolled
    ids = simulate_applications(config, 2, seed=4, page_bytes=SMALL_PAGES)
    if point.startswith("relay.status"):
        # The feed is read after uploads: give it something to read.
        assert main(["sync", "once", "--config", str(config_file)]) == 0
        for app_id in ids:
            server.store.advance(app_id, "in_progress")
    crashed = kiosk("sync", "once", "--config", str(config_file), env={"KIOSK_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    again = kiosk("sync", "once", "--config", str(config_file))
    assert again.returncode == 0, again.stderr[-2000:]
    report = status(config_file, capsys)
    assert (report["pending"], report["accepted"], report["quarantined"]) == (0, 2, 0)
    committed = [app.id for app in server.store.list_committed()]
    assert sorted(committed) == sorted(ids)  # each exactly once
    if point.startswith("relay.status"):
        with Storage(config.data_dir, hall_code="HZ01", kiosk_code="K01") as storage:
            assert {storage.get(i).status.value for i in ids} == {"in_progress"}


def test_sync_run_delivers_and_stops_on_sigterm(
    enrolled: tuple[Path, Config], server: PlatformServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file, config = enrolled
    simulate_applications(config, 2, seed=5, page_bytes=SMALL_PAGES)
    process = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "sync", "run", "--config", str(config_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(server.store.list_committed()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(server.store.list_committed()) == 2
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err[-2000:]
    assert status(config_file, capsys)["accepted"] == 2


def test_sync_once_reports_a_revoked_kiosk(
    enrolled: tuple[Path, Config], server: PlatformServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file, config = enrolled
    simulate_applications(config, 1, seed=6, page_bytes=SMALL_PAGES)
    # The kiosk re-enrolls elsewhere with a new key: this data directory's key is void.
    other = replace(config, storage=replace(config.storage, data_dir=str(config.data_dir) + "2"))
    from sync.enrollment import enroll

    enroll(other, server.url, server.new_enrollment_code())
    capsys.readouterr()
    assert main(["sync", "once", "--config", str(config_file)]) == 2
    assert "enroll again" in capsys.readouterr().err


def test_platform_export_binds_each_materials_pages_into_one_pdf(
    enrolled: tuple[Path, Config],
    server: PlatformServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The kiosk sends pages one by one (sealed JPEGs); the platform files one PDF per material
    with the scanned JPEGs inside unchanged, and the opened form beside them."""
    config_file, config = enrolled
    (app_id,) = simulate_applications(config, 1, seed=7, page_bytes=SMALL_PAGES)
    assert main(["sync", "once", "--config", str(config_file)]) == 0
    (committed,) = server.store.list_committed()
    platform_dir = str(server.store.data_dir)
    out = tmp_path / "export"
    capsys.readouterr()
    args = ["platform", "export", "--data-dir", platform_dir, "--out", str(out)]
    assert main([*args, committed.platform_number]) == 0
    assert str(out / committed.platform_number) in capsys.readouterr().out
    folder = out / committed.platform_number
    form = json.loads((folder / "application.json").read_text(encoding="utf-8"))
    assert form["application_id"] == app_id and form["platform_number"] == committed.platform_number
    assert "pages" not in form and form["identity"]["id_number"]  # the opened form, whole
    _, payload = server.store.open_committed(app_id)
    by_material: dict[str, list[bytes]] = {}
    for page in payload["pages"]:
        jpeg = server.store.open_page(committed, page["sha256"])
        by_material.setdefault(page["material_id"], []).append(jpeg)
    assert form["materials"] == {m: len(p) for m, p in by_material.items()}
    for material, jpegs in by_material.items():
        pdf = (folder / f"{material}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-")
        assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == len(jpegs)  # a page per scan
        assert all(jpeg in pdf for jpeg in jpegs)  # embedded as scanned, not re-encoded
        assert (folder / f"{material}.pdf").stat().st_mode & 0o077 == 0
    assert main([*args, "BJ00000000000000"]) == 1
    assert "no committed application" in capsys.readouterr().err
