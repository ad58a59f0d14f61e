"""The kiosk's HTTP client for the platform (docs/sync-protocol.md), over one keep-alive connection.

Every request is signed; every outcome is mapped to one of three exceptions the relay acts on:
`Transient` (try again later), `Refused` (set the item aside) and `Unauthenticated` (stop).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import logging
import ssl
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import httpx

from kiosk.config import Config
from kiosk.ports import PlatformUnavailable
from kiosk.storage import OutboxItem, RatingItem, StatusChange
from sync.backoff import parse_retry_after
from sync.enrollment import Enrollment
from sync.protocol import (
    API,
    CHECKSUM_MISMATCH,
    DIGEST_MISMATCH,
    H_CHECKSUM,
    H_LENGTH,
    H_OFFSET,
    MAX_CHUNK,
    SCHEMA,
    b64,
    canonical_json,
    sha256_hex,
    sign_request,
)

log = logging.getLogger(__name__)

# A Date header more than this far from our corrected clock re-learns the offset; well inside
# the platform's 300 s tolerance, and well above the header's 1 s resolution.
_RESYNC_S = 30.0
# 409s in a row without progress before an upload is given up as transient (a confused server).
_MAX_OFFSET_CONFLICTS = 3
# Chunks are sized to take about this long on the link as measured: a cut link then costs at
# most this much re-sending, and a fast link needs few requests (and few fsyncs) per blob.
CHUNK_SECONDS = 2.0
MIN_CHUNK = 16 << 10
_GROWTH = 4  # at most ×4 from one chunk to the next


class Transient(Exception):
    """Try again later: no answer, a 5xx, a 429, an answer that is not what the protocol says."""

    def __init__(
        self, reason: str, retry_after_s: float | None = None, *, answered: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.answered = answered  # the platform did answer (it is reachable)


class Refused(Exception):
    """The platform refused this item for good (409 or 422): it is set aside for staff."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class Unauthenticated(Exception):
    """401/403 that clock correction did not fix: this kiosk is not enrolled or was revoked."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CursorReset(Exception):
    """410 on the status feed: the platform's sequence is behind our cursor (a restore)."""


def platform_url(config: Config, enrollment: Enrollment) -> str:
    """The configured https/http URL when there is one, else the URL the kiosk enrolled with."""
    url = config.platform.url
    if url.startswith(("https://", "http://")):
        return url.rstrip("/")
    return enrollment.url


def tls_verify(ca_file: str) -> ssl.SSLContext | bool:
    """Trust only the platform's CA when one is configured (pinning), else the system's CAs."""
    if not ca_file:
        return True
    # With cafile given, create_default_context loads that file and no default certificates.
    return ssl.create_default_context(cafile=ca_file)


def _reason(response: httpx.Response) -> str:
    """The platform's `reason` (or `error`) from a JSON error body, else the status line."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        for key in ("reason", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])[:300]
    return f"HTTP {response.status_code}"


def _server_time(response: httpx.Response) -> float | None:
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    # The header has whole seconds: the true time is half a second later on average.
    return parsed.timestamp() + 0.5


def _is_sha256(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


class HttpPlatform:
    """The platform over HTTPS; implements kiosk.ports.Platform and what the relay needs."""

    def __init__(
        self,
        config: Config,
        enrollment: Enrollment,
        *,
        url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        clock_offset: float = 0.0,
    ) -> None:
        self.config = config
        self.enrollment = enrollment
        self.url = (url or platform_url(config, enrollment)).rstrip("/")
        self._clock = clock
        self.clock_offset = clock_offset  # platform time minus our time, learned from Date
        p = config.platform
        self._timeout = httpx.Timeout(p.request_timeout_s, connect=p.connect_timeout_s)
        self._lookup_timeout = httpx.Timeout(
            p.lookup_timeout_s, connect=min(p.connect_timeout_s, p.lookup_timeout_s)
        )
        self._client = httpx.Client(
            base_url=self.url,
            verify=tls_verify(p.ca_file or enrollment.ca_file),
            timeout=self._timeout,
            transport=transport,
            http1=True,
            http2=False,
            headers={"User-Agent": f"hall-kiosk/{enrollment.kiosk_id}"},
        )
        self.requests_sent = 0  # for diagnostics and benchmarks
        self._chunk_hint: int | None = None  # chunk size learned from earlier uploads

    # Plumbing ---------------------------------------------------------------------------------

    def now(self) -> float:
        """Our clock corrected by the measured offset to the platform's."""
        return self._clock() + self.clock_offset

    def _learn_clock(self, response: httpx.Response, *, force: bool = False) -> None:
        server = _server_time(response)
        if server is None:
            return
        offset = server - self._clock()
        if force or abs(offset - self.clock_offset) > _RESYNC_S:
            log.info("clock offset to the platform now %+.1f s", offset)
            self.clock_offset = offset

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        signed: bool = True,
        timeout: httpx.Timeout | None = None,
        passthrough: Collection[int] = (),
        body_sha256: bytes | None = None,
    ) -> httpx.Response:
        """Send one request and map the generic outcomes; `passthrough` statuses are returned."""
        for attempt in (1, 2):
            request = self._client.build_request(
                method,
                path,
                params=params,
                content=body,
                headers=dict(headers or {}),
                timeout=timeout or self._timeout,
            )
            if signed:
                # The signed target is the path and query exactly as they go on the wire.
                target = request.url.raw_path.decode("ascii")
                request.headers.update(
                    sign_request(
                        self.enrollment.signing_key,
                        self.enrollment.kiosk_id,
                        method,
                        target,
                        body,
                        self.now(),
                        body_sha256=body_sha256,
                    )
                )
            self.requests_sent += 1
            try:
                response = self._client.send(request)
            except httpx.TimeoutException as exc:
                raise Transient(f"{method} {path}: timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise Transient(f"{method} {path}: no connection ({type(exc).__name__})") from exc
            status = response.status_code
            if status in passthrough:
                self._learn_clock(response)
                return response
            if status == 401 and attempt == 1 and _reason(response) == "clock skew":
                # Our clock is off: correct it from the platform's Date and sign again once.
                self._learn_clock(response, force=True)
                continue
            self._learn_clock(response)
            if status in (401, 403):
                raise Unauthenticated(_reason(response))
            if status in (429, 503) or status >= 500:
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
                raise Transient(f"{method} {path}: HTTP {status}", retry_after, answered=True)
            if status in (409, 422):
                raise Refused(status, _reason(response))
            if status >= 400:
                # Not in the contract (a wrong URL, a proxy's page): never quarantine for it.
                log.error("%s %s: unexpected HTTP %d (%s)", method, path, status, _reason(response))
                raise Transient(f"{method} {path}: HTTP {status}", answered=True)
            return response
        raise Transient(f"{method} {path}: clock skew persists after correction", answered=True)

    @staticmethod
    def _json(response: httpx.Response, *keys: str) -> dict[str, Any]:
        """The JSON object the protocol promises, with `keys`; anything else is transient."""
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or any(key not in body for key in keys):
            log.warning(
                "%s %s: answer is not the JSON the protocol promises (HTTP %d, %d bytes)",
                response.request.method,
                response.request.url.path,
                response.status_code,
                len(response.content),
            )
            raise Transient(
                f"{response.request.method} {response.request.url.path}: garbage answer",
                answered=True,
            )
        return body

    def _garbage(self, response: httpx.Response, what: str) -> Transient:
        log.warning(
            "%s %s: %s (HTTP %d)",
            response.request.method,
            response.request.url.path,
            what,
            response.status_code,
        )
        return Transient(
            f"{response.request.method} {response.request.url.path}: {what}", answered=True
        )

    # Applications -----------------------------------------------------------------------------

    def put_application(self, item: OutboxItem, sealed_payload: bytes) -> list[str]:
        """PUT the sealed application under its id; returns the attachment hashes still missing."""
        document = {
            "schema": SCHEMA,
            "kiosk_seq": item.kiosk_seq,
            "thing_id": item.thing_id,
            "catalog_version": item.catalog_version,
            "created_at": item.created_at.isoformat(),
            "receipt_number": item.receipt_number,
            "channel": item.channel,
            "sealed_payload": b64(sealed_payload),
            "payload_sha256": item.payload_sha256,
            "attachments": [{"sha256": p.sha256, "size": p.size} for p in item.pages],
        }
        response = self._request(
            "PUT",
            f"{API}/applications/{item.id}",
            body=canonical_json(document),
            headers={"Content-Type": "application/json"},
        )
        body = self._json(response, "missing")
        missing = body["missing"]
        declared = {page.sha256 for page in item.pages}
        if not isinstance(missing, list) or not all(m in declared for m in missing):
            raise self._garbage(response, "'missing' names hashes this application does not have")
        return [str(m) for m in dict.fromkeys(missing)]

    def blob_offset(self, sha256: str) -> int:
        """How many bytes of the blob the platform holds (HEAD); 0 when none."""
        response = self._request("HEAD", f"{API}/blobs/{sha256}", passthrough=(403, 404))
        if response.status_code == 404:
            return 0
        if response.status_code == 403:
            # The PUT that declares it just succeeded, so the platform is confused: later.
            raise Transient(f"HEAD blob {sha256[:12]}: not declared", answered=True)
        return self._offset(response)

    def _offset(self, response: httpx.Response) -> int:
        value = response.headers.get(H_OFFSET, "")
        if not value.isdigit():
            raise self._garbage(response, "no valid Upload-Offset")
        return int(value)

    def upload_blob(
        self,
        sha256: str,
        path: Path,
        size: int,
        chunk_size: int,
        *,
        max_chunk: int | None = None,
        on_chunk: Callable[[int], None] | None = None,
        fresh: bool = False,
    ) -> None:
        """Upload the file `path` as blob `sha256`, resuming from what the platform holds.

        The first chunk is `chunk_size` (or what earlier uploads learned); each later one is
        sized to take about CHUNK_SECONDS at the rate just measured, up to `max_chunk`, and a
        failure halves it. The file is read one chunk at a time; `on_chunk(offset)` runs after
        each accepted chunk. `fresh`: the platform has just said it lacks this blob and no
        earlier attempt sent any of it, so the HEAD is skipped (a 409 would correct us).
        """
        high = max(1, min(max_chunk or chunk_size, MAX_CHUNK))
        low = min(MIN_CHUNK, chunk_size, high)
        chunk_size = max(low, min(self._chunk_hint or chunk_size, high))
        offset = 0 if fresh else self.blob_offset(sha256)
        if offset > size:
            raise Transient(f"blob {sha256[:12]}: the platform holds more than its size")
        restarted = False
        resent_at: int | None = None  # the offset of a chunk already sent again after a 460
        conflicts = 0
        # A chunk that is the whole file has the file's own name as its SHA-256: no pass over
        # it here. Only a file damaged since submission breaks that, and the platform's
        # "content digest" refusal then has it hashed and sent again (and refused as damaged).
        trust_name = True
        with open(path, "rb") as f:
            while offset < size:
                f.seek(offset)
                chunk = f.read(min(chunk_size, size - offset))
                if not chunk:
                    raise Transient(f"blob {sha256[:12]}: the local file is shorter than recorded")
                started = time.monotonic()
                named = trust_name and offset == 0 and len(chunk) == size
                chunk_sha = bytes.fromhex(sha256) if named else hashlib.sha256(chunk).digest()
                try:
                    response = self._request(
                        "PATCH",
                        f"{API}/blobs/{sha256}",
                        body=chunk,
                        headers={
                            H_OFFSET: str(offset),
                            H_LENGTH: str(size),
                            H_CHECKSUM: f"sha256 {b64(chunk_sha)}",
                            "Content-Type": "application/offset+octet-stream",
                        },
                        passthrough=(403, 409, 422, CHECKSUM_MISMATCH),
                        body_sha256=chunk_sha,
                    )
                except Transient:
                    self._chunk_hint = max(low, len(chunk) // 2)
                    raise
                except Unauthenticated as exc:
                    if named and exc.reason == DIGEST_MISMATCH:
                        log.warning("blob %s: the local file does not hash to its name", sha256)
                        trust_name = False
                        continue
                    raise
                elapsed = time.monotonic() - started
                status = response.status_code
                if status == 403:
                    # No application of ours declares it (any more): the platform lost state.
                    raise Transient(f"PATCH blob {sha256[:12]}: not declared", answered=True)
                if status == 409:
                    conflicts += 1
                    if conflicts > _MAX_OFFSET_CONFLICTS:
                        raise Transient(f"blob {sha256[:12]}: offsets keep conflicting")
                    server_offset = response.headers.get(H_OFFSET, "")
                    offset = (
                        int(server_offset) if server_offset.isdigit() else self.blob_offset(sha256)
                    )
                    if offset > size:
                        raise self._garbage(response, "Upload-Offset beyond the blob's length")
                    continue
                if status == CHECKSUM_MISMATCH:
                    if resent_at == offset:
                        raise Transient(
                            f"blob {sha256[:12]}: chunk at {offset} damaged twice", answered=True
                        )
                    resent_at = offset
                    continue
                if status == 422:
                    if restarted:
                        raise Refused(422, _reason(response))
                    log.warning("blob %s: the platform's whole-file hash failed; from 0", sha256)
                    restarted, offset = True, 0
                    continue
                new_offset = self._offset(response)
                if not (offset < new_offset <= size):
                    raise self._garbage(response, f"Upload-Offset {new_offset} after {offset}")
                offset, conflicts = new_offset, 0
                rate = len(chunk) / max(elapsed, 1e-3)
                wanted = min(int(rate * CHUNK_SECONDS), len(chunk) * _GROWTH)
                chunk_size = self._chunk_hint = max(low, min(wanted, high))
                if on_chunk is not None:
                    on_chunk(offset)

    def commit(self, app_id: str) -> tuple[dict[str, Any], str]:
        """Ask the platform to commit; returns (receipt, signature), not yet verified."""
        response = self._request(
            "POST", f"{API}/applications/{app_id}/commit", passthrough=(404, 409)
        )
        if response.status_code == 404:
            raise Transient(f"commit {app_id}: the platform does not know it", answered=True)
        if response.status_code == 409:
            # "incomplete": a blob went missing on the platform; the next attempt re-PUTs.
            raise Transient(f"commit {app_id}: {_reason(response)}", answered=True)
        body = self._json(response, "receipt", "signature")
        receipt, signature = body["receipt"], body["signature"]
        if not isinstance(receipt, dict) or not isinstance(signature, str):
            raise self._garbage(response, "receipt or signature malformed")
        return receipt, signature

    # Status, catalog, ratings -----------------------------------------------------------------

    def status_changes(self, cursor: int, limit: int) -> tuple[list[StatusChange], int, bool]:
        """One page of the status feed after `cursor`: (changes, next_cursor, has_more)."""
        response = self._request(
            "GET",
            f"{API}/status-changes",
            params={"cursor": cursor, "limit": limit},
            passthrough=(410,),
        )
        if response.status_code == 410:
            raise CursorReset(f"cursor {cursor} is beyond the platform's sequence")
        body = self._json(response, "changes", "next_cursor", "has_more")
        try:
            changes = [
                StatusChange(
                    seq=int(c["seq"]),
                    application_id=str(c["application_id"]),
                    status=str(c["status"]),
                    platform_number=(
                        None if c.get("platform_number") is None else str(c["platform_number"])
                    ),
                    services={str(k): str(v) for k, v in dict(c.get("services") or {}).items()},
                    note=str(c.get("note") or ""),
                    at=str(c.get("at") or ""),
                )
                for c in body["changes"]
            ]
            next_cursor = int(body["next_cursor"])
        except (KeyError, TypeError, ValueError):
            raise self._garbage(response, "malformed status changes") from None
        has_more = body["has_more"]
        if not isinstance(has_more, bool) or next_cursor < cursor:
            raise self._garbage(response, "status feed cursor went backwards or is malformed")
        return changes, next_cursor, has_more

    def catalog(self, etag: str | None) -> tuple[bytes | None, str | None]:
        """The catalog document when it changed since `etag` (else None), and its ETag."""
        headers = {"If-None-Match": etag} if etag else {}
        response = self._request("GET", f"{API}/catalog", headers=headers, passthrough=(304,))
        if response.status_code == 304:
            return None, etag
        new_etag = response.headers.get("ETag")
        content = response.content
        if new_etag is not None and new_etag.strip('"') != sha256_hex(content):
            raise self._garbage(response, "catalog bytes do not match their ETag")
        return content, new_etag

    def put_rating(self, rating: RatingItem) -> None:
        """PUT one rating (好差评) under its id; idempotent."""
        document = {
            "application_id": rating.application_id,
            "score": rating.score,
            "created_at": rating.created_at.isoformat(),
        }
        response = self._request(
            "PUT",
            f"{API}/ratings/{rating.id}",
            body=canonical_json(document),
            headers={"Content-Type": "application/json"},
        )
        if response.status_code not in (200, 201):
            raise self._garbage(response, "unexpected success status")

    def health(self) -> tuple[float, float | None]:
        """(round-trip seconds, the platform's clock from Date) of an unsigned GET /v1/health."""
        start = time.monotonic()
        response = self._request("GET", f"{API}/health", signed=False)
        latency = time.monotonic() - start
        body = self._json(response, "ok")
        if body["ok"] is not True:
            raise self._garbage(response, "health is not ok")
        return latency, _server_time(response)

    # kiosk.ports.Platform ---------------------------------------------------------------------

    def held_licences(self, id_number: str) -> frozenset[str]:
        """E-licences the platform holds for this person; PlatformUnavailable on any failure."""
        try:
            response = self._request(
                "POST",
                f"{API}/licences",
                body=json.dumps({"id_number": id_number}).encode(),
                headers={"Content-Type": "application/json"},
                timeout=self._lookup_timeout,
            )
            held = self._json(response, "held")["held"]
            if not isinstance(held, list) or not all(isinstance(h, str) for h in held):
                raise self._garbage(response, "'held' is not a list of strings")
        except (Transient, Refused, Unauthenticated) as exc:
            # The exception text carries paths and statuses only, never the ID number.
            raise PlatformUnavailable(str(exc)) from exc
        return frozenset(held)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpPlatform:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
