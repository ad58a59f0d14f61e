"""BER-TLV as smart cards use it (ISO/IEC 7816-4 §5.2, EMV Book 3 Annex B).

Tags are kept as the integer of their bytes (0x9F38 for `9F 38`). Error messages give offsets
and tags, never values: the bytes being parsed may hold a card number.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

MAX_TAG_BYTES = 4  # EMV uses at most 2, ISO 7816-4 at most 3; more is garbage, not a tag
MAX_LENGTH_BYTES = 4  # 81..84: a short APDU never carries more than 65,535 bytes anyway
MAX_DEPTH = 32  # real templates nest 3-4 deep; the limit keeps garbage from exhausting the stack
# ISO 7816-4 §5.2.2.1: "00" or "FF" bytes may appear before, between or after objects.
PADDING = frozenset({0x00, 0xFF})


class TlvError(ValueError):
    """Bytes that are not well-formed BER-TLV; the message says where, never what."""


def tag_hex(tag: int) -> str:
    """The tag as cards and specs write it, e.g. '9F38'."""
    return f"{tag:0{2 * max(1, (tag.bit_length() + 7) // 8)}X}"


def _first_byte(tag: int) -> int:
    while tag > 0xFF:
        tag >>= 8
    return tag


def is_constructed(tag: int) -> bool:
    """Bit 6 of the first tag byte: the value is itself a sequence of TLV objects."""
    return bool(_first_byte(tag) & 0x20)


@dataclass(frozen=True)
class Tlv:
    """One data object; `children` is filled for constructed tags."""

    tag: int
    value: bytes = field(repr=False)  # may be a PAN: never in a repr that reaches a log
    children: tuple[Tlv, ...] = ()

    @property
    def constructed(self) -> bool:
        """Whether the value is a template of further objects."""
        return is_constructed(self.tag)

    def walk(self) -> Iterator[Tlv]:
        """This object and everything nested in it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, tag: int) -> Tlv | None:
        """The first object with `tag` in this one or below it."""
        return find(self.children, tag) if self.tag != tag else self

    def encode(self) -> bytes:
        """The object as bytes again (definite lengths, shortest form)."""
        if self.constructed:
            return encode(self.tag, b"".join(c.encode() for c in self.children))
        return encode(self.tag, self.value)


def find(objects: Sequence[Tlv], tag: int) -> Tlv | None:
    """The first object with `tag` among `objects` and their descendants, depth first."""
    for obj in objects:
        for item in obj.walk():
            if item.tag == tag:
                return item
    return None


def find_value(objects: Sequence[Tlv], tag: int) -> bytes | None:
    """The value of the first object with `tag`, or None."""
    found = find(objects, tag)
    return None if found is None else found.value


def read_tag(data: bytes, pos: int, end: int | None = None) -> tuple[int, int]:
    """Decode the tag at `pos` (reading no further than `end`): (tag, position after it)."""
    end = len(data) if end is None else end
    if pos >= end:
        raise TlvError(f"truncated tag at offset {pos}")
    start = pos
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:  # more tag bytes follow; each with bit 8 set announces another
        while True:
            if pos >= end:
                raise TlvError(f"truncated tag at offset {start}")
            if pos - start >= MAX_TAG_BYTES:
                raise TlvError(f"tag at offset {start} is longer than {MAX_TAG_BYTES} bytes")
            byte = data[pos]
            tag = (tag << 8) | byte
            pos += 1
            if not byte & 0x80:
                break
    return tag, pos


def read_length(data: bytes, pos: int, end: int | None = None) -> tuple[int, int]:
    """Decode the length at `pos` (reading no further than `end`): (length, position after it)."""
    end = len(data) if end is None else end
    if pos >= end:
        raise TlvError(f"truncated length at offset {pos}")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0:
        # The indefinite form exists in BER but never in card data (no end-of-contents).
        raise TlvError(f"indefinite length at offset {pos}")
    if count > MAX_LENGTH_BYTES:
        raise TlvError(f"length at offset {pos} has {count} bytes (at most {MAX_LENGTH_BYTES})")
    if pos + 1 + count > end:
        raise TlvError(f"truncated length at offset {pos}")
    return int.from_bytes(data[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def _parse(data: bytes, start: int, end: int, depth: int) -> list[Tlv]:
    if depth > MAX_DEPTH:
        raise TlvError(f"templates nested deeper than {MAX_DEPTH} at offset {start}")
    objects: list[Tlv] = []
    pos = start
    while pos < end:
        if data[pos] in PADDING:
            pos += 1
            continue
        tag_at = pos
        tag, pos = read_tag(data, pos, end)
        length, pos = read_length(data, pos, end)
        if pos + length > end:
            raise TlvError(
                f"tag {tag_hex(tag)} at offset {tag_at}: {length} bytes declared, {end - pos} left"
            )
        value = data[pos : pos + length]
        children = tuple(_parse(data, pos, pos + length, depth + 1)) if is_constructed(tag) else ()
        objects.append(Tlv(tag, value, children))
        pos += length
    return objects


def parse(data: bytes) -> list[Tlv]:
    """Every top-level object in `data`, constructed ones parsed down to their leaves."""
    return _parse(bytes(data), 0, len(data), 0)


def encode_tag(tag: int) -> bytes:
    """The bytes of `tag`."""
    if tag <= 0:
        raise ValueError("a tag is a positive integer")
    return tag.to_bytes((tag.bit_length() + 7) // 8, "big")


def encode_length(length: int) -> bytes:
    """The shortest definite length encoding."""
    if length < 0:
        raise ValueError("a length is not negative")
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(body) > MAX_LENGTH_BYTES:
        raise ValueError("value too long for BER-TLV as cards use it")
    return bytes([0x80 | len(body)]) + body


def encode(tag: int, value: bytes) -> bytes:
    """One object: tag, length, value (for a template, `value` is its encoded children)."""
    return encode_tag(tag) + encode_length(len(value)) + bytes(value)


def parse_dol(data: bytes) -> list[tuple[int, int]]:
    """A data object list (PDOL, CDOL): (tag, length) pairs with no values (EMV Book 3 §5.4)."""
    data = bytes(data)
    entries: list[tuple[int, int]] = []
    pos = 0
    while pos < len(data):
        tag, pos = read_tag(data, pos)
        if pos >= len(data):
            raise TlvError(f"truncated DOL entry for tag {tag_hex(tag)}")
        entries.append((tag, data[pos]))  # DOL lengths are one byte
        pos += 1
    return entries
