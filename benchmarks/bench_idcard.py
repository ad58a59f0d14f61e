"""Benchmarks for the ID card reader: decode + parse, a read against the wire, decoder fuzz."""

from __future__ import annotations

import queue
import statistics
import time
from collections import Counter
from collections.abc import Callable

from common import Row, measure
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from devices.idcard import CardDataError, FrameError, decode_frame, parse_text
from devices.idcard.codec import (
    FIND_CARD,
    SW3_FOUND,
    BaseInfo,
    encode_base_info,
    encode_response,
    parse_base_info,
)
from devices.idcard.simulator import Exchange, SimulatedIdCardReader
from devices.idcard.text import encode_text
from kiosk.demo import DEMO_CARDS
from kiosk.ports import CardRead, ReaderEvent, ReadFailed

TITLE = "ID card reader"
BAUD = 115200


def _base_info_frame(key: str = "adult") -> bytes:
    text = encode_text(DEMO_CARDS[key][1])
    return encode_response(0, 0, 0x90, encode_base_info(BaseInfo(text, bytes(range(256)) * 4)))


def _decode_and_parse(wire: bytes) -> None:
    frame, _rest = decode_frame(wire)
    assert frame is not None
    parse_text(parse_base_info(frame.data).text)


def _wire_of_read(exchanges: list[Exchange]) -> int:
    """Bytes both ways from the find that saw the card to the last step before the next find."""
    start = next(
        i
        for i in range(len(exchanges) - 1, -1, -1)
        if (exchanges[i].cmd, exchanges[i].para) == FIND_CARD[:2]
        and exchanges[i].sw3 == SW3_FOUND
        and i + 1 < len(exchanges)
        and (exchanges[i + 1].cmd, exchanges[i + 1].para) != FIND_CARD[:2]
    )
    total = 0
    for i, x in enumerate(exchanges[start:]):
        if i and (x.cmd, x.para) == FIND_CARD[:2]:
            break
        total += x.command_bytes + x.answer_bytes
    return total


def _real_time_reads(count: int) -> tuple[list[float], list[float], list[float], list[int]]:
    """Per read: CardRead.elapsed_ms, its ratio to the wire time, tap → CardRead, wire bytes."""
    reader = SimulatedIdCardReader(realtime=True, baud=BAUD)
    events: queue.SimpleQueue[tuple[float, ReaderEvent]] = queue.SimpleQueue()
    reader.start(lambda e: events.put((time.perf_counter(), e)))
    elapsed: list[float] = []
    ratios: list[float] = []
    from_tap: list[float] = []
    wire: list[int] = []
    keys = list(DEMO_CARDS)
    try:
        time.sleep(0.3)  # let the reader check its SAM first, as a kiosk does at start-up
        for i in range(count):
            tapped = time.perf_counter()
            reader.tap(keys[i % len(keys)])
            while True:
                at, event = events.get(timeout=5)
                if isinstance(event, ReadFailed):
                    raise RuntimeError(f"read failed: {event.reason}")
                if isinstance(event, CardRead):
                    break
            time.sleep(0.25)  # until the card is lifted and the next find has been logged
            size = _wire_of_read(reader.sim.exchanges)
            wire_ms = reader.sim.wire_seconds(size) * 1000
            elapsed.append(event.elapsed_ms)
            ratios.append(event.elapsed_ms / wire_ms)
            from_tap.append((at - tapped) * 1000)
            wire.append(size)
    finally:
        reader.stop()
    return elapsed, ratios, from_tap, wire


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


def _fuzz(
    name: str,
    strategy: st.SearchStrategy[bytes],
    target: Callable[[bytes], str],
    documented: tuple[type[Exception], ...],
    examples: int,
) -> Row:
    """Run `target` on `examples` generated inputs; count outcomes and undocumented errors."""
    outcomes: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    durations: list[float] = []
    slowest: list[bytes] = [b""]

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run_one(data: bytes) -> None:
        start = time.perf_counter()
        try:
            outcomes[target(data)] += 1
        except documented as exc:
            outcomes[type(exc).__name__] += 1
        except Exception as exc:  # noqa: BLE001 (what the fuzz looks for: counted, reported)
            unexpected[type(exc).__name__] += 1
        durations.append((time.perf_counter() - start) * 1000)
        if durations[-1] >= max(durations):
            slowest[0] = data

    started = time.perf_counter()
    run_one()
    seconds = time.perf_counter() - started
    done = len(durations)
    # Hypothesis keeps many objects alive, so a garbage collection sometimes lands inside one
    # call; timing the slowest input again on its own tells a pause from a slow input.
    rerun, _p95_rerun = measure(lambda: _outcome(target, documented, slowest[0]), 5)
    found = ", ".join(f"{k} {v}" for k, v in unexpected.most_common()) or "none"
    summary = ", ".join(f"{k} {v}" for k, v in outcomes.most_common(6))
    return (
        f"Fuzz {name}: {done:,} hypothesis examples",
        statistics.median(durations),
        _p95(durations),
        f"{done / seconds:,.0f} examples/s; slowest {max(durations):.2f} ms "
        f"({rerun:.2f} ms when that input runs again alone); "
        f"undocumented errors: {found}; outcomes: {summary}",
    )


def _outcome(
    target: Callable[[bytes], str], documented: tuple[type[Exception], ...], data: bytes
) -> str:
    try:
        return target(data)
    except documented as exc:
        return type(exc).__name__


def _decode_outcome(data: bytes) -> str:
    frame, _rest = decode_frame(data)
    return "frame" if frame is not None else "incomplete"


def _parse_outcome(data: bytes) -> str:
    return parse_text(data).kind


def _mutated(originals: list[bytes]) -> st.SearchStrategy[bytes]:
    """Valid frames or blocks with bytes overwritten, noise put in front, or the end cut off.

    One short binary draw is read as an edit script (3 bytes an edit): Hypothesis costs about
    half a millisecond per drawn value here, and 100,000 examples must stay within minutes.
    """

    def damage(args: tuple[int, bytes]) -> bytes:
        which, script = args
        out = bytearray(originals[which])
        noise = bytearray()
        for i in range(0, len(script) - 2, 3):
            where = script[i] << 8 | script[i + 1]
            if where >= 0xF000:  # one edit in sixteen puts a noise byte in front instead
                noise.append(script[i + 2])
            else:
                out[where % len(out)] = script[i + 2]
        # One in eight cut short: mostly complete frames, so checksums and parsing get tested.
        cut = script[-1] % 8 if script and script[-1] < 32 else 0
        return bytes(noise) + bytes(out[: len(out) - cut])

    return st.tuples(st.integers(0, len(originals) - 1), st.binary(max_size=24)).map(damage)


def run(full: bool) -> list[Row]:
    rows: list[Row] = []
    wire = _base_info_frame()
    assert len(wire) == 1295
    median, p95 = measure(lambda: _decode_and_parse(wire), 3000)
    rows.append(("Decode + parse one 1295-byte base-info response", median, p95, "target ≤ 0.2 ms"))

    elapsed, ratios, from_tap, sizes = _real_time_reads(30 if full else 6)
    size = statistics.median(sizes)
    rows.append(
        (
            f"Card placed → CardRead, simulator in real time at {BAUD} baud",
            statistics.median(elapsed),
            _p95(elapsed),
            f"{statistics.median(ratios):.3f}× the wire time (worst {max(ratios):.3f}×; "
            f"target ≤ 1.2×): {size:.0f} bytes both ways = "
            f"{size * 10 / BAUD * 1000:.1f} ms at 8N1; {len(elapsed)} reads of the demo cards",
        )
    )
    rows.append(
        (
            "Tap → CardRead (adds the wait for the reader's next poll, every 100 ms)",
            statistics.median(from_tap),
            _p95(from_tap),
            "what an applicant waits; the poll interval is the reader's, not the wire's",
        )
    )

    examples = 100_000 if full else 3_000
    frames = [_base_info_frame(key) for key in DEMO_CARDS] + [
        encode_response(0, 0, 0x9F, bytes(4)),
        encode_response(0, 0, 0x80),
    ]
    rows.append(
        _fuzz(
            "decode_frame",
            st.one_of(st.binary(max_size=400), _mutated(frames)),
            _decode_outcome,
            (FrameError,),
            examples,
        )
    )
    blocks = [encode_text(doc) for _label, doc in DEMO_CARDS.values()]
    rows.append(
        _fuzz(
            "parse_text",
            st.one_of(st.binary(min_size=256, max_size=256), _mutated(blocks)),
            _parse_outcome,
            (CardDataError,),
            examples,
        )
    )
    return rows
