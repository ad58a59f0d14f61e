"""The platform's HTTP face (FastAPI): every endpoint of docs/sync-protocol.md.

Each endpoint reads the raw body on the event loop, then does the rest in one worker thread:
the signature check, the nonce, the database and the file I/O (fsync blocks).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from email.utils import formatdate
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiosk import __version__
from kiosk.storage import StorageError
from sync.platform.admission import Admission
from sync.platform.errors import (
    ChecksumMismatch,
    Refused,
    TooLarge,
    Unauthenticated,
    UnsupportedMedia,
)
from sync.platform.store import PlatformStore, iso_utc
from sync.protocol import (
    API,
    H_CHECKSUM,
    H_DIGEST,
    H_KIOSK,
    H_LENGTH,
    H_OFFSET,
    MAX_BLOB,
    MAX_CHUNK,
    ProtocolError,
    unb64,
    verify_request,
)

log = logging.getLogger("sync.platform")

UNSIGNED_PATHS = frozenset({f"{API}/enroll", f"{API}/health"})
OFFSET_STREAM = "application/offset+octet-stream"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500

Work = Callable[[str, bytes], Response]


class _Frame:
    """Pure ASGI around the app: admission control before the signed endpoints, and a `Date`
    header on every answer (uvicorn's own is switched off so there is exactly one)."""

    def __init__(
        self, app: ASGIApp, admission: Admission | None, clock: Callable[[], float]
    ) -> None:
        self.app = app
        self.admission = admission
        self.clock = clock
        self._date_second = -1
        self._date = b""

    def _http_date(self) -> bytes:
        now = self.clock()
        if int(now) != self._date_second:
            self._date_second = int(now)
            self._date = formatdate(now, usegmt=True).encode("ascii")
        return self._date

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"date"]
                headers.append((b"date", self._http_date()))
                message = {**message, "headers": headers}
            await send(message)

        path = scope["path"]
        signed = path.startswith(f"{API}/") and path not in UNSIGNED_PATHS
        if self.admission is not None and signed:
            wait = self.admission.admit()
            if wait is not None:
                busy = _answer(
                    429,
                    {"error": "busy", "reason": "the platform is at capacity"},
                    {"Retry-After": str(wait)},
                    head=scope["method"] == "HEAD",
                )
                await busy(scope, receive, send_dated)
                return
        await self.app(scope, receive, send_dated)


def _answer(
    status: int,
    body: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None = None,
    *,
    head: bool = False,
) -> Response:
    """A JSON answer (no body for HEAD, whose answers carry headers only)."""
    if body is None or head:
        return Response(status_code=status, headers=dict(headers or {}))
    return JSONResponse(dict(body), status_code=status, headers=dict(headers or {}))


def _int_header(headers: Mapping[str, str], name: str, high: int) -> int:
    value = headers.get(name, "")
    if not value.isdigit() or int(value) > high:
        raise Refused(f"header {name} must be an integer from 0 to {high}")
    return int(value)


def create_app(
    store: PlatformStore,
    *,
    rate: float | None = None,
    clock: Callable[[], float] = time.time,
    admission: Admission | None = None,
) -> FastAPI:
    """The platform as an ASGI app; `rate` (requests/s) turns on admission control."""
    if admission is None and rate is not None:
        admission = Admission(rate)
    rng = random.Random()
    app = FastAPI(
        title="Hall kiosk reference platform",
        version=__version__,
        summary="The server side of the kiosk sync protocol (docs/sync-protocol.md).",
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    app.state.admission = admission
    app.add_middleware(_Frame, admission=admission, clock=clock)

    def authenticate(method: str, target: str, headers: Mapping[str, str], body: bytes) -> str:
        kiosk_id = headers.get(H_KIOSK)
        if not kiosk_id:
            raise Unauthenticated(f"missing header {H_KIOSK}")
        key = store.kiosk_key(kiosk_id)
        if key is None:
            raise Unauthenticated("unknown kiosk")
        now = clock()
        try:
            signed = verify_request(headers, method, target, body, key, now)
        except ProtocolError as exc:
            raise Unauthenticated(str(exc)) from None
        if store.signed_before_start(signed.timestamp):
            raise Unauthenticated("clock skew")
        if not store.remember_nonce(kiosk_id, signed.nonce, now):
            raise Unauthenticated("replay")
        return kiosk_id

    def guarded(method: str, work: Callable[[], Response]) -> Response:
        """Refusals become their 4xx; storage trouble a 503 (transient); bugs a 500."""
        head = method == "HEAD"
        try:
            return work()
        except Refused as exc:
            return _answer(exc.status, exc.body(), exc.headers(), head=head)
        except StorageError as exc:
            log.error("storage trouble: %s", exc)
            retry = str(rng.randint(5, 30))
            body = {"error": "unavailable", "reason": exc.reason}
            return _answer(503, body, {"Retry-After": retry}, head=head)
        except Exception:
            log.exception("unexpected failure in %s", method)
            return _answer(500, {"error": "internal", "reason": "internal error"}, head=head)

    async def signed(request: Request, work: Work) -> Response:
        body = await request.body()
        query = request.url.query
        target = request.url.path + (f"?{query}" if query else "")
        method = request.method
        headers = request.headers

        def run() -> Response:
            return guarded(method, lambda: work(authenticate(method, target, headers, body), body))

        return await run_in_threadpool(run)

    # Unsigned -----------------------------------------------------------------------------

    @app.get(f"{API}/health", summary="Reachability, version and the platform's clock")
    async def health() -> Response:
        return _answer(200, {"ok": True, "time": iso_utc(clock()), "version": __version__})

    @app.post(
        f"{API}/enroll",
        summary="Enroll a kiosk with a one-time code; returns the platform's public keys",
        status_code=201,
        openapi_extra=_json_body(
            {"code": "string", "kiosk_id": "string", "public_key": "base64 raw Ed25519"}
        ),
    )
    async def enroll(request: Request) -> Response:
        body = await request.body()

        def run() -> Response:
            return guarded("POST", lambda: _answer(201, store.enroll(body)))

        return await run_in_threadpool(run)

    # Applications -------------------------------------------------------------------------

    @app.put(
        f"{API}/applications/{{app_id}}",
        summary="Declare an application: sealed payload and attachment list (idempotent)",
        openapi_extra=_json_body(
            {
                "schema": "integer",
                "kiosk_seq": "integer",
                "thing_id": "string",
                "catalog_version": "string",
                "created_at": "string",
                "receipt_number": "string",
                "channel": "string",
                "sealed_payload": "base64",
                "payload_sha256": "hex",
                "attachments": "array",
            }
        ),
    )
    async def put_application(app_id: str, request: Request) -> Response:
        def work(kiosk_id: str, body: bytes) -> Response:
            created, missing = store.put_application(kiosk_id, app_id, body)
            return _answer(201 if created else 200, {"id": app_id, "missing": missing})

        return await signed(request, work)

    @app.post(
        f"{API}/applications/{{app_id}}/commit",
        summary="Commit an application once every attachment is held; a signed receipt",
    )
    async def commit(app_id: str, request: Request) -> Response:
        def work(kiosk_id: str, body: bytes) -> Response:
            receipt, signature = store.commit(kiosk_id, app_id)
            return _answer(200, {"receipt": receipt, "signature": signature})

        return await signed(request, work)

    # Blobs --------------------------------------------------------------------------------

    @app.head(
        f"{API}/blobs/{{sha256}}",
        summary="How much of a blob the platform holds (Upload-Offset, Upload-Length)",
    )
    async def head_blob(sha256: str, request: Request) -> Response:
        def work(kiosk_id: str, body: bytes) -> Response:
            offset, length = store.blob_offset(kiosk_id, sha256)
            headers = {H_OFFSET: str(offset), H_LENGTH: str(length), "Cache-Control": "no-store"}
            return Response(status_code=200, headers=headers)

        return await signed(request, work)

    @app.patch(
        f"{API}/blobs/{{sha256}}",
        summary="Append one chunk (at most 8 MiB) to a blob at Upload-Offset",
        status_code=204,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {OFFSET_STREAM: {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def patch_blob(sha256: str, request: Request) -> Response:
        declared_length = request.headers.get("content-length", "")
        if declared_length.isdigit() and int(declared_length) > MAX_CHUNK:
            # Refused before reading: a chunk this big is never stored.
            return _answer(413, TooLarge(f"a chunk is at most {MAX_CHUNK} bytes").body())

        def work(kiosk_id: str, body: bytes) -> Response:
            headers = request.headers
            if len(body) > MAX_CHUNK:
                raise TooLarge(f"a chunk is at most {MAX_CHUNK} bytes")
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if media != OFFSET_STREAM:
                raise UnsupportedMedia(f"Content-Type must be {OFFSET_STREAM}")
            offset = _int_header(headers, H_OFFSET, MAX_BLOB)
            length = _int_header(headers, H_LENGTH, MAX_BLOB)
            algorithm, _, encoded = headers.get(H_CHECKSUM, "").partition(" ")
            if algorithm != "sha256":
                raise Refused(f"header {H_CHECKSUM} must be 'sha256 <base64>'")
            # Content-Digest was checked against the body already: the same SHA-256, so the
            # chunk's checksum costs no second pass over its bytes.
            digest = headers[H_DIGEST].removeprefix("sha-256=:").removesuffix(":")
            try:
                matches = unb64(encoded.strip()) == unb64(digest)
            except ProtocolError:
                matches = False
            if not matches:
                raise ChecksumMismatch("the chunk does not match Upload-Checksum; discarded")
            new_offset = store.append_blob(kiosk_id, sha256, offset, length, body, unb64(digest))
            return Response(status_code=204, headers={H_OFFSET: str(new_offset)})

        return await signed(request, work)

    # Status, catalog, ratings, licences ---------------------------------------------------

    @app.get(
        f"{API}/status-changes",
        summary="This kiosk's status changes after `cursor` (410 past the platform's last)",
    )
    async def status_changes(request: Request) -> Response:
        def work(kiosk_id: str, body: bytes) -> Response:
            params = request.query_params
            cursor_text = params.get("cursor", "0")
            limit_text = params.get("limit", str(DEFAULT_LIMIT))
            if not cursor_text.isdigit():
                raise Refused("cursor must be a non-negative integer")
            if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
                raise Refused(f"limit must be an integer from 1 to {MAX_LIMIT}")
            cursor = int(cursor_text)
            changes, more = store.changes(kiosk_id, cursor, int(limit_text))
            return _answer(
                200,
                {
                    "changes": [c.as_json() for c in changes],
                    "next_cursor": changes[-1].seq if changes else cursor,
                    "has_more": more,
                },
            )

        return await signed(request, work)

    @app.get(f"{API}/catalog", summary="The catalog, with a strong ETag (304 on If-None-Match)")
    async def catalog(request: Request) -> Response:
        def work(kiosk_id: str, body: bytes) -> Response:
            data, digest = store.catalog()
            etag = f'"{digest}"'
            wanted = request.headers.get("if-none-match", "")
            tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
            if etag in tags or "*" in tags:
                return Response(status_code=304, headers={"ETag": etag})
            return Response(data, media_type="application/json", headers={"ETag": etag})

        return await signed(request, work)

    @app.put(
        f"{API}/ratings/{{rating_id}}",
        summary="A 好差评 rating (idempotent by id)",
        openapi_extra=_json_body(
            {"application_id": "string", "score": "integer", "created_at": "string"}
        ),
    )
    async def put_rating(rating_id: str, request: Request) -> Response:
        def work(kiosk_id: str, body: bytes) -> Response:
            created = store.put_rating(kiosk_id, rating_id, body)
            return _answer(201 if created else 200, {"id": rating_id})

        return await signed(request, work)

    @app.post(
        f"{API}/licences",
        summary="The e-licences (电子证照) the government holds for an ID number",
        openapi_extra=_json_body({"id_number": "string"}),
    )
    async def licences(request: Request) -> Response:
        def work(kiosk_id: str, body: bytes) -> Response:
            return _answer(200, {"held": store.held_licences(body)})

        return await signed(request, work)

    return app


def _json_body(fields: Mapping[str, str]) -> dict[str, Any]:
    """An OpenAPI request body naming the JSON fields (the endpoints read raw bytes)."""
    kinds = {"integer": "integer", "array": "array"}
    properties = {
        name: {"type": kinds.get(kind, "string"), "description": kind}
        for name, kind in fields.items()
    }
    schema = {"type": "object", "properties": properties, "required": list(fields)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
