"""Staff mode's words in Chinese and English: short, for a clerk or technician at the counter."""

from __future__ import annotations

from typing import Any

from kiosk.i18n import Lang, Text

TEXT: dict[str, Text] = {
    # PIN pad
    "pin_title": Text("工作人员登录", "Staff sign-in"),
    "pin_badge": Text("已识别工作证 {hint}，请输入 6 位密码", "Badge {hint} read: enter your PIN"),
    "pin_number": Text("请输入工号，再输入 6 位密码", "Enter your staff number, then your PIN"),
    "pin_number_label": Text("工号", "Staff no."),
    "pin_label": Text("密码", "PIN"),
    "pin_delete": Text("删除", "Delete"),
    "pin_cancel": Text("取消", "Cancel"),
    "pin_ok": Text("确定", "OK"),
    "pin_next": Text("下一步", "Next"),
    "pin_checking": Text("正在核对…", "Checking…"),
    "pin_wrong": Text(
        "工号或密码不对，还可以再试 {n} 次", "Wrong staff number or PIN: {n} tries left"
    ),
    "pin_wrong_plain": Text("工号或密码不对", "Wrong staff number or PIN"),
    "pin_locked": Text(
        "错误次数太多，账号已锁定，请 {minutes} 分钟后再试",
        "Too many wrong PINs: locked, try again in {minutes} min",
    ),
    "pin_disabled": Text("此账号已停用，请联系管理员", "This account is disabled: ask an admin"),
    "pin_failed": Text("暂时无法登录：{reason}", "Cannot sign in now: {reason}"),
    # Staff bar and home
    "staff_bar": Text("工作人员 {number}（{role}）", "Staff {number} ({role})"),
    "assist_bar": Text("帮办 · 工号 {number}", "Assisted · staff no. {number}"),
    "assist_bar_agent": Text("代办 · 工号 {number}", "Agent application · staff no. {number}"),
    "role_staff": Text("窗口人员", "counter staff"),
    "role_technician": Text("技术人员", "technician"),
    "role_admin": Text("管理员", "administrator"),
    "home_title": Text("工作人员菜单", "Staff menu"),
    "home_logout_in": Text(
        "{minutes} 分钟无操作将自动退出登录", "Signs out after {minutes} min without a touch"
    ),
    "assisted": Text("帮办申请", "Assisted application"),
    "assisted_hint": Text("替申请人办理，可手工录入证件", "Apply for someone; ID may be typed in"),
    "agent": Text("代办申请（委托）", "Agent application (委托书)"),
    "agent_hint": Text("申请人和代办人的证件，加委托书", "Both IDs and a letter of authority"),
    "today": Text("今日办件", "Today's work"),
    "today_hint": Text("补打回执、重新提交、暂缓、作废", "Reprint, re-send, set aside, void"),
    "technician": Text("设备检测", "Device checks"),
    "technician_hint": Text("检测设备、测试打印、导出支持包", "Checks, test page, support bundle"),
    "restart": Text("重启程序", "Restart the kiosk"),
    "exit": Text("退出自助模式", "Leave kiosk mode"),
    "logout": Text("退出登录", "Sign out"),
    "back_menu": Text("返回菜单", "Back to menu"),
    "confirm_exit": Text("确定退出自助模式？", "Really leave kiosk mode?"),
    "confirm_restart": Text("确定重启程序？", "Really restart the kiosk?"),
    "confirm_yes": Text("确定", "Yes"),
    "confirm_no": Text("不了", "No"),
    "not_allowed": Text("您的角色不能做这件事", "Your role may not do this"),
    # Assisted application: the thing
    "pick_title": Text("选择要办理的事项", "Choose the thing to apply for"),
    "pick_agent_title": Text("代办：选择要办理的事项", "Agent application: choose the thing"),
    # Assist bar at the applicant's steps
    "await_applicant": Text(
        "请读取申请人的身份证，或手工录入", "Read the applicant's card, or type"
    ),
    "await_agent": Text("请读取代办人的身份证，或手工录入", "Read the agent's card, or type"),
    "manual_entry": Text("手工录入证件", "Type the ID in"),
    "originals_title": Text("原件已当面核验：", "Originals checked at the counter:"),
    "original_checked": Text("✓ {name}", "✓ {name}"),
    "original_unchecked": Text("□ {name}", "□ {name}"),
    "end_assist": Text("结束帮办", "End"),
    # Manual identity
    "manual_title_applicant": Text("手工录入申请人证件", "Type in the applicant's ID"),
    "manual_title_agent": Text("手工录入代办人证件", "Type in the agent's ID"),
    "manual_id": Text("身份号码（18 位）", "ID number (18 characters)"),
    "manual_name": Text("姓名", "Name"),
    "manual_reason": Text("为什么不能读卡？", "Why can the card not be read?"),
    "reason_card_damaged": Text("证件损坏", "Card damaged"),
    "reason_card_forgotten": Text("未带证件", "Card forgotten"),
    "reason_hukou_only": Text("只有户口簿", "Only the household register"),
    "reason_other": Text("其他", "Other"),
    "reason_other_text": Text("其他原因（必填）", "Other reason (required)"),
    "manual_ok": Text("确认录入", "Use this ID"),
    "manual_back": Text("返回读卡", "Back to the card"),
    "manual_need_name": Text("请填写姓名", "Please enter the name"),
    "manual_need_reason": Text("请选择原因", "Please choose a reason"),
    "manual_need_other": Text("请写明其他原因", "Please write the other reason"),
    "manual_hint": Text(
        "手工录入的身份将由平台再次核验，身份证复印件不会免提交",
        "A typed-in ID is checked again by the platform; the ID copy is still needed",
    ),
    # Today's work
    "today_title": Text("今日办件", "Today's work"),
    "today_summary": Text(
        "共 {total} 件：待提交 {pending}，已提交 {delivered}，暂缓 {set_aside}，作废 {voided}"
        "；帮办 {assisted}",
        "{total} in all: {pending} waiting, {delivered} sent, {set_aside} set aside,"
        " {voided} void; {assisted} assisted",
    ),
    "today_by_thing": Text("按事项：{things}", "By thing: {things}"),
    "today_none": Text("今天还没有办件", "No applications today yet"),
    "today_none_match": Text("没有符合筛选的办件", "Nothing matches the filters"),
    "filter_all": Text("全部", "All"),
    "filter_status": Text("状态", "Status"),
    "filter_sync": Text("提交", "Sending"),
    "filter_channel": Text("方式", "Channel"),
    "channel_self": Text("自助", "Self-service"),
    "channel_assisted": Text("帮办", "Assisted"),
    "sync_pending": Text("待提交", "Waiting to send"),
    "sync_delivered": Text("已提交", "Sent"),
    "sync_set_aside": Text("暂缓", "Set aside"),
    "sync_voided": Text("已作废", "Void"),
    "item_numbers": Text(
        "回执 {receipt} · 办件编号 {platform}", "Receipt {receipt} · case no. {platform}"
    ),
    "item_no_platform": Text("尚无", "not yet"),
    "item_who": Text("{name} {id} · {thing}", "{name} {id} · {thing}"),
    "item_state": Text("{status} · {sync}", "{status} · {sync}"),
    "item_reason": Text("原因：{reason}", "Reason: {reason}"),
    "item_printed": Text("已打印 {n} 次", "Printed: {n}"),
    "item_channel": Text("{time} · {channel}", "{time} · {channel}"),
    "reprint": Text("补打回执", "Reprint"),
    "requeue": Text("重新提交", "Send again"),
    "set_aside": Text("暂缓提交", "Set aside"),
    "void": Text("作废", "Void"),
    "reprinting": Text("正在补打…", "Reprinting…"),
    "reprinted": Text("已补打（第 {n} 次打印）", "Reprinted (print no. {n})"),
    "reprint_failed": Text("补打失败：{reason}", "Reprint failed: {reason}"),
    "done_void": Text("已作废 {receipt}", "{receipt} is void"),
    "done_requeue": Text("{receipt} 已重新排队提交", "{receipt} queued to send again"),
    "done_set_aside": Text("{receipt} 已暂缓", "{receipt} set aside"),
    "action_refused": Text("不能这样做：{reason}", "Not possible: {reason}"),
    "refused_left": Text("它可能已经发出，不能作废", "it may have left the kiosk: not voidable"),
    "refused_state": Text("当前状态不允许", "its status does not allow it"),
    "reason_title_void": Text("作废 {receipt} 的原因", "Why void {receipt}?"),
    "reason_title_requeue": Text("重新提交 {receipt} 的原因", "Why send {receipt} again?"),
    "reason_title_set_aside": Text("暂缓 {receipt} 的原因", "Why set {receipt} aside?"),
    "reason_applicant_withdrew": Text("申请人撤回", "The applicant withdrew"),
    "reason_duplicate": Text("重复提交", "A duplicate"),
    "reason_wrong_thing": Text("事项选错", "The wrong thing"),
    "reason_check_materials": Text("材料需核对", "Materials to check"),
    "reason_platform_problem": Text("平台问题", "A platform problem"),
    "reason_platform_fixed": Text("平台问题已解决", "The platform is fixed"),
    "reason_checked_ok": Text("已核对无误", "Checked: all fine"),
    "reason_confirm": Text("确定", "Confirm"),
    "reason_cancel": Text("取消", "Cancel"),
    # An application's status, in the counter's short words
    "st_queued": Text("排队待发", "Queued"),
    "st_uploading": Text("正在发送", "Sending"),
    "st_accepted": Text("平台已收件", "Accepted"),
    "st_in_progress": Text("办理中", "In progress"),
    "st_completed": Text("已办结", "Completed"),
    "st_rejected": Text("未通过", "Rejected"),
    "st_needs_supplement": Text("需补正", "Supplement"),
    "st_quarantined": Text("暂缓", "Set aside"),
    "st_voided": Text("已作废", "Void"),
    # Technician
    "tech_title": Text("设备检测", "Device checks"),
    "tech_run": Text("开始检测", "Run the checks"),
    "tech_running": Text("正在检测…（约 10 秒）", "Checking… (about 10 s)"),
    "tech_waiting": Text("等待结果…", "waiting…"),
    "tech_ok": Text("✓ 正常", "✓ OK"),
    "tech_fail": Text("✗ 异常", "✗ FAULT"),
    "tech_done": Text("检测完成：{failed} 项异常", "Done: {failed} failed"),
    "tech_done_ok": Text("检测完成：全部正常", "Done: everything passed"),
    "tech_failed": Text("检测没有完成：{reason}", "The checks did not finish: {reason}"),
    "tech_camera": Text("摄像头实时画面", "Live camera view"),
    "tech_page_ok": Text("找到页面，各项检查通过", "Page found: every check passes"),
    "tech_test_page": Text("打印测试页", "Print a test page"),
    "tech_test_page_done": Text("测试页：{detail}", "Test page: {detail}"),
    "tech_bundle": Text("导出支持包到：", "Write the support bundle to:"),
    "tech_bundle_data": Text("本机数据目录", "The data directory"),
    "tech_bundle_usb": Text("U 盘 {name}", "USB stick {name}"),
    "tech_bundle_busy": Text("正在导出…", "Writing…"),
    "tech_bundle_done": Text("已导出：{path}（{size} KB）", "Written: {path} ({size} KB)"),
    "tech_bundle_failed": Text("导出失败：{reason}", "Not written: {reason}"),
}


def s(key: str, lang: Lang, **params: Any) -> str:
    """The staff string `key` in `lang`, formatted with `params`."""
    template = TEXT[key].get(lang)
    return template.format(**params) if params else template
