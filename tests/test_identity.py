"""ID numbers (GB 11643), masking, derived age and sex, validity periods."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.demo import DEMO_CARDS
from kiosk.identity import (
    DocumentExpired,
    IdNumberError,
    age_on,
    birth_date_of,
    check_digit,
    keyed_hash,
    mask_id_number,
    mask_name,
    mask_phone,
    sex_of,
    validate_id_number,
)


@pytest.mark.parametrize(
    "number",
    [
        "11010519491231002X",  # the GB 11643 standard's own example
        "330106198503120036",
        "81000019920607004X",  # Hong Kong resident's residence permit: region code 81
        "930156198809200018",  # 2023 foreigner permanent residence number: starts with 9
    ],
)
def test_valid_numbers_pass(number: str) -> None:
    assert validate_id_number(number) == number


def test_lower_case_x_and_spaces_are_normalized() -> None:
    assert validate_id_number(" 110105 19491231 002x ") == "11010519491231002X"


@pytest.mark.parametrize(
    ("number", "key"),
    [
        ("1101051949123100", "id_length"),
        ("11010519491231002X1", "id_length"),
        ("1101051949123A002X", "id_chars"),
        ("110105194912310X2X", "id_chars"),
        ("1²010519491231002X", "id_chars"),  # a digit to str.isdigit, not to int()
        ("110105194902300027", "id_birth_date"),  # 30 February
        ("110105194912310021", "id_checksum"),
    ],
)
def test_bad_numbers_say_why(number: str, key: str) -> None:
    with pytest.raises(IdNumberError) as info:
        validate_id_number(number)
    assert info.value.message.key == key
    assert info.value.message.render("zh") != info.value.message.render("en")


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_any_17_digits_with_their_check_digit_pass_when_the_date_is_real(first17: str) -> None:
    number = first17 + check_digit(first17)
    try:
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        born = None
    if born is None or born.year < 1850:
        with pytest.raises(IdNumberError):
            validate_id_number(number)
    else:
        assert validate_id_number(number) == number
        assert birth_date_of(number) == born
        # Changing the check character always breaks it.
        other = "0" if number[-1] != "0" else "1"
        with pytest.raises(IdNumberError):
            validate_id_number(number[:-1] + other)


def test_sex_and_age_come_from_the_number() -> None:
    assert sex_of("330106198503120036") == "男"
    assert sex_of("330106194308160026") == "女"
    born = dt.date(1943, 8, 16)
    assert age_on(born, dt.date(2026, 8, 15)) == 82
    assert age_on(born, dt.date(2026, 8, 16)) == 83


def test_masks_keep_only_what_a_person_needs_to_recognise_their_own() -> None:
    assert mask_id_number("110105194912310021") == "1101**********0021"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("张") == "张*"
    assert mask_name("JOHN SMITH") == "J*** S****"
    assert mask_phone("13812345678") == "138****5678"


def test_repr_never_shows_the_full_number_or_name() -> None:
    _, doc = DEMO_CARDS["adult"]
    text = repr(doc) + str(doc) + f"{doc}"
    assert doc.id_number not in text
    assert doc.name not in text
    assert doc.masked_id_number in text


def test_expired_card_is_refused_with_the_date() -> None:
    _, doc = DEMO_CARDS["expired"]
    with pytest.raises(DocumentExpired) as info:
        doc.check_valid_on(dt.date(2026, 11, 27))
    assert "2020-05-04" in info.value.message.render("zh")
    DEMO_CARDS["adult"][1].check_valid_on(dt.date(2026, 11, 27))
    DEMO_CARDS["elderly"][1].check_valid_on(dt.date(2099, 1, 1))  # 长期: never expires


def test_every_demo_card_has_a_valid_number() -> None:
    for _, doc in DEMO_CARDS.values():
        assert validate_id_number(doc.id_number) == doc.id_number
        assert birth_date_of(doc.id_number) == doc.birth_date


def test_keyed_hash_depends_on_the_key_and_ignores_case() -> None:
    a = keyed_hash("11010519491231002x", b"k1")
    assert a == keyed_hash("11010519491231002X", b"k1")
    assert a != keyed_hash("11010519491231002X", b"k2")
    assert "11010519491231002X" not in a
