"""What a chosen thing covers: the services it bundles and the documents to bring."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QVBoxLayout, QWidget

from kiosk.catalog import Catalog, MaterialDef, Service, Thing
from kiosk.flow import Session, Step
from kiosk.form import savings
from kiosk.i18n import Lang
from ui.context import UiContext
from ui.screens.base import Screen
from ui.screens.words import (
    ReflowGrid,
    card,
    discard,
    empty_layout,
    label,
    scroll_page,
    set_text,
    w,
)


def fee_words(fee: float, lang: Lang) -> str:
    """ "免费" for 0, otherwise the amount in yuan without a needless ".0"."""
    if fee <= 0:
        return w("fee_free", lang)
    amount = str(int(fee)) if float(fee).is_integer() else f"{fee:.2f}"
    return w("fee_amount", lang, fee=amount)


def form_words(material: MaterialDef, lang: Lang) -> str:
    """原件 / 复印件 / 电子版."""
    return w(f"form_{material.form}", lang)


class ThingScreen(Screen):
    """The guide to one thing, shown before the applicant commits to anything."""

    step = Step.THING

    def __init__(self, ctx: UiContext) -> None:
        super().__init__(ctx)
        body = scroll_page(self)
        self._title = label(role="title", name="thing_name")
        self._guide = label(name="guide")
        self._savings = label(role="subtitle", name="savings")
        banner, banner_box = card("savings_banner")
        banner_box.addWidget(self._savings)
        self._promise = label(name="promise")
        banner_box.addWidget(self._promise)
        self._services_heading = label(role="subtitle")
        self._services = ReflowGrid(min_item_width=520, max_columns=2, spacing=16)
        self._service_cards: list[QWidget] = []
        self._materials_heading = label(role="subtitle")
        self._materials_intro = label(role="muted")
        self._materials = QVBoxLayout()
        self._materials.setSpacing(12)
        self._ready = label(role="subtitle")
        for part in (self._title, self._guide, banner, self._services_heading, self._services):
            body.addWidget(part)
        body.addWidget(self._materials_heading)
        body.addWidget(self._materials_intro)
        body.addLayout(self._materials)
        body.addWidget(self._ready)
        body.addStretch(1)
        self._shown: tuple[int, str, Lang] | None = None

    def render(self, session: Session) -> None:
        thing = session.thing
        if thing is None:
            self.clear()
            return
        catalog = self.ctx.flow.backend.catalog
        key = (id(catalog), thing.id, session.lang)
        if key == self._shown:
            return  # nothing on this screen depends on anything else in the session
        self._shown = key
        lang = session.lang
        set_text(self._title, thing.name.get(lang))
        set_text(self._guide, thing.guide.get(lang))
        saved = savings(thing)
        set_text(
            self._savings,
            w("savings", lang, n=saved.services, m=saved.saved)
            if saved.saved > 0
            else w("savings_plain", lang, n=saved.services),
        )
        set_text(self._promise, w("bundle_promise", lang, promise=thing.promise.describe(lang)))
        set_text(self._services_heading, w("services_heading", lang))
        set_text(self._materials_heading, w("materials_heading", lang))
        set_text(self._materials_intro, w("materials_intro", lang))
        set_text(self._ready, w("thing_ready", lang))
        old = self._service_cards
        self._service_cards = [
            self._service_card(n, s, lang) for n, s in enumerate(thing.services, start=1)
        ]
        self._services.set_items(self._service_cards)
        for gone in old:
            discard(gone)
        empty_layout(self._materials)
        for material_id in thing.material_ids():
            self._materials.addWidget(self._material_row(catalog, thing, material_id, lang))

    def _service_card(self, number: int, service: Service, lang: Lang) -> QFrame:
        frame, box = card()
        name = service.name.get(lang)
        if service.optional:
            suffix = w("service_optional", lang)
            name += f"（{suffix}）" if lang == "zh" else f" ({suffix})"
        box.addWidget(label(f"{number}. {name}", role="subtitle"))
        box.addWidget(label(w("service_department", lang, dept=service.department.get(lang))))
        box.addWidget(
            label(
                w("service_promise", lang, promise=service.promise.describe(lang))
                + "    "
                + w("service_fee", lang, fee=fee_words(service.fee, lang))
            )
        )
        return frame

    def _material_row(
        self, catalog: Catalog, thing: Thing, material_id: str, lang: Lang
    ) -> QWidget:
        material = catalog.materials[material_id]
        row = QWidget()
        box = QVBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(
            label(
                f"•  {material.name.get(lang)}（{form_words(material, lang)}）"
                if lang == "zh"
                else f"•  {material.name.get(lang)} ({form_words(material, lang)})"
            )
        )
        notes: list[str] = []
        refs = [r for s in thing.services for r in s.materials if r.id == material_id]
        if refs and all(r.when is not None for r in refs):
            notes.append(w("material_some_cases", lang))
        if material.id_card_replaces:
            notes.append(w("waive_id_card", lang))
        if material.e_licence:
            notes.append(w("waive_e_licence", lang))
        # For a copy the card read replaces, the catalog's note only says so again.
        if material.note and not material.id_card_replaces:
            notes.append(material.note.get(lang))
        if notes:
            note = label("\n".join(notes), role="muted")
            note.setIndent(40)
            box.addWidget(note)
        return row

    def clear(self) -> None:
        # A thing is not about the applicant, but an empty screen cannot flash the last one.
        self._shown = None
        for part in (self._title, self._guide, self._savings, self._promise):
            part.clear()
        self._services.set_items([])
        for gone in self._service_cards:
            discard(gone)
        self._service_cards = []
        empty_layout(self._materials)
