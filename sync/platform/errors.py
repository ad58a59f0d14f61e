"""The platform's refusals: each is one 4xx answer of docs/sync-protocol.md."""

from __future__ import annotations

from typing import Any

from sync.protocol import CHECKSUM_MISMATCH, H_OFFSET


class Refused(Exception):
    """A request the platform answers with a 4xx; `status`, `body()` and `headers()` say how."""

    status = 400
    error = "bad_request"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "reason": self.reason}

    def headers(self) -> dict[str, str]:
        return {}


class Unauthenticated(Refused):
    """Unknown kiosk, bad signature or digest, clock skew, replayed nonce."""

    status = 401
    error = "unauthenticated"


class Forbidden(Refused):
    """A bad enrollment code, or a blob no application of this kiosk declares."""

    status = 403
    error = "forbidden"


class NotFound(Refused):
    status = 404
    error = "not_found"


class Conflict(Refused):
    """The id exists with different content."""

    status = 409
    error = "conflict"


class Incomplete(Refused):
    """A commit before every attachment is held whole."""

    status = 409
    error = "incomplete"

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"{len(missing)} attachment(s) missing")
        self.missing = missing

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "missing": self.missing}


class OffsetMismatch(Refused):
    """A chunk sent for another offset than the platform holds; the answer carries its offset."""

    status = 409
    error = "offset"

    def __init__(self, offset: int) -> None:
        super().__init__(f"the platform holds {offset} byte(s)")
        self.offset = offset

    def headers(self) -> dict[str, str]:
        return {H_OFFSET: str(self.offset)}


class Gone(Refused):
    """A status cursor beyond the platform's last sequence (restored from a backup)."""

    status = 410
    error = "gone"


class TooLarge(Refused):
    status = 413
    error = "too_large"


class UnsupportedMedia(Refused):
    status = 415
    error = "unsupported_media_type"


class Invalid(Refused):
    """Malformed content; the kiosk quarantines the item."""

    status = 422
    error = "invalid"


class ChecksumMismatch(Refused):
    """A chunk whose Upload-Checksum does not match its bytes; the chunk is discarded."""

    status = CHECKSUM_MISMATCH
    error = "checksum"
