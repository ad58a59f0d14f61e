"""The platform client: signing, clock correction, pinning, the outcome mapping, resumable blobs.

`FakePlatform` speaks docs/sync-protocol.md behind an httpx.MockTransport and checks every
signature with the shared sync.protocol code; test_relay.py reuses it.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import http.server
import json
import logging
import os
import ssl
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kiosk.application import Page, Status
from kiosk.config import Config, PlatformConfig, StorageConfig
from kiosk.ports import PlatformUnavailable
from kiosk.storage import OutboxItem, RatingItem
from sync.client import CursorReset, HttpPlatform, Refused, Transient, Unauthenticated
from sync.enrollment import (
    Enrollment,
    EnrollmentError,
    enroll,
    keys_dir,
    load_enrollment,
)
from sync.protocol import (
    CHECKSUM_MISMATCH,
    H_OFFSET,
    ProtocolError,
    canonical_json,
    chunk_checksum,
    raw_public,
    sha256_hex,
    sign_receipt,
    unb64,
    verify_request,
)

KIOSK_ID = "HZ01-K01"
SECRET_ID = "11010519491231002X"  # must never reach a log line

Handler = Callable[[httpx.Request], httpx.Response]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers or {})


@dataclass
class Fault:
    """A scripted answer for the next request matching `method` and `path` (a prefix)."""

    method: str
    path: str
    # None: the platform handles the request, then the answer is dropped.
    answer: httpx.Response | type[httpx.TransportError] | None = None
    times: int = 1


@dataclass
class FakePlatform:
    """The platform's side of the protocol, in memory, with scripted faults."""

    now: Callable[[], float] = field(default=lambda: dt.datetime.now(dt.UTC).timestamp())
    seal_key: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    receipt_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    kiosks: dict[str, Any] = field(default_factory=dict)  # kiosk id → Ed25519 public key
    codes: set[str] = field(default_factory=lambda: {"ONE-TIME"})
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    blobs: dict[str, bytearray] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)
    receipts: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    feed_page: int = 500
    catalog_bytes: bytes = b""
    ratings: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    patches: list[tuple[str, int, int]] = field(default_factory=list)  # sha, offset, length
    nonces: set[str] = field(default_factory=set)
    corrupt_receipts: bool = False
    licences: dict[str, list[str]] = field(default_factory=dict)
    seq: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def enrollment(
        self, kiosk_id: str = KIOSK_ID, url: str = "https://platform.test"
    ) -> Enrollment:
        key = Ed25519PrivateKey.generate()
        self.kiosks[kiosk_id] = key.public_key()
        return Enrollment(
            url, kiosk_id, key, self.seal_key.public_key(), self.receipt_key.public_key()
        )

    def fail(self, method: str, path: str, answer: Any = None, times: int = 1) -> None:
        self.faults.append(Fault(method, path, answer, times))

    def count(self, method: str, prefix: str = "") -> int:
        return sum(1 for m, p in self.log if m == method and p.startswith(prefix))

    # The wire -------------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.log.append((request.method, path))
        drop = False
        for fault in self.faults:
            if fault.method == request.method and path.startswith(fault.path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                if fault.answer is None:
                    drop = True
                    break
                if isinstance(fault.answer, httpx.Response):
                    return self._dated(fault.answer)
                raise fault.answer("scripted fault", request=request)
        response = self._dated(self._route(request))
        if drop:
            # The platform did the work; the answer is lost on the way back.
            raise httpx.ReadError("answer dropped", request=request)
        return response

    def _dated(self, response: httpx.Response) -> httpx.Response:
        response.headers["Date"] = email.utils.formatdate(self.now(), usegmt=True)
        return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/v1/health":
            return json_response(200, {"ok": True, "time": "now", "version": "fake"})
        if path == "/v1/enroll":
            return self._enroll(request)
        kiosk = self._authenticate(request)
        if isinstance(kiosk, httpx.Response):
            return kiosk
        parts = path.split("/")
        if path.startswith("/v1/applications/") and method == "PUT":
            return self._put(parts[3], request)
        if path.startswith("/v1/applications/") and path.endswith("/commit"):
            return self._commit(parts[3], kiosk)
        if path.startswith("/v1/blobs/") and method == "HEAD":
            return self._head(parts[3])
        if path.startswith("/v1/blobs/") and method == "PATCH":
            return self._patch(parts[3], request)
        if path == "/v1/status-changes":
            return self._feed(request)
        if path == "/v1/catalog":
            etag = f'"{sha256_hex(self.catalog_bytes)}"'
            if request.headers.get("If-None-Match") == etag:
                return httpx.Response(304, headers={"ETag": etag})
            return httpx.Response(200, content=self.catalog_bytes, headers={"ETag": etag})
        if path.startswith("/v1/ratings/"):
            return self._rating(parts[3], request)
        if path == "/v1/licences":
            number = json.loads(request.content)["id_number"]
            return json_response(200, {"held": self.licences.get(number, [])})
        return json_response(404, {"error": "not found"})

    def _enroll(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["code"] not in self.codes:
            return json_response(403, {"error": "forbidden", "reason": "bad code"})
        self.codes.discard(body["code"])
        from sync.protocol import ed25519_public

        self.kiosks[body["kiosk_id"]] = ed25519_public(body["public_key"])
        return json_response(
            201,
            {
                "kiosk_id": body["kiosk_id"],
                "seal_public_key": raw_public(self.seal_key.public_key()),
                "receipt_public_key": raw_public(self.receipt_key.public_key()),
            },
        )

    def _authenticate(self, request: httpx.Request) -> str | httpx.Response:
        kiosk = request.headers.get("Kiosk-Id", "")
        key = self.kiosks.get(kiosk)
        if key is None:
            return json_response(401, {"error": "unauthenticated", "reason": "unknown kiosk"})
        target = request.url.raw_path.decode()
        try:
            signed = verify_request(
                request.headers, request.method, target, request.content, key, self.now()
            )
        except ProtocolError as exc:
            return json_response(401, {"error": "unauthenticated", "reason": str(exc)})
        if signed.nonce in self.nonces:
            return json_response(401, {"error": "unauthenticated", "reason": "replay"})
        self.nonces.add(signed.nonce)
        return str(kiosk)

    def _put(self, app_id: str, request: httpx.Request) -> httpx.Response:
        doc = json.loads(request.content)
        sealed = unb64(doc["sealed_payload"])
        if sha256_hex(sealed) != doc["payload_sha256"]:
            return json_response(422, {"error": "invalid", "reason": "payload hash"})
        key = (doc["payload_sha256"], json.dumps(doc["attachments"]))
        existing = self.applications.get(app_id)
        if existing is not None and existing["key"] != key:
            return json_response(409, {"error": "conflict", "reason": "different content"})
        status = 200 if existing else 201
        self.applications[app_id] = {"key": key, "doc": doc}
        missing = [a["sha256"] for a in doc["attachments"] if a["sha256"] not in self.whole]
        return json_response(status, {"id": app_id, "missing": missing})

    def _head(self, sha: str) -> httpx.Response:
        if sha not in self.blobs:
            return httpx.Response(404)
        return httpx.Response(200, headers={H_OFFSET: str(len(self.blobs[sha]))})

    def _patch(self, sha: str, request: httpx.Request) -> httpx.Response:
        data = bytearray(self.blobs.get(sha, b""))
        offset = int(request.headers[H_OFFSET])
        length = int(request.headers["Upload-Length"])
        chunk = request.content
        self.patches.append((sha, offset, len(chunk)))
        if sha in self.whole:
            return httpx.Response(204, headers={H_OFFSET: str(length)})
        if offset != len(data):
            return httpx.Response(409, headers={H_OFFSET: str(len(data))})
        if request.headers["Upload-Checksum"] != chunk_checksum(chunk):
            return httpx.Response(CHECKSUM_MISMATCH)
        data += chunk
        if len(data) == length:
            if sha256_hex(bytes(data)) != sha:
                self.blobs.pop(sha, None)
                return json_response(422, {"error": "invalid", "reason": "whole-file hash"})
            self.whole.add(sha)
        self.blobs[sha] = data
        return httpx.Response(204, headers={H_OFFSET: str(len(data))})

    def _commit(self, app_id: str, kiosk: str) -> httpx.Response:
        app = self.applications.get(app_id)
        if app is None:
            return json_response(404, {"error": "not found"})
        hashes = [a["sha256"] for a in app["doc"]["attachments"]]
        missing = [h for h in hashes if h not in self.whole]
        if missing:
            return json_response(409, {"error": "incomplete", "missing": missing})
        if app_id not in self.receipts:
            self.seq += 1
            receipt = {
                "application_id": app_id,
                "kiosk_id": kiosk,
                "platform_number": f"BJ2026112700{self.seq:04d}",
                "received_at": "2026-11-27T02:01:05Z",
                "server_seq": self.seq,
                "payload_sha256": app["doc"]["payload_sha256"],
                "attachments": hashes,
            }
            self.receipts[app_id] = (receipt, sign_receipt(self.receipt_key, receipt))
        receipt, signature = self.receipts[app_id]
        if self.corrupt_receipts:
            # Properly signed, but one attachment short: the signature alone is not enough.
            receipt = {**receipt, "attachments": hashes[:-1]}
            signature = sign_receipt(self.receipt_key, receipt)
        return json_response(200, {"receipt": receipt, "signature": signature})

    def _feed(self, request: httpx.Request) -> httpx.Response:
        cursor = int(request.url.params["cursor"])
        limit = min(int(request.url.params["limit"]), self.feed_page)
        last = self.changes[-1]["seq"] if self.changes else 0
        if cursor > last:
            return json_response(410, {"error": "gone"})
        page = [c for c in self.changes if c["seq"] > cursor][:limit]
        next_cursor = page[-1]["seq"] if page else cursor
        return json_response(
            200,
            {"changes": page, "next_cursor": next_cursor, "has_more": next_cursor < last},
        )

    def _rating(self, rating_id: str, request: httpx.Request) -> httpx.Response:
        doc = json.loads(request.content)
        if not 1 <= doc["score"] <= 5:
            return json_response(422, {"error": "invalid", "reason": "score"})
        old = self.ratings.get(rating_id)
        if old is not None and old != doc:
            return json_response(409, {"error": "conflict", "reason": "different"})
        self.ratings[rating_id] = doc
        return json_response(200 if old else 201, {"id": rating_id})

    def add_change(self, app_id: str, status: str, **extra: Any) -> None:
        self.seq += 1
        self.changes.append(
            {
                "seq": self.seq,
                "application_id": app_id,
                "status": status,
                "platform_number": extra.get("platform_number"),
                "services": extra.get("services", {}),
                "note": extra.get("note", ""),
                "at": "2026-11-27T03:00:00Z",
            }
        )


# Fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> FakePlatform:
    return FakePlatform()


def make_config(tmp_path: Path, **platform: Any) -> Config:
    return Config(
        storage=StorageConfig(data_dir=str(tmp_path)),
        platform=PlatformConfig(url="https://platform.test", **platform),
    )


@pytest.fixture
def client(fake: FakePlatform, tmp_path: Path) -> Iterator[HttpPlatform]:
    with HttpPlatform(
        make_config(tmp_path), fake.enrollment(), transport=fake.transport()
    ) as platform:
        yield platform


def outbox_item(
    tmp_path: Path, pages: list[bytes], app_id: str = "01JDEMO0000000000000000001"
) -> tuple[OutboxItem, bytes, list[Path]]:
    """An outbox item with its sealed payload and page files on disk (contents arbitrary)."""
    sealed = b"sealed payload " * 10
    paths, stored = [], []
    for data in pages:
        sha = sha256_hex(data)
        path = tmp_path / f"page-{sha}"
        path.write_bytes(data)
        paths.append(path)
        stored.append(Page("birth_certificate", sha, len(data)))
    item = OutboxItem(
        id=app_id,
        kiosk_seq=1,
        thing_id="newborn",
        catalog_version="2026.11.1",
        receipt_number="HZ01-K01-20261127-0001",
        channel="self",
        created_at=dt.datetime(2026, 11, 27, 10, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        status=Status.QUEUED,
        payload_sha256=sha256_hex(sealed),
        pages=tuple(stored),
        attempts=0,
    )
    return item, sealed, paths


# Signing and authentication -------------------------------------------------------------------


def test_every_request_is_signed_and_a_whole_application_goes_through(
    fake: FakePlatform, client: HttpPlatform, tmp_path: Path
) -> None:
    item, sealed, paths = outbox_item(tmp_path, [b"a" * 700_000, b"b" * 1000])
    missing = client.put_application(item, sealed)
    assert missing == [p.sha256 for p in item.pages]
    for page, path in zip(item.pages, paths, strict=True):
        client.upload_blob(page.sha256, path, page.size, 256 * 1024)
    receipt, _ = client.commit(item.id)
    assert receipt["attachments"] == [p.sha256 for p in item.pages]
    assert receipt["payload_sha256"] == item.payload_sha256
    # The query string is part of what is signed; the fake verifies it as sent.
    assert client.status_changes(0, 500) == ([], 0, False)
    assert set(fake.whole) == {p.sha256 for p in item.pages}
    # A replay of the same PUT is idempotent: nothing is missing any more.
    assert client.put_application(item, sealed) == []


def test_an_unknown_or_revoked_kiosk_is_unauthenticated(fake: FakePlatform, tmp_path: Path) -> None:
    enrollment = fake.enrollment()
    fake.kiosks.clear()  # revoked
    with (
        HttpPlatform(make_config(tmp_path), enrollment, transport=fake.transport()) as client,
        pytest.raises(Unauthenticated, match="unknown kiosk"),
    ):
        client.status_changes(0, 10)


def test_a_wrong_key_is_unauthenticated(fake: FakePlatform, tmp_path: Path) -> None:
    enrollment = fake.enrollment()
    other = Enrollment(
        enrollment.url,
        enrollment.kiosk_id,
        Ed25519PrivateKey.generate(),
        enrollment.seal_public_key,
        enrollment.receipt_public_key,
    )
    with (
        HttpPlatform(make_config(tmp_path), other, transport=fake.transport()) as client,
        pytest.raises(Unauthenticated, match="bad signature"),
    ):
        client.catalog(None)


def test_clock_skew_is_corrected_from_date_and_retried_once(
    fake: FakePlatform, tmp_path: Path
) -> None:
    real = dt.datetime.now(dt.UTC).timestamp()
    kiosk_clock = lambda: real - 3600  # noqa: E731 - the kiosk's clock is an hour slow
    with HttpPlatform(
        make_config(tmp_path), fake.enrollment(), transport=fake.transport(), clock=kiosk_clock
    ) as client:
        assert client.status_changes(0, 10) == ([], 0, False)
        assert 3590 < client.clock_offset < 3610
        before = len(fake.log)
        client.status_changes(0, 10)  # the offset is kept: no second 401
        assert len(fake.log) == before + 1
    assert fake.log[0] == fake.log[1] == ("GET", "/v1/status-changes")


def test_skew_that_persists_is_not_retried_forever(fake: FakePlatform, tmp_path: Path) -> None:
    skew = json_response(401, {"error": "unauthenticated", "reason": "clock skew"})
    fake.fail("GET", "/v1/catalog", skew, times=5)
    with (
        HttpPlatform(make_config(tmp_path), fake.enrollment(), transport=fake.transport()) as c,
        pytest.raises(Unauthenticated, match="clock skew"),
    ):
        c.catalog(None)
    assert fake.count("GET", "/v1/catalog") == 2


# Outcome mapping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "retry_after", "answered"),
    [
        (json_response(503, {"error": "busy"}, {"Retry-After": "7"}), 7.0, True),
        (json_response(429, {"error": "slow down"}, {"Retry-After": "12"}), 12.0, True),
        (json_response(500, {"error": "boom"}), None, True),
        (httpx.Response(200, content=b"<html>captive portal</html>"), None, True),
        (json_response(200, {"unexpected": True}), None, True),
        (json_response(404, {"error": "not found"}), None, True),
        (httpx.ConnectError, None, False),
        (httpx.ReadTimeout, None, False),
    ],
)
def test_transient_outcomes(
    fake: FakePlatform,
    client: HttpPlatform,
    tmp_path: Path,
    answer: Any,
    retry_after: float | None,
    answered: bool,
) -> None:
    item, sealed, _ = outbox_item(tmp_path, [b"page"])
    fake.fail("PUT", "/v1/applications/", answer)
    with pytest.raises(Transient) as info:
        client.put_application(item, sealed)
    assert info.value.retry_after_s == retry_after
    assert info.value.answered is answered


@pytest.mark.parametrize("status", [409, 422])
def test_conflict_and_invalid_are_refused_with_the_platforms_reason(
    fake: FakePlatform, client: HttpPlatform, tmp_path: Path, status: int
) -> None:
    item, sealed, _ = outbox_item(tmp_path, [b"page"])
    fake.fail("PUT", "/v1/applications/", json_response(status, {"reason": "too many pages"}))
    with pytest.raises(Refused) as info:
        client.put_application(item, sealed)
    assert (info.value.status, info.value.reason) == (status, "too many pages")


def test_missing_hashes_the_application_does_not_have_are_garbage(
    fake: FakePlatform, client: HttpPlatform, tmp_path: Path
) -> None:
    item, sealed, _ = outbox_item(tmp_path, [b"page"])
    fake.fail("PUT", "/v1/applications/", json_response(201, {"missing": ["0" * 64]}))
    with pytest.raises(Transient, match=r"garbage|does not have"):
        client.put_application(item, sealed)


def test_an_incomplete_commit_is_transient_not_refused(
    fake: FakePlatform, client: HttpPlatform, tmp_path: Path
) -> None:
    item, sealed, _ = outbox_item(tmp_path, [b"page"])
    client.put_application(item, sealed)
    with pytest.raises(Transient, match="incomplete"):
        client.commit(item.id)
    with pytest.raises(Transient, match="does not know"):
        client.commit("01JNEVERPUT000000000000000")


def test_a_cursor_beyond_the_platform_is_reset(fake: FakePlatform, client: HttpPlatform) -> None:
    fake.add_change("01JX", "accepted")
    with pytest.raises(CursorReset):
        client.status_changes(5, 100)
    fake.feed_page = 1
    fake.add_change("01JY", "completed", services={"svc": "done"})
    changes, next_cursor, has_more = client.status_changes(0, 100)
    assert [c.application_id for c in changes] == ["01JX"] and has_more and next_cursor == 1
    changes, next_cursor, has_more = client.status_changes(1, 100)
    assert changes[0].services == {"svc": "done"} and not has_more and next_cursor == 2


def test_catalog_uses_etags(fake: FakePlatform, client: HttpPlatform) -> None:
    fake.catalog_bytes = b'{"version": "x"}'
    content, etag = client.catalog(None)
    assert content == fake.catalog_bytes and etag == f'"{sha256_hex(content)}"'
    assert client.catalog(etag) == (None, etag)
    fake.fail("GET", "/v1/catalog", httpx.Response(200, content=b"{}", headers={"ETag": '"x"'}))
    with pytest.raises(Transient, match="ETag"):
        client.catalog(None)


def test_ratings_are_put_idempotently(fake: FakePlatform, client: HttpPlatform) -> None:
    rating = RatingItem("01JRATING", "01JAPP", 5, dt.datetime(2026, 11, 27, 10, 0), 0)
    client.put_rating(rating)
    client.put_rating(rating)
    assert fake.ratings["01JRATING"]["score"] == 5
    with pytest.raises(Refused):
        client.put_rating(RatingItem("01JRATING", "01JAPP", 4, rating.created_at, 0))


def test_licence_lookup_fails_as_unavailable_and_never_logs_the_id(
    fake: FakePlatform, client: HttpPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.licences[SECRET_ID] = ["birth_certificate"]
    assert client.held_licences(SECRET_ID) == frozenset({"birth_certificate"})
    fake.fail("POST", "/v1/licences", httpx.ConnectTimeout)
    with pytest.raises(PlatformUnavailable):
        client.held_licences(SECRET_ID)
    fake.fail("POST", "/v1/licences", httpx.Response(200, content=b"not json"))
    with pytest.raises(PlatformUnavailable):
        client.held_licences(SECRET_ID)
    assert SECRET_ID not in caplog.text


def test_health_reports_latency_and_the_platform_clock(client: HttpPlatform) -> None:
    latency, server = client.health()
    assert latency >= 0 and server is not None
    assert abs(server - dt.datetime.now(dt.UTC).timestamp()) < 5


# Resumable blobs ------------------------------------------------------------------------------


def test_upload_resumes_from_what_the_platform_holds(
    fake: FakePlatform, client: HttpPlatform, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 4000  # 1 MB
    item, sealed, (path,) = outbox_item(tmp_path, [data])
    sha = item.pages[0].sha256
    client.put_application(item, sealed)
    fake.blobs[sha] = bytearray(data[:300_000])  # an earlier attempt got this far
    seen: list[int] = []
    client.upload_blob(sha, path, len(data), 100_000, on_chunk=seen.append)
    assert sha in fake.whole
    assert fake.patches[0][1] == 300_000  # nothing before the platform's offset is re-sent
    assert sum(length for _, _, length in fake.patches) == len(data) - 300_000
    assert max(length for _, _, length in fake.patches) <= 100_000
    assert seen[-1] == len(data) and seen == sorted(seen)


def test_chunks_grow_on_a_fast_link_and_shrink_after_a_failure(
    fake: FakePlatform, client: HttpPlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(3_000_000)
    item, sealed, (path, small_path) = outbox_item(tmp_path, [data, data[:200_000]])
    big, small = (page.sha256 for page in item.pages)
    client.put_application(item, sealed)
    client.upload_blob(big, path, len(data), 16_384, max_chunk=8 << 20)
    lengths = [length for _, _, length in fake.patches]
    # 16 KiB, then ×4 each time the link turns out fast: 3 MB in a handful of requests.
    assert lengths[:3] == [16_384, 65_536, 262_144] and len(lengths) <= 6
    # The next blob starts at the size learned, capped by max_chunk.
    fake.patches.clear()
    fake.fail("PATCH", "/v1/blobs/", httpx.ReadTimeout)
    with pytest.raises(Transient):
        client.upload_blob(small, small_path, 200_000, 16_384, max_chunk=8 << 20)
    learned = client._chunk_hint
    assert learned is not None and learned < max(lengths)  # halved by the failure
    client.upload_blob(small, small_path, 200_000, 16_384, max_chunk=32_768)
    assert max(length for _, _, length in fake.patches) <= 32_768
    assert small in fake.whole and big in fake.whole


def test_on_a_slow_link_chunks_take_about_two_seconds(
    fake: FakePlatform, client: HttpPlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(400_000)
    item, sealed, (path,) = outbox_item(tmp_path, [data])
    sha = item.pages[0].sha256
    client.put_application(item, sealed)
    # A 64 kbit/s link: each chunk takes len/8000 seconds on the monotonic clock.
    clock = [0.0]
    real_request = client._request

    def slow_request(method: str, target: str, **kwargs: Any) -> httpx.Response:
        body = kwargs.get("body") or b""
        clock[0] += len(body) / 8000
        return real_request(method, target, **kwargs)

    monkeypatch.setattr(client, "_request", slow_request)
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    client.upload_blob(sha, path, len(data), 64 << 10, max_chunk=8 << 20)
    lengths = [length for _, _, length in fake.patches]
    assert lengths[0] == 64 << 10
    assert all(length == 16_384 for length in lengths[1:-1])  # 2 s at 8 kB/s, the floor


def test_an_offset_conflict_continues_from_the_platforms_offset(
    fake: FakePlatform, client: HttpPlatform, tmp_path: Path
) -> None:
    data = b"x" * 50_000
    item, sealed, (path,) = outbox_item(tmp_path, [data])
    sha = item.pages[0].sha256
    client.put_application(item, sealed)
    fake.fail("HEAD", "/v1/blobs/", httpx.Response(404))  # HEAD lies: "nothing yet"
    fake.blobs[sha] = bytearray(data[:20_000])
    client.upload_blob(sha, path, len(data), 16_384)
    assert sha in fake.whole
    assert [p[1] for p in fake.patches][:2] == [0, 20_000]


def test_a_damaged_chunk_is_sent_once_more_then_transient(
    fake: FakePlatform, client: HttpPlatform, tmp_path: Path
) -> None:
    data = b"y" * 40_000
    item, sealed, (path,) = outbox_item(tmp_path, [data])
    sha = item.pages[0].sha256
    client.put_application(item, sealed)
    fake.fail("PATCH", "/v1/blobs/", httpx.Response(CHECKSUM_MISMATCH))
    client.upload_blob(sha, path, len(data), 16_384)
    assert sha in fake.whole
    assert [p[1] for p in fake.patches][:1] == [0]  # the fault answered before the fake saw it

    other = b"z" * 40_000
    item2, sealed2, (path2,) = outbox_item(tmp_path, [other], "01JDEMO0000000000000000002")
    client.put_application(item2, sealed2)
    fake.fail("PATCH", "/v1/blobs/", httpx.Response(CHECKSUM_MISMATCH), times=2)
    with pytest.raises(Transient, match="damaged twice"):
        client.upload_blob(item2.pages[0].sha256, path2, len(other), 16_384)


def test_a_whole_file_mismatch_restarts_once_then_is_refused(
    fake: FakePlatform, client: HttpPlatform, tmp_path: Path
) -> None:
    data = b"q" * 30_000
    item, sealed, (path,) = outbox_item(tmp_path, [data])
    sha = item.pages[0].sha256
    client.put_application(item, sealed)
    fake.blobs[sha] = bytearray(b"WRONG" + data[5:20_000])  # a damaged earlier attempt
    client.upload_blob(sha, path, len(data), 16_384)
    assert sha in fake.whole and bytes(fake.blobs[sha]) == data
    # The local file itself does not hash to its name: restarting cannot help.
    bad_path = tmp_path / "bad"
    bad_path.write_bytes(b"r" * 30_000)
    bad_sha = hashlib.sha256(b"what it should be").hexdigest()
    with pytest.raises(Refused) as info:
        client.upload_blob(bad_sha, bad_path, 30_000, 16_384)
    assert info.value.status == 422


def test_a_one_chunk_blob_is_sent_under_its_name_without_hashing_it_again(
    fake: FakePlatform, client: HttpPlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(200_000)
    item, sealed, (path,) = outbox_item(tmp_path, [data])
    sha = item.pages[0].sha256
    client.put_application(item, sealed)
    hashed: list[int] = []
    real_sha256 = hashlib.sha256

    def counting(data: bytes = b"") -> Any:
        hashed.append(len(data))
        return real_sha256(data)

    import types

    import sync.client as client_module

    # The client's own hashing only (the in-process fake platform checks every byte).
    monkeypatch.setattr(client_module, "hashlib", types.SimpleNamespace(sha256=counting))
    client.upload_blob(sha, path, len(data), 1 << 20, fresh=True)
    assert sha in fake.whole
    assert 200_000 not in hashed  # the chunk's SHA-256 is the blob's name

    # The file was damaged after submission (same size, other bytes): the platform's digest
    # check says so, the chunk is hashed and sent again, and the whole-file check refuses it.
    rotten = tmp_path / "rotten"
    rotten.write_bytes(b"s" * 30_000)
    named = hashlib.sha256(b"t" * 30_000).hexdigest()
    item2, sealed2, _ = outbox_item(tmp_path, [b"t" * 30_000], "01JDEMO0000000000000000003")
    client.put_application(item2, sealed2)
    fake.patches.clear()
    with pytest.raises(Refused) as info:
        client.upload_blob(named, rotten, 30_000, 1 << 20, fresh=True)
    assert info.value.status == 422
    assert 30_000 in hashed


# TLS pinning ----------------------------------------------------------------------------------


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true, "time": "now", "version": "tls"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """An HTTPS health endpoint with a trustme certificate; yields (url, its CA, another CA)."""
    ca, other = trustme.CA(), trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
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


def test_only_the_pinned_ca_is_trusted(
    fake: FakePlatform, tmp_path: Path, tls_server: tuple[str, Path, Path]
) -> None:
    url, ca_file, other_file = tls_server
    enrollment = fake.enrollment(url=url)
    with HttpPlatform(make_config(tmp_path, ca_file=str(ca_file)), enrollment, url=url) as ok:
        latency, _ = ok.health()
        assert latency < 10
    with (
        HttpPlatform(make_config(tmp_path, ca_file=str(other_file)), enrollment, url=url) as bad,
        pytest.raises(Transient, match="no connection"),
    ):
        bad.health()


# Enrollment -----------------------------------------------------------------------------------


def test_enroll_writes_private_keys_and_loads_them_back(fake: FakePlatform, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    enrollment = enroll(config, "https://platform.test/", "ONE-TIME", transport=fake.transport())
    assert enrollment.kiosk_id == KIOSK_ID and enrollment.url == "https://platform.test"
    key_file = keys_dir(tmp_path) / "kiosk-signing.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not [p for p in keys_dir(tmp_path).iterdir() if p.name.startswith(".tmp")]
    loaded = load_enrollment(tmp_path)
    assert loaded is not None
    assert raw_public(loaded.signing_key.public_key()) == raw_public(
        enrollment.signing_key.public_key()
    )
    assert raw_public(loaded.receipt_public_key) == raw_public(fake.receipt_key.public_key())
    # The enrolled key signs requests the platform accepts.
    with HttpPlatform(config, loaded, transport=fake.transport()) as client:
        assert client.status_changes(0, 1) == ([], 0, False)


def test_a_refused_code_writes_nothing(fake: FakePlatform, tmp_path: Path) -> None:
    with pytest.raises(EnrollmentError, match="refused the code"):
        enroll(make_config(tmp_path), "https://platform.test", "WRONG", transport=fake.transport())
    assert load_enrollment(tmp_path) is None
    assert not (keys_dir(tmp_path) / "kiosk-signing.pem").exists()


def test_a_key_that_does_not_match_platform_json_is_not_an_enrollment(
    fake: FakePlatform, tmp_path: Path
) -> None:
    enroll(make_config(tmp_path), "https://platform.test", "ONE-TIME", transport=fake.transport())
    document = json.loads((keys_dir(tmp_path) / "platform.json").read_text())
    document["kiosk_public_key"] = base64.b64encode(b"\0" * 32).decode()
    (keys_dir(tmp_path) / "platform.json").write_text(json.dumps(document))
    assert load_enrollment(tmp_path) is None


def test_canonical_json_bodies_are_what_is_digested(fake: FakePlatform, tmp_path: Path) -> None:
    item, sealed, _ = outbox_item(tmp_path, [b"p"])
    seen: list[httpx.Request] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return fake(request)

    with HttpPlatform(
        make_config(tmp_path), fake.enrollment(), transport=httpx.MockTransport(spy)
    ) as client:
        client.put_application(item, sealed)
    body = json.loads(seen[0].content)
    assert canonical_json(body) == seen[0].content
    assert body["attachments"] == [{"sha256": item.pages[0].sha256, "size": 1}]
    assert body["kiosk_seq"] == 1 and body["schema"] == 1


def test_a_blob_the_platform_does_not_expect_is_transient_not_a_revocation(
    fake: FakePlatform, client: HttpPlatform, tmp_path: Path
) -> None:
    item, _, (path,) = outbox_item(tmp_path, [b"never declared"])
    sha = item.pages[0].sha256
    forbidden = json_response(403, {"error": "forbidden", "reason": "not declared"})
    fake.fail("HEAD", "/v1/blobs/", forbidden)
    with pytest.raises(Transient, match="not declared"):
        client.upload_blob(sha, path, item.pages[0].size, 16_384)
    fake.fail("PATCH", "/v1/blobs/", forbidden)
    with pytest.raises(Transient, match="not declared"):
        client.upload_blob(sha, path, item.pages[0].size, 16_384)
