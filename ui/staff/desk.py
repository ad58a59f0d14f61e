"""The counter clerk's desk: today's work and what staff may do with an application.

Qt-free, so tests drive it directly: the list of this kiosk's applications of a day with their
delivery state, filters and a summary, and the actions (reprint, re-queue, set aside, void),
each checked against the clerk's role and written to the audit log with ids only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from kiosk.application import Status, StoredApplication
from kiosk.audit import AuditLog
from kiosk.receipt import Receipt, receipt_from_json, reprinted
from kiosk.staff import StaffSession
from kiosk.storage import Storage

log = logging.getLogger(__name__)

SyncState = Literal["pending", "delivered", "set_aside", "voided"]
SYNC_STATES: tuple[SyncState, ...] = ("pending", "delivered", "set_aside", "voided")
Channel = Literal["self", "assisted"]

# Reasons offered as buttons; "other" asks for a few words. Keys are what the audit records.
VOID_REASONS = ("applicant_withdrew", "duplicate", "wrong_thing", "other")
SET_ASIDE_REASONS = ("check_materials", "platform_problem", "other")
REQUEUE_REASONS = ("platform_fixed", "checked_ok", "other")


class NotAllowed(PermissionError):
    """The logged-in role may not do this (kiosk.staff.PERMISSIONS)."""


def sync_state(status: Status) -> SyncState:
    """Where the application is on its way to the platform."""
    if status in (Status.QUEUED, Status.UPLOADING):
        return "pending"
    if status is Status.QUARANTINED:
        return "set_aside"
    if status is Status.VOIDED:
        return "voided"
    return "delivered"


def channel_of(channel: str) -> Channel:
    return "assisted" if channel.startswith("assisted:") else "self"


def reason_text(reason: str, other_text: str = "") -> str:
    """A chosen reason key, or "other: <the clerk's words>"; ValueError without words."""
    if reason != "other":
        return reason
    words = " ".join(other_text.split())[:200]
    if not words:
        raise ValueError("the reason 'other' needs a few words")
    return f"other: {words}"


@dataclass(frozen=True)
class WorkItem:
    """One application as staff see it: masked, never a full name or ID number."""

    id: str
    receipt_number: str
    platform_number: str | None
    thing_id: str
    masked_name: str
    masked_id_number: str
    status: Status
    sync: SyncState
    reason: str  # why it is set aside or voided; the last delivery error while pending
    channel: str
    created_at: dt.datetime
    times_printed: int
    attempts: int

    @property
    def voidable(self) -> bool:
        """Never sent: the only ones that may be voided (storage.void has the last word)."""
        return self.status is Status.QUEUED and self.attempts == 0


@dataclass(frozen=True)
class WorkFilter:
    """None in a field: no filter on it."""

    status: Status | None = None
    sync: SyncState | None = None
    channel: Channel | None = None

    def matches(self, item: WorkItem) -> bool:
        return (
            (self.status is None or item.status is self.status)
            and (self.sync is None or item.sync == self.sync)
            and (self.channel is None or channel_of(item.channel) == self.channel)
        )


@dataclass(frozen=True)
class Summary:
    total: int
    by_thing: dict[str, int] = field(default_factory=dict)
    by_sync: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    assisted: int = 0


def summarize(items: Sequence[WorkItem]) -> Summary:
    """Counts by thing, by delivery state and by status."""
    return Summary(
        total=len(items),
        by_thing=dict(Counter(i.thing_id for i in items)),
        by_sync={state: sum(1 for i in items if i.sync == state) for state in SYNC_STATES},
        by_status=dict(Counter(i.status.value for i in items)),
        assisted=sum(1 for i in items if channel_of(i.channel) == "assisted"),
    )


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


class StaffDesk:
    """Today's work and the actions on it, for one logged-in staff member at a time."""

    def __init__(
        self,
        storage: Storage,
        audit: AuditLog,
        *,
        clock: Callable[[], dt.datetime] = _local_now,
        on_requeued: Callable[[str], None] | None = None,
    ) -> None:
        self.storage = storage
        self.audit = audit
        self._clock = clock
        self._on_requeued = on_requeued  # e.g. wake the relay

    # Reading ----------------------------------------------------------------------------------

    def todays_work(self, day: dt.date | None = None) -> list[WorkItem]:
        """This kiosk's applications saved on `day` (today by default), newest first."""
        day = day or self._clock().date()
        apps = self.storage.list_applications(day)
        return [self._item(app) for app in reversed(apps)]

    def _item(self, app: StoredApplication) -> WorkItem:
        attempts, last_error = self.storage.delivery_state(app.id)
        state = sync_state(app.status)
        if state == "set_aside":
            reason = self.storage.quarantine_reason(app.id)
        elif state == "voided":
            reason = self.storage.void_reason(app.id)
        else:
            reason = last_error if state == "pending" else ""
        return WorkItem(
            id=app.id,
            receipt_number=app.receipt_number,
            platform_number=app.platform_number,
            thing_id=app.thing_id,
            masked_name=str(app.summary.get("name", "")),
            masked_id_number=str(app.summary.get("id_number", "")),
            status=app.status,
            sync=state,
            reason=reason,
            channel=app.channel,
            created_at=app.created_at,
            times_printed=self.storage.times_printed(app.id),
            attempts=attempts,
        )

    # Actions ----------------------------------------------------------------------------------

    @staticmethod
    def _require(session: StaffSession, action: str) -> None:
        if not session.can(action):
            raise NotAllowed(f"{session.role} may not {action}")

    def reprint(self, session: StaffSession, application_id: str) -> Receipt:
        """The stored receipt marked 补打, ready for the printer (LookupError without one)."""
        self._require(session, "reprint")
        document = self.storage.receipt_document(application_id)
        if document is None:
            raise LookupError(f"application {application_id} has no stored receipt")
        copy = self.storage.times_printed(application_id) + 1
        return reprinted(receipt_from_json(document), self._clock(), copy)

    def reprint_done(self, session: StaffSession, application_id: str, printed: bool) -> int:
        """Count the print when it came out, audit the attempt; the new times printed."""
        if printed:
            self.storage.mark_printed(application_id)
        times = self.storage.times_printed(application_id)
        self.audit.append(
            session.staff_number,
            "reprint",
            {"application_id": application_id, "printed": printed, "times_printed": times},
        )
        return times

    def void(self, session: StaffSession, application_id: str, reason: str) -> None:
        """Void one never sent (storage.NotVoidable otherwise), with the reason."""
        self._require(session, "void")
        self.storage.void(application_id, f"staff {session.staff_number}: {reason}")
        self.audit.append(
            session.staff_number, "void", {"application_id": application_id, "reason": reason}
        )

    def requeue(self, session: StaffSession, application_id: str, reason: str) -> None:
        """Send a set-aside one again (TransitionError unless it is set aside)."""
        self._require(session, "requeue")
        self.storage.requeue(application_id, f"staff {session.staff_number}: {reason}")
        self.audit.append(
            session.staff_number, "requeue", {"application_id": application_id, "reason": reason}
        )
        if self._on_requeued is not None:
            self._on_requeued(application_id)

    def set_aside(self, session: StaffSession, application_id: str, reason: str) -> None:
        """Hold back a queued one (TransitionError while it is being sent or once sent)."""
        self._require(session, "set_aside")
        self.storage.set_aside(application_id, f"staff {session.staff_number}: {reason}")
        self.audit.append(
            session.staff_number,
            "set_aside",
            {"application_id": application_id, "reason": reason},
        )

    def manual_identity(
        self, session: StaffSession, who: str, reason: str, masked_id_number: str
    ) -> None:
        """Record that staff typed an identity in (the masked number only)."""
        self._require(session, "manual_identity")
        self.audit.append(
            session.staff_number,
            "manual_identity",
            {"who": who, "reason": reason, "masked": masked_id_number},
        )
