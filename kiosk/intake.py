"""Intake: turns a finished session into a durably saved application and its receipt."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.application import StoredApplication, Submission, new_application_id
from kiosk.audit import AuditLog
from kiosk.catalog import Catalog, CatalogStore
from kiosk.config import Config
from kiosk.durable import make_dir, write_atomic
from kiosk.flow import Assist, BackendFailed, Session, SubmitFailed, SubmitResult
from kiosk.form import UnifiedForm
from kiosk.i18n import Lang, Message
from kiosk.identity import IdentityDocument, keyed_hash
from kiosk.ports import Platform, Sealer
from kiosk.receipt import Receipt, ReceiptLine, promised_date, receipt_to_json
from kiosk.storage import Storage, StorageError, UnknownApplication

log = logging.getLogger(__name__)


def load_or_create_key(path: Path) -> bytes:
    """The kiosk's secret for keyed ID hashes, made once and kept in the data directory.

    Written durably: lost after a power cut, every progress look-up by ID card would find
    nothing of what was saved before."""
    if path.exists():
        return path.read_bytes()
    make_dir(path.parent)
    key = secrets.token_bytes(32)
    write_atomic(path, key, 0o600)
    return key


def identity_payload(identity: IdentityDocument) -> dict[str, Any]:
    return {
        "kind": identity.kind,
        "name": identity.name,
        "english_name": identity.english_name,
        "id_number": identity.id_number,
        "sex": identity.sex,
        "nation": identity.nation,
        "birth_date": identity.birth_date.isoformat(),
        "address": identity.address,
        "authority": identity.authority,
        "valid_from": identity.valid_from.isoformat(),
        "valid_to": identity.valid_to.isoformat() if identity.valid_to else None,
        "nationality": identity.nationality,
        "pass_number": identity.pass_number,
    }


class Intake:
    """The flow's backend: catalog, clock, e-licence look-up, the durable submit, the progress
    look-up and ratings."""

    def __init__(
        self,
        config: Config,
        storage: Storage,
        catalogs: CatalogStore,
        platform: Platform,
        sealer: Sealer,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
        on_saved: Callable[[str], None] | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.config = config
        self.storage = storage
        self.catalogs = catalogs
        self.platform = platform
        self.sealer = sealer
        self.on_saved = on_saved  # e.g. wake the relay
        self.clock = clock
        self.audit = audit  # assisted submissions are recorded here
        self.id_key = load_or_create_key(config.data_dir / "id-hash.key")

    def seal_legacy(self) -> int:
        """Seal applications an older version saved in plaintext; returns how many.

        Run at start-up, before the relay: they are then delivered like any other."""
        done = 0
        for app_id in self.storage.legacy_unsealed():
            try:
                self.storage.seal_legacy(app_id, self.sealer)
                done += 1
            except StorageError as exc:
                log.error("older application %s not sealed yet: %s", app_id, exc)
        return done

    @property
    def catalog(self) -> Catalog:
        return self.catalogs.catalog

    def today(self) -> dt.date:
        return self.clock().date()

    def held_licences(self, id_number: str) -> frozenset[str]:
        return self.platform.held_licences(id_number)

    def submit(self, session: Session, form: UnifiedForm) -> SubmitResult:
        identity = session.identity
        assert identity is not None and session.thing is not None
        catalog = session.catalog or self.catalog
        answers = form.normalize(session.answers)
        needs = form.materials(answers)
        summary: dict[str, Any] = {
            "thing": session.thing.id,
            "name": identity.masked_name,
            "id_number": identity.masked_id_number,
            "kind": identity.kind,
            "materials": {
                m.id: len(session.pages.get(m.id, [])) if m.to_scan else m.waiver for m in needs
            },
        }
        assist = session.assist
        if assist is not None:
            agent = assist.agent_identity
            summary["assisted"] = {
                "staff_number": assist.staff_number,
                "agent": None
                if agent is None
                else {"name": agent.masked_name, "id_number": agent.masked_id_number},
                "manual": dict(assist.manual),
                "originals_checked": sorted(assist.originals_checked),
            }
        # Sealed before anything touches the disk: the kiosk keeps only what the platform can
        # open (docs/sync-protocol.md, Sealing) plus the masked summary above.
        app_id = new_application_id()
        scanned = [(m.id, page) for m in needs if m.to_scan for page in session.pages.get(m.id, [])]
        pages = [(material, self.sealer.seal_page(app_id, page.jpeg)) for material, page in scanned]
        payload = {
            "application_id": app_id,
            "thing_id": session.thing.id,
            "catalog_version": catalog.version,
            "identity": identity_payload(identity),
            "answers": answers,
            "lang": session.lang,
            "channel": assist.channel if assist else "self",
            "pages": [
                {
                    "material_id": material,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    # A page taken by hand although a check failed says which (e.g. "glare"),
                    # so the back office knows to look closer; [] when every check passed.
                    "issues": [issue.code for issue in page.issues],
                }
                for (material, data), (_, page) in zip(pages, scanned, strict=True)
            ],
        }
        if assist is not None:
            payload["assisted"] = {
                "staff_number": assist.staff_number,
                "agent": None
                if assist.agent_identity is None
                else identity_payload(assist.agent_identity),
                # A typed-in identity was not read from a chip: the platform checks it again.
                "identity_source": {
                    who: ("manual" if who in assist.manual else "card")
                    for who in (("applicant", "agent") if assist.agent else ("applicant",))
                },
                "manual_reasons": dict(assist.manual),
                "originals_checked": sorted(assist.originals_checked),
            }
        plaintext = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
        submission = Submission(
            thing_id=session.thing.id,
            catalog_version=catalog.version,
            sealed_payload=self.sealer.seal_payload(app_id, plaintext),
            summary=summary,
            id_hash=keyed_hash(identity.id_number, self.id_key),
            channel=assist.channel if assist else "self",
            id=app_id,
        )
        del plaintext, payload
        try:
            stored = self.storage.submit(submission, pages)
            receipt = self.build_receipt(
                session, form, stored.receipt_number, stored.created_at, session.lang
            )
            self.storage.save_receipt(stored.id, receipt_to_json(receipt))
        except StorageError as exc:
            log.error("submission not saved: %s", exc)
            full = exc.reason == "the disk is full"
            raise SubmitFailed(Message("submit_disk_full" if full else "submit_failed")) from exc
        log.info(
            "application %s saved as %s (%d pages)", stored.id, stored.receipt_number, len(pages)
        )
        if assist is not None:
            self._audit_assisted(stored, assist)
        if self.on_saved is not None:
            self.on_saved(stored.id)
        return SubmitResult(stored.id, stored.receipt_number, receipt)

    def _audit_assisted(self, stored: StoredApplication, assist: Assist) -> None:
        """Record who submitted it for whom: ids and reasons, never a full ID number."""
        if self.audit is None:
            log.warning("assisted application %s not audited: no audit log", stored.id)
            return
        try:
            self.audit.append(
                assist.staff_number,
                "assisted_submission",
                {
                    "application_id": stored.id,
                    "receipt_number": stored.receipt_number,
                    "thing": stored.thing_id,
                    "agent": assist.agent,
                    "manual": sorted(assist.manual),
                    "originals_checked": sorted(assist.originals_checked),
                },
            )
        except StorageError as exc:
            # The application is saved and the applicant has a receipt: not undone for this.
            log.error("assisted application %s not audited: %s", stored.id, exc)

    def progress(self, id_number: str) -> list[StoredApplication]:
        """The applications this person made at this kiosk, newest first, found by the keyed
        hash of their ID number (the number itself is not stored)."""
        try:
            return self.storage.applications_for(keyed_hash(id_number, self.id_key))
        except StorageError as exc:
            log.error("progress look-up failed: %s", exc)
            raise BackendFailed(Message("progress_failed")) from exc

    def rate(self, application_id: str, score: int) -> str:
        """Queue the applicant's 好差评 score; the relay delivers it like an application."""
        try:
            rating_id = self.storage.add_rating(application_id, score)
        except (StorageError, UnknownApplication) as exc:
            log.error("rating of %s not saved: %s", application_id, exc)
            raise BackendFailed(Message("rating_failed")) from exc
        log.info("rating %s of application %s queued", rating_id, application_id)
        if self.on_saved is not None:
            self.on_saved(application_id)  # wakes the relay, which also sends queued ratings
        return rating_id

    def build_receipt(
        self, session: Session, form: UnifiedForm, number: str, issued_at: dt.datetime, lang: Lang
    ) -> Receipt:
        """The receipt document: masked identity only, never a full number or address."""
        thing, identity = session.thing, session.identity
        assert thing is not None and identity is not None
        hall = self.config.hall
        cal = self.config.calendar
        zh = lang == "zh"
        day = issued_at.date()
        answers = form.clean(session.answers)

        def promised(promise: Any) -> str:
            return promised_date(day, promise, cal.holiday_dates(), cal.workday_dates()).isoformat()

        assist = session.assist
        lines = [
            ReceiptLine("办理事项" if zh else "Application for", thing.name.get(lang)),
            ReceiptLine("申请人" if zh else "Applicant", identity.masked_name),
            ReceiptLine("证件号码" if zh else "ID number", identity.masked_id_number),
        ]
        if assist is not None and assist.agent_identity is not None:
            agent = assist.agent_identity
            lines.append(
                ReceiptLine(
                    "代办人" if zh else "Agent", f"{agent.masked_name} {agent.masked_id_number}"
                )
            )
        if assist is not None:
            # The staff number, never the clerk's name: it is enough to find them.
            lines.append(
                ReceiptLine("帮办工号" if zh else "Assisted by staff no.", assist.staff_number)
            )
        lines += [
            ReceiptLine("受理时间" if zh else "Received", issued_at.strftime("%Y-%m-%d %H:%M")),
            ReceiptLine("承诺办结" if zh else "Promised by", promised(thing.promise)),
            ReceiptLine("包含事项" if zh else "Services included", style="heading"),
        ]
        for service in thing.services:
            lines.append(
                ReceiptLine(
                    service.name.get(lang),
                    f"{service.department.get(lang)} · {promised(service.promise)}",
                )
            )
        lines.append(ReceiptLine("已收材料" if zh else "Materials received", style="heading"))
        for need in form.materials(answers):
            if need.waiver == "e_licence":
                got = "免提交（电子证照）" if zh else "not needed (e-licence held)"
            elif need.waiver == "id_card":
                got = "免提交（已读取身份证）" if zh else "not needed (ID card read)"
            else:
                count = len(session.pages.get(need.id, []))
                got = f"{count} 页" if zh else f"{count} page{'s' if count != 1 else ''}"
            if assist is not None and need.id in assist.originals_checked:
                got += " · 原件已核验" if zh else " · original checked"
            lines.append(ReceiptLine(need.definition.name.get(lang), got))
        lines.append(
            ReceiptLine(
                "已受理，网络恢复后将自动提交"
                if zh
                else "Received. It will be sent automatically when the network is back",
                style="text",
            )
        )
        lines.append(
            ReceiptLine(
                "扫描二维码或凭回执编号查询办理进度"
                if zh
                else "Scan the QR code or use the receipt number to check progress",
                style="small",
            )
        )
        return Receipt(
            title="受理回执" if zh else "Application receipt",
            subtitle=hall.name_zh if zh else hall.name_en,
            number=number,
            qr_payload=f"{hall.progress_url}?r={number}",
            lines=tuple(lines),
            footer=(
                f"{'自助终端' if zh else 'Kiosk'} {hall.code}-{hall.kiosk_code}",
                "请妥善保管本回执" if zh else "Please keep this receipt",
            ),
            issued_at=issued_at,
        )
