"""Stream ids: ``"<ms>-<seq>"`` text, numeric order, and a generator that never goes back."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming import IdGenerator, InvalidId, StreamId
from tests.core.helpers import FakeClock

U64_MAX = 2**64 - 1
u64 = st.integers(min_value=0, max_value=U64_MAX)


def test_parse_reads_milliseconds_and_sequence() -> None:
    assert StreamId.parse("1700000000000-7") == StreamId(ms=1700000000000, seq=7)


def test_str_formats_milliseconds_dash_sequence() -> None:
    assert str(StreamId(1700000000000, 7)) == "1700000000000-7"


@given(ms=u64, seq=u64)
def test_format_then_parse_round_trips(ms: int, seq: int) -> None:
    assert StreamId.parse(str(StreamId(ms, seq))) == StreamId(ms, seq)


def test_ids_compare_numerically_not_as_text() -> None:
    assert StreamId.parse("10-0") > StreamId.parse("9-5")
    assert StreamId.parse("1-10") > StreamId.parse("1-9")


def test_sequence_orders_ids_within_a_millisecond() -> None:
    assert StreamId.parse("5-0") < StreamId.parse("5-1") < StreamId.parse("6-0")


@given(a=st.tuples(u64, u64), b=st.tuples(u64, u64))
def test_order_is_milliseconds_then_sequence(a: tuple[int, int], b: tuple[int, int]) -> None:
    assert (StreamId(*a) < StreamId(*b)) == (a < b)


def test_parse_accepts_the_largest_64_bit_values() -> None:
    assert StreamId.parse(f"{U64_MAX}-{U64_MAX}") == StreamId(U64_MAX, U64_MAX)


@pytest.mark.parametrize("text", [f"{2**64}-0", f"0-{2**64}", f"{10**20}-0", f"1-{10**30}"])
def test_parse_rejects_numbers_beyond_64_bits(text: str) -> None:
    with pytest.raises(InvalidId):
        StreamId.parse(text)


@pytest.mark.parametrize("text", ["-1-0", "1--1", "-0-0"])
def test_parse_rejects_negative_numbers(text: str) -> None:
    with pytest.raises(InvalidId):
        StreamId.parse(text)


@pytest.mark.parametrize("text", [" 1-0", "1-0 ", "1 -0", "1- 0", " ", "1-0\n", "\t1-0"])
def test_parse_rejects_whitespace(text: str) -> None:
    with pytest.raises(InvalidId):
        StreamId.parse(text)


@pytest.mark.parametrize("text", ["", "-", "1", "1-", "-1"])
def test_parse_rejects_empty_or_missing_parts(text: str) -> None:
    with pytest.raises(InvalidId):
        StreamId.parse(text)


@pytest.mark.parametrize(
    "text",
    ["1-2-3", "+1-0", "1-+0", "1.5-0", "1e3-0", "0x1-0", "1_0-0", "a-b", "1:0", "\u0661-\u0660"],
)
def test_parse_rejects_anything_but_two_ascii_decimal_numbers(text: str) -> None:
    with pytest.raises(InvalidId):
        StreamId.parse(text)


def test_invalid_id_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a stream id"):
        StreamId.parse("nope")


def test_generator_uses_the_clock_millisecond_with_sequence_zero() -> None:
    clock = FakeClock(1_000)
    ids = IdGenerator(clock, floor=StreamId(1_000, 0))
    clock.advance(5)
    assert ids.next() == StreamId(1_005, 0)


def test_generator_counts_the_sequence_up_within_one_millisecond() -> None:
    ids = IdGenerator(FakeClock(1_000), floor=StreamId(1_000, 0))
    assert [ids.next() for _ in range(3)] == [StreamId(1_000, n) for n in range(3)]


def test_generator_stays_increasing_when_the_clock_steps_back() -> None:
    clock = FakeClock(2_000)
    ids = IdGenerator(clock, floor=StreamId(1_000, 0))
    first = ids.next()
    clock.now = 1_500
    second = ids.next()
    clock.now = 1_999
    third = ids.next()
    assert first < second < third
    assert third == StreamId(2_000, 2)


def test_generator_never_issues_an_id_below_the_floor() -> None:
    ids = IdGenerator(FakeClock(500), floor=StreamId(1_000, 3))
    assert ids.next() == StreamId(1_000, 3)


def test_generator_issues_the_floor_itself_when_the_clock_is_at_it() -> None:
    ids = IdGenerator(FakeClock(1_000), floor=StreamId(1_000, 0))
    assert ids.next() == StreamId(1_000, 0)


@given(
    floor=st.tuples(st.integers(0, 10_000), st.integers(0, 5)),
    readings=st.lists(st.integers(0, 12_000), min_size=1, max_size=50),
)
def test_generator_ids_strictly_increase_and_stay_at_or_above_the_floor(
    floor: tuple[int, int], readings: list[int]
) -> None:
    clock = FakeClock(0)
    ids = IdGenerator(clock, floor=StreamId(*floor))
    issued: list[StreamId] = []
    for reading in readings:
        clock.now = reading
        issued.append(ids.next())
    assert issued[0] >= StreamId(*floor)
    assert all(a < b for a, b in pairwise(issued))
