"""Applications (申请) and their lifecycle, from the kiosk's queue to the platform's verdict."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    QUEUED = "queued"  # durably saved on the kiosk, waiting for the network
    UPLOADING = "uploading"
    ACCEPTED = "accepted"  # the platform holds it and has given it a 办件编号
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    NEEDS_SUPPLEMENT = "needs_supplement"  # 补正
    QUARANTINED = "quarantined"  # set aside: the platform refused it; staff decide
    VOIDED = "voided"  # cancelled by staff before it ever left the kiosk; never sent


TRANSITIONS: dict[Status, frozenset[Status]] = {
    # Only a queued one can be voided, and storage.void() also insists that no upload of it
    # was ever begun: once a PUT may have reached the platform, it has left the kiosk.
    Status.QUEUED: frozenset({Status.UPLOADING, Status.QUARANTINED, Status.VOIDED}),
    Status.UPLOADING: frozenset({Status.QUEUED, Status.ACCEPTED, Status.QUARANTINED}),
    Status.ACCEPTED: frozenset(
        {Status.IN_PROGRESS, Status.COMPLETED, Status.REJECTED, Status.NEEDS_SUPPLEMENT}
    ),
    Status.IN_PROGRESS: frozenset({Status.COMPLETED, Status.REJECTED, Status.NEEDS_SUPPLEMENT}),
    Status.NEEDS_SUPPLEMENT: frozenset({Status.IN_PROGRESS, Status.COMPLETED, Status.REJECTED}),
    Status.QUARANTINED: frozenset({Status.QUEUED}),
    Status.COMPLETED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.VOIDED: frozenset(),
}


class TransitionError(ValueError):
    """A status change the lifecycle does not allow."""


def check_transition(current: Status, new: Status) -> None:
    if new not in TRANSITIONS[current]:
        raise TransitionError(f"{current} → {new} is not allowed")


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_application_id(now_ms: int | None = None) -> str:
    """A ULID: 48-bit milliseconds + 80 random bits, Crockford base32, sortable by time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


@dataclass(frozen=True)
class Page:
    """One scanned page, stored content-addressed under its SHA-256."""

    material_id: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Submission:
    """What the applicant hands in; the kiosk adds the receipt number when it commits."""

    thing_id: str
    catalog_version: str
    sealed_payload: bytes  # identity, answers and the page list, sealed to the platform's key
    summary: Mapping[str, Any]  # masked: safe for staff screens and logs
    id_hash: str  # keyed hash of the ID number, for progress look-up
    channel: str = "self"  # "self" or "assisted:<staff number>"
    id: str = field(default_factory=new_application_id)


@dataclass(frozen=True)
class StoredApplication:
    id: str
    thing_id: str
    catalog_version: str
    receipt_number: str
    status: Status
    channel: str
    created_at: dt.datetime
    summary: Mapping[str, Any]
    pages: tuple[Page, ...]
    platform_number: str | None = None
    services: Mapping[str, str] = field(
        default_factory=dict
    )  # per-service status from the platform
    purged: bool = False  # sealed data deleted after the platform's receipt; a tombstone remains
