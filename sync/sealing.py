"""Sealing at submission: HPKE to the platform's public key (docs/sync-protocol.md, Sealing)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from sync.protocol import page_info, payload_info, seal


class HpkeSealer:
    """Implements kiosk.ports.Sealer; holds only the platform's public key."""

    def __init__(self, platform_public_key: X25519PublicKey) -> None:
        self._key = platform_public_key

    def seal_page(self, application_id: str, plaintext: bytes) -> bytes:
        return seal(self._key, plaintext, page_info(application_id))

    def seal_payload(self, application_id: str, plaintext: bytes) -> bytes:
        return seal(self._key, plaintext, payload_info(application_id))
