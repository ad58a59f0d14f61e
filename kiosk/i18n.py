"""Bilingual text: every user-facing string exists in Chinese (default) and English."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT_LANG: Lang = "zh"


@dataclass(frozen=True)
class Text:
    """A string in both languages."""

    zh: str
    en: str

    def get(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.zh

    @classmethod
    def from_json(cls, value: Any, where: str) -> Text:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected {{zh, en}}, got {type(value).__name__}")
        zh, en = value.get("zh"), value.get("en")
        if not isinstance(zh, str) or not zh.strip() or not isinstance(en, str) or not en.strip():
            raise ValueError(f"{where}: both zh and en must be non-empty strings")
        return cls(zh, en)


@dataclass(frozen=True)
class Message:
    """A core message for a person (a key into MESSAGES plus its parameters)."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def render(self, lang: Lang) -> str:
        return tr(self.key, lang, **self.params)


MESSAGES: dict[str, Text] = {
    # Answer validation
    "required": Text("请填写此项", "This is required"),
    "too_long": Text("太长了，最多 {max} 个字", "Too long: at most {max} characters"),
    "bad_date": Text("日期格式不对，请按 年-月-日 填写", "Not a date: use year-month-day"),
    "date_in_future": Text("日期不能晚于今天", "The date cannot be later than today"),
    "bad_phone": Text(
        "手机号应为 11 位数字，以 1 开头；座机请带区号",
        "A mobile number has 11 digits starting with 1",
    ),
    "bad_number": Text("请填写数字", "Please enter a number"),
    "number_too_small": Text("不能小于 {min}", "Must be at least {min}"),
    "number_too_large": Text("不能大于 {max}", "Must be at most {max}"),
    "bad_choice": Text("请从选项中选择一项", "Please pick one of the options"),
    "bad_yes_no": Text("请选择“是”或“否”", "Please choose yes or no"),
    "address_too_short": Text(
        "地址太短，请写到门牌号", "Address too short: include the street number"
    ),
    # Identity
    "id_length": Text(
        "身份号码应为 18 位（最后一位可以是 X）",
        "An ID number has 18 characters (the last may be X)",
    ),
    "id_chars": Text(
        "身份号码只能是数字，最后一位可以是 X", "Only digits, and X as the last character"
    ),
    "id_birth_date": Text(
        "身份号码中的出生日期不存在", "The birth date inside the ID number is not a real date"
    ),
    "id_checksum": Text(
        "身份号码最后一位校验不通过，请核对是否输错",
        "The check digit does not match: please check for a typo",
    ),
    "id_expired": Text(
        "证件已于 {date} 过期，请使用有效证件或到人工窗口办理",
        "This card expired on {date}. Please use a valid card or go to a staffed counter",
    ),
    "id_not_yet_valid": Text(
        "证件尚未生效（{date} 起有效）", "This card is not valid until {date}"
    ),
    # Materials
    "material_missing": Text("还缺：{name}", "Still needed: {name}"),
    "review_incomplete": Text(
        "还有内容没有填好，请返回检查", "Something is still missing: please go back and check"
    ),
    "reader_lost": Text(
        "读卡器暂时无法使用，请稍后再试，或请工作人员帮助",
        "The card reader is not working right now. Try again shortly or ask staff for help",
    ),
    "read_failed": Text(
        "没有读到证件，请把身份证平放在感应区，不要移动",
        "The card could not be read. Lay it flat on the reader and hold still",
    ),
    "read_failed_staff": Text(
        "多次未能读取证件，请联系工作人员帮助您",
        "The card still cannot be read. Please ask a member of staff for help",
    ),
    "submit_disk_full": Text(
        "本机存储空间不足，申请未能保存。请到人工窗口办理，您的信息不会保留",
        "This kiosk is out of storage and could not save your application. "
        "Please go to a staffed counter; nothing of yours is kept",
    ),
    "submit_failed": Text(
        "本机出现故障，申请未能保存。请到人工窗口办理，您的信息不会保留",
        "The kiosk could not save your application. "
        "Please go to a staffed counter; nothing of yours is kept",
    ),
    "privacy_not_agreed": Text(
        "请先阅读并同意个人信息使用说明", "Please read and agree to the privacy notice"
    ),
    "identity_missing": Text("请先放置身份证", "Please place your ID card first"),
    # Progress look-up and rating: the backend raised these, the screens show them
    "progress_failed": Text(
        "暂时无法查询，请稍后再试或咨询工作人员",
        "Your applications cannot be shown right now. Try later or ask staff",
    ),
    # Assisted applications (staff at the kiosk)
    "agent_is_applicant": Text(
        "代办人不能是申请人本人，请读取代办人的证件",
        "The agent cannot be the applicant: read the agent's card",
    ),
    "rating_failed": Text(
        "评价暂时没有保存成功，可以再点一次，也可以直接离开",
        "Your rating could not be saved. Tap again, or just leave",
    ),
}


def tr(key: str, lang: Lang, **params: Any) -> str:
    """The message `key` in `lang`, formatted with `params`; a missing key shows itself."""
    text = MESSAGES.get(key)
    if text is None:
        return key
    template = text.get(lang)
    return template.format(**params) if params else template
