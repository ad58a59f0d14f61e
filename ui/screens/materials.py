"""The documents: scan those still needed, see which are waived (免提交) and why."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kiosk.flow import Session, Step
from kiosk.form import MaterialNeed
from kiosk.i18n import Lang, Text
from kiosk.ports import CapturedPage
from ui.camera_view import CameraView, PreviewUpdate
from ui.context import UiContext
from ui.screens.base import Screen
from ui.screens.thing import form_words
from ui.screens.words import (
    ReflowGrid,
    discard,
    empty_layout,
    label,
    page_area,
    scroll_page,
    set_role,
    set_text,
    tall,
    w,
)

THUMB_HEIGHT = 120
CAPTURE_PATIENCE_MS = 30_000  # give the scan button back if the camera never answers

# This step's words for the live camera and the pages taken (they could join words.py).
CAMERA_WORDS: dict[str, Text] = {
    "retake": Text("重拍", "Retake"),
    "target": Text("自动拍摄：{name}，第 {n} 页", "Taking next: {name}, page {n}"),
    "target_done": Text(
        "需要的页都拍好了。要补拍，请点材料下面的“再拍一页”",
        "All pages are taken. To add one, tap Scan another page below",
    ),
    "auto_hint": Text(
        "放好后不要动，会自动拍摄；也可以点“拍摄”",
        "Lay it down and hold still: it is taken by itself, or tap Scan",
    ),
}
# What a page that was kept despite a failed check says under its picture.
PAGE_ISSUE: dict[str, Text] = {
    "blurred": Text("可能不清楚，建议重拍", "May be blurred: retake it?"),
    "glare": Text("有反光，建议重拍", "Glare on the page: retake it?"),
    "not_in_view": Text("可能没拍全，建议重拍", "May be cut off: retake it?"),
    "too_small": Text("看起来太小，建议重拍", "Looks too small: retake it?"),
    "too_skewed": Text("没有放平，建议重拍", "Not lying flat: retake it?"),
    "no_page": Text("没有找到材料，建议重拍", "No document found: retake it?"),
}
ACTIVE_BORDER = "#0B5394"  # the theme's primary colour: pages go to this material


def camera_word(key: str, lang: Lang, **params: object) -> str:
    """This step's camera string `key` in `lang`, formatted with `params`."""
    template = CAMERA_WORDS[key].get(lang)
    return template.format(**params) if params else template


def page_issue_text(page: CapturedPage, lang: Lang) -> str:
    """The first thing the checks found on `page`, as advice; empty when it passed."""
    for found in page.issues:
        if found.code in PAGE_ISSUE:
            return "⚠ " + PAGE_ISSUE[found.code].get(lang)
    return ""


def need_title(need: MaterialNeed, lang: Lang) -> str:
    """The material's name and the form to hand in, e.g. 户口簿（复印件）."""
    name, form = need.definition.name.get(lang), form_words(need.definition, lang)
    return f"{name}（{form}）" if lang == "zh" else f"{name} ({form})"


def used_for(need: MaterialNeed, lang: Lang) -> str:
    """Which of the bundled services need this material."""
    names = ("、" if lang == "zh" else ", ").join(s.name.get(lang) for s in need.services)
    return w("used_for", lang, services=names)


class Thumbnail(QWidget):
    """One scanned page: a small picture, its page number, advice, retake and delete."""

    def __init__(self, material_id: str, index: int, page: CapturedPage, lang: Lang) -> None:
        super().__init__()
        self.setObjectName(f"page_{material_id}_{index}")
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(6)
        self.picture = label(wrap=False, name=f"thumb_{material_id}_{index}")
        pixmap = QPixmap()
        if pixmap.loadFromData(page.jpeg):
            self.picture.setPixmap(
                pixmap.scaledToHeight(THUMB_HEIGHT, Qt.TransformationMode.SmoothTransformation)
            )
        self.picture.setMinimumHeight(THUMB_HEIGHT)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.number = label(w("page_n", lang, n=index + 1), role="muted", wrap=False)
        self.number.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        advice = page_issue_text(page, lang)
        self.issue = label(advice, role="error", name=f"issue_{material_id}_{index}")
        self.issue.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.issue.setVisible(bool(page.issues))
        self.retake = QPushButton(camera_word("retake", lang))
        self.retake.setObjectName(f"retake_{material_id}_{index}")
        self.delete = QPushButton(w("delete", lang))
        self.delete.setObjectName(f"delete_{material_id}_{index}")
        self.delete.setProperty("danger", "true")
        for part in (self.picture, self.number, self.issue, self.retake, self.delete):
            box.addWidget(part)


class MaterialCard(QFrame):
    """A material still to scan (with its pages) or a waived one (with the reason)."""

    def __init__(self, need: MaterialNeed, lang: Lang) -> None:
        super().__init__()
        self.need = need
        self.setProperty("role", "card")
        self.setObjectName(f"material_{need.id}")
        box = QVBoxLayout(self)
        box.setContentsMargins(24, 20, 24, 20)
        box.setSpacing(10)
        box.addWidget(label(need_title(need, lang), role="subtitle"))
        box.addWidget(label(used_for(need, lang), role="muted"))
        if need.definition.note:
            box.addWidget(label(need.definition.note.get(lang), role="muted"))
        self.scan: QPushButton | None = None
        self.count: QLabel | None = None
        self.thumbs: ReflowGrid | None = None
        self.shown_pages: tuple[int, ...] = ()
        if need.waiver is not None:
            reason = w("waived_e_licence" if need.waiver == "e_licence" else "waived_id_card", lang)
            box.addWidget(label(f"✓ {reason}", role="ok", name=f"waived_{need.id}"))
            return
        # The button and count on the left, the pages taken so far right beside them.
        row = QHBoxLayout()
        row.setSpacing(32)
        controls = QVBoxLayout()
        controls.setSpacing(10)
        self.scan = QPushButton()
        self.scan.setObjectName(f"scan_{need.id}")
        self.scan.setProperty("primary", "true")
        tall(self.scan, 80, 300)
        self.count = label(name=f"count_{need.id}")
        controls.addWidget(self.scan)
        controls.addWidget(self.count)
        controls.addStretch(1)
        row.addLayout(controls)
        self.thumbs = ReflowGrid(min_item_width=150, max_columns=8, spacing=16)
        row.addWidget(self.thumbs, 1)
        box.addLayout(row)

    def set_active(self, active: bool) -> None:
        """Mark this material as the one auto-capture puts the next page in."""
        rule = f"QFrame#{self.objectName()} {{ border: 4px solid {ACTIVE_BORDER}; }}"
        wanted = rule if active else ""
        if self.styleSheet() != wanted:
            self.setStyleSheet(wanted)

    def wipe(self) -> None:
        if self.thumbs is not None:
            for thumb in self.thumbs.findChildren(Thumbnail):
                discard(thumb)
            self.thumbs.set_items([])
        self.shown_pages = ()


class MaterialsScreen(Screen):
    """Scan what is needed: a live preview that takes pages by itself, or a tap on Scan.

    A page arrives through the flow and shows as a thumbnail with retake and delete. The
    preview is pinned above the list (beside it in landscape), so the applicant sees the
    camera wherever the list is scrolled.
    """

    step = Step.MATERIALS

    def __init__(self, ctx: UiContext) -> None:
        super().__init__(ctx)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # paint the theme's paper
        body = scroll_page(self)
        self._title = label(role="title")
        self._hint = label()
        self._notice = label(role="error", name="notice")
        self._capture_error = label(role="error", name="capture_error")
        self._offline = label(role="subtitle", name="offline")
        self._scan_heading = label(role="subtitle")
        self._scan_box = QVBoxLayout()
        self._scan_box.setSpacing(16)
        self._waived_heading = label(role="subtitle")
        self._waived_box = QVBoxLayout()
        self._waived_box.setSpacing(16)
        for part in (
            self._title,
            self._hint,
            self._notice,
            self._capture_error,
            self._offline,
            self._scan_heading,
        ):
            body.addWidget(part)
        body.addLayout(self._scan_box)
        body.addSpacing(16)
        body.addWidget(self._waived_heading)
        body.addLayout(self._waived_box)
        body.addStretch(1)
        for part in (self._notice, self._capture_error, self._offline):
            part.hide()
        self._view = CameraView()
        self._target = label(role="subtitle", name="scan_target")
        self._auto_hint = label(role="muted", name="auto_hint")
        self._panel = QWidget()
        self._panel.setObjectName("camera_panel")
        panel_box = QVBoxLayout(self._panel)
        panel_box.setContentsMargins(32, 24, 32, 8)
        panel_box.setSpacing(8)
        panel_box.addWidget(self._view)
        panel_box.addWidget(self._target)
        panel_box.addWidget(self._auto_hint)
        panel_box.addStretch(1)
        outer = self.layout()
        assert isinstance(outer, QBoxLayout)
        self._outer = outer
        outer.insertWidget(0, self._panel)
        outer.setStretch(1, 1)  # the list takes what the camera leaves
        self._cards: dict[str, MaterialCard] = {}
        self._built_for: tuple[object, ...] | None = None
        self._lang: Lang = ctx.flow.session.lang
        self._busy: str | None = None  # the material whose capture is under way
        self._busy_pages = 0
        self._chosen: str | None = None  # the material last scanned by hand
        self._retake: tuple[str, int] | None = None  # (material, page index) being retaken
        self._live = False  # a preview frame has been shown since the preview started
        self._patience = QTimer(self)
        self._patience.setSingleShot(True)
        self._patience.setInterval(CAPTURE_PATIENCE_MS)
        self._patience.timeout.connect(self._on_capture_timed_out)
        ctx.bridge.page_captured.connect(self._on_page_captured)
        ctx.bridge.capture_failed.connect(self._on_capture_failed)
        ctx.bridge.preview_updated.connect(self._on_preview_updated)

    # Rendering ------------------------------------------------------------------------------

    def render(self, session: Session) -> None:
        if session.thing is None:
            self.clear()
            return
        lang = self._lang = session.lang
        needs = self.ctx.flow.form.materials(session.answers)
        key = (
            id(self.ctx.flow.backend.catalog),
            session.thing.id,
            lang,
            tuple((n.id, n.waiver) for n in needs),
        )
        if key != self._built_for:
            self._build(needs, lang)
            self._built_for = key
        to_scan = [n for n in needs if n.to_scan]
        waived = [n for n in needs if not n.to_scan]
        set_text(self._title, w("materials_title", lang))
        set_text(self._hint, w("materials_hint", lang))
        set_text(self._scan_heading, w("to_scan_heading", lang, n=len(to_scan)))
        self._scan_heading.setVisible(bool(to_scan))
        set_text(self._waived_heading, w("waived_heading", lang, n=len(waived)))
        self._waived_heading.setVisible(bool(waived))
        notice = session.notice.render(lang) if session.notice else ""
        set_text(self._notice, notice)
        if notice and not self._notice.isVisibleTo(self):
            # Next was refused: the reason is at the top, maybe far above the finger.
            QTimer.singleShot(0, self._on_notice_shown)
        self._notice.setVisible(bool(notice))
        offline = not session.licences_checked and any(n.definition.e_licence for n in to_scan)
        set_text(self._offline, w("offline", lang) if offline else "")
        self._offline.setVisible(offline)
        if self._capture_error.isVisible():
            set_text(self._capture_error, w("capture_failed", lang))
        if self._busy and len(session.pages.get(self._busy, [])) != self._busy_pages:
            self._end_capture()
        for need in to_scan:
            self._show_pages(self._cards[need.id], session.pages.get(need.id, []), lang)
        self._show_target(to_scan, session, lang)
        self._panel.setVisible(bool(to_scan))
        if not self._live:
            self._view.show_starting(lang)

    def _build(self, needs: list[MaterialNeed], lang: Lang) -> None:
        for material_card in self._cards.values():
            material_card.wipe()
        empty_layout(self._scan_box)
        empty_layout(self._waived_box)
        self._cards = {}
        for need in needs:
            material_card = MaterialCard(need, lang)
            if material_card.scan is not None:
                material_card.scan.clicked.connect(partial(self._on_scan_clicked, need.id))
            self._cards[need.id] = material_card
            (self._scan_box if need.to_scan else self._waived_box).addWidget(material_card)

    def _show_pages(
        self, material_card: MaterialCard, pages: list[CapturedPage], lang: Lang
    ) -> None:
        need = material_card.need
        assert material_card.scan is not None and material_card.count is not None
        assert material_card.thumbs is not None
        suggested = max(need.definition.pages, 1)
        set_text(material_card.count, w("count", lang, n=len(pages), m=suggested))
        set_role(material_card.count, "ok" if pages else None)
        busy = self._busy == need.id
        material_card.scan.setEnabled(self._busy is None)
        material_card.scan.setText(
            w("scan_busy", lang) if busy else w("scan_more" if pages else "scan", lang)
        )
        identities = tuple(id(p) for p in pages)
        if identities == material_card.shown_pages:
            for thumb in material_card.thumbs.findChildren(Thumbnail):
                thumb.retake.setEnabled(self._busy is None)
            return
        material_card.wipe()
        thumbs: list[QWidget] = []
        for index, page in enumerate(pages):
            thumb = Thumbnail(need.id, index, page, lang)
            thumb.delete.clicked.connect(partial(self._on_delete_clicked, need.id, index))
            thumb.retake.clicked.connect(partial(self._on_retake_clicked, need.id, index))
            thumb.retake.setEnabled(self._busy is None)
            thumbs.append(thumb)
        material_card.thumbs.set_items(thumbs)
        material_card.thumbs.setVisible(bool(thumbs))
        material_card.shown_pages = identities

    def _show_target(self, to_scan: list[MaterialNeed], session: Session, lang: Lang) -> None:
        """Say (and mark) which material the next auto-captured page goes to."""
        target = self._auto_target(to_scan, session)
        for need in to_scan:
            self._cards[need.id].set_active(need.id == target)
        if target is None:
            set_text(self._target, camera_word("target_done", lang))
        else:
            need = next(n for n in to_scan if n.id == target)
            number = len(session.pages.get(target, [])) + 1
            words = camera_word("target", lang, name=need_title(need, lang), n=number)
            set_text(self._target, words)
        set_text(self._auto_hint, camera_word("auto_hint", lang))

    def _auto_target(self, to_scan: list[MaterialNeed], session: Session) -> str | None:
        """Where an auto-captured page goes: the material last scanned by hand while it still
        needs pages, else the first one that does; None when every one has its pages."""

        def wants(need: MaterialNeed) -> bool:
            return len(session.pages.get(need.id, [])) < max(need.definition.pages, 1)

        chosen = next((n for n in to_scan if n.id == self._chosen), None)
        if chosen is not None and wants(chosen):
            return chosen.id
        return next((n.id for n in to_scan if wants(n)), None)

    def _refresh_buttons(self) -> None:
        self.render(self.ctx.flow.session)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        width, height = event.size().width(), event.size().height()
        landscape = width > height
        # Portrait: the preview above the list; landscape: beside it. 4:3 either way.
        if landscape:
            self._outer.setDirection(QBoxLayout.Direction.LeftToRight)
            panel_width = round(width * 0.42)
            self._panel.setFixedWidth(panel_width)
            view_height = min(round(height * 0.66), (panel_width - 64) * 3 // 4)
        else:
            self._outer.setDirection(QBoxLayout.Direction.TopToBottom)
            self._panel.setMinimumWidth(0)
            self._panel.setMaximumWidth(16_777_215)
            view_height = min(round(height * 0.36), (width - 64) * 3 // 4)
        self._view.setFixedHeight(max(240, view_height))

    # Events ---------------------------------------------------------------------------------

    def _on_scan_clicked(self, material_id: str) -> None:
        if self._cards.get(material_id) is None:
            return
        self._chosen = material_id
        self._retake = None
        self._start_capture(material_id)

    def _on_retake_clicked(self, material_id: str, index: int) -> None:
        if self._busy is not None or self._cards.get(material_id) is None:
            return
        self._retake = (material_id, index)
        self._start_capture(material_id)

    def _start_capture(self, material_id: str) -> None:
        material_card = self._cards.get(material_id)
        if self._busy is not None or material_card is None:
            return  # one capture at a time: a second tap must not queue another
        self._busy = material_id
        self._busy_pages = len(self.ctx.flow.session.pages.get(material_id, []))
        self._capture_error.hide()
        self._patience.start()
        self._refresh_buttons()
        self.ctx.request_capture(material_card.need)

    def _on_preview_updated(self, update: object) -> None:
        if not isinstance(update, PreviewUpdate):
            self._live = False
            self._view.clear()  # the preview stopped: drop the last picture of a document
            return
        if self.ctx.flow.step is not Step.MATERIALS:
            return
        self._live = True
        session = self.ctx.flow.session
        to_scan = [n for n in self.ctx.flow.form.materials(session.answers) if n.to_scan]
        target = self._auto_target(to_scan, session)
        self._view.show_update(update, self._lang, auto=target is not None)
        from devices.scanning import AutoState  # loaded with the preview, not at start

        if update.state is AutoState.READY and self._busy is None and target is not None:
            self._retake = None
            self._start_capture(target)

    def _on_notice_shown(self) -> None:
        if self._notice.isVisible():
            page_area(self).ensureWidgetVisible(self._notice)

    def _on_delete_clicked(self, material_id: str, index: int) -> None:
        if self._busy is None:
            self.ctx.flow.delete_page(material_id, index)

    def _on_page_captured(self, material_id: str, page: object) -> None:
        retake, self._retake = self._retake, None
        if material_id == self._busy:
            self._end_capture()
            self._capture_error.hide()
            if retake is not None and retake[0] == material_id:
                # After the main window has added the page (slot order is not ours to rely on).
                QTimer.singleShot(0, partial(self._finish_retake, material_id, retake[1], page))
            if self.ctx.flow.step is Step.MATERIALS:
                self._refresh_buttons()

    def _finish_retake(self, material_id: str, index: int, page: object) -> None:
        """Put the new page where the retaken one was.

        The flow only appends and deletes, so: delete the old page, then move each page that
        came after it behind the new one. (A flow.replace_page would make this one call.)
        """
        flow = self.ctx.flow
        pages = flow.session.pages.get(material_id, [])
        if flow.step is not Step.MATERIALS or not any(p is page for p in pages):
            return
        if not 0 <= index < len(pages) - 1:
            return
        flow.delete_page(material_id, index)
        for moved in list(pages[index:-1]):
            position = next(i for i, p in enumerate(pages) if p is moved)
            flow.delete_page(material_id, position)
            flow.add_page(material_id, moved)

    def _on_capture_failed(self, material_id: str, _reason: str) -> None:
        # The reason is for the technician's log (the main window logs it), not for the screen.
        if material_id == self._busy:
            self._end_capture()
            self._retake = None
        if self.ctx.flow.step is not Step.MATERIALS:
            return  # the applicant has moved on: an old failure is no longer news
        set_text(self._capture_error, w("capture_failed", self._lang))
        self._capture_error.show()
        self._refresh_buttons()

    def _on_capture_timed_out(self) -> None:
        self._end_capture()
        self._retake = None
        if self.ctx.flow.step is Step.MATERIALS:
            self._refresh_buttons()

    def _end_capture(self) -> None:
        self._busy = None
        self._patience.stop()

    def clear(self) -> None:
        self._end_capture()
        self._chosen = None
        self._retake = None
        self._live = False
        self._view.clear()
        for material_card in self._cards.values():
            material_card.wipe()
        empty_layout(self._scan_box)
        empty_layout(self._waived_box)
        self._cards = {}
        self._built_for = None
        for part in (self._notice, self._capture_error, self._offline):
            part.clear()
            part.hide()
        self._target.clear()
