"""The SAM frame codec: documented byte strings, streams in pieces, every corruption."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.idcard import Frame, FrameError, decode_frame, encode_command
from devices.idcard.codec import (
    COMMANDS,
    MAX_FRAME_LEN,
    PREAMBLE,
    BaseInfo,
    FrameChecksumError,
    FrameLengthError,
    UnexpectedResponse,
    bytes_wanted,
    decode_command,
    encode_base_info,
    encode_response,
    format_sam_id,
    parse_base_info,
    xor_checksum,
)

FUZZ = settings(max_examples=800, deadline=None, database=None)

# devices.md section 1, "Commands ✔": checksums recomputed there, never copied from snippets.
DOCUMENTED_COMMANDS = {
    (0x10, 0xFF): "AA AA AA 96 69 00 03 10 FF EC",
    (0x11, 0xFF): "AA AA AA 96 69 00 03 11 FF ED",
    (0x12, 0xFF): "AA AA AA 96 69 00 03 12 FF EE",
    (0x20, 0x01): "AA AA AA 96 69 00 03 20 01 22",
    (0x20, 0x02): "AA AA AA 96 69 00 03 20 02 21",
    (0x30, 0x01): "AA AA AA 96 69 00 03 30 01 32",
    (0x30, 0x03): "AA AA AA 96 69 00 03 30 03 30",
    (0x30, 0x10): "AA AA AA 96 69 00 03 30 10 23",
}

# devices.md "Known responses ✔" (YinanSoft).
DOCUMENTED_RESPONSES = [
    ("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97", Frame(0, 0, 0x9F, bytes(4))),
    ("AA AA AA 96 69 00 04 00 00 80 84", Frame(0, 0, 0x80, b"")),
    ("AA AA AA 96 69 00 0C 00 00 90" + " 00" * 8 + " 9C", Frame(0, 0, 0x90, bytes(8))),
    ("AA AA AA 96 69 00 04 00 00 81 85", Frame(0, 0, 0x81, b"")),
    ("AA AA AA 96 69 00 04 00 00 41 45", Frame(0, 0, 0x41, b"")),
]


@pytest.mark.parametrize(("command", "expected"), DOCUMENTED_COMMANDS.items())
def test_commands_match_the_documented_bytes(command: tuple[int, int], expected: str) -> None:
    assert encode_command(*command) == bytes.fromhex(expected)


def test_every_known_command_is_documented() -> None:
    assert {(c.cmd, c.para) for c in COMMANDS} == set(DOCUMENTED_COMMANDS)


@pytest.mark.parametrize(("wire", "frame"), DOCUMENTED_RESPONSES)
def test_documented_responses_decode(wire: str, frame: Frame) -> None:
    assert decode_frame(bytes.fromhex(wire)) == (frame, b"")


def test_base_info_header_has_the_documented_shape() -> None:
    info = BaseInfo(bytes(256), bytes(1024))
    wire = encode_response(0, 0, 0x90, encode_base_info(info))
    assert len(wire) == 1295
    assert wire[:14] == bytes.fromhex("AA AA AA 96 69 05 08 00 00 90 01 00 04 00")
    with_fp = encode_response(0, 0, 0x90, encode_base_info(replace_fp(info), True))
    assert len(with_fp) == 2321
    assert with_fp[:10] == bytes.fromhex("AA AA AA 96 69 09 0A 00 00 90")


def replace_fp(info: BaseInfo) -> BaseInfo:
    return BaseInfo(info.text, info.photo, bytes(1024))


def test_command_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="cmd"):
        encode_command(0x100, 0)
    with pytest.raises(ValueError, match="para"):
        encode_command(0x30, -1)
    with pytest.raises(ValueError, match="too long"):
        encode_command(0x30, 0x01, bytes(0xFFFF))


def test_leading_noise_is_skipped_and_following_bytes_returned() -> None:
    find_ok = encode_response(0, 0, 0x9F, bytes(4))
    no_card = encode_response(0, 0, 0x80)
    frame, rest = decode_frame(b"\x00\x13\xaa\x96" + find_ok + no_card)
    assert frame == Frame(0, 0, 0x9F, bytes(4))
    assert rest == no_card
    assert decode_frame(rest) == (Frame(0, 0, 0x80, b""), b"")


def test_pieces_are_kept_until_the_frame_is_complete() -> None:
    wire = b"\x01\x02" + encode_response(0x90, 0x00, 0x90, b"hello")
    kept = b""
    for i, byte in enumerate(wire):
        frame, kept = decode_frame(kept + bytes([byte]))
        if i < len(wire) - 1:
            assert frame is None
            # Noise goes, a possible preamble start stays.
            assert wire.startswith(kept, 2) or PREAMBLE.startswith(kept)
        else:
            assert frame == Frame(0x90, 0x00, 0x90, b"hello")
            assert kept == b""


def test_a_partial_preamble_at_the_end_is_kept() -> None:
    assert decode_frame(b"\x00\x01\xaa\xaa") == (None, b"\xaa\xaa")
    assert decode_frame(b"\x00\x01\xaa\xaa\xaa\x96") == (None, b"\xaa\xaa\xaa\x96")
    assert decode_frame(b"\x00\x01\x02") == (None, b"")


def test_truncated_frame_waits_for_more() -> None:
    wire = encode_response(0, 0, 0x90, bytes(100))
    assert decode_frame(wire[:50]) == (None, wire[:50])
    assert bytes_wanted(wire[:50]) == len(wire) - 50
    assert bytes_wanted(wire[:3]) == 4
    assert bytes_wanted(b"") == 7


@pytest.mark.parametrize("length", [0, 1, 2, 3, MAX_FRAME_LEN + 1, 0xFFFF])
def test_impossible_lengths_are_refused(length: int) -> None:
    wire = PREAMBLE + length.to_bytes(2, "big") + bytes(10)
    with pytest.raises(FrameLengthError, match="frame length"):
        decode_frame(wire)


def test_wrong_checksum_is_refused_and_the_stream_can_resynchronise() -> None:
    bad = bytearray(encode_response(0, 0, 0x90, b"abc"))
    bad[-1] ^= 0xFF
    good = encode_response(0, 0, 0x9F, bytes(4))
    with pytest.raises(FrameChecksumError, match="checksum") as caught:
        decode_frame(bytes(bad) + good)
    assert isinstance(caught.value, FrameError)
    assert decode_frame(caught.value.remaining) == (Frame(0, 0, 0x9F, bytes(4)), b"")


def test_frame_repr_never_shows_data() -> None:
    frame = Frame(0, 0, 0x90, "李明".encode("utf-16-le"))
    assert "李" not in repr(frame) and "4 bytes" in repr(frame)


def test_command_frames_decode_for_the_simulator_side() -> None:
    frame, rest = decode_command(encode_command(0x30, 0x01) + b"\xaa")
    assert frame is not None and (frame.cmd, frame.para, frame.data) == (0x30, 0x01, b"")
    assert rest == b"\xaa"


def test_base_info_is_split_by_its_length_fields() -> None:
    data = encode_base_info(BaseInfo(b"t" * 256, b"p" * 1024, b"f" * 10), True)
    assert parse_base_info(data, True) == BaseInfo(b"t" * 256, b"p" * 1024, b"f" * 10)
    empty_fp = encode_base_info(BaseInfo(b"t" * 256, b"p" * 1024), True)
    assert parse_base_info(empty_fp, True).fingerprint == b""
    with pytest.raises(UnexpectedResponse, match="do not add up"):
        parse_base_info(data[:-1], True)
    with pytest.raises(UnexpectedResponse, match="no length fields"):
        parse_base_info(b"\x01", False)


def test_sam_id_is_formatted_as_vendors_print_it() -> None:
    data = bytes([5, 0, 1, 0]) + (20101026).to_bytes(4, "little") + (7).to_bytes(4, "little")
    data += (123456789).to_bytes(4, "little")
    assert format_sam_id(data) == "05.01-20101026-000000007-123456789"
    with pytest.raises(UnexpectedResponse):
        format_sam_id(data[:-1])


@FUZZ
@given(st.binary(max_size=600))
def test_xor_checksum_matches_a_byte_loop(data: bytes) -> None:
    expected = 0
    for byte in data:
        expected ^= byte
    assert xor_checksum(data) == expected


frames = st.builds(
    encode_response,
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=300),
)


@FUZZ
@given(
    st.binary(max_size=64).map(lambda b: b.replace(b"\xaa", b"\x00")),
    st.lists(frames, min_size=1, max_size=4),
)
def test_a_stream_cut_anywhere_yields_every_frame_in_order(
    noise: bytes, wires: list[bytes]
) -> None:
    stream = noise + b"".join(wires)
    expected = [decode_frame(w)[0] for w in wires]
    got = []
    kept = b""
    chunk = max(1, len(stream) // 7)
    for i in range(0, len(stream), chunk):
        kept += stream[i : i + chunk]
        while True:
            frame, kept = decode_frame(kept)
            if frame is None:
                break
            got.append(frame)
    assert got == expected
    assert kept == b""


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_a_frame_nothing_or_a_frame_error(data: bytes) -> None:
    try:
        frame, rest = decode_frame(data)
    except FrameError as exc:
        assert isinstance(exc.remaining, bytes) and len(exc.remaining) < len(data)
        return
    assert data.endswith(rest)
    if frame is None:
        assert rest == b"" or rest.startswith(PREAMBLE) or PREAMBLE.startswith(rest)
        assert bytes_wanted(rest) >= 1


@FUZZ
@given(frames, st.integers(0, 400), st.integers(1, 255))
def test_any_damaged_byte_after_the_length_is_caught(wire: bytes, where: int, flip: int) -> None:
    damaged = bytearray(wire)
    damaged[7 + where % (len(wire) - 7)] ^= flip
    with pytest.raises(FrameChecksumError):
        decode_frame(bytes(damaged))
