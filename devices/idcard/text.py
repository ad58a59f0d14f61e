"""The card's 256-byte text block (GA/T 490) in its four layouts, and the appended address.

The block is UCS-2LE, each field space-padded (20 00). The two bytes at offset 248 say which
layout it is: `I` (2017 foreigner permanent residence card), `J` (Hong Kong, Macao and Taiwan
residents' residence permit), `Y` (2023 foreigner permanent residence card); anything else is
a resident ID card. Offsets: docs/idcard.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from devices.idcard.codec import ADDRESS_SIZE, TEXT_SIZE, IdCardError
from kiosk.identity import DocumentKind, IdNumberError, validate_id_number
from kiosk.identity import IdentityDocument as IdDocument

KIND_FLAG_OFFSET = 248
FLAG_HK_MO_TW = b"J\x00"
FLAG_FOREIGN_2017 = b"I\x00"
FLAG_FOREIGN_2023 = b"Y\x00"
LONG_TERM = "长期"
# The 2023 card has no authority field in the chip: every such card is issued by the
# National Immigration Administration, which its face prints as the issuer.
FOREIGN_2023_AUTHORITY = "国家移民管理局"
MAX_APPENDED_ADDRESSES = 4  # GA/T 490 leaves room for four 70-byte appended addresses
PADDING = " \x00"

# GB/T 2261.1 sex codes.
SEXES: dict[str, str] = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}
SEX_CODES: dict[str, str] = {name: code for code, name in SEXES.items()}

# GB 3304 nation codes (hev-dbus and HslCommunication GetNationText; 46 is 德昂, which
# hev-dbus misspells).
NATIONS: dict[str, str] = {
    "01": "汉",
    "02": "蒙古",
    "03": "回",
    "04": "藏",
    "05": "维吾尔",
    "06": "苗",
    "07": "彝",
    "08": "壮",
    "09": "布依",
    "10": "朝鲜",
    "11": "满",
    "12": "侗",
    "13": "瑶",
    "14": "白",
    "15": "土家",
    "16": "哈尼",
    "17": "哈萨克",
    "18": "傣",
    "19": "黎",
    "20": "傈僳",
    "21": "佤",
    "22": "畲",
    "23": "高山",
    "24": "拉祜",
    "25": "水",
    "26": "东乡",
    "27": "纳西",
    "28": "景颇",
    "29": "柯尔克孜",
    "30": "土",
    "31": "达斡尔",
    "32": "仫佬",
    "33": "羌",
    "34": "布朗",
    "35": "撒拉",
    "36": "毛南",
    "37": "仡佬",
    "38": "锡伯",
    "39": "阿昌",
    "40": "普米",
    "41": "塔吉克",
    "42": "怒",
    "43": "乌孜别克",
    "44": "俄罗斯",
    "45": "鄂温克",
    "46": "德昂",
    "47": "保安",
    "48": "裕固",
    "49": "京",
    "50": "塔塔尔",
    "51": "独龙",
    "52": "鄂伦春",
    "53": "赫哲",
    "54": "门巴",
    "55": "珞巴",
    "56": "基诺",
    "97": "其他",
    "98": "外国血统中国籍人士",
}
NATION_CODES: dict[str, str] = {name: code for code, name in NATIONS.items()}


class CardDataError(IdCardError, ValueError):
    """A text block (or appended address) that cannot be read; names the field, not its data."""


# Reading -------------------------------------------------------------------------------------


def _text(block: bytes, offset: int, size: int, what: str) -> str:
    """A field without its trailing padding."""
    return _raw(block, offset, size, what).rstrip(PADDING)


def _raw(block: bytes, offset: int, size: int, what: str) -> str:
    try:
        return block[offset : offset + size].decode("utf-16-le")
    except UnicodeDecodeError:
        raise CardDataError(f"{what} is not UCS-2 text") from None


def _ascii_digits(value: str) -> bool:
    # str.isdigit() alone accepts '²' and other digits int() refuses.
    return value.isascii() and value.isdigit()


def _date(block: bytes, offset: int, what: str) -> dt.date:
    value = _text(block, offset, 16, what)
    if len(value) != 8 or not _ascii_digits(value):
        raise CardDataError(f"{what} is not a YYYYMMDD date")
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise CardDataError(f"{what} is not a calendar date") from None


def _valid_to(block: bytes, offset: int) -> dt.date | None:
    if _text(block, offset, 16, "validity end") == LONG_TERM:
        return None
    return _date(block, offset, "validity end")


def _sex(block: bytes, offset: int) -> str:
    sex = SEXES.get(_text(block, offset, 2, "sex"))
    if sex is None:
        raise CardDataError("sex code is not one of 0, 1, 2, 9")
    return sex


def _id_number(block: bytes, offset: int, what: str) -> str:
    value = _text(block, offset, 36, what)
    if not value.isascii():
        raise CardDataError(f"{what} has characters other than digits and X")
    try:
        return validate_id_number(value)
    except IdNumberError:
        raise CardDataError(f"{what} is not a valid 18-character number") from None


def _nationality(block: bytes, offset: int) -> str:
    value = _text(block, offset, 6, "nationality")
    if len(value) != 3 or not (value.isascii() and value.isalpha() and value.isupper()):
        raise CardDataError("nationality is not a three-letter code")
    return value


def _required(value: str, what: str) -> str:
    if not value.strip():
        raise CardDataError(f"{what} is empty")
    return value


def _validity(block: bytes) -> tuple[dt.date, dt.date | None]:
    valid_from = _date(block, 188, "validity start")
    valid_to = _valid_to(block, 204)
    if valid_to is not None and valid_to < valid_from:
        raise CardDataError("validity ends before it starts")
    return valid_from, valid_to


def _parse_resident(block: bytes, permit: bool) -> IdDocument:
    nation_code = _text(block, 32, 4, "nation")
    nation = NATIONS.get(nation_code)
    if nation is None:
        # A residence-permit holder has no nation: the field is left blank.
        if not (permit and nation_code == ""):
            raise CardDataError("nation code is not in GB 3304")
        nation = ""
    valid_from, valid_to = _validity(block)
    return IdDocument(
        kind="hk_mo_tw_permit" if permit else "resident",
        name=_required(_text(block, 0, 30, "name"), "name"),
        sex=_sex(block, 30),
        nation=nation,
        birth_date=_date(block, 36, "birth date"),
        address=_text(block, 52, 70, "address"),
        id_number=_id_number(block, 122, "ID number"),
        authority=_text(block, 158, 30, "authority"),
        valid_from=valid_from,
        valid_to=valid_to,
        pass_number=_text(block, 220, 18, "pass number") if permit else "",
    )


def _parse_foreign_2017(block: bytes) -> IdDocument:
    number = _text(block, 122, 30, "permanent residence number")
    if len(number) != 15 or not (number.isascii() and number.isalnum()):
        raise CardDataError("permanent residence number is not 15 letters and digits")
    valid_from, valid_to = _validity(block)
    return IdDocument(
        kind="foreign_permanent_2017",
        english_name=_required(_text(block, 0, 120, "English name"), "English name"),
        sex=_sex(block, 120),
        id_number=number.upper(),
        nationality=_nationality(block, 152),
        name=_text(block, 158, 30, "Chinese name"),
        valid_from=valid_from,
        valid_to=valid_to,
        birth_date=_date(block, 220, "birth date"),
        # The 2017 chip holds the issuing authority as a code, not as a name.
        authority=_text(block, 240, 8, "authority code"),
    )


def _parse_foreign_2023(block: bytes) -> IdDocument:
    # The English name is split: characters 1-35 at 52, characters 36-46 at 220. The first
    # part keeps its padding so that a space at the split is not lost.
    english = (_raw(block, 52, 70, "English name") + _raw(block, 220, 22, "English name")).rstrip(
        PADDING
    )
    number = _id_number(block, 122, "ID number")
    if not number.startswith("9"):
        raise CardDataError("ID number of a 2023 permanent residence card must start with 9")
    name = _text(block, 0, 30, "Chinese name")
    if not (name.strip() or english.strip()):
        raise CardDataError("both names are empty")
    valid_from, valid_to = _validity(block)
    return IdDocument(
        kind="foreign_permanent_2023",
        name=name,
        english_name=english,
        sex=_sex(block, 30),
        birth_date=_date(block, 36, "birth date"),
        id_number=number,
        valid_from=valid_from,
        valid_to=valid_to,
        nationality=_nationality(block, 242),
        authority=FOREIGN_2023_AUTHORITY,
    )


def kind_of(block: bytes) -> DocumentKind:
    """The layout of a text block, from its flag at offset 248."""
    flag = bytes(block[KIND_FLAG_OFFSET : KIND_FLAG_OFFSET + 2])
    if flag == FLAG_FOREIGN_2017:
        return "foreign_permanent_2017"
    if flag == FLAG_FOREIGN_2023:
        return "foreign_permanent_2023"
    if flag == FLAG_HK_MO_TW:
        return "hk_mo_tw_permit"
    return "resident"


_PARSERS: dict[DocumentKind, Callable[[bytes], IdDocument]] = {
    "resident": lambda block: _parse_resident(block, permit=False),
    "hk_mo_tw_permit": lambda block: _parse_resident(block, permit=True),
    "foreign_permanent_2017": _parse_foreign_2017,
    "foreign_permanent_2023": _parse_foreign_2023,
}


def parse_text(block: bytes) -> IdDocument:
    """The document in a 256-byte text block; raises CardDataError for one it cannot read."""
    block = bytes(block)
    if len(block) != TEXT_SIZE:
        raise CardDataError(f"text block of {len(block)} bytes, expected {TEXT_SIZE}")
    return _PARSERS[kind_of(block)](block)


def parse_appended_addresses(data: bytes) -> tuple[str, ...]:
    """The addresses in a 30 03 answer, oldest first (blank slots left out)."""
    data = bytes(data)
    if len(data) % ADDRESS_SIZE or len(data) > MAX_APPENDED_ADDRESSES * ADDRESS_SIZE:
        raise CardDataError(f"appended address data of {len(data)} bytes")
    slots = (
        _text(data, offset, ADDRESS_SIZE, "appended address")
        for offset in range(0, len(data), ADDRESS_SIZE)
    )
    return tuple(slot for slot in slots if slot.strip())


# Writing (the simulator's side; tests use it for round trips) ------------------------------


def _put(block: bytearray, offset: int, size: int, value: str, what: str) -> None:
    if any(ord(c) > 0xFFFF for c in value):
        raise ValueError(f"{what}: UCS-2 has no characters outside the BMP")
    data = value.encode("utf-16-le")
    if len(data) > size:
        raise ValueError(f"{what}: longer than {size // 2} characters")
    block[offset : offset + size] = data + " ".encode("utf-16-le") * ((size - len(data)) // 2)


def _date_text(value: dt.date | None) -> str:
    return LONG_TERM if value is None else value.strftime("%Y%m%d")


def _sex_code(sex: str) -> str:
    try:
        return SEX_CODES[sex]
    except KeyError:
        raise ValueError(f"sex {sex!r} has no GB/T 2261.1 code") from None


def encode_text(
    document: IdDocument, *, issue_count: int = 0, version: str = "01", renewal_count: int = 0
) -> bytes:
    """The 256-byte text block a card of this kind carries for `document` (ValueError if a
    field does not fit its layout). The keyword fields exist on cards but not in IdDocument."""
    d = document
    block = bytearray(" ".encode("utf-16-le") * (TEXT_SIZE // 2))
    if d.kind in ("resident", "hk_mo_tw_permit"):
        permit = d.kind == "hk_mo_tw_permit"
        if d.nation:
            try:
                nation = NATION_CODES[d.nation]
            except KeyError:
                raise ValueError(f"nation {d.nation!r} is not in GB 3304") from None
        elif permit:
            nation = ""
        else:
            raise ValueError("a resident ID card needs a nation")
        _put(block, 0, 30, d.name, "name")
        _put(block, 30, 2, _sex_code(d.sex), "sex")
        _put(block, 32, 4, nation, "nation")
        _put(block, 36, 16, _date_text(d.birth_date), "birth date")
        _put(block, 52, 70, d.address, "address")
        _put(block, 122, 36, d.id_number, "ID number")
        _put(block, 158, 30, d.authority, "authority")
        if permit:
            _put(block, 220, 18, d.pass_number, "pass number")
            _put(block, 238, 4, f"{issue_count:02d}", "issue count")
            block[248:250] = FLAG_HK_MO_TW
    elif d.kind == "foreign_permanent_2017":
        _put(block, 0, 120, d.english_name, "English name")
        _put(block, 120, 2, _sex_code(d.sex), "sex")
        _put(block, 122, 30, d.id_number, "permanent residence number")
        _put(block, 152, 6, d.nationality, "nationality")
        _put(block, 158, 30, d.name, "Chinese name")
        _put(block, 220, 16, _date_text(d.birth_date), "birth date")
        _put(block, 236, 4, version, "version")
        _put(block, 240, 8, d.authority, "authority code")
        block[248:250] = FLAG_FOREIGN_2017
    else:
        english = d.english_name
        if len(english) > 46:
            raise ValueError("English name: longer than 46 characters")
        _put(block, 0, 30, d.name, "Chinese name")
        _put(block, 30, 2, _sex_code(d.sex), "sex")
        _put(block, 32, 4, f"{renewal_count:02d}", "renewal count")
        _put(block, 36, 16, _date_text(d.birth_date), "birth date")
        _put(block, 52, 70, english[:35], "English name")
        _put(block, 220, 22, english[35:], "English name")
        _put(block, 122, 36, d.id_number, "ID number")
        _put(block, 242, 6, d.nationality, "nationality")
        block[248:250] = FLAG_FOREIGN_2023
    _put(block, 188, 16, _date_text(d.valid_from), "validity start")
    _put(block, 204, 16, _date_text(d.valid_to), "validity end")
    return bytes(block)


def encode_appended_addresses(addresses: tuple[str, ...]) -> bytes:
    """The data of a 30 03 answer holding `addresses` (the simulator's side)."""
    if not 1 <= len(addresses) <= MAX_APPENDED_ADDRESSES:
        raise ValueError(f"1 to {MAX_APPENDED_ADDRESSES} appended addresses")
    out = bytearray()
    for address in addresses:
        slot = bytearray(ADDRESS_SIZE)
        _put(slot, 0, ADDRESS_SIZE, address, "appended address")
        out += slot
    return bytes(out)
