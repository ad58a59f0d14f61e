"""The reference platform against docs/sync-protocol.md: in process (TestClient) for the
protocol's details, over real sockets (HTTP, HTTPS) for the server, and through its CLI."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import ssl
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from fastapi.testclient import TestClient

from kiosk.catalog import shipped_catalog_text
from sync import protocol as P
from sync.platform.admission import Admission
from sync.platform.app import create_app
from sync.platform.server import PlatformServer
from sync.platform.store import AdvanceRefused, PlatformStore, UnknownApplication
from ui.cli import main as kiosk_main

DEMO_ID = "330106198503120036"  # a demo person from kiosk.demo with e-licences


class Clock:
    """A settable clock so the tests can age codes and nonces."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Kiosk:
    """An enrolled kiosk: signs requests as docs/sync-protocol.md says."""

    http: httpx.Client | TestClient
    kiosk_id: str
    key: Ed25519PrivateKey
    seal_key: X25519PublicKey
    receipt_key: str
    skew: float = 0.0
    sent: list[str] = field(default_factory=list)

    def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        now: float | None = None,
    ) -> httpx.Response:
        signed = P.sign_request(
            self.key, self.kiosk_id, method, target, body, now or time.time() + self.skew
        )
        signed.update(headers or {})
        self.sent.append(signed[P.H_NONCE])
        return self.http.request(method, target, content=body, headers=signed)

    def put(self, app: Application) -> httpx.Response:
        return self.request("PUT", f"/v1/applications/{app.id}", app.body())

    def patch(
        self, sha: str, offset: int, length: int, chunk: bytes, **extra: str
    ) -> httpx.Response:
        headers = {
            P.H_OFFSET: str(offset),
            P.H_LENGTH: str(length),
            P.H_CHECKSUM: P.chunk_checksum(chunk),
            "Content-Type": "application/offset+octet-stream",
            **extra,
        }
        return self.request("PATCH", f"/v1/blobs/{sha}", chunk, headers)

    def upload(self, blob: bytes, chunk: int = P.DEFAULT_CHUNK) -> None:
        sha = P.sha256_hex(blob)
        offset = 0
        while offset < len(blob):
            r = self.patch(sha, offset, len(blob), blob[offset : offset + chunk])
            assert r.status_code == 204, r.text
            offset = int(r.headers[P.H_OFFSET])

    def commit(self, app_id: str) -> httpx.Response:
        return self.request("POST", f"/v1/applications/{app_id}/commit")


def enroll(http: httpx.Client | TestClient, code: str, kiosk_id: str = "HZ01-K01") -> Kiosk:
    key = Ed25519PrivateKey.generate()
    r = http.post(
        "/v1/enroll",
        json={"code": code, "kiosk_id": kiosk_id, "public_key": P.raw_public(key.public_key())},
    )
    assert r.status_code == 201, r.text
    doc = r.json()
    return Kiosk(
        http, kiosk_id, key, P.x25519_public(doc["seal_public_key"]), doc["receipt_public_key"]
    )


@dataclass
class Application:
    """A sealed application as a kiosk sends it: payload sealed, pages sealed and hashed."""

    id: str
    sealed_payload: bytes
    pages: list[bytes]
    thing_id: str = "newborn"
    kiosk_seq: int = 1

    def attachments(self) -> list[dict[str, Any]]:
        return [{"sha256": P.sha256_hex(p), "size": len(p)} for p in self.pages]

    def body(self, **changes: Any) -> bytes:
        doc = {
            "schema": 1,
            "kiosk_seq": self.kiosk_seq,
            "thing_id": self.thing_id,
            "catalog_version": "2026.11.1",
            "created_at": "2026-11-27T10:01:02+08:00",
            "receipt_number": f"HZ01-K01-20261127-{self.kiosk_seq:04d}",
            "channel": "self",
            "sealed_payload": P.b64(self.sealed_payload),
            "payload_sha256": P.sha256_hex(self.sealed_payload),
            "attachments": self.attachments(),
        }
        doc.update(changes)
        return json.dumps(doc).encode()


_counter = iter(range(1, 1_000_000))


def make_application(
    kiosk: Kiosk,
    page_sizes: tuple[int, ...] = (300_000, 5_000),
    *,
    listed: list[dict[str, Any]] | None = None,
    info_id: str | None = None,
) -> Application:
    """Seal pages and a payload to the platform's key. `listed` overrides the payload's page
    list and `info_id` the id the payload is sealed for (to make bad applications)."""
    n = next(_counter)
    app_id = f"01JTEST{n:019d}"
    rng = random.Random(n)
    pages = [
        P.seal(kiosk.seal_key, rng.randbytes(size), P.page_info(app_id)) for size in page_sizes
    ]
    page_list = [
        {"material_id": f"m{i}", "sha256": P.sha256_hex(p), "size": len(p)}
        for i, p in enumerate(pages)
    ]
    payload = {
        "application_id": app_id,
        "thing_id": "newborn",
        "catalog_version": "2026.11.1",
        "identity": {"name": "李明", "id_number": DEMO_ID},
        "answers": {},
        "lang": "zh",
        "channel": "self",
        "pages": page_list if listed is None else listed,
    }
    sealed = P.seal(
        kiosk.seal_key,
        json.dumps(payload, ensure_ascii=False).encode(),
        P.payload_info(info_id or app_id),
    )
    return Application(app_id, sealed, pages, kiosk_seq=n)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[PlatformStore]:
    s = PlatformStore(tmp_path / "pdata", clock=clock)
    yield s
    s.close()


@pytest.fixture
def client(store: PlatformStore, clock: Clock) -> TestClient:
    return TestClient(create_app(store, clock=clock))


@pytest.fixture
def kiosk(client: TestClient, store: PlatformStore) -> Kiosk:
    return enroll(client, store.new_enrollment_code())


def deliver(kiosk: Kiosk, app: Application) -> dict[str, Any]:
    """PUT, upload what is missing, commit: the receipt document."""
    r = kiosk.put(app)
    assert r.status_code in (200, 201), r.text
    blobs = {P.sha256_hex(p): p for p in app.pages}
    for sha in r.json()["missing"]:
        kiosk.upload(blobs[sha])
    r = kiosk.commit(app.id)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


# Enrollment and signatures -------------------------------------------------------------------


def test_health_is_unsigned_and_every_answer_has_a_date(client: TestClient) -> None:
    r = client.get("/v1/health")
    assert r.status_code == 200
    assert r.json()["ok"] is True and r.json()["version"]
    assert r.headers["date"].endswith("GMT")
    unsigned = client.get("/v1/catalog")
    assert unsigned.status_code == 401 and "date" in unsigned.headers
    assert client.get("/v1/nowhere").headers["date"]


def test_enrollment_codes_are_one_time_and_expire(
    client: TestClient, store: PlatformStore, clock: Clock
) -> None:
    code = store.new_enrollment_code()
    kiosk = enroll(client, code)
    assert kiosk.receipt_key == P.raw_public(store.receipt_public_key)
    key = P.raw_public(Ed25519PrivateKey.generate().public_key())
    used = client.post("/v1/enroll", json={"code": code, "kiosk_id": "K2", "public_key": key})
    assert used.status_code == 403 and "used" in used.json()["reason"]
    unknown = client.post(
        "/v1/enroll", json={"code": "AAAA-BBBB-CCCC", "kiosk_id": "K2", "public_key": key}
    )
    assert unknown.status_code == 403
    late = store.new_enrollment_code()
    clock.now += 24 * 3600 + 1
    expired = client.post("/v1/enroll", json={"code": late, "kiosk_id": "K2", "public_key": key})
    assert expired.status_code == 403 and "expired" in expired.json()["reason"]
    bad_key = client.post(
        "/v1/enroll",
        json={"code": store.new_enrollment_code(), "kiosk_id": "K2", "public_key": "eHl6"},
    )
    assert bad_key.status_code == 422


def test_many_codes_at_once_each_enroll_one_kiosk(client: TestClient, store: PlatformStore) -> None:
    codes = store.new_enrollment_codes(5)
    assert len(set(codes)) == 5
    kiosks = [enroll(client, code, f"HZ03-K{n:02d}") for n, code in enumerate(codes)]
    assert all(k.request("GET", "/v1/catalog").status_code == 200 for k in kiosks)


def test_re_enrollment_replaces_the_key(client: TestClient, store: PlatformStore) -> None:
    old = enroll(client, store.new_enrollment_code(), "HZ01-K07")
    assert old.request("GET", "/v1/status-changes?cursor=0").status_code == 200
    new = enroll(client, store.new_enrollment_code(), "HZ01-K07")
    assert new.request("GET", "/v1/status-changes?cursor=0").status_code == 200
    stale = old.request("GET", "/v1/status-changes?cursor=0")
    assert stale.status_code == 401 and stale.json()["reason"] == "bad signature"


def test_bad_signature_digest_unknown_kiosk_skew_and_replay_get_401(
    client: TestClient, kiosk: Kiosk, clock: Clock
) -> None:
    target = "/v1/status-changes?cursor=0"
    headers = P.sign_request(kiosk.key, kiosk.kiosk_id, "GET", target, b"", clock.now)
    ok = client.get(target, headers=headers)
    assert ok.status_code == 200
    replay = client.get(target, headers=headers)
    assert replay.status_code == 401
    assert replay.json() == {"error": "unauthenticated", "reason": "replay"}

    skewed = kiosk.request("GET", target, now=clock.now - 301)
    assert skewed.status_code == 401 and skewed.json()["reason"] == "clock skew"
    assert skewed.headers["date"]
    assert kiosk.request("GET", target, now=clock.now + 299).status_code == 200

    other_path = P.sign_request(kiosk.key, kiosk.kiosk_id, "GET", target, b"", clock.now)
    moved = client.get("/v1/status-changes?cursor=1", headers=other_path)
    assert moved.status_code == 401 and moved.json()["reason"] == "bad signature"

    body = b'{"id_number": "x"}'
    signed = P.sign_request(kiosk.key, kiosk.kiosk_id, "POST", "/v1/licences", body, clock.now)
    tampered = client.post("/v1/licences", content=b'{"id_number": "y"}', headers=signed)
    assert tampered.status_code == 401 and "digest" in tampered.json()["reason"]

    stranger = Ed25519PrivateKey.generate()
    alien = P.sign_request(stranger, "HZ99-K99", "GET", target, b"", clock.now)
    unknown = client.get(target, headers=alien)
    assert unknown.status_code == 401 and unknown.json()["reason"] == "unknown kiosk"
    impostor = P.sign_request(stranger, kiosk.kiosk_id, "GET", target, b"", clock.now)
    assert client.get(target, headers=impostor).json()["reason"] == "bad signature"


def test_nonces_are_forgotten_after_the_replay_window(
    store: PlatformStore, kiosk: Kiosk, clock: Clock
) -> None:
    nonce = "ab" * 16
    assert store.remember_nonce(kiosk.kiosk_id, nonce, clock.now)
    assert not store.remember_nonce(kiosk.kiosk_id, nonce, clock.now + 599)
    assert store.remember_nonce("HZ01-K02", nonce, clock.now)  # per kiosk
    # Pruning is periodic; a nonce older than 600 s is gone after the next prune.
    assert store.remember_nonce(kiosk.kiosk_id, "cd" * 16, clock.now + 700)
    assert store.remember_nonce(kiosk.kiosk_id, nonce, clock.now + 701)


def test_a_restart_forgets_nonces_but_refuses_what_was_signed_before_it(
    tmp_path: Path, store: PlatformStore, client: TestClient, kiosk: Kiosk, clock: Clock
) -> None:
    target = "/v1/status-changes?cursor=0"
    captured = P.sign_request(kiosk.key, kiosk.kiosk_id, "GET", target, b"", clock.now)
    assert client.get(target, headers=captured).status_code == 200
    clock.now += 5
    restarted = PlatformStore(tmp_path / "pdata", clock=clock)  # nonces were in memory
    try:
        again = TestClient(create_app(restarted, clock=clock))
        replay = again.get(target, headers=captured)
        # Signed before the restart: it may be a replay, and the kiosk re-signs on this reason.
        assert replay.status_code == 401 and replay.json()["reason"] == "clock skew"
        fresh = P.sign_request(kiosk.key, kiosk.kiosk_id, "GET", target, b"", clock.now)
        assert again.get(target, headers=fresh).status_code == 200
        assert again.get(target, headers=fresh).json()["reason"] == "replay"
    finally:
        restarted.close()


# Applications --------------------------------------------------------------------------------


def test_put_application_new_replay_conflict_and_invalid(kiosk: Kiosk) -> None:
    app = make_application(kiosk)
    first = kiosk.put(app)
    assert first.status_code == 201
    hashes = [P.sha256_hex(p) for p in app.pages]
    assert first.json() == {"id": app.id, "missing": hashes}
    again = kiosk.put(app)
    assert again.status_code == 200 and again.json() == first.json()

    changed = make_application(kiosk)
    changed.id = app.id
    conflict = kiosk.put(changed)
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"

    fresh = make_application(kiosk)
    target = f"/v1/applications/{fresh.id}"
    wrong_hash = kiosk.request("PUT", target, fresh.body(payload_sha256="0" * 64))
    assert wrong_hash.status_code == 422 and wrong_hash.json()["error"] == "invalid"
    too_many = [{"sha256": f"{i:064x}", "size": 10} for i in range(P.MAX_ATTACHMENTS + 1)]
    assert kiosk.request("PUT", target, fresh.body(attachments=too_many)).status_code == 422
    too_big = [{"sha256": "a" * 64, "size": P.MAX_BLOB + 1}]
    assert kiosk.request("PUT", target, fresh.body(attachments=too_big)).status_code == 422
    assert kiosk.request("PUT", target, fresh.body(schema=2)).status_code == 422
    assert kiosk.request("PUT", target, b"not json").status_code == 422
    # None of the invalid ones was stored: the valid body is still new.
    assert kiosk.put(fresh).status_code == 201


def test_applications_are_keyed_by_kiosk(
    client: TestClient, store: PlatformStore, kiosk: Kiosk
) -> None:
    other = enroll(client, store.new_enrollment_code(), "HZ01-K02")
    app = make_application(kiosk)
    assert kiosk.put(app).status_code == 201
    assert other.put(app).status_code == 201  # same id, another kiosk: its own application
    # A blob is not the other kiosk's to upload or inspect until one of its apps declares it.
    solo = make_application(kiosk, (1000,))
    assert kiosk.put(solo).status_code == 201
    sha = P.sha256_hex(solo.pages[0])
    assert other.request("HEAD", f"/v1/blobs/{sha}").status_code == 403


# Blobs ---------------------------------------------------------------------------------------


def test_blob_upload_answers(kiosk: Kiosk) -> None:
    app = make_application(kiosk, (600_000,))
    blob = app.pages[0]
    sha, length = P.sha256_hex(blob), len(blob)
    undeclared = kiosk.patch(sha, 0, length, blob[:1000])
    assert undeclared.status_code == 403
    assert kiosk.request("HEAD", f"/v1/blobs/{sha}").status_code == 403
    assert kiosk.put(app).status_code == 201
    assert kiosk.request("HEAD", f"/v1/blobs/{sha}").status_code == 404

    chunk = 256 << 10
    assert kiosk.patch(sha, 0, length, blob[:chunk]).status_code == 204
    head = kiosk.request("HEAD", f"/v1/blobs/{sha}")
    assert head.status_code == 200
    assert (head.headers[P.H_OFFSET], head.headers[P.H_LENGTH]) == (str(chunk), str(length))

    behind = kiosk.patch(sha, 0, length, blob[:chunk])
    assert behind.status_code == 409 and behind.headers[P.H_OFFSET] == str(chunk)
    ahead = kiosk.patch(sha, 2 * chunk, length, blob[2 * chunk :])
    assert ahead.status_code == 409 and ahead.headers[P.H_OFFSET] == str(chunk)

    piece = blob[chunk : 2 * chunk]
    bad_sum = kiosk.patch(
        sha, chunk, length, piece, **{P.H_CHECKSUM: P.chunk_checksum(piece[::-1])}
    )
    assert bad_sum.status_code == P.CHECKSUM_MISMATCH
    assert kiosk.request("HEAD", f"/v1/blobs/{sha}").headers[P.H_OFFSET] == str(chunk)

    huge = kiosk.patch(sha, chunk, length, blob[chunk:] + bytes(P.MAX_CHUNK))
    assert huge.status_code == 413
    wrong_type = kiosk.patch(sha, chunk, length, piece, **{"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    wrong_length = kiosk.patch(sha, chunk, length + 1, piece)
    assert wrong_length.status_code == 422

    offset = chunk
    while offset < length:
        r = kiosk.patch(sha, offset, length, blob[offset : offset + chunk])
        assert r.status_code == 204
        offset = int(r.headers[P.H_OFFSET])
    assert offset == length
    head = kiosk.request("HEAD", f"/v1/blobs/{sha}")
    assert head.headers[P.H_OFFSET] == head.headers[P.H_LENGTH] == str(length)
    # Already whole: any PATCH says so, whatever its offset.
    again = kiosk.patch(sha, 0, length, blob[:chunk])
    assert again.status_code == 204 and again.headers[P.H_OFFSET] == str(length)
    assert kiosk.put(app).json()["missing"] == []


def test_a_whole_file_that_does_not_match_its_name_is_discarded(
    kiosk: Kiosk, store: PlatformStore
) -> None:
    app = make_application(kiosk, (5_000,))
    impostor = os.urandom(len(app.pages[0]))  # right length, wrong bytes
    sha = P.sha256_hex(app.pages[0])
    assert kiosk.put(app).status_code == 201
    assert kiosk.patch(sha, 0, len(impostor), impostor[:3000]).status_code == 204
    last = kiosk.patch(sha, 3000, len(impostor), impostor[3000:])
    assert last.status_code == 422 and last.json()["error"] == "invalid"
    assert kiosk.request("HEAD", f"/v1/blobs/{sha}").status_code == 404
    assert not (store.blobs.partial_dir / sha).exists()
    kiosk.upload(app.pages[0])  # from 0 again, the right bytes this time
    assert store.blobs.read(sha) == app.pages[0]


def test_blobs_are_shared_by_the_applications_of_a_kiosk(kiosk: Kiosk) -> None:
    first = make_application(kiosk, (2_000,))
    deliver(kiosk, first)
    second = make_application(kiosk, (3_000,))
    second.pages.append(first.pages[0])
    second.sealed_payload = P.seal(
        kiosk.seal_key,
        json.dumps({"pages": second.attachments()}).encode(),
        P.payload_info(second.id),
    )
    r = kiosk.put(second)
    assert r.json()["missing"] == [P.sha256_hex(second.pages[0])]


# Commit and receipts -------------------------------------------------------------------------


def test_commit_only_when_every_blob_is_held_and_the_receipt_verifies(
    kiosk: Kiosk, store: PlatformStore
) -> None:
    assert kiosk.commit("01JNEVERSEEN").status_code == 404
    app = make_application(kiosk)
    kiosk.put(app)
    hashes = [P.sha256_hex(p) for p in app.pages]
    early = kiosk.commit(app.id)
    assert early.status_code == 409
    assert early.json() == {"error": "incomplete", "missing": hashes}
    kiosk.upload(app.pages[0])
    assert kiosk.commit(app.id).json()["missing"] == hashes[1:]
    kiosk.upload(app.pages[1])

    done = kiosk.commit(app.id)
    assert done.status_code == 200
    receipt, signature = done.json()["receipt"], done.json()["signature"]
    P.verify_receipt(P.ed25519_public(kiosk.receipt_key), receipt, signature)
    assert receipt["application_id"] == app.id and receipt["kiosk_id"] == kiosk.kiosk_id
    assert receipt["payload_sha256"] == P.sha256_hex(app.sealed_payload)
    assert receipt["attachments"] == hashes
    number = receipt["platform_number"]
    assert number.startswith("BJ" + time.strftime("%Y%m%d", time.gmtime())) and len(number) == 16
    assert receipt["received_at"].endswith("Z")
    forged = dict(receipt, attachments=hashes[:1])
    with pytest.raises(P.ProtocolError):
        P.verify_receipt(P.ed25519_public(kiosk.receipt_key), forged, signature)

    replay = kiosk.commit(app.id)
    assert replay.status_code == 200 and replay.json() == done.json()
    feed = kiosk.request("GET", "/v1/status-changes?cursor=0").json()
    assert [(c["seq"], c["status"]) for c in feed["changes"]] == [
        (receipt["server_seq"], "accepted")
    ]
    assert feed["changes"][0]["platform_number"] == number
    assert set(feed["changes"][0]["services"]) == set(store.services_for("newborn"))

    second = deliver(kiosk, make_application(kiosk, (1_000,)))["receipt"]
    assert second["server_seq"] > receipt["server_seq"]
    assert int(second["platform_number"][-6:]) == int(number[-6:]) + 1


def test_commit_refuses_payloads_that_do_not_name_the_attachments(kiosk: Kiosk) -> None:
    wrong_pages = make_application(kiosk, (1_000, 2_000), listed=[])
    kiosk.put(wrong_pages)
    for page in wrong_pages.pages:
        kiosk.upload(page)
    r = kiosk.commit(wrong_pages.id)
    assert r.status_code == 422 and "pages" in r.json()["reason"]

    swapped = make_application(kiosk, (1_000, 2_000))
    listed = swapped.attachments()[::-1]
    reordered = make_application(kiosk, (1_000, 2_000), listed=listed)
    reordered.pages = swapped.pages
    assert deliver_blobs_and_commit(kiosk, reordered).status_code == 422

    for_another_id = make_application(kiosk, (1_000,), info_id="01JSOMEONEELSE")
    r = deliver_blobs_and_commit(kiosk, for_another_id)
    assert r.status_code == 422 and "opened" in r.json()["reason"]
    assert kiosk.request("GET", "/v1/status-changes?cursor=0").json()["changes"] == []


def deliver_blobs_and_commit(kiosk: Kiosk, app: Application) -> httpx.Response:
    kiosk.put(app)
    for page in app.pages:
        kiosk.upload(page)
    return kiosk.commit(app.id)


def test_an_application_without_attachments(kiosk: Kiosk) -> None:
    app = make_application(kiosk, ())
    assert kiosk.put(app).json()["missing"] == []
    assert kiosk.commit(app.id).status_code == 200


# Status feed ---------------------------------------------------------------------------------


def test_status_feed_pages_per_kiosk_and_410_past_the_end(
    client: TestClient, store: PlatformStore, kiosk: Kiosk
) -> None:
    other = enroll(client, store.new_enrollment_code(), "HZ02-K01")
    mine = [deliver(kiosk, make_application(kiosk, ()))["receipt"] for _ in range(3)]
    theirs = deliver(other, make_application(other, ()))["receipt"]
    store.advance(mine[0]["application_id"], "in_progress", "审核中")

    page = kiosk.request("GET", "/v1/status-changes?cursor=0&limit=2").json()
    assert [c["application_id"] for c in page["changes"]] == [r["application_id"] for r in mine[:2]]
    assert page["has_more"] is True and page["next_cursor"] == mine[1]["server_seq"]
    rest = kiosk.request("GET", f"/v1/status-changes?cursor={page['next_cursor']}&limit=2").json()
    assert [c["status"] for c in rest["changes"]] == ["accepted", "in_progress"]
    assert rest["changes"][-1]["note"] == "审核中"
    assert rest["has_more"] is False
    assert theirs["application_id"] not in {c["application_id"] for c in rest["changes"]}
    last = rest["next_cursor"]
    empty = kiosk.request("GET", f"/v1/status-changes?cursor={last}").json()
    assert empty == {"changes": [], "next_cursor": last, "has_more": False}

    gone = kiosk.request("GET", f"/v1/status-changes?cursor={last + 1}")
    assert gone.status_code == 410
    assert kiosk.request("GET", "/v1/status-changes?cursor=0&limit=501").status_code == 400
    assert kiosk.request("GET", "/v1/status-changes?cursor=-1").status_code == 400


def test_advance_merges_service_statuses_and_never_goes_back(
    kiosk: Kiosk, store: PlatformStore
) -> None:
    receipt = deliver(kiosk, make_application(kiosk, ()))["receipt"]
    app_id = receipt["application_id"]
    first, second, *_ = store.services_for("newborn")
    change = store.advance(app_id, "in_progress", services={first: "completed"})
    assert change.services[first] == "completed" and change.services[second] == "accepted"
    assert change.platform_number == receipt["platform_number"]
    with pytest.raises(AdvanceRefused):
        store.advance(app_id, "in_progress", services={"not-a-service": "completed"})
    with pytest.raises(AdvanceRefused):
        store.advance(app_id, "finished")
    store.advance(app_id, "rejected", "材料不全")
    with pytest.raises(AdvanceRefused):
        store.advance(app_id, "in_progress")
    with pytest.raises(UnknownApplication):
        store.advance("01JNOTCOMMITTED", "completed")


def test_demo_steps_move_applications_to_completed(kiosk: Kiosk, store: PlatformStore) -> None:
    app_id = deliver(kiosk, make_application(kiosk, ()))["receipt"]["application_id"]
    assert store.demo_step() == 1
    assert store.demo_step() == 1
    assert store.demo_step() == 0
    changes = kiosk.request("GET", "/v1/status-changes?cursor=0").json()["changes"]
    assert [c["status"] for c in changes] == ["accepted", "in_progress", "completed"]
    assert all(c["application_id"] == app_id for c in changes)
    assert set(changes[-1]["services"].values()) == {"completed"}
    assert list(changes[-1]["services"]) == list(store.services_for("newborn"))


# Catalog, ratings, licences ------------------------------------------------------------------


def test_catalog_etag_304_and_publish(kiosk: Kiosk, store: PlatformStore, tmp_path: Path) -> None:
    r = kiosk.request("GET", "/v1/catalog")
    assert r.status_code == 200 and r.content == shipped_catalog_text()
    etag = r.headers["etag"]
    assert etag == f'"{hashlib.sha256(r.content).hexdigest()}"'
    cached = kiosk.request("GET", "/v1/catalog", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.headers["etag"] == etag and not cached.content

    doc = json.loads(shipped_catalog_text())
    doc["version"] = "2099.1.1"
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    pdata = str(store.data_dir)
    assert kiosk_main(["platform", "publish-catalog", "--data-dir", pdata, str(newer)]) == 0
    fresh = kiosk.request("GET", "/v1/catalog", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and json.loads(fresh.content)["version"] == "2099.1.1"
    assert fresh.headers["etag"] != etag

    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": 1, "version": "2100.1.1"}', encoding="utf-8")
    assert kiosk_main(["platform", "publish-catalog", "--data-dir", pdata, str(broken)]) == 1
    still = kiosk.request("GET", "/v1/catalog")
    assert still.headers["etag"] == fresh.headers["etag"]


def test_ratings_new_replay_conflict_invalid(kiosk: Kiosk) -> None:
    rating = {"application_id": "01JRATED", "score": 5, "created_at": "2026-11-27T10:05:00+08:00"}
    body = json.dumps(rating).encode()
    assert kiosk.request("PUT", "/v1/ratings/01JR1", body).status_code == 201
    assert kiosk.request("PUT", "/v1/ratings/01JR1", body).status_code == 200
    changed = json.dumps(dict(rating, score=1)).encode()
    assert kiosk.request("PUT", "/v1/ratings/01JR1", changed).status_code == 409
    for bad in ({**rating, "score": 6}, {**rating, "score": True}, {"score": 3}):
        r = kiosk.request("PUT", "/v1/ratings/01JR2", json.dumps(bad).encode())
        assert r.status_code == 422, bad


def test_licences_are_looked_up_and_the_id_number_is_never_logged(
    kiosk: Kiosk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    r = kiosk.request("POST", "/v1/licences", json.dumps({"id_number": DEMO_ID}).encode())
    assert r.status_code == 200
    assert set(r.json()["held"]) == {
        "marriage_certificate",
        "household_register",
        "birth_certificate",
        "business_licence",
    }
    spaced = json.dumps({"id_number": DEMO_ID[:6] + " " + DEMO_ID[6:]}).encode()
    assert kiosk.request("POST", "/v1/licences", spaced).json() == r.json()
    nobody = json.dumps({"id_number": "110101199001011237"}).encode()
    assert kiosk.request("POST", "/v1/licences", nobody).json() == {"held": []}
    deliver(kiosk, make_application(kiosk))  # its sealed payload holds the ID number
    assert DEMO_ID not in caplog.text and DEMO_ID[-8:] not in caplog.text


# Admission control ---------------------------------------------------------------------------


def test_admission_429_with_a_randomised_retry_after_that_grows_with_the_backlog(
    store: PlatformStore, clock: Clock
) -> None:
    ticks = [0.0]
    admission = Admission(2, clock=lambda: ticks[0], rng=random.Random(7))
    client = TestClient(create_app(store, admission=admission, clock=clock))
    kiosk = enroll(client, store.new_enrollment_code())  # unsigned: not rate limited
    target = "/v1/status-changes?cursor=0"
    # The bucket holds a quarter second's worth (at least one request).
    assert kiosk.request("GET", target).status_code == 200
    waits = []
    for _ in range(40):
        r = kiosk.request("GET", target)
        assert r.status_code == 429 and r.headers["date"]
        waits.append(int(r.headers["retry-after"]))
    assert client.get("/v1/health").status_code == 200
    assert min(waits) >= 1 and len(set(waits)) > 3
    # 40 refusals at 2/s: booked one per second (half the rate), the later ones ~40 s out.
    assert Counter(waits).most_common(1)[0][1] == 1
    assert max(waits[:4]) <= 6 < 30 <= max(waits[-10:]) <= 45
    ticks[0] += 1.0  # the bucket refills (to its burst of one)
    assert kiosk.request("GET", target).status_code == 200
    assert kiosk.request("GET", target).status_code == 429
    assert admission.admitted == 2 and admission.refused == 41


# Real sockets --------------------------------------------------------------------------------


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_real_server_over_http_in_demo_mode(tmp_path: Path) -> None:
    with PlatformServer(tmp_path / "pdata", demo=True, demo_interval_s=0.2) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=server.url, timeout=10) as http:
            kiosk = enroll(http, server.new_enrollment_code())
            app = make_application(kiosk, (700_000,))
            receipt = deliver(kiosk, app)["receipt"]
            P.verify_receipt(
                server.store.receipt_public_key, receipt, kiosk.commit(app.id).json()["signature"]
            )

            def completed() -> bool:
                feed = kiosk.request("GET", "/v1/status-changes?cursor=0").json()
                return [c["status"] for c in feed["changes"]][-1:] == ["completed"]

            wait_for(completed)
            assert http.get("/v1/health").headers["date"]
            assert "server" not in http.get("/v1/health").headers
            assert http.get("/openapi.json").json()["paths"]["/v1/blobs/{sha256}"]["patch"][
                "summary"
            ]


def test_a_real_server_over_tls_trusts_only_its_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    # With cadata, the context trusts that CA only (no system certificates).
    trust = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
    with PlatformServer(tmp_path / "pdata", certfile=certfile, keyfile=keyfile) as server:
        assert server.url.startswith("https://127.0.0.1:")
        with httpx.Client(base_url=server.url, verify=trust, timeout=10) as http:
            kiosk = enroll(http, server.new_enrollment_code())
            deliver(kiosk, make_application(kiosk, (300_000,)))
        stranger = ssl.create_default_context(cadata=trustme.CA().cert_pem.bytes().decode())
        with (
            httpx.Client(base_url=server.url, verify=stranger, timeout=10) as http,
            pytest.raises(httpx.ConnectError),
        ):
            http.get("/v1/health")


def test_a_partial_upload_resumes_after_a_restart(tmp_path: Path) -> None:
    pdata = tmp_path / "pdata"
    chunk = 256 << 10
    with PlatformServer(pdata) as server, httpx.Client(base_url=server.url) as http:
        kiosk = enroll(http, server.new_enrollment_code())
        app = make_application(kiosk, (900_000,))
        blob, sha = app.pages[0], P.sha256_hex(app.pages[0])
        kiosk.put(app)
        for offset in (0, chunk):
            assert (
                kiosk.patch(sha, offset, len(blob), blob[offset : offset + chunk]).status_code
                == 204
            )
    with PlatformServer(pdata) as server, httpx.Client(base_url=server.url) as http:
        kiosk.http = http
        head = kiosk.request("HEAD", f"/v1/blobs/{sha}")
        assert head.status_code == 200 and head.headers[P.H_OFFSET] == str(2 * chunk)
        stale = kiosk.patch(sha, chunk, len(blob), blob[chunk : 2 * chunk])
        assert stale.status_code == 409 and stale.headers[P.H_OFFSET] == str(2 * chunk)
        offset = 2 * chunk
        while offset < len(blob):
            r = kiosk.patch(sha, offset, len(blob), blob[offset : offset + chunk])
            assert r.status_code == 204
            offset = int(r.headers[P.H_OFFSET])
        receipt = kiosk.commit(app.id).json()["receipt"]
        assert receipt["attachments"] == [sha]
        assert (pdata / "blobs" / sha[:2] / sha).read_bytes() == blob
        assert not (pdata / "blobs" / "partial" / sha).exists()


def test_a_rename_undone_by_a_power_cut_is_finished_at_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blob renames are fsynced at the commit, not one by one: before it, a power cut may put
    a whole blob back under partial/. The commit (and a HEAD that says it is all there) copes,
    and the receipt is only given after the directories holding the renames are fsynced."""
    import sync.platform.blobs as blobs_module

    pdata = tmp_path / "pdata"
    synced: list[Path] = []
    real_fsync_dir = blobs_module.fsync_dir
    monkeypatch.setattr(
        blobs_module, "fsync_dir", lambda d: (synced.append(Path(d)), real_fsync_dir(d))
    )
    with PlatformServer(pdata) as server, httpx.Client(base_url=server.url) as http:
        kiosk = enroll(http, server.new_enrollment_code())
        app = make_application(kiosk, (300_000, 200_000))
        kiosk.put(app)
        first, second = (P.sha256_hex(page) for page in app.pages)
        synced.clear()  # the 256 fan-out directories were made (and fsynced) at the start
        kiosk.upload(app.pages[0])
        kiosk.upload(app.pages[1])
        assert synced == []  # nothing fsynced per blob...
    # ... so the power cut takes the first rename back.
    blobs = pdata / "blobs"
    (blobs / first[:2] / first).rename(blobs / "partial" / first)
    with PlatformServer(pdata) as server, httpx.Client(base_url=server.url) as http:
        kiosk.http = http
        head = kiosk.request("HEAD", f"/v1/blobs/{first}")
        assert head.headers[P.H_OFFSET] == str(len(app.pages[0]))
        synced.clear()
        done = kiosk.commit(app.id)
        assert done.status_code == 200, done.text
        assert done.json()["receipt"]["attachments"] == [first, second]
        assert (blobs / first[:2] / first).read_bytes() == app.pages[0]
        assert not (blobs / "partial" / first).exists()
        assert {blobs / first[:2]} <= set(synced)
        # A damaged leftover is not taken for the blob.
        other = make_application(kiosk, (100_000,))
        kiosk.put(other)
        sha = P.sha256_hex(other.pages[0])
        (blobs / "partial" / sha).write_bytes(b"x" * len(other.pages[0]))
        assert kiosk.commit(other.id).json() == {"error": "incomplete", "missing": [sha]}


# The CLI -------------------------------------------------------------------------------------


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = kiosk_main(argv)
    return code, capsys.readouterr().out


def test_cli_enrollment_code_list_and_advance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pdata = str(tmp_path / "pdata")
    with PlatformServer(pdata) as server, httpx.Client(base_url=server.url) as http:
        code, out = run_cli(["platform", "enrollment-code", "--data-dir", pdata], capsys)
        assert code == 0
        kiosk = enroll(http, out.strip())  # a code made by another process works at once
        apps = [make_application(kiosk, sizes) for sizes in ((1_000, 2_000), ())]
        receipts = [deliver(kiosk, app)["receipt"] for app in apps]
        code, out = run_cli(["platform", "list", "--data-dir", pdata, "--json"], capsys)
        assert code == 0
        listed = json.loads(out)
        assert listed == [
            {
                "id": r["application_id"],
                "platform_number": r["platform_number"],
                "payload_sha256": r["payload_sha256"],
                "attachments": r["attachments"],
            }
            for r in receipts
        ]
        first_service = server.store.services_for("newborn")[0]
        argv = ["platform", "advance", "--data-dir", pdata, apps[0].id, "completed"]
        code, out = run_cli(
            [*argv, "--note", "已办结", "--service", f"{first_service}=completed"], capsys
        )
        assert code == 0 and "completed" in out
        feed = kiosk.request("GET", "/v1/status-changes?cursor=0").json()["changes"]
        assert (feed[-1]["status"], feed[-1]["note"]) == ("completed", "已办结")
        assert feed[-1]["services"][first_service] == "completed"
        back = ["platform", "advance", "--data-dir", pdata, apps[0].id, "in_progress"]
        assert run_cli(back, capsys)[0] == 1
        unknown = ["platform", "advance", "--data-dir", pdata, "01JNOPE", "completed"]
        assert run_cli(unknown, capsys)[0] == 1
        code, out = run_cli(["platform", "list", "--data-dir", pdata], capsys)
        assert apps[1].id in out and receipts[1]["platform_number"] in out
    assert run_cli(["platform", "list", "--json"], capsys)[0] == 2  # --data-dir is required


def test_cli_serve_prints_its_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ui.cli",
            "platform",
            "serve",
            "--data-dir",
            str(tmp_path / "p"),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("platform listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        assert httpx.get(f"{url}/v1/health", timeout=10).json()["ok"] is True
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_openapi_names_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    operations = [(p, m) for p, item in paths.items() for m in item]
    assert sorted(operations) == [
        ("/v1/applications/{app_id}", "put"),
        ("/v1/applications/{app_id}/commit", "post"),
        ("/v1/blobs/{sha256}", "head"),
        ("/v1/blobs/{sha256}", "patch"),
        ("/v1/catalog", "get"),
        ("/v1/enroll", "post"),
        ("/v1/health", "get"),
        ("/v1/licences", "post"),
        ("/v1/ratings/{rating_id}", "put"),
        ("/v1/status-changes", "get"),
    ]
    assert all(paths[p][m].get("summary") for p, m in operations)


def test_keys_are_private_and_survive_a_restart(tmp_path: Path) -> None:
    first = PlatformStore(tmp_path / "pdata")
    seal, receipt = P.raw_public(first.seal_public_key), P.raw_public(first.receipt_public_key)
    first.close()
    for name in ("seal.pem", "receipt.pem"):
        assert (tmp_path / "pdata" / "keys" / name).stat().st_mode & 0o777 == 0o600
    again = PlatformStore(tmp_path / "pdata")
    assert P.raw_public(again.seal_public_key) == seal
    assert P.raw_public(again.receipt_public_key) == receipt
    again.close()
