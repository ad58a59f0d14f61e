"""The card text block in its four layouts, the appended address and the photo interface."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.idcard import CardDataError, IdDocument, parse_text
from devices.idcard.photo import (
    PhotoDecodeError,
    PhotoDecoder,
    UnlicensedPhotoDecoder,
    photo_image,
)
from devices.idcard.text import (
    NATIONS,
    SEXES,
    encode_appended_addresses,
    encode_text,
    kind_of,
    parse_appended_addresses,
)
from kiosk.demo import DEMO_CARDS
from kiosk.identity import IdentityDocument, check_digit

FUZZ = settings(max_examples=600, deadline=None, database=None)
SPACE = " ".encode("utf-16-le")


def block(fields: dict[int, str], flag: bytes = SPACE) -> bytes:
    """A text block laid out by hand from the offsets in devices.md, not by encode_text."""
    out = bytearray(SPACE * 128)
    for offset, text in fields.items():
        data = text.encode("utf-16-le")
        out[offset : offset + len(data)] = data
    out[248:250] = flag
    return bytes(out)


RESIDENT = {
    0: "张三丰",
    30: "1",
    32: "03",
    36: "19491231",
    52: "北京市东城区景山前街 4 号",
    122: "11010519491231002X",
    158: "北京市公安局东城分局",
    188: "20100101",
    204: "长期",
}
HK_PERMIT = {
    0: "陈嘉欣",
    30: "2",
    36: "19920607",
    52: "浙江省杭州市滨江区江南大道 588 号",
    122: "81000019920607004X",
    158: "杭州市公安局",
    188: "20230301",
    204: "20280301",
    220: "H12345678",
    238: "01",
}
FOREIGN_2017 = {
    0: "SMITH, JOHN PAUL",
    120: "1",
    122: "USA310555081502",
    152: "USA",
    158: "史密斯",
    188: "20170601",
    204: "20270601",
    220: "19800515",
    236: "01",
    240: "1500",
}
LONG_NAME = "A" * 34 + " " + "BCDEFGHIJ"  # the 35th character, a space, is where it splits
FOREIGN_2023 = {
    0: "约翰·史密斯",
    30: "1",
    32: "00",
    36: "19880920",
    52: LONG_NAME[:35],
    122: "930156198809200018",
    188: "20240110",
    204: "20340110",
    220: LONG_NAME[35:],
    242: "GBR",
}


def test_resident_layout() -> None:
    doc = parse_text(block(RESIDENT))
    assert doc == IdentityDocument(
        kind="resident",
        name="张三丰",
        sex="男",
        nation="回",
        birth_date=dt.date(1949, 12, 31),
        address="北京市东城区景山前街 4 号",
        id_number="11010519491231002X",
        authority="北京市公安局东城分局",
        valid_from=dt.date(2010, 1, 1),
        valid_to=None,
    )


def test_hk_macao_taiwan_permit_layout() -> None:
    doc = parse_text(block(HK_PERMIT, b"J\x00"))
    assert doc.kind == "hk_mo_tw_permit"
    assert (doc.name, doc.sex, doc.nation) == ("陈嘉欣", "女", "")
    assert doc.pass_number == "H12345678"
    assert doc.id_number == "81000019920607004X"
    assert (doc.valid_from, doc.valid_to) == (dt.date(2023, 3, 1), dt.date(2028, 3, 1))


def test_foreigner_2017_layout() -> None:
    doc = parse_text(block(FOREIGN_2017, b"I\x00"))
    assert doc.kind == "foreign_permanent_2017"
    assert (doc.english_name, doc.name) == ("SMITH, JOHN PAUL", "史密斯")
    assert (doc.sex, doc.nationality, doc.id_number) == ("男", "USA", "USA310555081502")
    assert doc.birth_date == dt.date(1980, 5, 15)
    assert doc.authority == "1500"
    assert (doc.address, doc.nation, doc.pass_number) == ("", "", "")


def test_foreigner_2023_layout_joins_the_split_english_name() -> None:
    doc = parse_text(block(FOREIGN_2023, b"Y\x00"))
    assert doc.kind == "foreign_permanent_2023"
    assert doc.english_name == LONG_NAME
    assert (doc.name, doc.sex, doc.nationality) == ("约翰·史密斯", "男", "GBR")
    assert doc.id_number == "930156198809200018"
    assert doc.authority == "国家移民管理局"
    assert doc.birth_date == dt.date(1988, 9, 20)


@pytest.mark.parametrize(
    ("flag", "kind"),
    [
        (b"J\x00", "hk_mo_tw_permit"),
        (b"I\x00", "foreign_permanent_2017"),
        (b"Y\x00", "foreign_permanent_2023"),
        (SPACE, "resident"),
        (b"\x00\x00", "resident"),
        (b"j\x00", "resident"),
    ],
)
def test_the_flag_at_248_chooses_the_layout(flag: bytes, kind: str) -> None:
    assert kind_of(block({}, flag)) == kind


@pytest.mark.parametrize("key", list(DEMO_CARDS))
def test_demo_cards_survive_encoding(key: str) -> None:
    document = DEMO_CARDS[key][1]
    assert parse_text(encode_text(document)) == document


@pytest.mark.parametrize(
    ("code", "sex"), [("0", "未知"), ("1", "男"), ("2", "女"), ("9", "未说明")]
)
def test_sex_codes(code: str, sex: str) -> None:
    assert parse_text(block(RESIDENT | {30: code})).sex == sex


@pytest.mark.parametrize(
    ("code", "nation"),
    [("01", "汉"), ("05", "维吾尔"), ("46", "德昂"), ("56", "基诺"), ("97", "其他")],
)
def test_nation_codes(code: str, nation: str) -> None:
    assert parse_text(block(RESIDENT | {32: code})).nation == nation


def test_nation_table_is_complete() -> None:
    assert len(NATIONS) == 58
    assert [f"{i:02d}" for i in range(1, 57)] == sorted(NATIONS)[:56]
    assert NATIONS["98"] == "外国血统中国籍人士"


def test_dated_validity_end() -> None:
    doc = parse_text(block(RESIDENT | {204: "20300101"}))
    assert doc.valid_to == dt.date(2030, 1, 1)


BAD_BLOCKS = {
    "unknown nation": (RESIDENT | {32: "57"}, SPACE, "nation"),
    "blank nation on a resident card": (RESIDENT | {32: "  "}, SPACE, "nation"),
    "sex code": (RESIDENT | {30: "3"}, SPACE, "sex"),
    "month 13": (RESIDENT | {36: "19901301"}, SPACE, "birth date"),
    "letters in a date": (RESIDENT | {188: "2010O101"}, SPACE, "validity start"),
    "superscript digit in a date": (RESIDENT | {36: "1990010²"}, SPACE, "birth date"),
    "check digit": (RESIDENT | {122: "110105194912310021"}, SPACE, "ID number"),
    "fullwidth digits": (
        RESIDENT | {122: "１１０１０５１９４９１２３１００２X"},
        SPACE,
        "ID number",
    ),
    "reversed validity": (RESIDENT | {188: "20200101", 204: "20100101"}, SPACE, "validity"),
    "empty name": (RESIDENT | {0: "   "}, SPACE, "name"),
    "short PR number": (FOREIGN_2017 | {122: "USA31055508150"}, b"I\x00", "residence number"),
    "lower-case nationality": (FOREIGN_2017 | {152: "usa"}, b"I\x00", "nationality"),
    "2023 number not starting with 9": (
        FOREIGN_2023 | {122: "11010519491231002X"},
        b"Y\x00",
        "start with 9",
    ),
}


@pytest.mark.parametrize("case", list(BAD_BLOCKS))
def test_unreadable_fields_raise_card_data_error_without_the_data(case: str) -> None:
    fields, flag, message = BAD_BLOCKS[case]
    with pytest.raises(CardDataError, match=message) as caught:
        parse_text(block(fields, flag))
    for value in fields.values():
        if len(value.strip()) > 2:
            assert value not in str(caught.value)


def test_text_that_is_not_ucs2_is_refused() -> None:
    raw = bytearray(block(RESIDENT))
    raw[0:2] = b"\x00\xd8"  # a lone high surrogate
    with pytest.raises(CardDataError, match="name is not UCS-2"):
        parse_text(bytes(raw))


@pytest.mark.parametrize("size", [0, 255, 257, 1024])
def test_block_of_the_wrong_size_is_refused(size: int) -> None:
    with pytest.raises(CardDataError, match="text block of"):
        parse_text(bytes(size))


def test_appended_addresses() -> None:
    one = encode_appended_addresses(("浙江省杭州市上城区解放路 1 号",))
    assert len(one) == 70
    assert parse_appended_addresses(one) == ("浙江省杭州市上城区解放路 1 号",)
    two = encode_appended_addresses(("甲地 1 号", "乙地 2 号"))
    assert parse_appended_addresses(two) == ("甲地 1 号", "乙地 2 号")
    assert parse_appended_addresses(SPACE * 35) == ()
    assert parse_appended_addresses(b"") == ()
    with pytest.raises(CardDataError):
        parse_appended_addresses(bytes(71))
    with pytest.raises(CardDataError):
        parse_appended_addresses(SPACE * 35 * 5)


def test_encoding_refuses_what_a_card_cannot_hold() -> None:
    adult = DEMO_CARDS["adult"][1]
    with pytest.raises(ValueError, match="name: longer than 15"):
        encode_text(replace(adult, name="李" * 16))
    with pytest.raises(ValueError, match="BMP"):
        encode_text(replace(adult, name="李\U00020000"))
    with pytest.raises(ValueError, match="GB 3304"):
        encode_text(replace(adult, nation="火星"))
    with pytest.raises(ValueError, match="needs a nation"):
        encode_text(replace(adult, nation=""))
    with pytest.raises(ValueError, match="sex"):
        encode_text(replace(adult, sex="M"))


# Round trips and fuzz ------------------------------------------------------------------------

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
LATIN = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ ,-")
UPPER = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
dates = st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31))


def padded_free(alphabet: st.SearchStrategy[str], low: int, high: int) -> st.SearchStrategy[str]:
    """Text a field keeps exactly: no trailing space, and non-blank when required."""
    return (
        st.text(alphabet, min_size=low, max_size=high)
        .map(str.rstrip)
        .filter(lambda s: len(s) >= low and (low == 0 or s.strip()))
    )


@st.composite
def id_numbers(draw: st.DrawFn, first: str = "") -> str:
    region = first + "".join(
        draw(
            st.lists(
                st.sampled_from("0123456789"), min_size=6 - len(first), max_size=6 - len(first)
            )
        )
    )
    birth = draw(dates).strftime("%Y%m%d")
    seq = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=3, max_size=3)))
    return region + birth + seq + check_digit(region + birth + seq)


@st.composite
def documents(draw: st.DrawFn) -> IdDocument:
    kind = draw(
        st.sampled_from(
            ["resident", "hk_mo_tw_permit", "foreign_permanent_2017", "foreign_permanent_2023"]
        )
    )
    valid_from = draw(dates)
    base = IdentityDocument(
        kind="resident",
        name="",
        id_number="",
        sex=draw(st.sampled_from(sorted(SEXES.values()))),
        birth_date=draw(dates),
        valid_from=valid_from,
        valid_to=draw(st.none() | dates.filter(lambda d: d >= valid_from)),
    )
    digits = st.sampled_from("0123456789")
    if kind in ("resident", "hk_mo_tw_permit"):
        permit = kind == "hk_mo_tw_permit"
        return replace(
            base,
            kind="hk_mo_tw_permit" if permit else "resident",
            name=draw(padded_free(CJK | st.just("·"), 1, 15)),
            nation="" if permit else draw(st.sampled_from(sorted(NATIONS.values()))),
            address=draw(padded_free(CJK | st.sampled_from("0123456789 "), 0, 35)),
            id_number=draw(id_numbers()),
            authority=draw(padded_free(CJK, 0, 15)),
            pass_number=draw(padded_free(UPPER | digits, 0, 9)) if permit else "",
        )
    nationality = "".join(draw(st.lists(UPPER, min_size=3, max_size=3)))
    if kind == "foreign_permanent_2017":
        return replace(
            base,
            kind="foreign_permanent_2017",
            english_name=draw(padded_free(LATIN, 1, 60)),
            name=draw(padded_free(CJK, 0, 15)),
            id_number=nationality + "".join(draw(st.lists(digits, min_size=12, max_size=12))),
            nationality=nationality,
            authority="".join(draw(st.lists(digits, min_size=4, max_size=4))),
        )
    return replace(
        base,
        kind="foreign_permanent_2023",
        name=draw(padded_free(CJK | st.just("·"), 1, 15)),
        english_name=draw(padded_free(LATIN, 0, 46)),
        id_number=draw(id_numbers("9")),
        nationality=nationality,
        authority="国家移民管理局",
    )


@settings(max_examples=300, deadline=None, database=None)
@given(documents())
def test_every_layout_round_trips(document: IdDocument) -> None:
    assert parse_text(encode_text(document)) == document


@FUZZ
@given(st.binary(min_size=256, max_size=256))
def test_random_blocks_give_a_document_or_card_data_error(raw: bytes) -> None:
    try:
        parse_text(raw)
    except CardDataError:
        return


@FUZZ
@given(
    st.sampled_from([encode_text(doc) for _label, doc in DEMO_CARDS.values()]),
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), min_size=1, max_size=6),
)
def test_damaged_demo_blocks_give_a_document_or_card_data_error(
    original: bytes, damage: list[tuple[int, int]]
) -> None:
    raw = bytearray(original)
    for where, value in damage:
        raw[where] = value
    try:
        document = parse_text(bytes(raw))
    except CardDataError:
        return
    assert document.kind in (
        "resident",
        "hk_mo_tw_permit",
        "foreign_permanent_2017",
        "foreign_permanent_2023",
    )


# Photo ---------------------------------------------------------------------------------------


class FakePhotoDecoder:
    """A decoder that records what it was given and returns a fixed image."""

    name = "fake vendor decoder"

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[bytes] = []
        self.fail = fail

    def decode(self, wlt: bytes) -> bytes:
        self.seen.append(wlt)
        if self.fail:
            raise PhotoDecodeError("licence expired")
        return b"\x89PNG fake"


def test_without_a_licensed_decoder_the_screen_gets_a_placeholder() -> None:
    assert isinstance(UnlicensedPhotoDecoder(), PhotoDecoder)
    assert photo_image(bytes(1024)) is None
    assert photo_image(b"") is None


def test_a_vendor_decoder_can_be_dropped_in() -> None:
    decoder = FakePhotoDecoder()
    assert isinstance(decoder, PhotoDecoder)
    wlt = bytes(range(256)) * 4
    assert photo_image(wlt, decoder) == b"\x89PNG fake"
    assert decoder.seen == [wlt]


def test_a_failing_decoder_gives_the_placeholder_and_logs_no_bytes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    assert photo_image(b"\x01\x02\x03" * 10, FakePhotoDecoder(fail=True)) is None
    assert "licence expired" in caplog.text and "30 bytes" in caplog.text
    assert "\\x01" not in caplog.text
