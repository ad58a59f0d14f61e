"""Today's work (今日办件) at the staff desk: the list, filters, summary, and each action with
its audit entry; run on a real Storage and AuditLog, no Qt."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.application import Status, Submission
from kiosk.audit import AuditLog
from kiosk.receipt import Receipt, ReceiptLine, receipt_to_json
from kiosk.staff import StaffSession
from kiosk.storage import NotVoidable, Storage
from ui.staff.desk import (
    NotAllowed,
    StaffDesk,
    WorkFilter,
    reason_text,
    summarize,
    sync_state,
)

NOW = dt.datetime.now().astimezone()


def staff(role: str = "staff", number: str = "S001") -> StaffSession:
    return StaffSession(number, "张三", role, NOW, NOW, 120.0, "pin")  # type: ignore[arg-type]


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    with Storage(tmp_path, hall_code="HZ01", kiosk_code="K01") as s:
        yield s


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path) as log:
        yield log


@pytest.fixture
def desk(storage: Storage, audit: AuditLog) -> StaffDesk:
    return StaffDesk(storage, audit)


def save(storage: Storage, thing: str = "newborn", channel: str = "self", seed: int = 0) -> str:
    stored = storage.submit(
        Submission(
            thing_id=thing,
            catalog_version="1",
            sealed_payload=bytes([seed]) * 64,
            summary={"name": "李*", "id_number": "3301**********0036"},
            id_hash="h" * 64,
            channel=channel,
        ),
        [],
    )
    receipt = Receipt(
        title="受理回执",
        subtitle="杭州市民中心",
        number=stored.receipt_number,
        qr_payload="https://example.test/?r=" + stored.receipt_number,
        lines=(ReceiptLine("申请人", "李*"),),
        footer=("请妥善保管本回执",),
        issued_at=stored.created_at,
    )
    storage.save_receipt(stored.id, receipt_to_json(receipt))
    return stored.id


def test_the_list_is_masked_newest_first_with_states_and_reasons(
    desk: StaffDesk, storage: Storage
) -> None:
    first = save(storage, seed=1)
    refused = save(storage, thing="retirement", channel="assisted:S001", seed=2)
    storage.quarantine(refused, "the platform refused it (422): bad material")
    items = desk.todays_work()
    assert [i.id for i in items] == [refused, first]
    top = items[0]
    assert top.masked_name == "李*" and top.masked_id_number == "3301**********0036"
    assert top.sync == "set_aside" and top.reason.startswith("the platform refused it")
    assert top.channel == "assisted:S001" and top.platform_number is None
    assert items[1].sync == "pending" and items[1].voidable
    assert desk.todays_work(NOW.date() - dt.timedelta(days=1)) == []


def test_filters_and_the_summary(desk: StaffDesk, storage: Storage) -> None:
    a = save(storage, seed=1)
    b = save(storage, thing="retirement", channel="assisted:S002", seed=2)
    c = save(storage, seed=3)
    storage.quarantine(b, "refused")
    storage.void(c, "staff S001: duplicate")
    items = desk.todays_work()
    assert [i.id for i in items if WorkFilter(sync="pending").matches(i)] == [a]
    assert [i.id for i in items if WorkFilter(channel="assisted").matches(i)] == [b]
    assert [i.id for i in items if WorkFilter(status=Status.VOIDED).matches(i)] == [c]
    assert [i.id for i in items if WorkFilter(channel="self", sync="voided").matches(i)] == [c]
    summary = summarize(items)
    assert summary.total == 3 and summary.assisted == 1
    assert summary.by_thing == {"newborn": 2, "retirement": 1}
    assert summary.by_sync == {"pending": 1, "delivered": 0, "set_aside": 1, "voided": 1}
    assert sync_state(Status.COMPLETED) == "delivered"


def test_a_reprint_is_marked_and_counted_and_audited(
    desk: StaffDesk, storage: Storage, audit: AuditLog
) -> None:
    app_id = save(storage)
    storage.mark_printed(app_id)  # the applicant's own print
    receipt = desk.reprint(staff(), app_id)
    assert "补打" in receipt.title
    assert "补打" in "\n".join(receipt.text_lines()) and "第 2 次打印" in receipt.text_lines()[3]
    assert desk.reprint_done(staff(), app_id, printed=True) == 2
    assert storage.times_printed(app_id) == 2
    assert desk.reprint_done(staff(), app_id, printed=False) == 2  # out of paper: not counted
    entries = [e for e in audit.entries() if e.action == "reprint"]
    assert [e.details["printed"] for e in entries] == [True, False]
    assert entries[0].details["application_id"] == app_id and entries[0].actor == "S001"


def test_requeue_set_aside_and_void_are_audited_with_ids_only(
    desk: StaffDesk, storage: Storage, audit: AuditLog
) -> None:
    woken: list[str] = []
    desk = StaffDesk(storage, audit, on_requeued=woken.append)
    refused, held, gone = (save(storage, seed=i) for i in range(3))
    storage.quarantine(refused, "refused")
    desk.requeue(staff(), refused, "platform_fixed")
    desk.set_aside(staff(), held, reason_text("other", "  waiting for the original  "))
    desk.void(staff(), gone, "applicant_withdrew")
    assert storage.get(refused).status is Status.QUEUED and woken == [refused]
    assert storage.get(held).status is Status.QUARANTINED
    assert storage.quarantine_reason(held) == "staff S001: other: waiting for the original"
    assert storage.get(gone).status is Status.VOIDED
    actions = [(e.action, e.details["application_id"]) for e in audit.entries()]
    assert actions == [("requeue", refused), ("set_aside", held), ("void", gone)]
    assert audit.verify() is None
    with pytest.raises(ValueError):
        reason_text("other", "   ")


def test_void_refused_once_sent_and_roles_are_checked(desk: StaffDesk, storage: Storage) -> None:
    app_id = save(storage)
    storage.begin_upload(app_id)
    with pytest.raises(NotVoidable):
        desk.void(staff(), app_id, "duplicate")
    with pytest.raises(NotAllowed):
        desk.void(staff("technician", "T001"), save(storage, seed=9), "duplicate")
    with pytest.raises(NotAllowed):
        desk.reprint(staff("technician", "T001"), app_id)
