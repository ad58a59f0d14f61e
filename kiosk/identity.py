"""Identity documents and ID numbers: GB 11643 validation, masking, derived age and sex."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Literal

from kiosk.i18n import Message

DocumentKind = Literal[
    "resident", "hk_mo_tw_permit", "foreign_permanent_2017", "foreign_permanent_2023"
]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


class IdNumberError(ValueError):
    """An ID number that is not well formed; `message` says why in plain words."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.key)
        self.message = message


class DocumentExpired(ValueError):
    """A document outside its validity period."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.key)
        self.message = message


def check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def normalize_id_number(raw: str) -> str:
    """Strip spaces and make a trailing x upper case."""
    return "".join(raw.split()).upper()


def validate_id_number(raw: str) -> str:
    """Return the normalized 18-character number, or raise IdNumberError.

    The region code is deliberately not checked: residence permits for Hong Kong, Macao and
    Taiwan residents (81/82/83) and 2023 foreigner permanent residence numbers (9…) pass.
    """
    number = normalize_id_number(raw)
    if len(number) != 18:
        raise IdNumberError(Message("id_length"))
    # isascii: str.isdigit() also accepts digits such as '²' that int() then refuses.
    if (
        not number.isascii()
        or not number[:17].isdigit()
        or not (number[17].isdigit() or number[17] == "X")
    ):
        raise IdNumberError(Message("id_chars"))
    try:
        dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise IdNumberError(Message("id_birth_date")) from None
    if int(number[6:10]) < 1850:
        raise IdNumberError(Message("id_birth_date"))
    if check_digit(number[:17]) != number[17]:
        raise IdNumberError(Message("id_checksum"))
    return number


def is_valid_id_number(raw: str) -> bool:
    try:
        validate_id_number(raw)
    except IdNumberError:
        return False
    return True


def birth_date_of(number: str) -> dt.date:
    return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def sex_of(number: str) -> Literal["男", "女"]:
    """GB 11643: the 17th digit is odd for men, even for women."""
    return "男" if int(number[16]) % 2 else "女"


def age_on(birth: dt.date, today: dt.date) -> int:
    before_birthday = (today.month, today.day) < (birth.month, birth.day)
    return today.year - birth.year - (1 if before_birthday else 0)


def mask_id_number(number: str) -> str:
    """1101**********1234: the first four and last four characters stay."""
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_name(name: str) -> str:
    """张*, 欧阳**, J*** S****: keep the first character of a Chinese name or of each word."""
    name = name.strip()
    if not name:
        return ""
    if " " in name:
        return " ".join(w[0] + "*" * (len(w) - 1) for w in name.split())
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_phone(phone: str) -> str:
    digits = phone.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_address(address: str) -> str:
    """Keep the first six characters (province and city), hide the rest."""
    address = address.strip()
    return address[:6] + "…" if len(address) > 6 else address


def keyed_hash(id_number: str, key: bytes) -> str:
    """A keyed hash for progress look-up without storing the number itself."""
    return hmac.new(key, normalize_id_number(id_number).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class IdentityDocument:
    """What an ID document reader returns: a resident ID card or one of the permits."""

    kind: DocumentKind
    name: str
    id_number: str
    sex: str
    birth_date: dt.date
    valid_from: dt.date
    valid_to: dt.date | None  # None means 长期 (long-term)
    english_name: str = ""
    nation: str = ""
    address: str = ""
    authority: str = ""
    nationality: str = ""
    pass_number: str = ""
    photo: bytes = field(default=b"", repr=False)

    def __repr__(self) -> str:
        # Never let a full number or name reach a log through repr().
        return (
            f"IdentityDocument(kind={self.kind!r}, name={mask_name(self.name)!r}, "
            f"id_number={mask_id_number(self.id_number)!r})"
        )

    __str__ = __repr__

    def check_valid_on(self, today: dt.date) -> None:
        """Raise DocumentExpired unless `today` is within the validity period."""
        if today < self.valid_from:
            raise DocumentExpired(
                Message("id_not_yet_valid", {"date": self.valid_from.isoformat()})
            )
        if self.valid_to is not None and today > self.valid_to:
            raise DocumentExpired(Message("id_expired", {"date": self.valid_to.isoformat()}))

    def age_on(self, today: dt.date) -> int:
        return age_on(self.birth_date, today)

    @property
    def masked_name(self) -> str:
        return mask_name(self.name)

    @property
    def masked_id_number(self) -> str:
        return mask_id_number(self.id_number)
