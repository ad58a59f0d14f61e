"""APDU exchanges, the PBOC read and card recognition against fake transports (no pcscd).

`FakeScriptTransport` answers from a list, to pin 61xx/6Cxx handling byte for byte.
`FakeCardTransport` puts the virtual cards' scripts straight behind the transport, so the
same cards the live tests insert through pcscd are read here in microseconds.
"""

from __future__ import annotations

import datetime as dt

import pytest
from smartcard import scard

from devices.pcsc import SmartCardFailed, SmartCardSeen, apdu, emv, reader, tlv
from devices.pcsc.apdu import CardDataError, CardGone, CardIOError, StatusError
from devices.pcsc.virtual_card import (
    BADGE_ATR,
    GarbageCard,
    PbocCard,
    ScriptedCard,
    SocialSecurityCard,
    StaffBadge,
    UnionPayDebitCard,
    VanishingCard,
)

TODAY = dt.date(2026, 11, 27)
DEBIT_PAN = "6217000012341234"


class FakeScriptTransport:
    """Answers from a list of response APDUs (hex) and records what was sent."""

    def __init__(self, *responses: str) -> None:
        self._responses = [bytes.fromhex(r) for r in responses]
        self.sent: list[bytes] = []

    def transmit(self, command: bytes) -> tuple[bytes, int, int]:
        self.sent.append(bytes(command))
        response = self._responses.pop(0)
        return response[:-2], response[-2], response[-1]


class FakeCardTransport:
    """A virtual card's script behind the transport, failing the way pyscard's transport does."""

    def __init__(self, card: ScriptedCard) -> None:
        self.card = card

    def transmit(self, command: bytes) -> tuple[bytes, int, int]:
        response = self.card.answer(command)
        if response is None:
            raise CardGone(f"{apdu.command_name(command)}: the card was removed")
        if len(response) < 2:
            raise CardIOError(f"{apdu.command_name(command)}: no status word in the answer")
        return response[:-2], response[-2], response[-1]


def examine(card: ScriptedCard) -> SmartCardSeen | SmartCardFailed:
    return reader.examine(
        FakeCardTransport(card), "Fake Reader 00", card.atr, TODAY, lambda n: bytes(n)
    )


# One exchange -----------------------------------------------------------------------------------


def test_61xx_fetches_the_rest_with_get_response() -> None:
    transport = FakeScriptTransport("6110", "00112233445566778899AABBCCDDEEFF9000")
    response = apdu.transmit(transport, apdu.select_by_name(emv.PSE_NAME))
    assert response.ok and response.data == bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    assert transport.sent[1] == bytes.fromhex("00C0000010")


def test_61xx_chains_are_joined_in_order() -> None:
    transport = FakeScriptTransport("AABB6102", "CCDD6101", "EE9000")
    response = apdu.transmit(transport, apdu.command(0x80, 0xA8, 0, 0, b"\x83\x00", le=0))
    assert response.data == bytes.fromhex("AABBCCDDEE") and response.sw == 0x9000
    assert transport.sent[1:] == [bytes.fromhex("00C0000002"), bytes.fromhex("00C0000001")]


def test_get_response_keeps_the_logical_channel() -> None:
    transport = FakeScriptTransport("6104", "010203049000")
    apdu.transmit(transport, apdu.command(0x03, 0xA4, 0x04, 0x00, b"\xa0\x00", le=0))
    assert transport.sent[1] == bytes.fromhex("03C0000004")


def test_6cxx_sends_the_command_again_with_the_le_the_card_named() -> None:
    record = "0709" + b"A12345678".hex()
    transport = FakeScriptTransport("6C0B", record + "9000")
    response = apdu.transmit(transport, apdu.read_record(5, 7))
    assert transport.sent == [bytes.fromhex("00B2072C00"), bytes.fromhex("00B2072C0B")]
    assert response.ok and response.data == bytes.fromhex(record)


def test_6cxx_after_get_response_resends_the_get_response() -> None:
    transport = FakeScriptTransport("6120", "6C10", "00" * 16 + "9000")
    response = apdu.transmit(transport, apdu.select_by_name(emv.PPSE_NAME))
    assert transport.sent[1:] == [bytes.fromhex("00C0000020"), bytes.fromhex("00C0000010")]
    assert response.data == bytes(16)


def test_a_card_asking_for_another_le_twice_is_an_error() -> None:
    transport = FakeScriptTransport("6C0B", "6C0C")
    with pytest.raises(CardDataError, match="asked for another Le twice"):
        apdu.transmit(transport, apdu.read_record(5, 7))


def test_a_card_that_always_has_more_is_an_error() -> None:
    transport = FakeScriptTransport(*["00016101"] * (apdu.MAX_ROUNDS + 1))
    with pytest.raises(CardDataError, match="still more data"):
        apdu.transmit(transport, apdu.read_record(1, 1))


def test_other_status_words_are_returned_as_they_are() -> None:
    response = apdu.transmit(FakeScriptTransport("6A82"), apdu.select_by_name(b"nothing"))
    assert not response.ok and response.sw == 0x6A82 and response.data == b""
    with pytest.raises(StatusError, match="SELECT: the card answered 6A82") as caught:
        apdu.expect_ok(FakeScriptTransport("6A82"), apdu.select_by_name(b"x"), "SELECT")
    assert caught.value.sw == 0x6A82


def test_generate_ac_is_never_sent() -> None:
    transport = FakeScriptTransport("9000")
    with pytest.raises(ValueError, match="GENERATE AC"):
        apdu.transmit(transport, apdu.command(0x80, 0xAE, 0x80, 0x00, bytes(29), le=0))
    assert transport.sent == []


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("00A40000", "00A400000B"),  # case 1
        ("00B2010C00", "00B2010C0B"),  # case 2
        ("00A4040002A000", "00A4040002A0000B"),  # case 3
        ("00A4040002A00000", "00A4040002A0000B"),  # case 4
    ],
)
def test_with_le_in_all_four_cases(command: str, expected: str) -> None:
    assert apdu.with_le(bytes.fromhex(command), 0x0B) == bytes.fromhex(expected)


def test_malformed_commands_are_refused() -> None:
    with pytest.raises(ValueError, match="Lc does not match"):
        apdu.with_le(bytes.fromhex("00A4040005A0"), 1)
    with pytest.raises(ValueError):
        apdu.command(0x100, 0, 0, 0)
    with pytest.raises(ValueError):
        apdu.command(0, 0, 0, 0, bytes(256))
    with pytest.raises(ValueError):
        apdu.read_record(31, 1)


def test_command_bytes() -> None:
    assert apdu.select_by_name(emv.PPSE_NAME) == bytes.fromhex(
        "00A404000E325041592E5359532E444446303100"
    )
    assert apdu.read_record(2, 1) == bytes.fromhex("00B2011400")
    assert bytes.fromhex("FFCA000000") == apdu.GET_UID
    assert apdu.name_of(apdu.select_by_name(emv.SSSE_NAME)) == "SELECT sx1.sh.社会保障"
    assert apdu.name_of(apdu.read_record(2, 1)) == "READ RECORD 1 of SFI 2"


# PBOC --------------------------------------------------------------------------------------------


def test_mask_pan() -> None:
    assert emv.mask_pan("6217000012341234") == "6217 **** **** 1234"
    assert emv.mask_pan("6214830012345678903") == "6214 **** **** *** 8903"
    with pytest.raises(ValueError):
        emv.mask_pan("6217 0000")


def test_fill_dol_fits_values_to_the_lengths_asked() -> None:
    values = {0x9F02: bytes.fromhex("000000000100"), 0x50: b"ABC", 0x9F1A: bytes.fromhex("0156")}
    dol = [(0x9F02, 4), (0x9F1A, 3), (0x50, 5), (0x50, 2), (0x9F7C, 2)]
    # numbers keep their last digits and pad on the left; the rest the reverse; unknown: zeros
    assert emv.fill_dol(dol, values) == bytes.fromhex("00000100000156414243000041420000")


def test_terminal_data_for_the_qpboc_pdol() -> None:
    pdol = tlv.parse_dol(UnionPayDebitCard.pdol)
    data = emv.fill_dol(pdol, emv.terminal_data(TODAY, b"\x01\x02\x03\x04"))
    assert data.hex().upper() == (
        "36000000"  # TTQ
        "000000000000"  # amount
        "000000000000"  # other amount
        "0156"  # country
        "0000000000"  # TVR
        "0156"  # currency
        "261127"  # date
        "00"  # type
        "01020304"  # unpredictable number
    )


def test_debit_card_through_the_ppse() -> None:
    card = UnionPayDebitCard()
    result = emv.read_payment_card(FakeCardTransport(card), TODAY)
    assert result == emv.PaymentCard(
        emv.UNIONPAY_AIDS[0], "PBOC DEBIT", "6217 **** **** 1234", dt.date(2031, 8, 31)
    )
    names = [apdu.name_of(c) for c in card.commands]
    assert names == [
        "SELECT 2PAY.SYS.DDF01",
        "SELECT A000000333010101",
        "GET PROCESSING OPTIONS",
        "READ RECORD 1 of SFI 1",
        "READ RECORD 1 of SFI 2",  # PAN and expiry found: record 2 is not needed
    ]
    assert not card.generate_ac_seen


def test_contact_card_through_the_pse_with_t0_manners() -> None:
    card = SocialSecurityCard()
    result = emv.read_payment_card(FakeCardTransport(card), TODAY)
    assert result is not None
    assert (result.masked_pan, result.expiry) == ("6214 **** **** *** 8903", dt.date(2033, 5, 31))
    assert [c[1] for c in card.commands].count(0xC0) == 3  # GET RESPONSE after each 61xx


class _Track2OnlyCard(PbocCard):
    """No 5A and no 5F24: everything comes from track 2."""

    pdol = b""

    def records(self) -> dict[tuple[int, int], bytes]:
        track2 = bytes.fromhex(f"{self.pan}D{self.expiry:%y%m}2010000000000F")
        return {(1, 1): tlv.encode(emv.RECORD, tlv.encode(emv.TRACK2, track2))}


def test_track_2_gives_pan_and_the_end_of_the_expiry_month() -> None:
    card = _Track2OnlyCard("621700001234123", dt.date(2030, 2, 1))
    result = emv.read_payment_card(FakeCardTransport(card), TODAY)
    assert result is not None
    assert result.masked_pan == "6217 **** *** 4123"
    assert result.expiry == dt.date(2030, 2, 28)
    assert card.commands[2] == bytes.fromhex("80A80000028300" + "00")  # empty PDOL


class _NoDirectoryCard(UnionPayDebitCard):
    directory = "none"


def test_without_a_directory_the_unionpay_aids_are_selected_directly() -> None:
    result = emv.read_payment_card(FakeCardTransport(_NoDirectoryCard()), TODAY)
    assert result is not None and result.masked_pan == "6217 **** **** 1234"


def test_a_card_without_payment_application() -> None:
    assert emv.read_payment_card(FakeCardTransport(StaffBadge()), TODAY) is None


class _Records(UnionPayDebitCard):
    def __init__(self, records: dict[tuple[int, int], bytes]) -> None:
        self._records = records
        super().__init__()

    def records(self) -> dict[tuple[int, int], bytes]:
        return self._records


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        ({(1, 1): tlv.encode(0x71, b"")}, "not a record template"),
        ({(1, 1): tlv.encode(emv.RECORD, tlv.encode(0x50, b"X"))}, "no PAN"),
        (
            {(1, 1): tlv.encode(emv.RECORD, tlv.encode(emv.PAN, bytes.fromhex("62170000")))},
            "the PAN has 8 digits",
        ),
        (
            {(1, 1): tlv.encode(emv.RECORD, tlv.encode(emv.PAN, bytes.fromhex("6217ABCD")))},
            "not decimal",
        ),
        (
            {
                (1, 1): tlv.encode(
                    emv.RECORD,
                    tlv.encode(emv.PAN, bytes.fromhex("6217000012341234"))
                    + tlv.encode(emv.EXPIRY, bytes.fromhex("311331")),
                )
            },
            "no valid month",
        ),
        ({(1, n): tlv.encode(emv.RECORD, b"") for n in range(1, 40)}, "more than 32 records"),
        ({(1, 1): b"\x70\x85\x00"}, "not BER-TLV"),
    ],
)
def test_records_that_break_the_rules(records: dict[tuple[int, int], bytes], reason: str) -> None:
    with pytest.raises(CardDataError, match=reason) as caught:
        emv.read_payment_card(FakeCardTransport(_Records(records)), TODAY)
    assert "6217" not in caught.value.reason


@pytest.mark.parametrize("afl", ["", "080101", "00010100", "08020100", "0801FF00"])
def test_bad_afl(afl: str) -> None:
    with pytest.raises(CardDataError, match="AFL"):
        emv.parse_afl(bytes.fromhex(afl))


def test_gpo_refused() -> None:
    class Refusing(UnionPayDebitCard):
        def gpo(self, data: bytes, le: int | None) -> bytes | None:
            return bytes.fromhex("6985")

    with pytest.raises(StatusError, match="GET PROCESSING OPTIONS: the card answered 6985"):
        emv.read_payment_card(FakeCardTransport(Refusing()), TODAY)


def test_social_security_application() -> None:
    card = SocialSecurityCard(card_number="A12345678")
    result = emv.read_social_security(FakeCardTransport(card))
    assert result == emv.SocialSecurityInfo("A******78")
    # 61xx on the SELECT, then 6Cxx on the record with Le 00 and the exact Le again
    assert card.commands[1:] == [
        bytes.fromhex("00C0000013"),
        bytes.fromhex("00B2072C00"),
        bytes.fromhex("00B2072C0B"),
    ]
    assert emv.read_social_security(FakeCardTransport(UnionPayDebitCard())) is None


# Recognising the card ---------------------------------------------------------------------------


def test_badge_is_recognised_by_its_atr_and_uid() -> None:
    card = StaffBadge(uid=bytes.fromhex("04112233445566"))
    event = examine(card)
    assert event == SmartCardSeen(
        "Fake Reader 00", BADGE_ATR, bytes.fromhex("04112233445566"), "staff_badge"
    )
    assert card.commands == [apdu.GET_UID]  # a memory card: no SELECT is tried


def test_bank_card_keeps_its_uid_to_itself() -> None:
    event = examine(UnionPayDebitCard(uid=bytes.fromhex("08A1B2C3")))
    assert isinstance(event, SmartCardSeen)
    assert (event.kind, event.uid, event.masked_pan) == ("bank_card", b"", "6217 **** **** 1234")
    assert DEBIT_PAN not in repr(event) and "a1b2c3" not in repr(event).lower()


def test_social_security_card() -> None:
    event = examine(SocialSecurityCard())
    assert isinstance(event, SmartCardSeen)
    assert event.kind == "social_security_card"
    assert event.masked_card_number == "A******78"
    assert event.masked_pan == "6214 **** **** *** 8903"


def test_contactless_card_with_uid_and_no_application_is_a_badge() -> None:
    class DesfireBadge(ScriptedCard):
        uid = bytes.fromhex("04DEADBEEF0102")

    event = examine(DesfireBadge())
    assert isinstance(event, SmartCardSeen) and event.kind == "staff_badge"


def test_card_with_nothing_to_say_is_unknown() -> None:
    event = examine(ScriptedCard())
    assert isinstance(event, SmartCardSeen) and (event.kind, event.uid) == ("unknown", b"")


def test_garbage_becomes_a_failed_event() -> None:
    event = examine(GarbageCard())
    assert isinstance(event, SmartCardFailed)
    assert "not BER-TLV" in event.reason


def test_a_card_leaving_mid_read_becomes_a_failed_event() -> None:
    card = VanishingCard()
    event = examine(card)
    assert isinstance(event, SmartCardFailed)
    assert event.reason == "GET PROCESSING OPTIONS (80 A8 00 00): the card was removed"


class FakeConnection:
    """The part of pyscard's CardConnection the transport uses, failing on demand."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def transmit(self, command: list[int]) -> tuple[list[int], int, int]:
        raise self.error


@pytest.mark.parametrize(
    ("hresult", "kind", "text"),
    [
        (scard.SCARD_W_REMOVED_CARD, CardGone, "the card was removed"),
        (scard.SCARD_E_NOT_TRANSACTED, CardGone, "stopped answering"),
        (scard.SCARD_S_SUCCESS, CardIOError, "no status word"),
        (scard.SCARD_E_PROTO_MISMATCH, CardIOError, "READ RECORD 1 of SFI 1 \\(00 B2 01 0C\\): "),
    ],
)
def test_pyscard_errors_are_translated(hresult: int, kind: type[Exception], text: str) -> None:
    from smartcard.Exceptions import CardConnectionException

    transport = reader.PyscardTransport(FakeConnection(CardConnectionException(hresult=hresult)))
    with pytest.raises(kind, match=text):
        transport.transmit(apdu.read_record(1, 1))


def test_an_unexpected_error_is_logged_without_its_message(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError(f"invalid literal for int(): {DEBIT_PAN!r}")

    monkeypatch.setattr(reader, "read_card", broken)
    event = reader.PcscCardReader()._read("Fake Reader 00", b"\x3b\x00")
    assert event == SmartCardFailed("Fake Reader 00", b"\x3b\x00", "internal error: ValueError")
    assert "ValueError at test_pcsc_apdu.py" in caplog.text
    assert DEBIT_PAN not in caplog.text
