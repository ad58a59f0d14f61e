"""The technician's overall report (`kiosk diag [--json]`) and the support bundle (`--bundle`).

`overall_report(config)` runs one probe per device and service, each on its own thread with its
own time limit, and gives a `Report` whose `checks` are `Check(name, ok, detail)` in a fixed
order. Device probes reuse the per-device diagnostics (`devices/*/diag.py`). Check names:

    idcard.sam, idcard.read       the SAM (status, id) and one card read
    pcsc                          PC/SC readers and a card's ATR (when devices.smart_card="pcsc")
    printer [, printer.test_page] the printer's status (and a test page when asked)
    camera                        resolution, frame rate over ~1 s, sharpness, blank picture
    platform, platform.tls, platform.clock   reachability and latency, certificate, clock skew
    storage.integrity, storage.queue, storage.disk   integrity_check + attachments, outbox, space
    audit                         the audit log's hash chain
    versions                      app and catalog versions

`write_support_bundle(config, path)` writes a zip for the supplier: the logs (redacted again),
the config as TOML without secrets, the report, database statistics (counts and sizes, never a
row) and the audit log's verify result. Keys (`DATA/keys/*`, `id-hash.key`, the badge key), the
databases themselves and scans are never read into it. Every run and bundle is audited.

No Qt is imported here; device and network libraries only inside the probes that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk import __version__
from kiosk.audit import AuditError, AuditLog
from kiosk.config import Config
from kiosk.logs import redact

if TYPE_CHECKING:
    from devices.registry import Devices

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 1 << 30  # storage.disk fails below 1 GiB free on the data directory's disk
MIN_FPS = 5.0  # below this the live view stutters and page detection lags
BLANK_STDDEV = 2.0  # a frame this flat is a covered lens or a dead sensor
TLS_MIN_DAYS = 14  # a certificate expiring sooner fails the check: time to renew it
MAX_CLOCK_SKEW_S = 60.0  # receipts carry minutes; the protocol itself allows 300 s
QUEUE_MAX_AGE = dt.timedelta(hours=24)  # an application undelivered this long needs a look
CARD_WAIT_S = 5.0  # how long a real reader waits for a card (the simulator taps one itself)
CAMERA_SAMPLE_S = 1.0

# Config keys whose values are secrets, now or later: left out of the bundle.
_SECRET_KEY = re.compile(r"(secret|password|passwd|token|private|credential|api_key|pin$)", re.I)
# C0 controls other than tab and newline: a NUL-padded log tail or a UTF-16 fragment would
# otherwise hide digits from redaction ("3\x003\x000\x00...").
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    """The overall report; `as_json()` is what `kiosk diag --json` prints."""

    checks: list[Check]
    started_at: dt.datetime
    duration_s: float
    measurements: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def check(self, name: str) -> Check:
        """The check called `name`; KeyError if the report has none."""
        for item in self.checks:
            if item.name == name:
                return item
        raise KeyError(name)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "measurements": self.measurements,
            "app_version": __version__,
            "started_at": self.started_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
        }


@dataclass(frozen=True)
class Options:
    """What the overall report does beyond looking (printing paper, waiting for a card)."""

    test_page: bool = False
    card_wait_s: float = CARD_WAIT_S
    min_free_bytes: int = MIN_FREE_BYTES


class _Results:
    """Checks and measurements as the probes produce them, from several threads."""

    def __init__(self, on_check: Callable[[Check], None] | None) -> None:
        self._lock = threading.Lock()
        self.checks: dict[str, Check] = {}
        self.measurements: dict[str, dict[str, Any]] = {}
        self._on_check = on_check

    def add(self, name: str, ok: bool, detail: str, **measured: Any) -> None:
        check = Check(name, bool(ok), redact(detail))
        with self._lock:
            if name in self.checks:
                return  # a probe that finished after its time limit: the timeout stands
            self.checks[name] = check
            if measured:
                self.measurements[name] = measured
        if self._on_check is not None:
            self._on_check(check)


@dataclass(frozen=True)
class _Probe:
    names: tuple[str, ...]
    run: Callable[[_Results], None]
    timeout_s: float


# Probes ---------------------------------------------------------------------------------------


def _idcard_probe(config: Config, options: Options, devices: Devices | None) -> _Probe:
    def run(results: _Results) -> None:
        from devices.idcard.diag import KIND_NAMES, diagnose
        from devices.idcard.factory import ReaderSpecError, build_id_reader
        from devices.idcard.reader import SamSerialIdReader
        from kiosk.ports import SupportsDemoCards

        spec = config.devices.id_reader
        owned = devices is None
        try:
            reader = build_id_reader(spec) if devices is None else devices.id_reader
        except ReaderSpecError as exc:
            for name in ("idcard.sam", "idcard.read"):
                results.add(name, False, f"devices.id_reader = {spec!r}: {exc}")
            return
        if not isinstance(reader, SamSerialIdReader):
            for name in ("idcard.sam", "idcard.read"):
                results.add(name, False, f"{spec!r} is not a SAM reader")
            return
        # The simulator taps a demo card itself; a real reader waits for the technician's.
        wait = 3.0 if isinstance(reader, SupportsDemoCards) else options.card_wait_s
        try:
            report = diagnose(reader, spec, wait)
        finally:
            if owned:
                reader.stop()
        steps = {s.name: s for s in report.steps}
        if report.sam_ok:
            sam_id = report.sam_id or "id unreadable"
            results.add(
                "idcard.sam",
                True,
                f"SAM {sam_id} ready on {report.device} at {report.baud} baud",
                sam_id=report.sam_id,
                baud=report.baud,
            )
        else:
            results.add("idcard.sam", False, report.error or "the SAM does not answer")
        if report.card is not None:
            read_ms = sum(s.ms for s in report.steps if s.name not in ("open port", "SAM status"))
            results.add(
                "idcard.read",
                True,
                f"{KIND_NAMES.get(report.card['kind'], report.card['kind'])} read "
                f"in {read_ms:.0f} ms",
                read_ms=round(read_ms, 1),
            )
        elif report.sam_ok and "find card" in steps and not steps["find card"].ok:
            # Nothing failed: nobody placed a card. Reported, not held against the kiosk.
            results.add(
                "idcard.read",
                True,
                f"not tested: no card was placed within {wait:g} s",
            )
        else:
            results.add("idcard.read", False, report.error or "the card could not be read")

    return _Probe(("idcard.sam", "idcard.read"), run, 10.0 + options.card_wait_s)


def _pcsc_probe() -> _Probe:
    def run(results: _Results) -> None:
        from devices.pcsc import SmartCardFailed
        from devices.pcsc.reader import PcscUnavailable, list_readers, read_card

        try:
            names = list_readers()
        except PcscUnavailable as exc:
            results.add("pcsc", False, str(exc))
            return
        if not names:
            results.add("pcsc", False, "pcscd runs but sees no reader: is one plugged in?")
            return
        parts: list[str] = []
        ok = True
        for name in names:
            event = read_card(name)
            if event is None:
                parts.append(f"{name}: no card")
            elif isinstance(event, SmartCardFailed):
                ok = False
                parts.append(f"{name}: card ATR {event.atr.hex(' ').upper()} NOT read")
            else:
                parts.append(f"{name}: {event.kind}, ATR {event.atr.hex(' ').upper()}")
        results.add("pcsc", ok, f"{len(names)} reader(s): " + "; ".join(parts), readers=names)

    return _Probe(("pcsc",), run, 20.0)


def _printer_probe(config: Config, options: Options, devices: Devices | None) -> _Probe:
    names = ("printer", "printer.test_page") if options.test_page else ("printer",)

    def run(results: _Results) -> None:
        from devices.printer.connection import PrinterUrlError
        from devices.printer.diag import test_page
        from devices.printer.escpos_printer import EscposPrinter
        from devices.printer.factory import build_escpos_printer

        owned = devices is None
        try:
            printer = (
                build_escpos_printer(config.devices.printer, config.data_dir)
                if devices is None
                else devices.printer
            )
        except PrinterUrlError as exc:
            for name in names:
                results.add(name, False, f"devices.printer = {config.devices.printer!r}: {exc}")
            return
        try:
            if not isinstance(printer, EscposPrinter):
                for name in names:
                    results.add(name, False, "not an ESC/POS printer: no status to ask")
                return
            where = printer.url.where()
            report, words = printer.check()
            results.add("printer", report.ready, f"{where}: {words}", ready=report.ready)
            if options.test_page:
                if not report.ready:
                    results.add("printer.test_page", False, "not printed: the printer is not ready")
                    return
                job = test_page(printer.profile, config, dt.datetime.now())
                outcome = printer.print_job(job, "test page")
                results.add(
                    "printer.test_page",
                    outcome.printed,
                    f"printed, {outcome.bytes_sent} bytes"
                    if outcome.printed
                    else f"not printed: {outcome.detail}",
                )
        finally:
            if owned:
                printer.close()

    return _Probe(names, run, 30.0 if options.test_page else 15.0)


def print_test_page(config: Config, printer: object) -> Check:
    """Print the test page on the running kiosk's printer (the technician screen's button)."""
    from devices.printer.diag import test_page
    from devices.printer.escpos_printer import EscposPrinter

    if not isinstance(printer, EscposPrinter):
        return Check("printer.test_page", False, "not an ESC/POS printer: no test page")
    report, words = printer.check()
    if not report.ready:
        return Check("printer.test_page", False, f"not printed: {words}")
    outcome = printer.print_job(test_page(printer.profile, config, dt.datetime.now()), "test page")
    return Check(
        "printer.test_page",
        outcome.printed,
        f"printed, {outcome.bytes_sent} bytes"
        if outcome.printed
        else f"not printed: {outcome.detail}",
    )


def _camera_probe(config: Config, devices: Devices | None) -> _Probe:
    def run(results: _Results) -> None:
        import cv2

        from devices.camera_factory import build_camera
        from kiosk.ports import CameraError

        owned = devices is None
        try:
            camera = build_camera(config.devices.camera) if devices is None else devices.camera
        except ValueError as exc:
            results.add("camera", False, f"devices.camera = {config.devices.camera!r}: {exc}")
            return
        try:
            first = camera.preview()
            frames = 0
            start = time.monotonic()
            while (elapsed := time.monotonic() - start) < CAMERA_SAMPLE_S:
                camera.preview()
                frames += 1
        except CameraError as exc:
            results.add("camera", False, f"no picture: {exc}")
            return
        finally:
            if owned:
                camera.close()
        fps = frames / elapsed if elapsed > 0 else 0.0
        grey = cv2.cvtColor(first.pixels, cv2.COLOR_BGR2GRAY)
        sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
        spread = float(grey.std())
        height, width = grey.shape[:2]
        problems = []
        if fps < MIN_FPS:
            problems.append(f"only {fps:.1f} frames/s")
        if spread < BLANK_STDDEV:
            problems.append("the picture is blank (lens covered or sensor fault)")
        detail = f"{width}x{height}, {fps:.1f} frames/s, sharpness {sharpness:.0f}"
        results.add(
            "camera",
            not problems,
            detail + (f": {'; '.join(problems)}" if problems else ""),
            width=width,
            height=height,
            fps=round(fps, 1),
            sharpness=round(sharpness, 1),
        )

    return _Probe(("camera",), run, 15.0)


def _platform_probe(config: Config) -> _Probe:
    names = ("platform", "platform.tls", "platform.clock")

    def run(results: _Results) -> None:
        if config.platform.url == "simulated":
            for name in names:
                results.add(name, True, "simulated platform (in-process, no network)")
            return
        from sync.client import HttpPlatform, Refused, Transient, Unauthenticated
        from sync.enrollment import load_enrollment

        enrollment = load_enrollment(config.data_dir)
        if enrollment is None:
            for name in names:
                results.add(name, False, "this kiosk is not enrolled: run `kiosk enroll`")
            return
        with HttpPlatform(config, enrollment) as client:
            url = client.url
            try:
                latency, server_time = client.health()
                mine = time.time()
            except (Transient, Refused, Unauthenticated) as exc:
                results.add("platform", False, f"{url}: not reachable: {exc}")
                results.add("platform.clock", False, "unknown: the platform did not answer")
            else:
                results.add(
                    "platform",
                    True,
                    f"{url}: reachable, {latency * 1000:.0f} ms",
                    latency_ms=round(latency * 1000, 1),
                )
                if server_time is None:
                    results.add("platform.clock", False, "the platform sent no Date header")
                else:
                    # Date was stamped about half a round trip before the answer arrived.
                    skew = server_time + latency / 2 - mine
                    results.add(
                        "platform.clock",
                        abs(skew) <= MAX_CLOCK_SKEW_S,
                        f"this kiosk's clock is {abs(skew):.1f} s "
                        f"{'behind' if skew > 0 else 'ahead of'} the platform's"
                        + ("" if abs(skew) <= MAX_CLOCK_SKEW_S else ": set the time (NTP)"),
                        skew_s=round(skew, 2),
                    )
        ca_file = config.platform.ca_file or enrollment.ca_file
        ok, detail, days = certificate_check(url, ca_file, config.platform.connect_timeout_s)
        results.add("platform.tls", ok, detail, **({"days_left": days} if days is not None else {}))

    p = config.platform
    return _Probe(names, run, p.connect_timeout_s * 2 + min(p.request_timeout_s, 30.0) + 5.0)


def certificate_check(
    url: str, ca_file: str, timeout_s: float, now: dt.datetime | None = None
) -> tuple[bool, str, int | None]:
    """(ok, words, days left) for the TLS certificate of an https `url`, verified the way the
    kiosk's client verifies it (the pinned CA when given)."""
    import socket
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "https":
        return True, "plain http to this machine: no certificate", None
    host, port = parts.hostname or "", parts.port or 443
    context = ssl.create_default_context(cafile=ca_file or None)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as sock,
            context.wrap_socket(sock, server_hostname=host) as tls,
        ):
            cert = tls.getpeercert()
    except ssl.SSLCertVerificationError as exc:
        return False, f"{host}: certificate not trusted: {exc.verify_message}", None
    except (OSError, ssl.SSLError) as exc:
        return False, f"{host}:{port}: no TLS connection: {exc}", None
    if not cert or "notAfter" not in cert:
        return False, f"{host}: the certificate has no expiry date", None
    expires = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), dt.UTC)
    days = (expires - (now or dt.datetime.now(dt.UTC))).days
    pinned = "pinned CA" if ca_file else "system CAs"
    if days < TLS_MIN_DAYS:
        return False, f"{host}: certificate expires in {days} day(s) ({expires:%Y-%m-%d})", days
    return True, f"{host}: certificate valid ({pinned}), {days} days left", days


def _storage_probe(config: Config) -> _Probe:
    names = ("storage.integrity", "storage.queue")

    def run(results: _Results) -> None:
        from kiosk.storage import Storage, StorageError

        try:
            storage = Storage(
                config.data_dir,
                hall_code=config.hall.code,
                kiosk_code=config.hall.kiosk_code,
                collect_orphans=False,
            )
        except StorageError as exc:
            for name in names:
                results.add(name, False, f"cannot open the database: {exc.reason}")
            return
        with storage:
            counts = storage.sync_counts()
            oldest = storage.oldest_pending()
            if oldest is None:
                age_words, too_old = "nothing waiting", False
                age_s = 0.0
            else:
                age = dt.datetime.now(dt.UTC) - oldest.astimezone(dt.UTC)
                age_s = age.total_seconds()
                age_words = f"oldest waiting {_duration(age_s)}"
                too_old = age > QUEUE_MAX_AGE
            results.add(
                "storage.queue",
                not too_old,
                f"{counts['pending']} to send ({age_words}), {counts['quarantined']} set aside, "
                f"{counts['accepted']} delivered"
                + (": is the platform reachable?" if too_old else ""),
                pending=counts["pending"],
                quarantined=counts["quarantined"],
                accepted=counts["accepted"],
                oldest_pending_s=round(age_s),
            )
            problems = storage.integrity_problems()
            if problems:
                first = "; ".join(str(p) for p in problems[:3])
                more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
                results.add(
                    "storage.integrity", False, f"{len(problems)} problem(s): {first}{more}"
                )
            else:
                results.add(
                    "storage.integrity",
                    True,
                    f"integrity_check ok, every attachment present and matching its hash "
                    f"(schema {storage.schema_version})",
                )

    # Every attachment is hashed: allow for a few GB of scans on a slow disk.
    return _Probe(names, run, 180.0)


def _disk_probe(config: Config, options: Options) -> _Probe:
    def run(results: _Results) -> None:
        where = config.data_dir
        while not where.exists() and where != where.parent:
            where = where.parent
        usage = shutil.disk_usage(where)
        ok = usage.free >= options.min_free_bytes
        results.add(
            "storage.disk",
            ok,
            f"{_size(usage.free)} free of {_size(usage.total)} on {where}"
            + ("" if ok else f": below {_size(options.min_free_bytes)}"),
            free_bytes=usage.free,
            total_bytes=usage.total,
        )

    return _Probe(("storage.disk",), run, 10.0)


def _audit_probe(config: Config) -> _Probe:
    def run(results: _Results) -> None:
        try:
            with AuditLog(config.data_dir) as audit:
                problem = audit.verify()
                count = audit.count()
        except AuditError as exc:
            results.add("audit", False, str(exc))
            return
        if problem is None:
            results.add("audit", True, f"{count} entries, chain and head verified", entries=count)
        else:
            results.add("audit", False, f"the audit log does not verify: {problem}")

    return _Probe(("audit",), run, 60.0)


def _versions_probe(config: Config) -> _Probe:
    def run(results: _Results) -> None:
        from kiosk.catalog import CatalogError, CatalogStore

        try:
            catalog = CatalogStore(config.data_dir).catalog.version
        except (CatalogError, OSError) as exc:
            results.add("versions", False, f"app {__version__}; no usable catalog: {exc}")
            return
        results.add(
            "versions",
            True,
            f"app {__version__}, catalog {catalog}, Python {sys.version.split()[0]}",
            app=__version__,
            catalog=catalog,
        )

    return _Probe(("versions",), run, 10.0)


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} days"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


# The report -----------------------------------------------------------------------------------


def probes(config: Config, options: Options, devices: Devices | None = None) -> list[_Probe]:
    """The probes for this configuration, in report order."""
    found = [_idcard_probe(config, options, devices)]
    if config.devices.smart_card == "pcsc":
        found.append(_pcsc_probe())
    found += [
        _printer_probe(config, options, devices),
        _camera_probe(config, devices),
        _platform_probe(config),
        _storage_probe(config),
        _disk_probe(config, options),
        _audit_probe(config),
        _versions_probe(config),
    ]
    return found


def check_names(config: Config, options: Options | None = None) -> list[str]:
    """The names the report for `config` will hold, in order (for a screen to lay out)."""
    return [name for probe in probes(config, options or Options()) for name in probe.names]


def overall_report(
    config: Config,
    *,
    actor: str = "system",
    options: Options | None = None,
    devices: Devices | None = None,
    on_check: Callable[[Check], None] | None = None,
) -> Report:
    """Run every probe at once, each within its time limit, and audit the run.

    `devices`: the running kiosk's devices (the screen passes its own; its ID reader must be
    stopped first, since a serial port has one user). Without them each probe builds and
    closes its own. `on_check` is called from probe threads as each check is known."""
    options = options or Options()
    started = dt.datetime.now().astimezone()
    clock = time.monotonic()
    results = _Results(on_check)
    running: list[tuple[_Probe, threading.Thread, float]] = []
    for probe in probes(config, options, devices):
        thread = threading.Thread(
            target=_run_probe, args=(probe, results), name=f"diag-{probe.names[0]}", daemon=True
        )
        thread.start()
        running.append((probe, thread, time.monotonic() + probe.timeout_s))
    for probe, thread, deadline in running:
        thread.join(max(0.0, deadline - time.monotonic()))
        for name in probe.names:
            # Also a probe that ended without saying anything about one of its checks.
            verdict = "no answer" if thread.is_alive() else "no result"
            results.add(name, False, f"{verdict} within {probe.timeout_s:g} s")
    names = [name for probe, _, _ in running for name in probe.names]
    report = Report(
        checks=[results.checks[name] for name in names],
        started_at=started,
        duration_s=time.monotonic() - clock,
        measurements=dict(results.measurements),
    )
    _audit_run(config, report, actor)
    return report


def _run_probe(probe: _Probe, results: _Results) -> None:
    try:
        probe.run(results)
    except Exception as exc:  # the report shows the failure; one probe must not stop the rest
        log.warning("diagnostic %s failed: %s", probe.names[0], exc, exc_info=True)
        for name in probe.names:
            results.add(name, False, f"the check failed: {type(exc).__name__}: {exc}")


def _audit_run(config: Config, report: Report, actor: str) -> None:
    failed = [c.name for c in report.failed()]
    try:
        with AuditLog(config.data_dir) as audit:
            audit.append(actor, "diagnostics", {"ok": report.ok, "failed": failed})
    except AuditError as exc:
        # A run that cannot be recorded does not pass.
        log.error("the diagnostics run could not be audited: %s", exc)
        report.checks = [
            dataclasses.replace(c, ok=False, detail=f"{c.detail}; this run not recorded: {exc}")
            if c.name == "audit"
            else c
            for c in report.checks
        ]


# The support bundle ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleSummary:
    path: Path
    members: tuple[str, ...]
    size: int


def config_toml(config: Config) -> str:
    """The config as TOML that parse_config() reads back, with secret-looking keys removed."""
    lines = ["# The kiosk's configuration as it was in effect (secrets removed).", ""]
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if not dataclasses.is_dataclass(value):
            continue
        lines.append(f"[{section.name}]")
        for item in dataclasses.fields(value):
            if _SECRET_KEY.search(item.name):
                lines.append(f"# {item.name}: removed")
                continue
            lines.append(f"{item.name} = {_toml_value(getattr(value, item.name))}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string (escapes included).
        return json.dumps(redact(value), ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _sqlite_stats(path: Path) -> dict[str, Any]:
    """Sizes, schema version, rows per table and per status-like column: never a row."""
    if not path.exists():
        return {"exists": False}
    stats: dict[str, Any] = {"exists": True, "bytes": path.stat().st_size}
    wal = path.with_name(path.name + "-wal")
    stats["wal_bytes"] = wal.stat().st_size if wal.exists() else 0
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as exc:
        return {**stats, "error": str(exc)}
    try:
        stats["schema_version"] = int(db.execute("PRAGMA user_version").fetchone()[0])
        tables: dict[str, Any] = {}
        for (table,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        ).fetchall():
            quoted = '"' + str(table).replace('"', '""') + '"'
            entry: dict[str, Any] = {
                "rows": int(db.execute(f"SELECT COUNT(*) FROM {quoted}").fetchone()[0])
            }
            columns = {row[1] for row in db.execute(f"PRAGMA table_info({quoted})")}
            for column in ("status", "state", "role", "enabled", "action"):
                if column in columns:
                    entry[f"by_{column}"] = {
                        str(key): int(n)
                        for key, n in db.execute(
                            f'SELECT "{column}", COUNT(*) FROM {quoted} GROUP BY "{column}"'
                        )
                    }
            tables[str(table)] = entry
        stats["tables"] = tables
    except sqlite3.Error as exc:
        stats["error"] = str(exc)
    finally:
        db.close()
    return stats


def database_statistics(data_dir: Path) -> dict[str, Any]:
    """Row counts, sizes and schema versions of the kiosk's databases, and the scan store's
    size: numbers only."""
    data_dir = Path(data_dir)
    stats: dict[str, Any] = {
        name: _sqlite_stats(data_dir / name) for name in ("kiosk.db", "staff.db", "audit.db")
    }
    files = total = 0
    attachments = data_dir / "attachments"
    if attachments.is_dir():
        for path in attachments.rglob("*"):
            if path.is_file():
                files += 1
                total += path.stat().st_size
    stats["attachments"] = {"files": files, "bytes": total}
    return stats


def clean_log_text(data: bytes) -> str:
    """A log file as it may leave the kiosk: control characters dropped, then personal numbers
    masked again (the logging filter did it once when it was written)."""
    text = _CONTROLS.sub("", data.decode("utf-8", errors="replace"))
    return redact(text)


def write_support_bundle(
    config: Config,
    path: Path,
    *,
    actor: str = "system",
    report: Report | None = None,
) -> BundleSummary:
    """Write the support bundle zip to `path` (atomically) and audit it.

    `report`: an overall report already made (else one is run now)."""
    path = Path(path)
    data_dir = config.data_dir
    if report is None:
        report = overall_report(config, actor=actor)
    members: dict[str, str] = {}
    members["README.txt"] = _README.format(
        version=__version__, at=dt.datetime.now().astimezone().isoformat(timespec="seconds")
    )
    members["report.json"] = json.dumps(report.as_json(), ensure_ascii=False, indent=2)
    members["config.toml"] = config_toml(config)
    members["db-stats.json"] = json.dumps(database_statistics(data_dir), indent=2)
    try:
        with AuditLog(data_dir) as audit:
            problem = audit.verify()
            verify: dict[str, Any] = {
                "ok": problem is None,
                "entries": audit.count(),
                "problem": None if problem is None else problem.as_json(),
            }
    except AuditError as exc:
        verify = {"ok": False, "error": str(exc)}
    members["audit-verify.json"] = json.dumps(verify, indent=2)
    log_dir = data_dir / "logs"
    if log_dir.is_dir():
        for log_file in sorted(log_dir.iterdir()):
            if log_file.is_file() and not log_file.is_symlink():
                members[f"logs/{log_file.name}"] = clean_log_text(log_file.read_bytes())
    _write_zip(path, members)
    size = path.stat().st_size
    with AuditLog(data_dir) as audit:
        audit.append(actor, "support_bundle", {"members": len(members), "bytes": size})
    log.info("support bundle written: %s (%d bytes)", path, size)
    return BundleSummary(path, tuple(members), size)


USB_ROOTS = (Path("/media"), Path("/run/media"))


def usb_mounts(roots: Sequence[Path] = USB_ROOTS) -> list[Path]:
    """Mounted removable drives (udisks mounts them at /media/<user>/<label> or
    /run/media/<user>/<label>; some systems at /media/<label>), writable ones only."""
    found: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        for first in sorted(root.iterdir()):
            candidates = [first]
            if first.is_dir() and not os.path.ismount(first):
                with contextlib.suppress(OSError):
                    candidates = sorted(first.iterdir())
            for path in candidates:
                if path.is_dir() and os.path.ismount(path) and os.access(path, os.W_OK):
                    found.append(path)
    return found


def bundle_file_name(config: Config, now: dt.datetime | None = None) -> str:
    """`kiosk-support-<hall>-<kiosk>-<YYYYmmdd-HHMMSS>.zip`."""
    now = now or dt.datetime.now()
    return f"kiosk-support-{config.hall.code}-{config.hall.kiosk_code}-{now:%Y%m%d-%H%M%S}.zip"


def _write_zip(path: Path, members: Mapping[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-bundle-", suffix=".zip", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
                for name, text in members.items():
                    bundle.writestr(name, text.encode("utf-8"))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_README = """\
Support bundle of a hall kiosk (software {version}), made {at}.

report.json        the overall diagnostics report (`kiosk diag --json`)
config.toml        the configuration in effect, secrets removed
db-stats.json      row counts, sizes and schema versions of the databases (no rows)
audit-verify.json  whether the hash-chained audit log verifies
logs/              the kiosk's logs, personal numbers masked

Never included: keys (keys/, id-hash.key, staff-badge.key), the databases themselves,
applications, scans, receipts, staff PINs or badges.
"""


# The command ----------------------------------------------------------------------------------


def add_overall_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `kiosk diag` without a device: the overall report."""
    parser.add_argument("--json", action="store_true", help="one JSON object, for machines")
    parser.add_argument(
        "--bundle",
        metavar="FILE.zip",
        help="also write a support bundle (logs, config without secrets, this report, "
        "database statistics) to FILE.zip",
    )
    parser.add_argument(
        "--test-page", action="store_true", help="also print a test page on the receipt printer"
    )
    parser.add_argument(
        "--card-wait",
        type=float,
        default=CARD_WAIT_S,
        metavar="SECONDS",
        help=f"how long a real ID reader waits for a card (default {CARD_WAIT_S:g})",
    )


def run_overall(args: argparse.Namespace, config: Config) -> int:
    """`kiosk diag`: every check; exit 0 only when all pass."""
    from ui.admin_cli import cli_actor

    actor = cli_actor()
    options = Options(
        test_page=bool(getattr(args, "test_page", False)),
        card_wait_s=float(getattr(args, "card_wait", CARD_WAIT_S)),
    )
    report = overall_report(config, actor=actor, options=options)
    bundle_error = ""
    bundle: BundleSummary | None = None
    if getattr(args, "bundle", None):
        try:
            bundle = write_support_bundle(config, Path(args.bundle), actor=actor, report=report)
        except (OSError, AuditError) as exc:
            bundle_error = f"the support bundle could not be written: {exc}"
    if args.json:
        document = report.as_json()
        if bundle is not None:
            document["bundle"] = {"path": str(bundle.path), "bytes": bundle.size}
        if bundle_error:
            document["bundle_error"] = bundle_error
        print(json.dumps(document, ensure_ascii=False))
    else:
        _print_text(report.checks)
        if bundle is not None:
            print(f"Support bundle: {bundle.path} ({_size(bundle.size)})")
        print("All checks passed." if report.ok else f"{len(report.failed())} check(s) failed.")
    if bundle_error:
        print(f"kiosk diag: {bundle_error}", file=sys.stderr)
    return 0 if report.ok and not bundle_error else 1


def _print_text(checks: Sequence[Check]) -> None:
    width = max((len(c.name) for c in checks), default=10)
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        print(f"{mark} {check.name:<{width}}  {check.detail}")
