"""The applicant checks everything before it is sent; the only screen with the full ID."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QWidget

from kiosk.catalog import FieldDef
from kiosk.flow import Session, Step
from kiosk.form import MaterialNeed
from kiosk.i18n import Lang
from kiosk.identity import IdentityDocument
from ui.context import UiContext
from ui.screens.base import Screen
from ui.screens.words import card, empty_layout, label, page_area, scroll_page, set_text, w
from ui.strings import t

Pairs = tuple[tuple[str, str], ...]
_SEXES = {"sex_男", "sex_女"}


def answer_words(definition: FieldDef, value: object, lang: Lang) -> str:
    """An answer as the applicant would say it: 是/否, a choice's label, or 未填写."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return w("not_given", lang)
    if definition.type == "yes_no" and isinstance(value, bool):
        return w("yes" if value else "no", lang)
    if definition.type == "choice":
        for choice in definition.choices:
            if choice.value == value:
                return choice.label.get(lang)
    return str(value)


def identity_pairs(identity: IdentityDocument, lang: Lang) -> Pairs:
    """The card's details in full, as label–value pairs (only the review step shows these)."""
    born = identity.birth_date
    birth = f"{born.year}年{born.month}月{born.day}日" if lang == "zh" else born.isoformat()
    sex_key = f"sex_{identity.sex}"
    pairs = [(w("id_name", lang), identity.name)]
    if identity.english_name:
        pairs.append((w("id_english_name", lang), identity.english_name))
    pairs += [
        (w("id_number", lang), identity.id_number),
        (w("id_sex", lang), w(sex_key, lang) if sex_key in _SEXES else identity.sex),
        (w("id_birth", lang), birth),
    ]
    if identity.nation:
        pairs.append((w("id_nation", lang), identity.nation))
    if identity.address:
        pairs.append((w("id_address", lang), identity.address))
    pairs.append((w("id_kind", lang), w(f"kind_{identity.kind}", lang)))
    return tuple(pairs)


def material_words(need: MaterialNeed, pages: int, lang: Lang) -> str:
    """How a material is covered: its page count, or why it is not needed."""
    if need.waiver == "e_licence":
        return w("waived_e_licence", lang)
    if need.waiver == "id_card":
        return w("waived_id_card", lang)
    return w("pages_1", lang) if pages == 1 else w("pages_n", lang, n=pages)


class PairList(QWidget):
    """Label–value lines in two columns; the values wrap."""

    def __init__(self) -> None:
        super().__init__()
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(24)
        self._grid.setVerticalSpacing(12)
        self._grid.setColumnStretch(1, 1)
        self._shown: Pairs = ()

    def show_pairs(self, pairs: Pairs) -> None:
        if pairs == self._shown:
            return
        empty_layout(self._grid)
        for row, (name, value) in enumerate(pairs):
            self._grid.addWidget(label(name, role="muted"), row, 0)
            self._grid.addWidget(label(value), row, 1)
        self._shown = pairs

    def wipe(self) -> None:
        empty_layout(self._grid)
        self._shown = ()


class ReviewScreen(Screen):
    """Identity, answers and documents in full, the privacy notice and the agreement."""

    step = Step.REVIEW

    def __init__(self, ctx: UiContext) -> None:
        super().__init__(ctx)
        body = scroll_page(self)
        self._title = label(role="title")
        self._hint = label(role="muted")
        body.addWidget(self._title)
        body.addWidget(self._hint)
        self._headings: dict[str, QLabel] = {}
        self._identity = PairList()
        self._answers = PairList()
        self._materials = PairList()
        for key, pairs in (
            ("identity_heading", self._identity),
            ("answers_heading", self._answers),
            ("review_materials_heading", self._materials),
        ):
            frame, box = card(key.removesuffix("_heading"))
            heading = label(role="subtitle")
            box.addWidget(heading)
            box.addWidget(pairs)
            body.addWidget(frame)
            self._headings[key] = heading
        privacy, privacy_box = card("privacy")
        self._privacy_heading = label(role="subtitle")
        self._privacy = label(name="privacy_text")
        privacy_box.addWidget(self._privacy_heading)
        privacy_box.addWidget(self._privacy)
        self._agree = QCheckBox()
        self._agree.setObjectName("agree")
        self._agree.toggled.connect(self._on_agree_toggled)
        privacy_box.addWidget(self._agree)
        body.addWidget(privacy)
        self._notice = label(role="error", name="notice")
        self._notice.hide()
        body.addWidget(self._notice)
        body.addStretch(1)

    def render(self, session: Session) -> None:
        lang = session.lang
        thing = session.thing
        set_text(self._title, w("review_title", lang))
        set_text(self._hint, w("review_hint", lang, back=t("back", lang)))
        for key, heading in self._headings.items():
            set_text(heading, w(key, lang))
        if thing is None:
            self.clear()
            return
        form = self.ctx.flow.form
        self._identity.show_pairs(
            identity_pairs(session.identity, lang) if session.identity else ()
        )
        # Card values are in the identity block already; list what the applicant gave.
        self._answers.show_pairs(
            tuple(
                (
                    f.definition.label.get(lang),
                    answer_words(f.definition, session.answers.get(f.id), lang),
                )
                for f in form.fields(session.answers)
                if not f.locked
            )
        )
        self._materials.show_pairs(
            tuple(
                (
                    need.definition.name.get(lang),
                    material_words(need, len(session.pages.get(need.id, [])), lang),
                )
                for need in form.materials(session.answers)
            )
        )
        set_text(self._privacy_heading, w("privacy_heading", lang))
        set_text(self._privacy, w("privacy_text", lang, thing=thing.name.get(lang)))
        self._agree.setText(w("agree", lang))
        if self._agree.isChecked() != session.agreed:
            self._agree.blockSignals(True)
            self._agree.setChecked(session.agreed)
            self._agree.blockSignals(False)
        notice = session.notice.render(lang) if session.notice else ""
        set_text(self._notice, notice)
        if notice and not self._notice.isVisibleTo(self):
            # Submit was refused: show why, next to the box to tick, wherever the page was.
            QTimer.singleShot(0, self._on_notice_shown)
        self._notice.setVisible(bool(notice))

    def _on_notice_shown(self) -> None:
        if self._notice.isVisible():
            page_area(self).ensureWidgetVisible(self._notice)

    def _on_agree_toggled(self, checked: bool) -> None:
        self.ctx.flow.agree(checked)

    def clear(self) -> None:
        for pairs in (self._identity, self._answers, self._materials):
            pairs.wipe()
        self._privacy.clear()
        self._notice.clear()
        self._notice.hide()
        self._agree.blockSignals(True)
        self._agree.setChecked(False)
        self._agree.blockSignals(False)
