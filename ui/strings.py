"""The UI's own words in Chinese and English (the core's messages are in kiosk.i18n)."""

from __future__ import annotations

from typing import Any

from kiosk.i18n import MESSAGES, Lang, Text

UI: dict[str, Text] = {
    "app_title": Text("政务服务自助终端", "Government Services Kiosk"),
    "switch_lang": Text("English", "中文"),
    "home": Text("首页", "Home"),
    "back": Text("上一步", "Back"),
    "next": Text("下一步", "Next"),
    "cancel": Text("取消办理", "Cancel"),
    "online": Text("● 已联网", "● Online"),
    # Offline is normal in a hall: the applicant loses nothing, so say so.
    "offline": Text("○ 离线办理 · 联网后自动提交", "○ Offline · sent automatically later"),
}


def t(key: str, lang: Lang, **params: Any) -> str:
    """The UI string `key` (or a core message key) in `lang`."""
    text = UI.get(key) or MESSAGES.get(key)
    if text is None:
        raise KeyError(f"no UI string '{key}'")
    template = text.get(lang)
    return template.format(**params) if params else template
