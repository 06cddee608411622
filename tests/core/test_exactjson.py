"""`streaming.exactjson.loads`: JSON parsed as orjson parses it, every number kept exactly."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.exactjson import loads

_digits = st.text("0123456789", min_size=1, max_size=40)
_integers = st.builds(
    lambda sign, digits: sign + (digits.lstrip("0") or "0"), st.sampled_from(["", "-"]), _digits
)
_decimals = st.builds(
    lambda whole, fraction, exponent: f"{whole}.{fraction}{exponent}",
    _integers,
    _digits,
    st.one_of(st.just(""), st.integers(-500, 500).map(lambda e: f"e{e}")),
)
_numbers = st.one_of(
    _integers, _decimals, st.floats(allow_nan=False, allow_infinity=False).map(repr)
)


def _value(text: str) -> tuple[bool, Decimal]:
    """A JSON number's value, and whether it is written as an integer."""
    return text.lstrip("-").isdigit(), Decimal(text)


@given(
    _numbers,
    st.sampled_from(["{0}", "[{0}]", '{{"a": [1, {0}], "b": "x"}}', '["1 2", {0} , " 0.1"]']),
)
def test_every_number_comes_back_with_its_value(number: str, shape: str) -> None:
    text = shape.format(number)
    encoded = orjson.dumps(loads(text.encode())).decode()
    back = json.loads(encoded, parse_int=str, parse_float=str)
    expected = json.loads(text, parse_int=str, parse_float=str)
    assert _values(back) == _values(expected)


def _values(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "-0123456789" and value:
        try:
            return _value(value)
        except ArithmeticError:
            return value
    if isinstance(value, list):
        return [_values(v) for v in value]
    if isinstance(value, dict):
        return {k: _values(v) for k, v in value.items()}
    return value


@given(st.text(st.characters(codec="utf-8"), max_size=60))
def test_strings_come_back_as_they_were(text: str) -> None:
    body = orjson.dumps({"s": text, "digits": "1234567890123456789e+999"})
    assert loads(body) == orjson.loads(body)


@pytest.mark.parametrize(
    "body", [b"NaN", b"[1e999, NaN]", b"[1,]", b'"\\ud800 12345678901234567"', b"", b"1e400 x"]
)
def test_what_orjson_refuses_is_refused_with_its_error(body: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        loads(body)


def test_numbers_a_double_holds_stay_plain_values() -> None:
    assert loads(b"[1.0, -0.0, 0.1, 18446744073709551615, -9223372036854775808]") == [
        1.0,
        -0.0,
        0.1,
        2**64 - 1,
        -(2**63),
    ]


@pytest.mark.parametrize(
    "number",
    [
        "1733333333333333333",  # a nanosecond timestamp: kept by orjson
        "9999999999999999999",
        "18446744073709551615",  # 2**64 - 1
        "18446744073709551616",
        "99999999999999999999",
        "-999999999999999999",
        "-9223372036854775808",  # -2**63
        "-9223372036854775809",
        "-9999999999999999999",
    ],
)
def test_long_integers_in_a_body_without_decimals_come_back_exactly(number: str) -> None:
    body = f'[{{"t":{number},"s":"a-{number}"}}]'.encode()
    assert orjson.dumps(loads(body)) == body
