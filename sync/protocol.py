"""The byte-exact parts of the sync protocol, shared by the kiosk and the reference platform.

Digests, request signatures, HPKE sealing and canonical JSON; docs/sync-protocol.md is the
specification this module implements.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

API = "/v1"
SCHEMA = 1
MAX_SKEW_S = 300
NONCE_TTL_S = 600
MAX_CHUNK = 8 << 20
DEFAULT_CHUNK = 64 << 10
MAX_ATTACHMENTS = 200
MAX_BLOB = 50 << 20

H_KIOSK = "Kiosk-Id"
H_TIMESTAMP = "Kiosk-Timestamp"
H_NONCE = "Kiosk-Nonce"
H_SIGNATURE = "Kiosk-Signature"
H_DIGEST = "Content-Digest"
H_OFFSET = "Upload-Offset"
H_LENGTH = "Upload-Length"
H_CHECKSUM = "Upload-Checksum"

# HTTP status for a chunk whose Upload-Checksum does not match (tus checksum extension).
CHECKSUM_MISMATCH = 460

PLATFORM_STATUSES = ("accepted", "in_progress", "completed", "rejected", "needs_supplement")

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
SEAL_OVERHEAD = 48


class ProtocolError(ValueError):
    """Bytes that do not follow the protocol (bad signature, bad digest, bad ciphertext)."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ProtocolError("not valid base64") from exc


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_digest(body: bytes) -> str:
    """The RFC 9530 Content-Digest value for `body`."""
    return f"sha-256=:{b64(hashlib.sha256(body).digest())}:"


def chunk_checksum(chunk: bytes) -> str:
    """The tus Upload-Checksum value for `chunk`."""
    return f"sha256 {b64(hashlib.sha256(chunk).digest())}"


# Keys ------------------------------------------------------------------------------------------


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> str:
    """A public key as base64 of its 32 raw bytes, as the protocol carries it."""
    return b64(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def ed25519_public(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(unb64(text))
    except ValueError as exc:
        raise ProtocolError("not an Ed25519 public key") from exc


def x25519_public(text: str) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(unb64(text))
    except ValueError as exc:
        raise ProtocolError("not an X25519 public key") from exc


def private_pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_pem(data: bytes) -> Ed25519PrivateKey | X25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise ProtocolError(f"unexpected key type {type(key).__name__}")
    return key


# Sealing ---------------------------------------------------------------------------------------


def page_info(application_id: str) -> bytes:
    return f"hall-kiosk/v1/page/{application_id}".encode()


def payload_info(application_id: str) -> bytes:
    return f"hall-kiosk/v1/payload/{application_id}".encode()


def seal(public_key: X25519PublicKey, plaintext: bytes, info: bytes) -> bytes:
    """HPKE base mode to the platform's key; only the platform can open the result."""
    return bytes(_SUITE.encrypt(plaintext, public_key, info=info))


def open_sealed(private_key: X25519PrivateKey, ciphertext: bytes, info: bytes) -> bytes:
    try:
        return bytes(_SUITE.decrypt(ciphertext, private_key, info=info))
    except Exception as exc:  # the library raises several types for a bad ciphertext
        raise ProtocolError("the sealed data cannot be opened") from exc


# Request signatures ----------------------------------------------------------------------------


def signing_string(
    method: str, target: str, digest: str, kiosk_id: str, timestamp: str, nonce: str
) -> bytes:
    return "\n".join((method.upper(), target, digest, kiosk_id, timestamp, nonce)).encode()


def sign_request(
    key: Ed25519PrivateKey,
    kiosk_id: str,
    method: str,
    target: str,
    body: bytes,
    now: float,
    *,
    body_sha256: bytes | None = None,
) -> dict[str, str]:
    """The headers that authenticate one request (target = path with its query string).

    `body_sha256`: the body's digest when the caller already has it (an upload chunk's
    Upload-Checksum is the same hash), to hash each chunk once."""
    digest = f"sha-256=:{b64(body_sha256)}:" if body_sha256 is not None else content_digest(body)
    timestamp = str(int(now))
    nonce = secrets.token_hex(16)
    signature = key.sign(signing_string(method, target, digest, kiosk_id, timestamp, nonce))
    return {
        H_KIOSK: kiosk_id,
        H_TIMESTAMP: timestamp,
        H_NONCE: nonce,
        H_DIGEST: digest,
        H_SIGNATURE: b64(signature),
    }


@dataclass(frozen=True)
class SignedRequest:
    kiosk_id: str
    timestamp: int
    nonce: str


DIGEST_MISMATCH = "content digest does not match the body"


def verify_request(
    headers: Mapping[str, str],
    method: str,
    target: str,
    body: bytes,
    public_key: Ed25519PublicKey,
    now: float,
) -> SignedRequest:
    """Check digest, signature and clock; ProtocolError says which failed. Replay is the
    caller's check (it owns the nonce store)."""
    try:
        kiosk_id = headers[H_KIOSK]
        timestamp = headers[H_TIMESTAMP]
        nonce = headers[H_NONCE]
        digest = headers[H_DIGEST]
        signature = unb64(headers[H_SIGNATURE])
    except KeyError as exc:
        raise ProtocolError(f"missing header {exc.args[0]}") from None
    if digest != content_digest(body):
        raise ProtocolError(DIGEST_MISMATCH)
    if not timestamp.isdigit() or len(nonce) != 32:
        raise ProtocolError("malformed timestamp or nonce")
    try:
        public_key.verify(
            signature, signing_string(method, target, digest, kiosk_id, timestamp, nonce)
        )
    except InvalidSignature:
        raise ProtocolError("bad signature") from None
    if abs(now - int(timestamp)) > MAX_SKEW_S:
        raise ProtocolError("clock skew")
    return SignedRequest(kiosk_id, int(timestamp), nonce)


# Receipts --------------------------------------------------------------------------------------


def sign_receipt(key: Ed25519PrivateKey, receipt: Mapping[str, Any]) -> str:
    return b64(key.sign(canonical_json(dict(receipt))))


def verify_receipt(
    public_key: Ed25519PublicKey, receipt: Mapping[str, Any], signature: str
) -> None:
    try:
        public_key.verify(unb64(signature), canonical_json(dict(receipt)))
    except InvalidSignature:
        raise ProtocolError("the receipt's signature does not verify") from None
