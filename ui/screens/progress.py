"""办件进度查询: the applicant's own applications at this kiosk, newest first, in plain words.

Reached from the home screen through the ID card step. Only masked identity is shown; the
applicant leaves with Home (or walks away), and the session is wiped like any other.
"""

from __future__ import annotations

from collections.abc import Hashable

from PySide6.QtWidgets import QFrame, QHBoxLayout, QVBoxLayout, QWidget

from kiosk.application import Status, StoredApplication
from kiosk.catalog import Catalog
from kiosk.flow import Session, Step
from kiosk.i18n import Lang
from ui.context import UiContext
from ui.screens.base import Screen
from ui.screens.words import (
    card,
    empty_layout,
    label,
    notice_words,
    scroll_page,
    service_status_words,
    set_text,
    status_words,
    w,
)
from ui.strings import t

PENDING = frozenset({Status.QUEUED, Status.UPLOADING})
# Statuses that need the applicant to do something (or to ask): shown in the error colour,
# always with words that say so, since colour is never the only signal.
ATTENTION = frozenset({Status.REJECTED, Status.NEEDS_SUPPLEMENT, Status.QUARANTINED})


def status_role(status: Status) -> str | None:
    if status is Status.COMPLETED:
        return "ok"
    return "error" if status in ATTENTION else None


class ApplicationCard(QFrame):
    """One application: what it is for, where it stands, and each department's part."""

    def __init__(self, index: int, app: StoredApplication, catalog: Catalog, lang: Lang) -> None:
        super().__init__()
        self.setObjectName(f"application_{index}")
        self.setProperty("role", "card")
        box = QVBoxLayout(self)
        box.setContentsMargins(24, 20, 24, 20)
        box.setSpacing(10)
        try:
            thing = catalog.thing(app.thing_id)
        except KeyError:  # a thing the current catalog no longer offers
            thing = None
        name = thing.name.get(lang) if thing else w("progress_unknown_thing", lang)
        box.addWidget(label(name, role="subtitle", name="app_thing"))
        box.addWidget(
            label(status_words(app.status, lang), status_role(app.status), name="app_status")
        )
        if app.status is Status.NEEDS_SUPPLEMENT:
            box.addWidget(label(w("supplement_notice", lang), role="error", name="app_supplement"))
        if app.status in PENDING:
            box.addWidget(label(w("delivery_pending", lang), role="muted", name="app_delivery"))
        elif app.status is not Status.QUARANTINED:
            box.addWidget(label(w("delivery_done", lang), role="muted", name="app_delivery"))
        facts = [
            w("progress_receipt", lang, number=app.receipt_number),
            w("progress_date", lang, date=app.created_at.strftime("%Y-%m-%d %H:%M")),
        ]
        if app.platform_number:
            facts.append(w("progress_platform_number", lang, number=app.platform_number))
        box.addWidget(label("\n".join(facts), name="app_facts"))
        if thing is not None and app.status not in PENDING | {Status.QUARANTINED}:
            box.addWidget(label(w("progress_services", lang), role="muted"))
            for service in thing.services:
                row = QHBoxLayout()
                row.setSpacing(16)
                row.addWidget(label(service.name.get(lang)), 1)
                status = app.services.get(service.code)
                row.addWidget(
                    label(
                        service_status_words(status, lang),
                        "error" if status in ATTENTION else None,
                        name=f"service_{service.code}",
                    )
                )
                box.addLayout(row)


class ProgressScreen(Screen):
    """The applications of the person whose card was read, or plainly "none found"."""

    step = Step.PROGRESS

    def __init__(self, ctx: UiContext) -> None:
        super().__init__(ctx)
        body = scroll_page(self)
        self._title = label(role="title", name="progress_title")
        self._who = label(role="subtitle", name="progress_who")
        self._count = label(role="muted", name="progress_count")
        self._notice = label(role="error", name="notice")
        self._none, none_box = card("progress_none")
        self._none_title = label(role="subtitle", name="progress_none_title")
        self._none_hint = label(role="muted")
        none_box.addWidget(self._none_title)
        none_box.addWidget(self._none_hint)
        self._list_holder = QWidget()
        self._list = QVBoxLayout(self._list_holder)
        self._list.setContentsMargins(0, 0, 0, 0)
        self._list.setSpacing(20)
        self._done = label(role="muted", name="progress_done")
        for part in (
            self._title,
            self._who,
            self._count,
            self._notice,
            self._none,
            self._list_holder,
            self._done,
        ):
            body.addWidget(part)
        body.addStretch(1)
        self._shown: Hashable = None
        self._notice.hide()
        self._none.hide()

    def render(self, session: Session) -> None:
        lang = session.lang
        set_text(self._title, w("progress_title", lang))
        identity = session.identity
        who = (
            w("progress_who", lang, name=identity.masked_name, id=identity.masked_id_number)
            if identity
            else ""
        )
        set_text(self._who, who)
        self._who.setVisible(bool(who))
        notice = notice_words(session.notice, lang) if session.notice else ""
        set_text(self._notice, notice)
        self._notice.setVisible(bool(notice))
        apps = session.progress
        n = len(apps)
        set_text(
            self._count, w("progress_count_1", lang) if n == 1 else w("progress_count", lang, n=n)
        )
        self._count.setVisible(n > 0)
        set_text(self._none_title, w("progress_none", lang))
        set_text(self._none_hint, w("progress_none_hint", lang))
        # A failed look-up is not "you have none": the notice says what happened instead.
        self._none.setVisible(n == 0 and not notice)
        set_text(self._done, w("progress_done_hint", lang, home=t("home", lang)))
        self._show_list(apps, lang)

    def _show_list(self, apps: list[StoredApplication], lang: Lang) -> None:
        key = (
            lang,
            tuple(
                (a.id, a.status, a.platform_number, tuple(sorted(a.services.items()))) for a in apps
            ),
        )
        if key == self._shown:
            return
        empty_layout(self._list)
        catalog = self.ctx.flow.backend.catalog
        for index, app in enumerate(apps):
            self._list.addWidget(ApplicationCard(index, app, catalog, lang))
        self._list_holder.setVisible(bool(apps))
        self._shown = key

    def clear(self) -> None:
        empty_layout(self._list)
        self._shown = None
        for part in (self._who, self._count, self._notice):
            part.clear()
        self._notice.hide()
        self._none.hide()
