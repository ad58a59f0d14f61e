"""The applicant screens' own words (zh + en), and the small helpers that put words on screen.

Core messages come from `kiosk.i18n.Message.render`; the window's own words (Back, Next…) are
in `ui.strings`. Everything here is written for someone who rarely fills in forms: short
sentences, no jargon, no abbreviations.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QScrollArea,
    QScroller,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kiosk.i18n import MESSAGES, Lang, Message, Text

TEXT: dict[str, Text] = {
    # Home
    "home_welcome": Text("您好！请选择您要办的事", "Hello! Choose what you need to do"),
    "home_hint": Text(
        "点一下就可以看详细说明，不会马上提交", "Tap one to read about it. Nothing is sent yet"
    ),
    "audience_personal": Text("个人办事", "Personal matters"),
    "audience_business": Text("企业办事", "Business matters"),
    "category_all": Text("全部", "All"),
    "search_label": Text("也可以输入名称查找：", "Or type a name to search:"),
    "search_placeholder": Text("如：出生、退休", "e.g. birth, retirement"),
    "search_everywhere": Text("在全部事项中查找", "Searching everything"),
    "tile_services": Text("{n} 个事项一次办", "{n} services in one go"),
    "tile_promise": Text("{promise}内办结", "Done within {promise}"),
    "no_match": Text(
        "没有找到，请换个词试试，或询问工作人员", "Nothing found. Try another word or ask staff"
    ),
    # Thing
    "savings": Text(
        "{n} 个事项，一次办结，少交 {m} 份材料", "{n} services, one visit, {m} fewer documents"
    ),
    "savings_plain": Text("{n} 个事项，一次办结", "{n} services, one visit"),
    "bundle_promise": Text("承诺办结时间：{promise}", "Promised time: {promise}"),
    "services_heading": Text("一次办好以下事项", "What this covers"),
    "service_department": Text("办理部门：{dept}", "Department: {dept}"),
    "service_promise": Text("办结时间：{promise}", "Time: {promise}"),
    "service_fee": Text("费用：{fee}", "Fee: {fee}"),
    "fee_free": Text("免费", "Free"),
    "fee_amount": Text("{fee} 元", "CNY {fee}"),
    "service_optional": Text("按需办理", "only if you need it"),
    "materials_heading": Text("需要准备的材料", "Documents to bring"),
    "materials_intro": Text(
        "本机会给纸质材料拍照，不用复印",
        "The kiosk photographs paper documents: no photocopies needed",
    ),
    "form_original": Text("原件", "Original"),
    "form_copy": Text("复印件", "Copy"),
    "form_electronic": Text("电子版", "Electronic"),
    "material_some_cases": Text("部分情况才需要", "Only needed in some cases"),
    "waive_e_licence": Text("持电子证照可免提交", "Not needed if held as an e-licence"),
    "waive_id_card": Text("读取身份证后免提交", "Not needed once your ID card is read"),
    "thing_ready": Text(
        "准备好后，请点屏幕下方的按钮开始办理",
        "When you are ready, tap the button at the bottom to start",
    ),
    # Identify
    "identify_title": Text("请将身份证放在读卡区", "Place your ID card on the reader"),
    "identify_agent_title": Text(
        "请将代办人的身份证放在读卡区", "Now place the agent's ID card on the reader"
    ),
    "identify_hint": Text(
        "平放，不要移动，读取需要几秒钟", "Lay it flat and hold still: it takes a few seconds"
    ),
    "identify_other_documents": Text(
        "港澳台居民居住证、外国人永久居留身份证也可以",
        "Residence permits and foreign permanent residence ID cards also work",
    ),
    "ask_staff": Text("请工作人员帮助", "Ask staff for help"),
    "staff_called": Text(
        "请到人工窗口或举手示意工作人员", "Please go to a staffed counter or raise your hand"
    ),
    "demo_title": Text("演示：模拟刷卡", "Demo: tap a card"),
    "demo_hint": Text(
        "仅用于演示，正式设备上没有这一块", "Demo only: a real kiosk does not show this"
    ),
    # Form
    "form_title": Text("请填写以下信息", "Please answer these questions"),
    "form_hint": Text(
        "每个问题只问一次，所有部门都会用到",
        "Each question is asked once and used by every department",
    ),
    "required_mark": Text("必填", "required"),
    "optional_mark": Text("选填", "optional"),
    "locked_note": Text("来自身份证，无需填写", "From your ID card"),
    "remaining": Text("还有 {n} 项必填内容没有填写", "{n} required answers still empty"),
    "remaining_none": Text("必填内容都已填好，请核对", "All required answers are filled in"),
    "errors_summary": Text(
        "有 {n} 项需要修改，请看红色文字", "{n} answers need fixing: see the red text"
    ),
    "yes": Text("是", "Yes"),
    "no": Text("否", "No"),
    "date_placeholder": Text("年-月-日 如 2024-05-01", "year-month-day, e.g. 2024-05-01"),
    "phone_placeholder": Text("如 13800000000", "e.g. 13800000000"),
    "number_placeholder": Text("请输入数字", "Enter a number"),
    "id_placeholder": Text("18 位身份号码", "18-character ID number"),
    # Materials
    "materials_title": Text("拍摄材料", "Scan your documents"),
    "materials_hint": Text(
        "把材料平放在拍摄台上，点“拍摄”。每一页拍一次。",
        "Lay the document flat on the camera table and tap Scan, once a page.",
    ),
    "to_scan_heading": Text("需要拍摄（{n} 份）", "To scan ({n})"),
    "waived_heading": Text("不用提交（{n} 份）", "Not needed ({n})"),
    "scan": Text("拍摄", "Scan"),
    "scan_more": Text("再拍一页", "Scan another page"),
    "scan_busy": Text("正在拍摄…", "Scanning…"),
    "count": Text("已拍 {n} 页，建议 {m} 页", "{n} of {m} pages"),
    "page_n": Text("第 {n} 页", "Page {n}"),
    "delete": Text("删除", "Delete"),
    "waived_e_licence": Text("免提交（电子证照）", "Not needed (held as an e-licence)"),
    "waived_id_card": Text("免提交（已读取身份证）", "Not needed (your ID card was read)"),
    "used_for": Text("用于：{services}", "For: {services}"),
    "offline": Text(
        "暂时无法查询电子证照，请拍摄材料", "E-licences cannot be checked right now: please scan"
    ),
    "capture_failed": Text(
        "拍摄失败，请稍后再试或联系工作人员",
        "The camera did not work. Try again or ask staff for help",
    ),
    # Review
    "review_title": Text("请核对信息", "Check everything"),
    "review_hint": Text("如需修改，请点“{back}”", 'To change something, tap "{back}"'),
    "identity_heading": Text("证件信息", "Your ID"),
    "id_name": Text("姓名", "Name"),
    "id_english_name": Text("英文姓名", "Name in English"),
    "id_number": Text("证件号码", "ID number"),
    "id_sex": Text("性别", "Sex"),
    "id_birth": Text("出生日期", "Date of birth"),
    "id_nation": Text("民族", "Ethnic group"),
    "id_address": Text("住址", "Address"),
    "id_kind": Text("证件类型", "Document"),
    "sex_男": Text("男", "Male"),
    "sex_女": Text("女", "Female"),
    "kind_resident": Text("居民身份证", "Resident ID card"),
    "kind_hk_mo_tw_permit": Text(
        "港澳台居民居住证", "Residence permit for Hong Kong, Macao and Taiwan residents"
    ),
    "kind_foreign_permanent_2017": Text("外国人永久居留身份证", "Foreign permanent residence ID"),
    "kind_foreign_permanent_2023": Text("外国人永久居留身份证", "Foreign permanent residence ID"),
    "answers_heading": Text("填写的内容", "Your answers"),
    "not_given": Text("未填写", "Not given"),
    "review_materials_heading": Text("材料", "Documents"),
    "pages_n": Text("已拍 {n} 页", "{n} pages scanned"),
    "pages_1": Text("已拍 1 页", "1 page scanned"),
    "privacy_heading": Text("个人信息使用说明", "How your information is used"),
    "privacy_text": Text(
        "本机收集您的证件信息、填写的内容和拍摄的材料，只用于办理“{thing}”。"
        "这些信息只发送给办理此事的部门。"
        "发送完成后，本机只保留遮挡过的摘要（如 张*、1101**********1234）和回执。"
        "如果您中途离开，本机会自动清除您的全部信息。",
        "The kiosk collects your ID details, your answers and the documents you scanned, only "
        'to handle "{thing}". They are sent only to the departments that handle it. Once they '
        "are sent, the kiosk keeps only a masked summary (such as Z*, 1101**********1234) and "
        "the receipt. If you walk away, the kiosk wipes everything about you.",
    ),
    "agree": Text("我已阅读并同意", "I have read this and agree"),
    # Receipt
    "receipt_title": Text("申请已受理", "Application received"),
    "receipt_number_label": Text("回执编号", "Receipt number"),
    "receipt_printed": Text("请取走打印的回执", "Please take your printed receipt"),
    "receipt_not_printed": Text(
        "打印机暂不可用，请用手机拍下回执二维码",
        "The printer is unavailable: photograph the QR code on screen",
    ),
    "receipt_preparing": Text("正在准备回执，请稍候…", "Preparing your receipt…"),
    "receipt_progress": Text(
        "凭回执编号可以查询办理进度", "Use the receipt number to check progress"
    ),
    "rate_title": Text("请评价本次服务", "Rate this service"),
    "rate_hint": Text("点一下即可，不评价也可以", "One tap is enough. You can also skip this"),
    "rate_1": Text("非常不满意", "Very poor"),
    "rate_2": Text("不满意", "Poor"),
    "rate_3": Text("一般", "OK"),
    "rate_4": Text("满意", "Good"),
    "rate_5": Text("非常满意", "Excellent"),
    "rate_thanks": Text("感谢您的评价", "Thank you for your rating"),
    # Home: the progress look-up
    "check_progress": Text("查询办理进度", "Check my applications"),
    "check_progress_hint": Text(
        "刷身份证，查看在本机办过的申请", "Show your ID card to see what you applied for here"
    ),
    # Progress
    "progress_title": Text("我的办件进度", "My applications"),
    "progress_who": Text("申请人：{name}（{id}）", "Applicant: {name} ({id})"),
    "progress_count": Text("共 {n} 件，最新的在最上面", "{n} applications, the newest first"),
    "progress_count_1": Text("共 1 件", "1 application"),
    "progress_none": Text("没有找到您在本机办理的申请", "No applications found at this kiosk"),
    "progress_none_hint": Text(
        "在其他地方办理的，请咨询工作人员", "For applications made elsewhere, please ask staff"
    ),
    "progress_done_hint": Text(
        "看完后请点“{home}”，您的信息会马上清除",
        'When you are done, tap "{home}": your details are wiped at once',
    ),
    "progress_receipt": Text("回执编号：{number}", "Receipt number: {number}"),
    "progress_date": Text("申请时间：{date}", "Applied on: {date}"),
    "progress_platform_number": Text("办件编号：{number}", "Case number: {number}"),
    "progress_unknown_thing": Text("办事申请", "Application"),
    "progress_services": Text("各部门办理情况", "Each department"),
    "delivery_pending": Text(
        "已保存在本机，联网后自动提交",
        "Saved on this kiosk. It will be sent automatically when the network is back",
    ),
    "delivery_done": Text("已提交至政务服务平台", "Sent to the government service platform"),
    "supplement_notice": Text(
        "请携带材料到窗口补正", "Please bring your documents to a service counter"
    ),
    # The overall status of an application, in plain words
    "status_queued": Text("已受理，等待提交", "Received, waiting to be sent"),
    "status_uploading": Text("正在提交", "Being sent"),
    "status_accepted": Text("部门已收到，等待办理", "The departments have it, waiting to start"),
    "status_in_progress": Text("正在办理", "Being handled"),
    "status_completed": Text("已办结", "Finished"),
    "status_rejected": Text("未通过，请咨询工作人员", "Not approved. Please ask staff"),
    "status_needs_supplement": Text("需要补充材料", "More documents needed"),
    "status_quarantined": Text("正在核对，请咨询工作人员", "Being checked, please ask staff"),
    "status_unknown": Text("请咨询工作人员", "Please ask staff"),
    # One department's service
    "service_waiting": Text("等待办理", "Waiting"),
    "service_accepted": Text("已收到", "Received"),
    "service_in_progress": Text("办理中", "In progress"),
    "service_completed": Text("已办结", "Finished"),
    "service_rejected": Text("未通过", "Not approved"),
    "service_needs_supplement": Text("需补正材料", "Documents needed"),
}

APPLICATION_STATUSES = (
    "queued",
    "uploading",
    "accepted",
    "in_progress",
    "completed",
    "rejected",
    "needs_supplement",
    "quarantined",
)
SERVICE_STATUSES = ("accepted", "in_progress", "completed", "rejected", "needs_supplement")


def status_words(status: str, lang: Lang) -> str:
    """An application's overall status in plain words; anything unexpected sends to staff."""
    key = f"status_{status}"
    return w(key if status in APPLICATION_STATUSES else "status_unknown", lang)


def service_status_words(status: str | None, lang: Lang) -> str:
    """One service's status as the platform reports it (None: not reported yet)."""
    if status is None:
        return w("service_waiting", lang)
    return w(f"service_{status}" if status in SERVICE_STATUSES else "status_unknown", lang)


def notice_words(message: Message, lang: Lang) -> str:
    """A flow notice in plain words: the core's messages, then the screens' own."""
    if message.key in MESSAGES or message.key not in TEXT:
        return message.render(lang)
    return w(message.key, lang, **message.params)


def w(key: str, lang: Lang, **params: Any) -> str:
    """The screen string `key` in `lang`, formatted with `params`."""
    template = TEXT[key].get(lang)
    return template.format(**params) if params else template


# Presentation helpers shared by the applicant screens ------------------------------------------
# They live here so that every screen builds its words into widgets the same way.

CONTENT_MAX_WIDTH = 1200  # a readable line length in landscape; portrait uses the full width
PAGE_MARGIN = 32
SPACING = 20


def label(
    text: str = "", role: str | None = None, *, wrap: bool = True, name: str | None = None
) -> QLabel:
    """A QLabel with a theme role (title, subtitle, muted, error, ok) that wraps by default."""
    widget = QLabel(text)
    widget.setWordWrap(wrap)
    widget.setTextFormat(Qt.TextFormat.PlainText)  # catalog and applicant text is never markup
    if role:
        widget.setProperty("role", role)
    if name:
        widget.setObjectName(name)
    return widget


def set_role(widget: QWidget, role: str | None) -> None:
    """Change a widget's theme role; the style sheet only notices after a re-polish."""
    if widget.property("role") == role:
        return
    widget.setProperty("role", role)
    widget.style().unpolish(widget)
    widget.style().polish(widget)


def set_text(widget: QLabel, text: str) -> None:
    """Set a label's text only when it differs, so repeated renders cause no relayout."""
    if widget.text() != text:
        widget.setText(text)


def discard(widget: QWidget) -> None:
    """Take a widget off the screen for good, blanking its words and pictures at once.

    Deletion is deferred (the widget may be the button whose click got us here), so the text
    is wiped now: an idle wipe must leave nothing readable behind, even for a moment.
    """
    widget.hide()
    for part in [widget, *widget.findChildren(QWidget)]:
        if isinstance(part, QLabel | QLineEdit):
            part.clear()
    parent = widget.parentWidget()
    if parent is not None and parent.layout() is not None:
        parent.layout().removeWidget(widget)
    widget.deleteLater()


def empty_layout(layout: QLayout) -> None:
    """Discard every widget in `layout` (and nested layouts)."""
    while layout.count():
        item = layout.takeAt(0)
        if item is None:
            break
        if item.widget() is not None:
            discard(item.widget())
        elif item.layout() is not None:
            empty_layout(item.layout())


def tall(button: QWidget, height: int, width: int = 0) -> None:
    """Make a button bigger than the theme's minimum.

    The theme's min-height/min-width win over setMinimumSize(), so the rule goes in the
    button's own style sheet.
    """
    rule = f"min-height: {height}px;" + (f" min-width: {width}px;" if width else "")
    button.setStyleSheet(f"QPushButton {{ {rule} }}")


def card(name: str | None = None) -> tuple[QFrame, QVBoxLayout]:
    """A grey rounded panel (`role`=card) and its vertical layout."""
    frame = QFrame()
    frame.setProperty("role", "card")
    if name:
        frame.setObjectName(name)
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(24, 20, 24, 20)
    layout.setSpacing(10)
    return frame, layout


def scroll_page(
    owner: QWidget,
    *,
    max_width: int | None = CONTENT_MAX_WIDTH,
    margins: tuple[int, int, int, int] = (PAGE_MARGIN,) * 4,
) -> QVBoxLayout:
    """Give `owner` a finger-scrollable page; returns the layout to fill, top to bottom.

    The content column is capped at `max_width` and centred, so landscape lines stay readable.
    """
    outer = QVBoxLayout(owner)
    outer.setContentsMargins(0, 0, 0, 0)
    area = QScrollArea(owner)
    area.setObjectName("page_scroll")
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setFrameShape(QFrame.Shape.NoFrame)
    # A finger drag scrolls: many people never find a thin scroll bar. The touch gesture, not
    # the mouse one: the mouse gesture swallows quick taps on the buttons inside.
    QScroller.grabGesture(area.viewport(), QScroller.ScrollerGestureType.TouchGesture)
    holder = QWidget()
    holder.setObjectName("page")
    row = QHBoxLayout(holder)
    row.setContentsMargins(*margins)
    column = QWidget()
    if max_width:
        column.setMaximumWidth(max_width)
    row.addWidget(column, 1)
    layout = QVBoxLayout(column)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(SPACING)
    area.setWidget(holder)
    # setWidget() makes the page fill with the platform's grey; let the themed paper show.
    holder.setAutoFillBackground(False)
    outer.addWidget(area)
    return layout


def page_area(owner: QWidget) -> QScrollArea:
    """The scroll area made by `scroll_page` (to bring a widget into view)."""
    area = owner.findChild(QScrollArea, "page_scroll")
    assert area is not None, "scroll_page() was not called"
    return area


class ReflowGrid(QWidget):
    """Lays widgets out in as many equal columns as fit the width (tiles, choices, thumbnails)."""

    def __init__(
        self,
        min_item_width: int,
        max_columns: int = 6,
        spacing: int = SPACING,
        *,
        fit_widest: bool = False,
    ) -> None:
        super().__init__()
        self.min_item_width = min_item_width
        self.max_columns = max_columns
        # Buttons whose words must not be cut off: a column is at least as wide as the widest.
        self.fit_widest = fit_widest
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(spacing)
        self._items: list[QWidget] = []
        self._columns = 0
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def columns_for(self, width: int) -> int:
        spacing = self._grid.spacing()
        item_width = self.min_item_width
        if self.fit_widest and self._items:
            item_width = max(item_width, *(i.sizeHint().width() for i in self._items))
        fit = (width + spacing) // (item_width + spacing)
        return max(1, min(self.max_columns, fit))

    def set_items(self, items: list[QWidget]) -> None:
        """Show exactly `items`, in order; widgets left out are hidden, not deleted."""
        if items == self._items and self._columns == self.columns_for(self.width()):
            return
        for old in self._items:
            if old not in items:
                self._grid.removeWidget(old)
                old.hide()
        self._items = list(items)
        self._place()

    def _place(self) -> None:
        self._columns = self.columns_for(self.width())
        for item in self._items:
            self._grid.removeWidget(item)
        for i, item in enumerate(self._items):
            # Items must not insist on their text width, or a long word would force a scroll.
            policy = item.sizePolicy()
            policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
            item.setSizePolicy(policy)
            self._grid.addWidget(item, i // self._columns, i % self._columns)
            item.show()
        for c in range(self.max_columns):
            self._grid.setColumnStretch(c, 1 if c < self._columns else 0)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._items and self.columns_for(event.size().width()) != self._columns:
            self._place()
