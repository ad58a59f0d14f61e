"""Demo identities (fictional people, valid check digits) and the e-licences held for them.

Used by the simulated card reader and the simulated platform in demo mode and by tests.
"""

from __future__ import annotations

import datetime as dt

from kiosk.catalog import FieldDef
from kiosk.form import Answer, UnifiedForm
from kiosk.i18n import Text
from kiosk.identity import IdentityDocument

DEMO_CARDS: dict[str, tuple[Text, IdentityDocument]] = {
    "adult": (
        Text("居民身份证 · 李明（38 岁）", "Resident ID · Li Ming (38)"),
        IdentityDocument(
            kind="resident",
            name="李明",
            id_number="330106198503120036",
            sex="男",
            nation="汉",
            birth_date=dt.date(1985, 3, 12),
            address="浙江省杭州市西湖区文三路 90 号 3 幢 2 单元 501 室",
            authority="杭州市公安局西湖分局",
            valid_from=dt.date(2019, 6, 1),
            valid_to=dt.date(2039, 6, 1),
        ),
    ),
    "elderly": (
        Text(
            "居民身份证 · 王秀英（83 岁，长期有效）", "Resident ID · Wang Xiuying (83, no expiry)"
        ),
        IdentityDocument(
            kind="resident",
            name="王秀英",
            id_number="330106194308160026",
            sex="女",
            nation="汉",
            birth_date=dt.date(1943, 8, 16),
            address="浙江省杭州市西湖区北山街道保俶路 12 号",
            authority="杭州市公安局西湖分局",
            valid_from=dt.date(2008, 9, 1),
            valid_to=None,
        ),
    ),
    "expired": (
        Text("居民身份证 · 已过期", "Resident ID · expired"),
        IdentityDocument(
            kind="resident",
            name="赵强",
            id_number="110105199001011232",
            sex="男",
            nation="回",
            birth_date=dt.date(1990, 1, 1),
            address="北京市朝阳区建国路 88 号",
            authority="北京市公安局朝阳分局",
            valid_from=dt.date(2010, 5, 4),
            valid_to=dt.date(2020, 5, 4),
        ),
    ),
    "hk_permit": (
        Text("港澳台居民居住证 · 陈嘉欣", "HK/Macao/Taiwan residence permit · Chan Ka Yan"),
        IdentityDocument(
            kind="hk_mo_tw_permit",
            name="陈嘉欣",
            id_number="81000019920607004X",
            sex="女",
            birth_date=dt.date(1992, 6, 7),
            address="浙江省杭州市滨江区江南大道 588 号",
            authority="杭州市公安局",
            valid_from=dt.date(2023, 3, 1),
            valid_to=dt.date(2028, 3, 1),
            pass_number="H12345678",
        ),
    ),
    "foreigner": (
        Text("外国人永久居留身份证 · John Smith", "Foreign permanent residence ID · John Smith"),
        IdentityDocument(
            kind="foreign_permanent_2023",
            name="约翰·史密斯",
            english_name="SMITH, JOHN",
            id_number="930156198809200018",
            sex="男",
            birth_date=dt.date(1988, 9, 20),
            authority="国家移民管理局",
            valid_from=dt.date(2024, 1, 10),
            valid_to=dt.date(2034, 1, 10),
            nationality="GBR",
        ),
    ),
}

# E-licence types (电子证照) the government holds per demo person: those materials are 免提交.
DEMO_LICENCES: dict[str, frozenset[str]] = {
    "330106198503120036": frozenset(
        {"marriage_certificate", "household_register", "birth_certificate", "business_licence"}
    ),
    "330106194308160026": frozenset({"household_register"}),
    "81000019920607004X": frozenset(),
    "930156198809200018": frozenset(),
    "110105199001011232": frozenset({"household_register"}),
}


def sample_answer(field: FieldDef, yes: bool = True) -> Answer:
    """A plausible, valid answer (yes/no answered `yes` to open the conditional parts)."""
    kind = field.type
    if kind == "yes_no":
        return yes
    if kind == "choice":
        return field.choices[-1].value if yes else field.choices[0].value
    if kind == "date":
        return "2026-11-20" if field.not_future else "2026-12-15"
    if kind == "id_number":
        return "110105201501010033"
    if kind == "phone":
        return "13800138000"
    if kind == "number":
        low = field.min if field.min is not None else 1
        high = field.max if field.max is not None else low + 10
        return str(int(min(max(low, 3), high)))
    if kind == "address":
        return "浙江省杭州市西湖区文三路 90 号"
    return "示例内容"[: max(1, field.max_length)]


def sample_answers(
    form: UnifiedForm, answers: dict[str, Answer], yes: bool = True
) -> dict[str, Answer]:
    """Answer every visible unlocked field, repeating while answers reveal new fields."""
    for _ in range(10):
        added = False
        for f in form.fields(answers):
            if f.locked or f.id in answers:
                continue
            answers[f.id] = sample_answer(f.definition, yes)
            added = True
        if not added:
            return answers
    raise ValueError("the form kept growing: a condition cycle in the catalog?")
