"""Reading the UnionPay/PBOC application and the social security application of a card.

The PBOC read is the first half of a terminal's: directory (PPSE, else PSE), SELECT the
application, GET PROCESSING OPTIONS with the PDOL filled, READ RECORD over the AFL. It stops
there: GENERATE AC, which would run a transaction, is never sent (apdu.transmit refuses it).

The full PAN exists only in local variables of this module: what leaves it is masked.
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devices.pcsc import apdu, tlv
from devices.pcsc.apdu import CardDataError, StatusError, Transport

PPSE_NAME = b"2PAY.SYS.DDF01"  # proximity (contactless) payment system environment
PSE_NAME = b"1PAY.SYS.DDF01"  # the contact one
UNIONPAY_RID = bytes.fromhex("A000000333")
UNIONPAY_AIDS = (  # debit, credit, quasi-credit: selected directly when a card has no directory
    bytes.fromhex("A000000333010101"),
    bytes.fromhex("A000000333010102"),
    bytes.fromhex("A000000333010103"),
)
# "sx1.sh.社会保障" in GBK: the social security application (人社部 社会保障卡规范).
SSSE_NAME = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
SSSE_CARD_INFO_SFI = 5  # EF05, 卡的基本信息; EF06 (the holder's identity) is never read
SSSE_CARD_NUMBER_RECORD = 7

MAX_DIRECTORY_RECORDS = 16
MAX_RECORDS = 32  # a PBOC AFL lists a handful; a card listing hundreds is stalling the kiosk
PAN_DIGITS = range(12, 20)

# Tags --------------------------------------------------------------------------------------
FCI = 0x6F
FCI_PROPRIETARY = 0xA5
FCI_ISSUER_DISCRETIONARY = 0xBF0C
DIRECTORY_SFI = 0x88
APPLICATION_TEMPLATE = 0x61
AID = 0x4F
LABEL = 0x50
PRIORITY = 0x87
PDOL = 0x9F38
GPO_FORMAT_1 = 0x80
GPO_FORMAT_2 = 0x77
AFL = 0x94
RECORD = 0x70
PAN = 0x5A
TRACK2 = 0x57
EXPIRY = 0x5F24

# Terminal data for the PDOL: a zero-amount enquiry in China by an unattended terminal.
NUMERIC_TAGS = frozenset({0x9F02, 0x9F03, 0x9F1A, 0x5F2A, 0x9A, 0x9C, 0x9F21})
_FIXED_TERMINAL_DATA: dict[int, bytes] = {
    # TTQ: qPBOC and contact chip supported, online capable. A qPBOC card computes its
    # cryptogram inside the GPO already; for amount 0, and sent nowhere, it pays nothing.
    0x9F66: bytes.fromhex("36000000"),
    0x9F02: bytes(6),  # amount authorised: 0
    0x9F03: bytes(6),  # amount, other: 0
    0x9F1A: bytes.fromhex("0156"),  # terminal country: China
    0x5F2A: bytes.fromhex("0156"),  # transaction currency: CNY
    0x95: bytes(5),  # TVR: nothing to report
    0x9C: bytes(1),  # transaction type: goods and services (the PBOC default)
    0x9F21: bytes(3),  # transaction time: zeros, cards do not check it
    0x9F35: bytes.fromhex("25"),  # terminal type: unattended, offline with online capability
    0x9F33: bytes.fromhex("200000"),  # terminal capabilities: IC with contacts, no CVM
    0x9F7A: bytes(1),  # electronic cash terminal support: no (no offline purse spending)
    0xDF69: bytes(1),  # SM algorithm support: no
}


@dataclass(frozen=True)
class DirectoryEntry:
    """One application listed by the PPSE or PSE."""

    aid: bytes
    label: str
    priority: int  # 1 is the highest; 0 means none given


@dataclass(frozen=True)
class PaymentCard:
    """What the PBOC read keeps: masked, safe to log."""

    aid: bytes
    label: str
    masked_pan: str
    expiry: dt.date | None


@dataclass(frozen=True)
class SocialSecurityInfo:
    """The social security application answered; its card number, masked when it was readable."""

    masked_card_number: str


def mask_pan(pan: str) -> str:
    """6217 **** **** 1234: the first four and last four digits stay, grouped by four."""
    if not pan.isdigit() or len(pan) < 12:
        raise ValueError("not a PAN")
    middle = "*" * (len(pan) - 8)
    groups = [pan[:4], *(middle[i : i + 4] for i in range(0, len(middle), 4)), pan[-4:]]
    return " ".join(groups)


def mask_card_number(number: str) -> str:
    """A******78: the social security card number keeps its first and last two characters."""
    if len(number) <= 3:
        return "*" * len(number)
    return number[0] + "*" * (len(number) - 3) + number[-2:]


def _bcd_digits(value: bytes) -> str:
    return value.hex().upper()


def _parse(data: bytes, what: str) -> list[tlv.Tlv]:
    try:
        return tlv.parse(data)
    except tlv.TlvError as exc:
        raise CardDataError(f"{what}: the answer is not BER-TLV ({exc})") from None


# Directory -----------------------------------------------------------------------------------


def _entries(objects: Sequence[tlv.Tlv]) -> list[DirectoryEntry]:
    entries = []
    for obj in objects:
        for item in obj.walk():
            if item.tag != APPLICATION_TEMPLATE:
                continue
            aid = tlv.find_value(item.children, AID)
            if aid is None or not 5 <= len(aid) <= 16:
                continue
            label = tlv.find_value(item.children, LABEL) or b""
            priority = tlv.find_value(item.children, PRIORITY) or b"\x00"
            entries.append(
                DirectoryEntry(aid, label.decode("ascii", "replace").strip(), priority[0] & 0x0F)
            )
    return entries


def _ppse(transport: Transport) -> list[DirectoryEntry]:
    response = apdu.transmit(transport, apdu.select_by_name(PPSE_NAME))
    if not response.ok:
        return []
    return _entries(_parse(response.data, "SELECT PPSE"))


def _pse(transport: Transport) -> list[DirectoryEntry]:
    response = apdu.transmit(transport, apdu.select_by_name(PSE_NAME))
    if not response.ok:
        return []
    sfi_value = tlv.find_value(_parse(response.data, "SELECT PSE"), DIRECTORY_SFI)
    if sfi_value is None or len(sfi_value) != 1 or not 1 <= sfi_value[0] <= 30:
        raise CardDataError("SELECT PSE: no valid directory SFI (88)")
    entries: list[DirectoryEntry] = []
    for record in range(1, MAX_DIRECTORY_RECORDS + 1):
        answer = apdu.transmit(transport, apdu.read_record(sfi_value[0], record))
        if answer.sw == 0x6A83:  # record not found: the end of the directory
            break
        if not answer.ok:
            raise StatusError(
                f"READ RECORD {record} of the PSE directory: {answer.sw:04X}", answer.sw
            )
        entries += _entries(_parse(answer.data, f"PSE directory record {record}"))
    return entries


def list_applications(transport: Transport) -> list[DirectoryEntry]:
    """The payment applications, UnionPay first, then by priority: PPSE, else PSE."""
    entries = _ppse(transport) or _pse(transport)
    return sorted(
        entries,
        key=lambda e: (not e.aid.startswith(UNIONPAY_RID), e.priority == 0, e.priority),
    )


# GPO and records ----------------------------------------------------------------------------


def terminal_data(today: dt.date, unpredictable: bytes) -> dict[int, bytes]:
    """The values a PDOL may ask for: fixed ones, today's date and a fresh random number."""
    data = dict(_FIXED_TERMINAL_DATA)
    data[0x9A] = bytes.fromhex(today.strftime("%y%m%d"))
    data[0x9F37] = bytes(unpredictable)
    return data


def fill_dol(dol: Sequence[tuple[int, int]], values: dict[int, bytes]) -> bytes:
    """Concatenate the requested values, fitted to the lengths asked (EMV Book 3 §5.4)."""
    out = bytearray()
    for tag, length in dol:
        value = values.get(tag, b"")  # an unknown tag is sent as zeros, as the standard says
        numeric = tag in NUMERIC_TAGS
        if len(value) > length:  # numbers lose their leading digits, the rest its tail
            value = value[-length:] if numeric else value[:length]
        pad = bytes(length - len(value))
        out += pad + value if numeric else value + pad
    return bytes(out)


def parse_afl(afl: bytes) -> list[tuple[int, int, int]]:
    """(SFI, first record, last record) per 4-byte AFL entry."""
    if not afl or len(afl) % 4:
        raise CardDataError(f"the AFL has {len(afl)} bytes, not a multiple of 4")
    entries = []
    for i in range(0, len(afl), 4):
        sfi, first, last = afl[i] >> 3, afl[i + 1], afl[i + 2]
        if not 1 <= sfi <= 30 or first == 0 or last < first or last == 0xFF:
            raise CardDataError(f"AFL entry {i // 4 + 1} is not valid")
        entries.append((sfi, first, last))
    return entries


def _gpo(
    transport: Transport, pdol: bytes | None, today: dt.date, unpredictable: bytes
) -> list[tlv.Tlv]:
    dol = []
    if pdol:
        try:
            dol = tlv.parse_dol(pdol)
        except tlv.TlvError as exc:
            raise CardDataError(f"the PDOL is not valid ({exc})") from None
    values = fill_dol(dol, terminal_data(today, unpredictable))
    command = apdu.command(0x80, 0xA8, 0x00, 0x00, tlv.encode(0x83, values), le=0)
    response = apdu.expect_ok(transport, command, "GET PROCESSING OPTIONS")
    return _parse(response.data, "GET PROCESSING OPTIONS")


def _afl_from(gpo: Sequence[tlv.Tlv]) -> bytes:
    format1 = tlv.find_value(gpo, GPO_FORMAT_1)
    if format1 is not None:  # AIP (2 bytes) then the AFL
        return format1[2:]
    if tlv.find(gpo, GPO_FORMAT_2) is not None:
        afl = tlv.find_value(gpo, AFL)
        if afl is not None:
            return afl
    raise CardDataError("GET PROCESSING OPTIONS: neither format 1 (80) nor an AFL (94)")


def _expiry_yymmdd(value: bytes) -> dt.date:
    digits = _bcd_digits(value)
    if len(digits) != 6 or not digits.isdigit():
        raise CardDataError("the expiry date (5F24) is not YYMMDD")
    return _date(int(digits[:2]), int(digits[2:4]), int(digits[4:]))


def _date(yy: int, month: int, day: int) -> dt.date:
    year = 2000 + yy if yy < 50 else 1900 + yy  # EMV Book 4: 00-49 are 20xx
    if not 1 <= month <= 12:
        raise CardDataError("the expiry date has no valid month")
    last = calendar.monthrange(year, month)[1]
    # A card valid "until 12/30" is valid to the end of that month.
    return dt.date(year, month, day if 1 <= day <= last else last)


def _track2(value: bytes) -> tuple[str, dt.date]:
    digits = _bcd_digits(value).rstrip("F")
    pan, sep, rest = digits.partition("D")
    if not sep or not pan.isdigit() or len(rest) < 4 or not rest[:4].isdigit():
        raise CardDataError("the track 2 equivalent (57) is not PAN D YYMM")
    return pan, _date(int(rest[:2]), int(rest[2:4]), 0)


def _pan(value: bytes) -> str:
    digits = _bcd_digits(value).rstrip("F")
    if not digits.isdigit():
        raise CardDataError("the PAN (5A) is not decimal")
    return digits


def read_payment_card(
    transport: Transport,
    today: dt.date,
    unpredictable: Callable[[int], bytes] = os.urandom,
) -> PaymentCard | None:
    """The masked PAN and expiry of the card's PBOC application; None when it has none."""
    entries = list_applications(transport)
    if not entries:
        entries = [DirectoryEntry(aid, "", 0) for aid in UNIONPAY_AIDS]
    for entry in entries:
        response = apdu.transmit(transport, apdu.select_by_name(entry.aid))
        if response.ok:
            break
    else:
        return None
    fci = _parse(response.data, "SELECT application")
    label = entry.label or (tlv.find_value(fci, LABEL) or b"").decode("ascii", "replace").strip()
    gpo = _gpo(transport, tlv.find_value(fci, PDOL), today, unpredictable(4))

    pan = ""
    expiry: dt.date | None = None
    track2_expiry: dt.date | None = None

    def take(objects: Sequence[tlv.Tlv]) -> None:
        nonlocal pan, expiry, track2_expiry
        if not pan and (value := tlv.find_value(objects, PAN)) is not None:
            pan = _pan(value)
        if (value := tlv.find_value(objects, TRACK2)) is not None:
            track2_pan, track2_expiry = _track2(value)
            pan = pan or track2_pan
        if expiry is None and (value := tlv.find_value(objects, EXPIRY)) is not None:
            expiry = _expiry_yymmdd(value)

    take(gpo)  # a qPBOC card may answer the GPO with track 2 already
    count = 0
    for sfi, first, last in parse_afl(_afl_from(gpo)):
        for record in range(first, last + 1):
            if pan and expiry:
                break
            count += 1
            if count > MAX_RECORDS:
                raise CardDataError(f"the AFL lists more than {MAX_RECORDS} records")
            what = f"READ RECORD {record} of SFI {sfi}"
            objects = _parse(
                apdu.expect_ok(transport, apdu.read_record(sfi, record), what).data, what
            )
            if tlv.find(objects, RECORD) is None:
                raise CardDataError(f"{what}: not a record template (70)")
            take(objects)
    if not pan:
        raise CardDataError("no PAN (5A or 57) in the application's records")
    if len(pan) not in PAN_DIGITS:
        raise CardDataError(f"the PAN has {len(pan)} digits")
    return PaymentCard(entry.aid, label, mask_pan(pan), expiry or track2_expiry)


# Social security application ----------------------------------------------------------------


def read_social_security(transport: Transport) -> SocialSecurityInfo | None:
    """The social security application's card number (EF05 record 07), or None without one."""
    response = apdu.transmit(transport, apdu.select_by_name(SSSE_NAME))
    if not response.ok:
        return None
    if response.data:
        _parse(response.data, "SELECT social security application")
    what = "READ RECORD 7 of EF05"
    answer = apdu.transmit(transport, apdu.read_record(SSSE_CARD_INFO_SFI, SSSE_CARD_NUMBER_RECORD))
    if not answer.ok:
        # Some issuers want a PSAM session even for EF05: the card is still one of theirs.
        return SocialSecurityInfo("")
    number = tlv.find_value(_parse(answer.data, what), SSSE_CARD_NUMBER_RECORD)
    if number is None:
        raise CardDataError(f"{what}: no card number (07)")
    text = number.decode("ascii", "replace").strip()
    if not text.isalnum() or not text.isascii():
        raise CardDataError(f"{what}: the card number is not letters and digits")
    return SocialSecurityInfo(mask_card_number(text))
