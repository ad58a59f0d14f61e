"""The BER-TLV parser on its own: real templates, round trips, and every kind of broken input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.pcsc import tlv
from devices.pcsc.tlv import Tlv, TlvError

# The FCI a UnionPay card returns for SELECT PPSE: 6F > A5 > BF0C > 61 > 4F/50/87.
PPSE_FCI = bytes.fromhex(
    "6F30840E325041592E5359532E4444463031A51EBF0C1B61194F08A000000333010101"
    "500A50424F43204445424954870101"
)


def test_a_ppse_answer_parses_down_to_the_application_id() -> None:
    (fci,) = tlv.parse(PPSE_FCI)
    assert fci.tag == 0x6F and fci.constructed
    assert tlv.find_value([fci], 0x84) == b"2PAY.SYS.DDF01"
    assert tlv.find_value([fci], 0x4F) == bytes.fromhex("A000000333010101")
    assert tlv.find_value([fci], 0x50) == b"PBOC DEBIT"
    entry = fci.find(0x61)
    assert entry is not None and [c.tag for c in entry.children] == [0x4F, 0x50, 0x87]
    assert fci.find(0xBF0C) is not None  # a two-byte tag of a constructed template
    assert tlv.find([fci], 0x5A) is None


def test_two_and_three_byte_tags() -> None:
    data = tlv.encode(0x9F38, b"\x9f\x66\x04") + tlv.encode(0xDF8101, b"\x01")
    objects = tlv.parse(data)
    assert [(o.tag, o.value) for o in objects] == [(0x9F38, b"\x9f\x66\x04"), (0xDF8101, b"\x01")]


@pytest.mark.parametrize(
    ("size", "header"),
    [(127, "5A7F"), (128, "5A8180"), (255, "5A81FF"), (256, "5A820100"), (300, "5A82012C")],
)
def test_long_form_lengths(size: int, header: str) -> None:
    encoded = tlv.encode(0x5A, bytes(size))
    assert encoded.hex().upper().startswith(header)
    (obj,) = tlv.parse(encoded)
    assert len(obj.value) == size


def test_padding_between_objects_is_skipped() -> None:
    # ISO 7816-4: 00 and FF may stand before, between and after objects (erased records).
    data = b"\x00\xff" + tlv.encode(0x5A, b"\x12") + b"\x00\x00" + tlv.encode(0x50, b"A") + b"\xff"
    assert [o.tag for o in tlv.parse(data)] == [0x5A, 0x50]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("9F", "truncated tag at offset 0"),
        ("9F9F", "truncated tag at offset 0"),
        ("9F9F9F9F01", "longer than 4 bytes"),
        ("5A", "truncated length at offset 1"),
        ("5A81", "truncated length at offset 1"),
        ("5A820100", "256 bytes declared, 0 left"),
        ("5A80", "indefinite length"),
        ("5A850000000001", "5 bytes"),
        ("5A0512", "tag 5A at offset 0: 5 bytes declared, 1 left"),
        ("70055A05123456", "tag 5A at offset 2: 5 bytes declared, 3 left"),
    ],
)
def test_broken_input_is_a_clear_error(data: str, message: str) -> None:
    with pytest.raises(TlvError, match=message):
        tlv.parse(bytes.fromhex(data))


def test_error_messages_never_hold_the_value() -> None:
    pan = bytes.fromhex("6217000012341234")
    with pytest.raises(TlvError) as caught:
        tlv.parse(b"\x70\x20\x5a\x08" + pan)
    assert pan.hex() not in str(caught.value).lower()
    assert "6217" not in str(caught.value)


def test_nesting_is_limited() -> None:
    value = b""
    for _ in range(tlv.MAX_DEPTH + 2):
        value = tlv.encode(0x30, value)
    with pytest.raises(TlvError, match="nested deeper"):
        tlv.parse(value)


def test_repr_does_not_show_values() -> None:
    (obj,) = tlv.parse(tlv.encode(0x5A, bytes.fromhex("6217000012341234")))
    assert "6217" not in repr(obj) and "b'" not in repr(obj)


def test_dol() -> None:
    pdol = bytes.fromhex("9F66049F02065F2A029A03")
    assert tlv.parse_dol(pdol) == [(0x9F66, 4), (0x9F02, 6), (0x5F2A, 2), (0x9A, 3)]
    assert tlv.parse_dol(b"") == []
    with pytest.raises(TlvError, match="truncated DOL entry for tag 9F66"):
        tlv.parse_dol(bytes.fromhex("9F66"))


def test_tag_hex() -> None:
    assert [tlv.tag_hex(t) for t in (0x5A, 0x0A, 0x9F38, 0xDF8101)] == [
        "5A",
        "0A",
        "9F38",
        "DF8101",
    ]


# Property tests -------------------------------------------------------------------------------

_CLASSES = st.sampled_from([0x00, 0x40, 0x80, 0xC0])


def _tags(constructed: bool) -> st.SearchStrategy[int]:
    bit = 0x20 if constructed else 0x00
    single = st.builds(lambda c, n: c | bit | n, _CLASSES, st.integers(0, 30))
    multi = st.builds(
        lambda c, middle, last: int.from_bytes(bytes([c | bit | 0x1F, *middle, last]), "big"),
        _CLASSES,
        st.lists(st.integers(0x80, 0xFF), max_size=2),
        st.integers(0x00, 0x7F),
    )
    # 00 and FF as a first byte are padding, not tags (FF.. tags are unusable in card data).
    return st.one_of(single, multi).filter(
        lambda t: t > 0 and tlv.encode_tag(t)[0] not in tlv.PADDING
    )


def _constructed(children: list[Tlv], tag: int) -> Tlv:
    return Tlv(tag, b"".join(c.encode() for c in children), tuple(children))


_PRIMITIVE = st.builds(Tlv, _tags(False), st.binary(max_size=300))
_OBJECTS = st.recursive(
    _PRIMITIVE,
    lambda kids: st.builds(_constructed, st.lists(kids, max_size=4), _tags(True)),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_OBJECTS, max_size=4))
def test_what_is_encoded_parses_back_the_same(objects: list[Tlv]) -> None:
    data = b"".join(o.encode() for o in objects)
    assert tlv.parse(data) == objects


@settings(max_examples=150, deadline=None)
@given(_OBJECTS, st.data())
def test_any_truncation_of_an_object_is_an_error(obj: Tlv, data: st.DataObject) -> None:
    encoded = obj.encode()
    cut = data.draw(st.integers(1, len(encoded) - 1))
    with pytest.raises(TlvError):
        tlv.parse(encoded[:cut])


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_only_tlv_error(data: bytes) -> None:
    # Anything other than TlvError escaping (IndexError, RecursionError...) fails the test.
    with contextlib.suppress(TlvError):
        for obj in tlv.parse(data):
            assert obj.encode()  # whatever parsed can be written again
