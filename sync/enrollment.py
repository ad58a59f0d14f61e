"""Enrollment: this kiosk's own key pair, registered once with the platform by a one-time code.

Files (docs/sync-protocol.md, Keys): `DATA/keys/kiosk-signing.pem` (0600) and
`DATA/keys/platform.json` (URL, kiosk id, the platform's two public keys), each written
atomically: temp file, fsync, rename, directory fsync.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from kiosk.config import Config
from kiosk.durable import write_atomic
from sync.protocol import (
    API,
    ProtocolError,
    canonical_json,
    ed25519_public,
    load_private_pem,
    private_pem,
    raw_public,
    x25519_public,
)

log = logging.getLogger(__name__)

KEYS_DIR = "keys"
SIGNING_KEY_FILE = "kiosk-signing.pem"
PLATFORM_FILE = "platform.json"


class EnrollmentError(RuntimeError):
    """Enrollment failed; the message says why in words for the technician."""


@dataclass(frozen=True)
class Enrollment:
    """What the kiosk needs to talk to the platform it enrolled with."""

    url: str
    kiosk_id: str
    signing_key: Ed25519PrivateKey
    seal_public_key: X25519PublicKey
    receipt_public_key: Ed25519PublicKey
    ca_file: str = ""  # the CA given at enrollment; config platform.ca_file takes precedence


def kiosk_id(config: Config) -> str:
    return f"{config.hall.code}-{config.hall.kiosk_code}"


def keys_dir(data_dir: Path) -> Path:
    return Path(data_dir) / KEYS_DIR


def enroll(
    config: Config,
    url: str,
    code: str,
    *,
    ca_file: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Enrollment:
    """Register a new key pair for this kiosk with the platform at `url`, using a one-time code.

    The files are written only after the platform accepted the key; a replaced PC re-enrolls
    with a new code and the old key stops working.
    """
    from sync.client import tls_verify  # the client imports this module

    url = url.rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise EnrollmentError(f"the platform URL must start with https:// ({url!r})")
    ident = kiosk_id(config)
    key = Ed25519PrivateKey.generate()
    request = {"code": code, "kiosk_id": ident, "public_key": raw_public(key.public_key())}
    pinned = ca_file if ca_file is not None else config.platform.ca_file
    p = config.platform
    try:
        with httpx.Client(
            verify=tls_verify(pinned),
            timeout=httpx.Timeout(p.request_timeout_s, connect=p.connect_timeout_s),
            transport=transport,
        ) as client:
            response = client.post(
                f"{url}{API}/enroll",
                content=canonical_json(request),
                headers={"Content-Type": "application/json"},
            )
    except httpx.TransportError as exc:
        raise EnrollmentError(f"cannot reach the platform at {url}: {exc}") from exc
    except OSError as exc:  # e.g. the CA file cannot be read
        raise EnrollmentError(f"cannot set up the connection: {exc}") from exc
    if response.status_code == 403:
        raise EnrollmentError("the platform refused the code (used, unknown or expired)")
    if response.status_code != 201:
        raise EnrollmentError(f"the platform answered HTTP {response.status_code}")
    try:
        body = response.json()
        if not isinstance(body, dict) or body.get("kiosk_id") != ident:
            raise ValueError("kiosk_id missing or different")
        seal_key = x25519_public(str(body["seal_public_key"]))
        receipt_key = ed25519_public(str(body["receipt_public_key"]))
    except (ValueError, KeyError, ProtocolError) as exc:
        raise EnrollmentError(f"the platform's answer is not an enrollment: {exc}") from exc

    enrollment = Enrollment(url, ident, key, seal_key, receipt_key, pinned or "")
    save_enrollment(config.data_dir, enrollment)
    log.info("enrolled as %s with %s", ident, url)
    return enrollment


def save_enrollment(data_dir: Path, enrollment: Enrollment) -> None:
    """Write the signing key, then platform.json (which names the key's public half)."""
    directory = keys_dir(data_dir)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(directory / SIGNING_KEY_FILE, private_pem(enrollment.signing_key), 0o600)
        document: dict[str, Any] = {
            "url": enrollment.url,
            "kiosk_id": enrollment.kiosk_id,
            "kiosk_public_key": raw_public(enrollment.signing_key.public_key()),
            "seal_public_key": raw_public(enrollment.seal_public_key),
            "receipt_public_key": raw_public(enrollment.receipt_public_key),
            "ca_file": enrollment.ca_file,
        }
        write_atomic(
            directory / PLATFORM_FILE,
            json.dumps(document, indent=2, sort_keys=True).encode(),
            0o644,
        )
    except OSError as exc:
        raise EnrollmentError(f"cannot save the keys in {directory}: {exc.strerror}") from exc


def load_enrollment(data_dir: Path) -> Enrollment | None:
    """The saved enrollment, or None when this kiosk is not (completely) enrolled."""
    directory = keys_dir(data_dir)
    key_path, platform_path = directory / SIGNING_KEY_FILE, directory / PLATFORM_FILE
    if not key_path.exists() or not platform_path.exists():
        return None
    try:
        key = load_private_pem(key_path.read_bytes())
        document = json.loads(platform_path.read_text(encoding="utf-8"))
        if not isinstance(key, Ed25519PrivateKey):
            raise ProtocolError("the signing key is not Ed25519")
        if document.get("kiosk_public_key") != raw_public(key.public_key()):
            # A crash between writing the new key and its platform.json: enroll again.
            log.error("the signing key does not match %s; enroll again", platform_path)
            return None
        return Enrollment(
            url=str(document["url"]),
            kiosk_id=str(document["kiosk_id"]),
            signing_key=key,
            seal_public_key=x25519_public(str(document["seal_public_key"])),
            receipt_public_key=ed25519_public(str(document["receipt_public_key"])),
            ca_file=str(document.get("ca_file") or ""),
        )
    except (OSError, ValueError, KeyError, TypeError, ProtocolError) as exc:
        log.error("the enrollment in %s cannot be used: %s", directory, exc)
        return None
