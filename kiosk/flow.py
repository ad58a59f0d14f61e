"""The applicant's trip as a Qt-free state machine: the UI shows a screen per step.

home → thing → identify → form → materials → review → receipt → home. `back` returns one
step; `cancel`, `finish` and `timeout` wipe the session. The progress look-up is a short side
trip: home → identify → progress → home. Tests drive it without Qt; the UI subscribes with
`subscribe` and calls the intent methods.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

from kiosk.application import StoredApplication
from kiosk.catalog import Catalog, MaterialDef, Thing
from kiosk.form import Answer, MaterialNeed, UnifiedForm, Waiver
from kiosk.i18n import DEFAULT_LANG, Lang, Message
from kiosk.identity import (
    DocumentExpired,
    DocumentKind,
    IdentityDocument,
    birth_date_of,
    sex_of,
    validate_id_number,
)
from kiosk.ports import CapturedPage, PlatformUnavailable
from kiosk.receipt import Receipt

log = logging.getLogger(__name__)

MAX_READ_FAILURES = 3


class Step(StrEnum):
    HOME = "home"
    THING = "thing"
    IDENTIFY = "identify"
    FORM = "form"
    MATERIALS = "materials"
    REVIEW = "review"
    RECEIPT = "receipt"
    PROGRESS = "progress"  # the applicant's own applications (办件进度查询)


class Purpose(StrEnum):
    """Why the applicant is here: to apply for a thing, or to check earlier applications."""

    APPLY = "apply"
    PROGRESS = "progress"


RATING_SCORES = range(1, 6)  # 好差评: 1 非常不满意 … 5 非常满意

# The application trip; the progress look-up (IDENTIFY → PROGRESS) is not part of it.
ORDER = [Step.HOME, Step.THING, Step.IDENTIFY, Step.FORM, Step.MATERIALS, Step.REVIEW, Step.RECEIPT]


class _Ask:
    """card_read's default: ask the backend for held e-licences there and then."""


ASK = _Ask()


class BackendFailed(RuntimeError):
    """The kiosk could not do what was asked; `message` tells the applicant, the log tells the
    technician."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.key)
        self.message = message


class SubmitFailed(BackendFailed):
    """Submission was not saved."""


@dataclass(frozen=True)
class SubmitResult:
    application_id: str
    receipt_number: str
    receipt: Receipt


# Why staff typed an identity in instead of reading the card (the audit records the key).
MANUAL_REASONS = ("card_damaged", "card_forgotten", "hukou_only", "other")
POWER_OF_ATTORNEY = "power_of_attorney"  # the catalog's 委托书
SELF_FIELD = "applying_for_self"  # the catalog's "is this for yourself?"
Who = Literal["applicant", "agent"]


@dataclass
class Assist:
    """A counter clerk's application for someone (帮办), or an agent's under a 委托书 (代办).

    `identity` of the session is always the applicant's, the person the thing is for; an
    agent's identity is kept here. Manual entries carry the reason staff chose."""

    staff_number: str
    agent: bool = False
    agent_identity: IdentityDocument | None = None
    manual: dict[str, str] = field(default_factory=dict)  # who → reason ("other: …" for other)
    originals_checked: set[str] = field(default_factory=set)  # material ids

    @property
    def channel(self) -> str:
        return f"assisted:{self.staff_number}"


def manual_reason(reason: str, other_text: str = "") -> str:
    """The recorded reason: one of MANUAL_REASONS, "other" with the clerk's words after it.

    ValueError when the reason is unknown, or "other" comes without words."""
    if reason not in MANUAL_REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    if reason != "other":
        return reason
    words = " ".join(other_text.split())[:100]
    if not words:
        raise ValueError("the reason 'other' needs a few words")
    return f"other: {words}"


def manual_document(id_number: str, name: str) -> IdentityDocument:
    """An identity typed in by staff: the GB 11643 number (IdNumberError with the plain-words
    reason, a wrong check digit included) and the name; sex and birth date come from the
    number. The card's validity is unknown, so none is claimed."""
    number = validate_id_number(id_number)
    name = " ".join(name.split())
    if not name or len(name) > 40:
        raise ValueError("a name is 1-40 characters")
    birth = birth_date_of(number)
    # The number says which document it belongs to: 81/82/83 a residence permit for Hong Kong,
    # Macao or Taiwan residents, 9 a 2023 foreigner's permanent residence card.
    kind: DocumentKind = (
        "hk_mo_tw_permit"
        if number[:2] in ("81", "82", "83")
        else "foreign_permanent_2023"
        if number[0] == "9"
        else "resident"
    )
    return IdentityDocument(
        kind=kind,
        name=name,
        id_number=number,
        sex=sex_of(number),
        birth_date=birth,
        valid_from=birth,
        valid_to=None,
    )


class AssistedForm(UnifiedForm):
    """The unified form of an assisted application: an agent's adds the 委托书 as a required
    material and answers "for yourself?" with yes (the identity is the applicant's); a typed-in
    identity waives no ID-card copy (no chip was read)."""

    def __init__(
        self,
        catalog: Catalog,
        thing: Thing,
        identity: IdentityDocument | None,
        held_licences: frozenset[str],
        assist: Assist,
    ) -> None:
        super().__init__(catalog, thing, identity, held_licences)
        self.assist = assist

    def prefilled(self) -> dict[str, Answer]:
        out = super().prefilled()
        if self.assist.agent and self.identity is not None and self._asks_self():
            out[SELF_FIELD] = True
        return out

    def is_locked(self, field_id: str) -> bool:
        if field_id == SELF_FIELD and self.assist.agent and self.identity is not None:
            return self._asks_self()
        return super().is_locked(field_id)

    def _asks_self(self) -> bool:
        return SELF_FIELD in self.thing.field_ids()

    def materials(self, answers: Mapping[str, Any]) -> list[MaterialNeed]:
        needs = super().materials(answers)
        if (
            self.assist.agent
            and POWER_OF_ATTORNEY in self.catalog.materials
            and all(n.id != POWER_OF_ATTORNEY for n in needs)
        ):
            definition = self.catalog.materials[POWER_OF_ATTORNEY]
            needs.append(MaterialNeed(definition, self.thing.services, None))
        return needs

    def waiver(self, material: MaterialDef) -> Waiver | None:
        if material.id == POWER_OF_ATTORNEY and self.assist.agent:
            return None  # the letter itself must be seen, whatever the platform holds
        if "applicant" in self.assist.manual and material.id_card_replaces:
            if material.e_licence and material.e_licence in self.held_licences:
                return "e_licence"
            return None
        return super().waiver(material)


@dataclass
class Session:
    """Everything about the applicant in front of the screen. Wiped as a whole."""

    lang: Lang = DEFAULT_LANG
    purpose: Purpose = Purpose.APPLY
    # The catalog the applicant started with: an update mid-session must not change the form
    # under their fingers, and the application records this version.
    catalog: Catalog | None = None
    thing: Thing | None = None
    identity: IdentityDocument | None = None
    held_licences: frozenset[str] = frozenset()
    licences_checked: bool = False  # False: the platform could not be asked (offline)
    answers: dict[str, Answer] = field(default_factory=dict)
    errors: dict[str, Message] = field(default_factory=dict)
    pages: dict[str, list[CapturedPage]] = field(default_factory=dict)
    agreed: bool = False
    notice: Message | None = None  # the latest plain-words problem for the current step
    read_failures: int = 0
    result: SubmitResult | None = None
    # The applicant's applications at this kiosk, newest first (progress look-up only).
    progress: list[StoredApplication] = field(default_factory=list)
    rating: int | None = None  # the 好差评 score given at the receipt step
    assist: Assist | None = None  # set when staff make the application (帮办/代办)


class Backend(Protocol):
    """What the flow needs from the rest of the kiosk."""

    @property
    def catalog(self) -> Catalog: ...

    def today(self) -> dt.date: ...

    def held_licences(self, id_number: str) -> frozenset[str]: ...

    def submit(self, session: Session, form: UnifiedForm) -> SubmitResult: ...

    def progress(self, id_number: str) -> list[StoredApplication]:
        """This person's applications at this kiosk, newest first (BackendFailed if unreadable)."""
        ...

    def rate(self, application_id: str, score: int) -> str:
        """Queue a 1–5 rating for the platform; returns its id (BackendFailed if not saved)."""
        ...


Listener = Callable[[Step, Session], None]


class ApplicantFlow:
    """The state machine; every intent returns quietly and notifies subscribers."""

    def __init__(self, backend: Backend, default_lang: Lang = DEFAULT_LANG) -> None:
        self.backend = backend
        self.default_lang = default_lang
        self.step = Step.HOME
        self.session = Session(lang=default_lang)
        self._listeners: list[Listener] = []
        self.reader_available = True  # device state: outlives sessions

    # Plumbing -------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _go(self, step: Step) -> None:
        self.step = step
        self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener(self.step, self.session)

    @property
    def form(self) -> UnifiedForm:
        thing = self.session.thing
        assert thing is not None, "no thing chosen"
        catalog = self.session.catalog or self.backend.catalog
        if self.session.assist is not None:
            return AssistedForm(
                catalog,
                thing,
                self.session.identity,
                self.session.held_licences,
                self.session.assist,
            )
        return UnifiedForm(catalog, thing, self.session.identity, self.session.held_licences)

    def _wipe(self) -> None:
        old = self.session
        # Drop references to the scans and answers now, not whenever the session is collected.
        for pages in old.pages.values():
            pages.clear()
        old.pages.clear()
        old.answers.clear()
        old.errors.clear()
        old.identity = None
        old.result = None
        old.progress.clear()
        old.rating = None
        if old.assist is not None:
            old.assist.agent_identity = None
            old.assist.manual.clear()
            old.assist = None
        self.session = Session(lang=self.default_lang)

    # Intents --------------------------------------------------------------------------------

    def set_language(self, lang: Lang) -> None:
        self.session.lang = lang
        self._notify()

    def choose_thing(self, thing_id: str) -> None:
        if self.step not in (Step.HOME, Step.THING):
            return
        self.session.catalog = self.backend.catalog
        self.session.thing = self.session.catalog.thing(thing_id)
        self._go(Step.THING)

    def start_assisted(self, thing_id: str, staff_number: str, *, agent: bool = False) -> None:
        """Staff start an application for someone (an agent's with `agent`): straight to the
        identify step, which then takes the applicant's identity (and the agent's)."""
        if self.step is not Step.HOME:
            return
        self._wipe()
        s = self.session
        s.catalog = self.backend.catalog
        s.thing = s.catalog.thing(thing_id)
        s.assist = Assist(staff_number=staff_number, agent=agent)
        s.notice = None if self.reader_available else Message("reader_lost")
        log.info("assisted application started (%s)", "agent" if agent else "applicant")
        self._go(Step.IDENTIFY)

    @property
    def awaiting(self) -> Who | None:
        """Whose identity the identify step waits for (None outside an application's)."""
        s = self.session
        if self.step is not Step.IDENTIFY or s.purpose is not Purpose.APPLY:
            return None
        if s.identity is None:
            return "applicant"
        if s.assist is not None and s.assist.agent and s.assist.agent_identity is None:
            return "agent"
        return None

    def manual_identity(
        self,
        document: IdentityDocument,
        reason: str,
        held_licences: frozenset[str] | _Ask | None = ASK,
    ) -> None:
        """Staff typed in the identity of whoever the identify step waits for, with a reason
        (one of MANUAL_REASONS, see manual_reason()). Only in an assisted application."""
        s = self.session
        who = self.awaiting
        if s.assist is None or who is None:
            log.warning("manual identity refused: not waiting for one in an assisted application")
            return
        s.assist.manual[who] = reason
        self.card_read(document, held_licences)
        if who == "applicant" and s.identity is not document:
            s.assist.manual.pop(who, None)  # refused (a date outside validity): not recorded
        elif who == "agent" and s.assist.agent_identity is not document:
            s.assist.manual.pop(who, None)

    def mark_original_checked(self, material_id: str, checked: bool = True) -> None:
        """Staff saw the original of a material at the counter (assisted applications only)."""
        s = self.session
        if s.assist is None or self.step not in (Step.MATERIALS, Step.REVIEW):
            return
        if checked:
            s.assist.originals_checked.add(material_id)
        else:
            s.assist.originals_checked.discard(material_id)
        self._notify()

    def check_progress(self) -> None:
        """The applicant wants to see their earlier applications: ask for the ID card."""
        if self.step is Step.HOME:
            self.session.purpose = Purpose.PROGRESS
            self.session.notice = None if self.reader_available else Message("reader_lost")
            self._go(Step.IDENTIFY)

    def start(self) -> None:
        """The applicant wants to apply for the chosen thing: ask for the ID card."""
        if self.step is Step.THING:
            self.session.notice = None if self.reader_available else Message("reader_lost")
            self._go(Step.IDENTIFY)

    def reader_lost(self) -> None:
        """The ID card reader stopped answering: whoever waits at the card step is told."""
        self.reader_available = False
        if self.step is Step.IDENTIFY:
            self.session.notice = Message("reader_lost")
            self._notify()

    def reader_back(self) -> None:
        self.reader_available = True
        notice = self.session.notice
        if self.step is Step.IDENTIFY and notice is not None and notice.key == "reader_lost":
            self.session.notice = None
            self._notify()

    def card_placed(self) -> None:
        if self.step is Step.IDENTIFY:
            self.session.notice = None
            self._notify()

    def card_read(
        self, document: IdentityDocument, held_licences: frozenset[str] | _Ask | None = ASK
    ) -> None:
        """The card was read. `held_licences` is the platform's answer when the caller already
        asked it off the GUI thread (None: it could not be asked); by default ask now."""
        if self.step is not Step.IDENTIFY:
            log.info("card read outside the identify step ignored")
            return
        s = self.session
        try:
            document.check_valid_on(self.backend.today())
        except DocumentExpired as exc:
            log.info("card refused: outside its validity period")
            s.notice = exc.message
            self._notify()
            return
        if self.awaiting == "agent":
            assert s.assist is not None and s.identity is not None
            if document.id_number == s.identity.id_number:
                s.notice = Message("agent_is_applicant")
                self._notify()
                return
            s.assist.agent_identity = document
            s.notice = None
            s.read_failures = 0
            self._go(Step.FORM)
            return
        s.identity = document
        s.read_failures = 0
        s.notice = None
        if s.purpose is Purpose.PROGRESS:
            self._show_progress(document)
            return
        if isinstance(held_licences, _Ask):
            try:
                held_licences = self.backend.held_licences(document.id_number)
            except PlatformUnavailable as exc:
                log.warning("e-licence look-up unavailable, asking for paper copies: %s", exc)
                held_licences = None
        s.held_licences = held_licences or frozenset()
        s.licences_checked = held_licences is not None
        prefilled = self.form.prefilled()
        s.answers = {**{k: v for k, v in s.answers.items() if k not in prefilled}, **prefilled}
        s.errors = {}
        if s.assist is not None and s.assist.agent and s.assist.agent_identity is None:
            self._notify()  # the applicant's identity is in: now the agent's
            return
        self._go(Step.FORM)

    def _show_progress(self, document: IdentityDocument) -> None:
        s = self.session
        try:
            s.progress = list(self.backend.progress(document.id_number))
        except BackendFailed as exc:
            log.error("progress look-up failed: %s", exc)
            s.progress = []
            s.notice = exc.message
        log.info("progress look-up: %d application(s) found", len(s.progress))
        self._go(Step.PROGRESS)

    def card_failed(self) -> None:
        if self.step is not Step.IDENTIFY:
            return
        self.session.read_failures += 1
        self.session.notice = Message("read_failed_staff" if self.needs_staff else "read_failed")
        self._notify()

    @property
    def needs_staff(self) -> bool:
        return self.session.read_failures >= MAX_READ_FAILURES

    def set_answer(self, field_id: str, value: Answer) -> None:
        if self.step is not Step.FORM:
            return
        form = self.form
        if form.is_locked(field_id):
            log.warning("attempt to change locked field %s refused", field_id)
            return
        s = self.session
        if isinstance(value, str) and not value.strip():
            s.answers.pop(field_id, None)
        else:
            s.answers[field_id] = value
        # Re-check the fields already flagged so a fixed answer clears its message at once.
        if s.errors:
            s.errors = {
                k: v
                for k, v in form.validate(s.answers, self.backend.today()).items()
                if k in s.errors or k == field_id
            }
        self._notify()

    def add_page(self, material_id: str, page: CapturedPage) -> None:
        if self.step is Step.MATERIALS:
            self.session.pages.setdefault(material_id, []).append(page)
            self.session.notice = None
            self._notify()

    def delete_page(self, material_id: str, index: int) -> None:
        pages = self.session.pages.get(material_id, [])
        if self.step is Step.MATERIALS and 0 <= index < len(pages):
            del pages[index]
            self._notify()

    def agree(self, agreed: bool) -> None:
        if self.step is Step.REVIEW:
            self.session.agreed = agreed
            self.session.notice = None
            self._notify()

    def missing_materials(self) -> list[str]:
        s = self.session
        return [m.id for m in self.form.to_scan(s.answers) if not s.pages.get(m.id)]

    def next(self) -> None:
        s = self.session
        if self.step is Step.FORM:
            s.errors = self.form.validate(s.answers, self.backend.today())
            if s.errors:
                self._notify()
                return
            s.answers = self.form.clean(s.answers)
            self._go(Step.MATERIALS)
        elif self.step is Step.MATERIALS:
            missing = self.missing_materials()
            if missing:
                name = (s.catalog or self.backend.catalog).materials[missing[0]].name.get(s.lang)
                s.notice = Message("material_missing", {"name": name})
                self._notify()
                return
            self._go(Step.REVIEW)
        elif self.step is Step.REVIEW:
            self.submit()

    def submit(self) -> None:
        if self.step is not Step.REVIEW:
            return
        s = self.session
        if not s.agreed:
            s.notice = Message("privacy_not_agreed")
            self._notify()
            return
        form = self.form
        # The core re-validates everything; a widget's check is a convenience, not the rule.
        s.errors = form.validate(s.answers, self.backend.today())
        if s.identity is None or s.errors or self.missing_materials():
            s.notice = Message("identity_missing" if s.identity is None else "review_incomplete")
            self._go(Step.FORM if s.errors else self.step)
            return
        try:
            s.result = self.backend.submit(s, form)
        except SubmitFailed as exc:
            s.notice = exc.message
            self._notify()
            return
        s.notice = None
        self._go(Step.RECEIPT)

    def rate(self, score: int) -> None:
        """The applicant rates the service (好差评) at the receipt step: once, never required."""
        s = self.session
        if self.step is not Step.RECEIPT or s.result is None or s.rating is not None:
            return
        if score not in RATING_SCORES:
            log.warning("rating %r refused: not 1 to 5", score)
            return
        try:
            self.backend.rate(s.result.application_id, score)
        except BackendFailed as exc:
            log.error("rating of %s not saved: %s", s.result.application_id, exc)
            s.notice = exc.message
            self._notify()
            return
        s.rating = score
        s.notice = None
        self._notify()

    def back(self) -> None:
        if self.step in (Step.HOME, Step.RECEIPT):
            return
        if self.session.purpose is Purpose.PROGRESS or self.step not in ORDER:
            # The look-up has no steps worth going back to: its card step is its first.
            self._wipe()
            self._go(Step.HOME)
            return
        previous = ORDER[ORDER.index(self.step) - 1]
        s = self.session
        s.notice = None
        if previous is Step.IDENTIFY or self.step is Step.IDENTIFY:
            # Going back to the card step means reading the card again.
            s.identity = None
            s.held_licences = frozenset()
            s.answers.clear()
            s.errors.clear()
            if s.assist is not None:
                s.assist.agent_identity = None
                s.assist.manual.clear()
            if s.assist is not None and self.step is Step.IDENTIFY:
                # Staff chose the thing on their own screen: back from the card step ends it.
                self._wipe()
                self._go(Step.HOME)
                return
        if previous is Step.HOME:
            self._wipe()
        self._go(previous)

    def cancel(self) -> None:
        self._wipe()
        self._go(Step.HOME)

    def finish(self) -> None:
        if self.step is Step.RECEIPT:
            self._wipe()
            self._go(Step.HOME)

    def timeout(self) -> None:
        """The applicant walked away: wipe everything and go home."""
        if self.step is not Step.HOME:
            log.info("idle timeout at step %s: session wiped", self.step)
        self._wipe()
        self._go(Step.HOME)

    def snapshot(self) -> dict[str, Any]:
        """A masked description of the state, for logs and diagnostics."""
        s = self.session
        return {
            "step": str(self.step),
            "purpose": str(s.purpose),
            "thing": s.thing.id if s.thing else None,
            "identity": s.identity.masked_id_number if s.identity else None,
            "answers": len(s.answers),
            "pages": sum(len(p) for p in s.pages.values()),
            "progress": len(s.progress),
            "rated": s.rating is not None,
            "assisted": s.assist.channel if s.assist else None,
        }
