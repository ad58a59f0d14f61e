"""The applicant screens, built directly over a real ApplicantFlow and a small fake backend."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPoint, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QWidget,
)
from pytestqt.qtbot import QtBot

from kiosk.catalog import FIELD_TYPES, Catalog, Ref, Thing, load_shipped_catalog
from kiosk.config import Config
from kiosk.demo import DEMO_CARDS, DEMO_LICENCES, sample_answer, sample_answers
from kiosk.flow import ApplicantFlow, Session, Step, SubmitResult
from kiosk.form import MaterialNeed, UnifiedForm, savings
from kiosk.identity import IdentityDocument, mask_id_number
from kiosk.ports import CapturedPage, PlatformUnavailable
from kiosk.receipt import Receipt, ReceiptLine
from ui.bridge import Bridge
from ui.context import UiContext
from ui.screens.base import Screen
from ui.screens.form import ChoiceEditor, DateEditor, FormScreen, LockedEditor, YesNoEditor
from ui.screens.home import HomeScreen
from ui.screens.identify import IdentifyScreen
from ui.screens.materials import MaterialsScreen
from ui.screens.receipt import ReceiptScreen
from ui.screens.review import ReviewScreen
from ui.screens.thing import ThingScreen
from ui.screens.words import w
from ui.theme import MIN_TARGET_PX, MIN_TEXT_PT, apply_theme

pytestmark = pytest.mark.qt

TODAY = dt.date(2026, 11, 27)
ADULT: IdentityDocument = DEMO_CARDS["adult"][1]
CATALOG: Catalog = load_shipped_catalog()
SCREENS: tuple[type[Screen], ...] = (
    HomeScreen,
    ThingScreen,
    IdentifyScreen,
    FormScreen,
    MaterialsScreen,
    ReviewScreen,
    ReceiptScreen,
)


class FakeBackend:
    """The flow's backend: the shipped catalog, a fixed day, demo e-licences, a recorded submit."""

    def __init__(self, online: bool = True) -> None:
        self.catalog = CATALOG
        self.online = online
        self.submitted: list[Session] = []

    def today(self) -> dt.date:
        return TODAY

    def held_licences(self, id_number: str) -> frozenset[str]:
        if not self.online:
            raise PlatformUnavailable("no route to the platform")
        return DEMO_LICENCES.get(id_number, frozenset())

    def submit(self, session: Session, form: UnifiedForm) -> SubmitResult:
        self.submitted.append(session)
        number = "HZ01-K01-20261127-0007"
        receipt = Receipt(
            "受理回执",
            "一件事",
            number,
            "qr",
            (ReceiptLine("事项", "x"),),
            (),
            dt.datetime(2026, 11, 27, 10, 30),
        )
        return SubmitResult("app-0007", number, receipt)


class Env:
    """A flow, a context and every applicant screen, re-rendered like the main window does."""

    def __init__(self, qtbot: QtBot, online: bool = True, lang: str = "zh") -> None:
        self.backend = FakeBackend(online)
        self.flow = ApplicantFlow(self.backend, default_lang=lang)  # type: ignore[arg-type]
        self.captures: list[MaterialNeed] = []
        self.taps: list[str] = []
        self.ctx = UiContext(
            flow=self.flow,
            config=Config(),
            bridge=Bridge(),
            request_capture=self.captures.append,
            demo_cards=[(key, text) for key, (text, _doc) in DEMO_CARDS.items()],
            tap_card=self.taps.append,
        )
        self.screens: dict[Step, Screen] = {}
        for cls in SCREENS:
            screen = cls(self.ctx)
            qtbot.addWidget(screen)
            self.screens[screen.step] = screen
        self.flow.subscribe(self._on_flow_changed)
        self.current.render(self.flow.session)

    def _on_flow_changed(self, step: Step, session: Session) -> None:
        self.screens[step].render(session)

    @property
    def current(self) -> Screen:
        return self.screens[self.flow.step]

    def show(self, width: int = 1080, height: int = 1920) -> Screen:
        screen = self.current
        screen.resize(width, height)
        screen.show()
        screen.render(self.flow.session)
        QApplication.processEvents()
        return screen

    # Walking the trip -------------------------------------------------------------------------

    def to_form(self, thing_id: str = "newborn", card: IdentityDocument = ADULT) -> None:
        self.flow.choose_thing(thing_id)
        self.flow.start()
        self.flow.card_read(card)
        assert self.flow.step is Step.FORM

    def fill(self) -> None:
        for key, value in sample_answers(self.flow.form, dict(self.flow.session.answers)).items():
            if not self.flow.form.is_locked(key):
                self.flow.set_answer(key, value)

    def to_materials(self, thing_id: str = "newborn") -> None:
        self.to_form(thing_id)
        self.fill()
        self.flow.next()
        assert self.flow.step is Step.MATERIALS, self.flow.session.errors

    def to_review(self, thing_id: str = "newborn") -> None:
        self.to_materials(thing_id)
        for need in self.flow.form.to_scan(self.flow.session.answers):
            self.flow.add_page(need.id, jpeg_page())
        self.flow.next()
        assert self.flow.step is Step.REVIEW, self.flow.session.notice

    def to_receipt(self, thing_id: str = "newborn") -> None:
        self.to_review(thing_id)
        self.flow.agree(True)
        self.flow.next()
        assert self.flow.step is Step.RECEIPT


def jpeg_page(color: str = "#88AACC") -> CapturedPage:
    return CapturedPage(encoded(color, "JPG", 210, 297), 210, 297)


def encoded(color: str, fmt: str, width: int, height: int) -> bytes:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(color))
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    assert image.save(buffer, fmt)
    return bytes(data.data())


def find(screen: QWidget, cls: type[QWidget], name: str) -> QWidget:
    widget = screen.findChild(cls, name)
    assert widget is not None, f"no {cls.__name__} named {name!r}"
    return widget


def texts(screen: QWidget) -> list[str]:
    """Every word a person (or a passer-by) could read on the screen's labels and fields."""
    return [lbl.text() for lbl in screen.findChildren(QLabel)] + [
        edit.text() for edit in screen.findChildren(QLineEdit)
    ]


def shown_texts(screen: QWidget) -> list[str]:
    return [lbl.text() for lbl in screen.findChildren(QLabel) if lbl.isVisibleTo(screen)] + [
        e.text() for e in screen.findChildren(QLineEdit) if e.isVisibleTo(screen)
    ]


@pytest.fixture(scope="module", autouse=True)
def themed(qapp: QApplication) -> Iterator[None]:
    sheet, font = qapp.styleSheet(), qapp.font()
    apply_theme(qapp, "Noto Sans CJK SC", 20)
    yield
    # Other modules share the QApplication: leave it as it was found.
    qapp.setStyleSheet(sheet)
    qapp.setFont(font)


@pytest.fixture
def env(qtbot: QtBot) -> Env:
    return Env(qtbot)


# Home -----------------------------------------------------------------------------------------


def visible_tiles(screen: QWidget) -> set[str]:
    return {
        b.objectName().removeprefix("thing_")
        for b in screen.findChildren(QPushButton)
        if b.objectName().startswith("thing_") and b.isVisibleTo(screen)
    }


def test_home_shows_personal_things_first_and_filters_by_audience_and_category(env: Env) -> None:
    home = env.show()
    personal = {t.id for t in CATALOG.browse(audience="personal")}
    business = {t.id for t in CATALOG.browse(audience="business")}
    assert visible_tiles(home) == personal
    find(home, QPushButton, "audience_business").click()
    assert visible_tiles(home) == business
    find(home, QPushButton, "audience_personal").click()
    find(home, QPushButton, "category_birth").click()
    assert visible_tiles(home) == {t.id for t in CATALOG.browse("personal", "birth")}
    find(home, QPushButton, "category_all").click()
    assert visible_tiles(home) == personal


def test_home_search_matches_names_and_says_plainly_when_nothing_does(env: Env) -> None:
    home = env.show()
    search = find(home, QLineEdit, "search")
    assert isinstance(search, QLineEdit)
    search.setText("退休")
    assert visible_tiles(home) == {t.id for t in CATALOG.browse(query="退休")} != set()
    search.setText("baby")
    assert visible_tiles(home) == {t.id for t in CATALOG.browse(query="baby")} != set()
    no_match = find(home, QLabel, "no_match")
    assert not no_match.isVisibleTo(home)
    search.setText("没有这种事")
    assert visible_tiles(home) == set()
    assert no_match.isVisibleTo(home) and no_match.text() == w("no_match", "zh")

    home.clear()
    assert search.text() == ""
    assert visible_tiles(home) == {t.id for t in CATALOG.browse(audience="personal")}


def test_tile_shows_the_thing_and_a_tap_chooses_it(env: Env) -> None:
    home = env.show()
    tile = find(home, QPushButton, "thing_newborn")
    newborn = CATALOG.thing("newborn")
    words = tile.accessibleName()
    assert newborn.name.zh in words and f"{len(newborn.services)} 个事项" in words
    assert newborn.promise.describe("zh") in words
    tile.click()
    assert env.flow.step is Step.THING and env.flow.session.thing == newborn


# Thing ----------------------------------------------------------------------------------------


def test_thing_screen_shows_the_savings_banner_services_and_materials(env: Env) -> None:
    env.flow.choose_thing("newborn")
    screen = env.show()
    newborn = CATALOG.thing("newborn")
    saved = savings(newborn)
    banner = find(screen, QLabel, "savings")
    assert banner.text() == f"{saved.services} 个事项，一次办结，少交 {saved.saved} 份材料"
    assert saved.services == len(newborn.services) and saved.saved > 0
    words = "\n".join(texts(screen))
    for service in newborn.services:
        assert service.name.zh in words and service.department.zh in words
    assert "免费" in words
    for material_id in newborn.material_ids():
        assert CATALOG.materials[material_id].name.zh in words
    assert "读取身份证后免提交" in words and "持电子证照可免提交" in words

    env.flow.set_language("en")
    assert banner.text() == f"{saved.services} services, one visit, {saved.saved} fewer documents"


# Identify -------------------------------------------------------------------------------------


def test_identify_shows_failures_then_offers_staff_help(env: Env) -> None:
    env.flow.choose_thing("newborn")
    env.flow.start()
    screen = env.show()
    notice = find(screen, QLabel, "notice")
    ask = find(screen, QPushButton, "ask_staff")
    assert not notice.isVisible() and not ask.isVisible()
    env.flow.card_failed()
    assert notice.isVisible() and notice.text() == env.flow.session.notice.render("zh")
    assert not ask.isVisible()
    env.flow.card_failed()
    env.flow.card_failed()
    assert ask.isVisible()
    message = find(screen, QLabel, "staff_message")
    assert not message.isVisible()
    ask.click()
    assert message.isVisible() and message.text() == "请到人工窗口或举手示意工作人员"


def test_identify_demo_panel_taps_a_card(env: Env) -> None:
    env.flow.choose_thing("newborn")
    env.flow.start()
    screen = env.show()
    assert find(screen, QWidget, "demo_panel").isVisible()
    button = find(screen, QPushButton, "demo_card_elderly")
    assert button.text() == DEMO_CARDS["elderly"][0].zh
    button.click()
    assert env.taps == ["elderly"]


def test_identify_hides_the_demo_panel_outside_demo(qtbot: QtBot) -> None:
    env = Env(qtbot)
    env.ctx.demo_cards = []
    env.flow.choose_thing("newborn")
    env.flow.start()
    screen = env.show()
    assert not find(screen, QWidget, "demo_panel").isVisible()


# Form -----------------------------------------------------------------------------------------


def test_every_editor_type_reaches_the_flow_like_typing(qtbot: QtBot) -> None:
    covered: set[str] = set()
    for thing in CATALOG.things:
        env = Env(qtbot)
        env.to_form(thing.id)
        screen = env.show()
        for field in env.flow.form.fields(env.flow.session.answers):
            if field.locked:
                continue
            editor = find(screen, QWidget, f"field_{field.id}")
            value = sample_answer(field.definition, yes=False)
            editor.set_value(value)  # type: ignore[attr-defined]
            assert env.flow.session.answers.get(field.id) == value, field.id
            assert editor.value() == value  # type: ignore[attr-defined]
            covered.add(field.definition.type)
            if field.definition.type == "choice":
                assert isinstance(editor, ChoiceEditor)
            if field.definition.type == "yes_no":
                assert isinstance(editor, YesNoEditor)
                editor.set_value(True)
                assert env.flow.session.answers[field.id] is True
    assert covered == FIELD_TYPES


def test_choice_buttons_are_exclusive_and_clicks_answer(env: Env) -> None:
    env.to_form("newborn")
    screen = env.show()
    definition = CATALOG.fields["applicant_relation"]
    first, second = (
        find(screen, QPushButton, f"choice_applicant_relation_{c.value}")
        for c in definition.choices[:2]
    )
    first.click()
    assert env.flow.session.answers["applicant_relation"] == definition.choices[0].value
    second.click()
    assert env.flow.session.answers["applicant_relation"] == definition.choices[1].value
    assert not first.isChecked() and second.isChecked()


def test_date_editor_understands_other_spellings(env: Env) -> None:
    env.to_form("newborn")
    screen = env.show()
    date_field = next(
        f
        for f in env.flow.form.fields(env.flow.session.answers)
        if f.definition.type == "date" and not f.locked
    )
    editor = find(screen, QWidget, f"field_{date_field.id}")
    assert isinstance(editor, DateEditor)
    assert editor.placeholderText() == "年-月-日 如 2024-05-01"
    for typed in ("2026/11/20", "2026年11月20日", "20261120", "2026.11.20"):
        editor.set_value(typed)
        assert env.flow.session.answers[date_field.id] == "2026-11-20"


def conditional_on_yes() -> tuple[Thing, Ref]:
    """A field shown only when a yes/no question elsewhere in the same thing is answered yes."""
    for thing in CATALOG.things:
        for service in thing.services:
            for ref in service.fields:
                when = ref.when
                if (
                    when is None
                    or when.op != "equals"
                    or when.value is not True
                    or when.field is None
                ):
                    continue
                form = UnifiedForm(CATALOG, thing, ADULT, DEMO_LICENCES[ADULT.id_number])
                base = {**form.prefilled(), when.field: False}
                shown = {f.id for f in form.fields(base)}
                if ref.id not in shown and when.field in shown:
                    return thing, ref
    raise AssertionError("the catalog has no field shown on a yes answer")


def test_a_conditional_field_appears_without_rebuilding_the_others(env: Env) -> None:
    thing, ref = conditional_on_yes()
    assert ref.when is not None and ref.when.field is not None
    controller = ref.when.field
    env.to_form(thing.id)
    screen = env.show()
    others = {
        f.id: screen.findChild(QWidget, f"field_{f.id}")
        for f in env.flow.form.fields(env.flow.session.answers)
    }
    yes_no = find(screen, QWidget, f"field_{controller}")
    yes_no.set_value(False)  # type: ignore[attr-defined]
    target = screen.findChild(QWidget, f"field_{ref.id}")
    assert target is None or not target.isVisibleTo(screen)

    find(screen, QPushButton, f"yes_{controller}").click()
    assert env.flow.session.answers[controller] is True
    target = find(screen, QWidget, f"field_{ref.id}")
    assert target.isVisibleTo(screen)
    for field_id, editor in others.items():
        assert screen.findChild(QWidget, f"field_{field_id}") is editor, "editor was rebuilt"

    find(screen, QPushButton, f"no_{controller}").click()
    assert not target.isVisibleTo(screen)


def test_form_counts_empty_required_fields_and_shows_errors(env: Env) -> None:
    env.to_form("newborn")
    screen = env.show()
    summary = find(screen, QLabel, "summary")
    assert re.fullmatch(r"还有 \d+ 项必填内容没有填写", summary.text())
    env.flow.next()  # refused: everything empty
    phone = next(
        f.id for f in env.flow.form.fields(env.flow.session.answers) if f.definition.type == "phone"
    )
    error = find(screen, QLabel, f"error_{phone}")
    assert error.isVisibleTo(screen) and error.text() == "请填写此项"
    find(screen, QWidget, f"field_{phone}").set_value("13800138000")  # type: ignore[attr-defined]
    assert not error.isVisibleTo(screen)


def test_card_values_are_locked_and_masked_on_the_form(env: Env) -> None:
    env.to_form("newborn")
    screen = env.show()
    id_editor = find(screen, QWidget, "field_applicant_id_number")
    assert isinstance(id_editor, LockedEditor) and id_editor.isReadOnly()
    assert id_editor.text() == mask_id_number(ADULT.id_number)
    assert find(screen, QWidget, "field_applicant_name").isReadOnly()  # type: ignore[attr-defined]
    words = "\n".join(texts(screen))
    assert ADULT.id_number not in words and ADULT.name not in words
    assert "来自身份证，无需填写" in words


# Materials ------------------------------------------------------------------------------------


def test_scan_requests_a_capture_and_pages_show_as_thumbnails(env: Env, qtbot: QtBot) -> None:
    env.to_materials("newborn")
    screen = env.show()
    need = env.flow.form.to_scan(env.flow.session.answers)[0]
    scan = find(screen, QPushButton, f"scan_{need.id}")
    scan.click()
    assert [n.id for n in env.captures] == [need.id]
    scan.click()  # a second tap while the camera works does not queue another capture
    assert len(env.captures) == 1

    env.ctx.bridge.page_captured.emit(need.id, jpeg_page())  # the main window would add it
    env.flow.add_page(need.id, jpeg_page())
    count = find(screen, QLabel, f"count_{need.id}")
    assert count.text() == f"已拍 1 页，建议 {max(need.definition.pages, 1)} 页"
    thumb = find(screen, QLabel, f"thumb_{need.id}_0")
    assert not thumb.pixmap().isNull() and thumb.pixmap().height() == 120
    assert scan.isEnabled()

    find(screen, QPushButton, f"delete_{need.id}_0").click()
    assert env.flow.session.pages[need.id] == []
    qtbot.waitUntil(lambda: screen.findChild(QLabel, f"thumb_{need.id}_0") is None)
    assert count.text().startswith("已拍 0 页")


def test_waived_materials_have_no_scan_button(env: Env) -> None:
    env.to_materials("newborn")
    screen = env.show()
    needs = env.flow.form.materials(env.flow.session.answers)
    waived = [n for n in needs if not n.to_scan]
    assert {n.waiver for n in waived} == {"id_card", "e_licence"}
    for need in waived:
        assert screen.findChild(QPushButton, f"scan_{need.id}") is None
        assert find(screen, QLabel, f"waived_{need.id}").text().startswith("✓ 免提交")


def test_capture_failure_and_missing_material_are_said_plainly(env: Env) -> None:
    env.to_materials("newborn")
    screen = env.show()
    need = env.flow.form.to_scan(env.flow.session.answers)[0]
    find(screen, QPushButton, f"scan_{need.id}").click()
    env.ctx.bridge.capture_failed.emit(need.id, "camera gone")
    failure = find(screen, QLabel, "capture_error")
    assert failure.isVisible() and failure.text() == "拍摄失败，请稍后再试或联系工作人员"
    assert find(screen, QPushButton, f"scan_{need.id}").isEnabled()
    env.flow.next()
    notice = find(screen, QLabel, "notice")
    assert notice.isVisible() and notice.text().startswith("还缺：")


def test_offline_asks_for_paper_copies(qtbot: QtBot) -> None:
    env = Env(qtbot, online=False)
    env.to_materials("newborn")
    screen = env.show()
    offline = find(screen, QLabel, "offline")
    assert offline.isVisible() and offline.text() == "暂时无法查询电子证照，请拍摄材料"


# Review and receipt ---------------------------------------------------------------------------


def test_review_shows_the_full_identity_and_asks_for_agreement(env: Env) -> None:
    env.to_review("newborn")
    screen = env.show()
    words = texts(screen)
    assert ADULT.id_number in words and ADULT.name in words
    assert "居民身份证" in words
    env.flow.next()  # not agreed yet
    notice = find(screen, QLabel, "notice")
    assert notice.isVisible() and notice.text() == "请先阅读并同意个人信息使用说明"
    agree = find(screen, QCheckBox, "agree")
    agree.click()
    assert env.flow.session.agreed is True
    assert not notice.isVisible()


def test_receipt_shows_the_number_the_image_and_the_print_state(env: Env) -> None:
    env.to_receipt("newborn")
    screen = env.show()
    assert find(screen, QLabel, "receipt_number").text() == "HZ01-K01-20261127-0007"
    image = find(screen, QLabel, "receipt_image")
    assert not image.isVisible()
    env.ctx.receipt_png = encoded("white", "PNG", 576, 1200)
    env.ctx.receipt_printed = True
    screen.render(env.flow.session)
    QApplication.processEvents()
    assert image.isVisible() and not image.pixmap().isNull()
    assert find(screen, QLabel, "print_status").text() == "请取走打印的回执"
    env.ctx.receipt_printed = False
    screen.render(env.flow.session)
    assert find(screen, QLabel, "print_status").text() == "打印机暂不可用，请用手机拍下回执二维码"


# Touch ----------------------------------------------------------------------------------------


def test_a_finger_tap_presses_a_button_and_a_finger_drag_scrolls(env: Env, qtbot: QtBot) -> None:
    env.to_form("retirement")
    screen = env.show()
    area = find(screen, QScrollArea, "page_scroll")
    assert isinstance(area, QScrollArea)
    device = QTest.createTouchDevice()
    question = next(
        f.id
        for f in env.flow.form.fields(env.flow.session.answers)
        if f.definition.type == "yes_no"
    )
    yes = find(screen, QPushButton, f"yes_{question}")
    area.ensureWidgetVisible(yes)
    QApplication.processEvents()
    point = yes.mapTo(screen, yes.rect().center())
    QTest.touchEvent(screen, device).press(0, point, screen).commit()
    QTest.touchEvent(screen, device).release(0, point, screen).commit()
    qtbot.waitUntil(lambda: env.flow.session.answers.get(question) is True)

    area.verticalScrollBar().setValue(0)
    x = screen.width() // 2
    QTest.touchEvent(screen, device).press(0, QPoint(x, 1500), screen).commit()
    for y in range(1460, 700, -40):
        QTest.touchEvent(screen, device).move(0, QPoint(x, y), screen).commit()
        qtbot.wait(5)
    QTest.touchEvent(screen, device).release(0, QPoint(x, 700), screen).commit()
    qtbot.waitUntil(lambda: area.verticalScrollBar().value() > 100)


def test_a_mouse_click_on_a_tile_chooses_it(env: Env, qtbot: QtBot) -> None:
    home = env.show()
    qtbot.mouseClick(find(home, QPushButton, "thing_retirement"), Qt.MouseButton.LeftButton)
    assert env.flow.step is Step.THING


# Every screen ---------------------------------------------------------------------------------


def walk_showing_every_screen(env: Env) -> None:
    """The whole trip, each screen shown at its step (as the stacked window would)."""
    env.show()
    env.flow.choose_thing("newborn")
    env.show()
    env.flow.start()
    env.show()
    env.flow.card_read(ADULT)
    env.show()
    env.fill()
    env.flow.next()
    env.show()
    for need in env.flow.form.to_scan(env.flow.session.answers):
        env.flow.add_page(need.id, jpeg_page())
    env.flow.next()
    env.show()
    env.flow.agree(True)
    env.ctx.receipt_png = encoded("white", "PNG", 576, 1200)
    env.flow.next()
    assert env.flow.step is Step.RECEIPT
    env.show()


def test_clear_leaves_nothing_of_the_applicant_on_any_screen(env: Env, qtbot: QtBot) -> None:
    walk_showing_every_screen(env)
    secrets = {
        ADULT.name,
        ADULT.id_number,
        mask_id_number(ADULT.id_number),
        "13800138000",
        "HZ01-K01-20261127-0007",
        ADULT.address,
    }
    assert any(s in "\n".join(texts(env.screens[Step.REVIEW])) for s in secrets)
    for screen in env.screens.values():
        screen.clear()
    qtbot.wait(10)  # let deferred deletions run
    for step, screen in env.screens.items():
        words = "\n".join(texts(screen))
        for secret in secrets:
            assert secret not in words, f"{secret!r} left on the {step} screen"
        for lbl in screen.findChildren(QLabel):
            assert lbl.pixmap().isNull(), f"a picture left on the {step} screen"
    assert not any(edit.text() for edit in env.screens[Step.FORM].findChildren(QLineEdit))


def test_both_languages_render_on_every_screen(env: Env) -> None:
    walk_showing_every_screen(env)
    for step, screen in env.screens.items():
        env.flow.session.lang = "zh"
        screen.render(env.flow.session)
        chinese = shown_texts(screen)
        env.flow.session.lang = "en"
        screen.render(env.flow.session)
        english = shown_texts(screen)
        assert chinese != english, step
        assert any(re.search(r"[A-Za-z]{3}", t) for t in english), step


@pytest.mark.parametrize("size", [(1080, 1920), (1920, 1080)], ids=["portrait", "landscape"])
def test_text_is_large_and_targets_are_big_on_every_screen(
    qtbot: QtBot, size: tuple[int, int]
) -> None:
    env = Env(qtbot)
    steps: list[tuple[Step, Screen]] = []

    def check() -> None:
        screen = env.show(*size)
        steps.append((env.flow.step, screen))
        for widget in [screen, *screen.findChildren(QWidget)]:
            widget.ensurePolished()
            font = widget.font()
            points = font.pointSizeF() if font.pointSizeF() > 0 else font.pixelSize() * 0.75
            assert points >= MIN_TEXT_PT, f"{widget.objectName() or widget} at {points} pt"
        for button in screen.findChildren(QPushButton):
            if button.isVisible():
                assert button.width() >= MIN_TARGET_PX and button.height() >= MIN_TARGET_PX, (
                    f"{button.objectName()} is {button.width()}×{button.height()}"
                )
        for edit in screen.findChildren(QLineEdit):
            if edit.isVisible():
                assert edit.height() >= MIN_TARGET_PX, edit.objectName()

    check()
    env.flow.choose_thing("newborn")
    check()
    env.flow.start()
    env.flow.card_failed()
    env.flow.card_failed()
    env.flow.card_failed()
    check()
    env.flow.card_read(ADULT)
    check()
    env.fill()
    env.flow.next()
    for need in env.flow.form.to_scan(env.flow.session.answers)[:2]:
        env.flow.add_page(need.id, jpeg_page())
    check()
    for need in env.flow.form.to_scan(env.flow.session.answers):
        env.flow.add_page(need.id, jpeg_page())
    env.flow.next()
    check()
    env.flow.agree(True)
    env.ctx.receipt_png = encoded("white", "PNG", 576, 1200)
    env.flow.next()
    check()
    # The progress screen's sizes are checked in tests/test_progress.py.
    assert [s for s, _ in steps] == [s for s in Step if s is not Step.PROGRESS]
