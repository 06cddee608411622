"""Parsing JSON so that every number comes back out exactly as it went in.

orjson holds integers of 64 bits and doubles: a longer integer becomes a rounded float,
and a decimal with more digits than a double keeps (or beyond its range) is rounded or
refused. Such numbers are kept as `orjson.Fragment`s of their own text instead, which
`orjson.dumps` writes out verbatim, so an item is still encoded once, exactly.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import orjson

# Numbers orjson may not keep: 16 or more digits (and points) in a row, or an exponent of
# three digits or more. Anything else is a number a double holds exactly as written. A
# match inside a string only costs the slower parse. Found by mapping every byte to its
# class (D: digit or point, E: exponent, S: sign, x: other) and searching the runs: a
# regular expression scans bytes many times slower.
_NUMBER_BYTES, _NUMBER_CLASSES = b"0123456789.eE+-", b"DDDDDDDDDDDEESS"
_CLASSES = bytes(
    _NUMBER_CLASSES[_NUMBER_BYTES.index(byte)] if byte in _NUMBER_BYTES else ord("x")
    for byte in range(256)
)
_RISKY_RUNS = (b"D" * 16, b"EDDD", b"ESDDD")


def _risky(text: bytes) -> bool:
    classes = text.translate(_CLASSES)
    return any(run in classes for run in _RISKY_RUNS)


_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson encodes


def loads(text: bytes) -> Any:
    """Parse ``text`` as orjson does (the same errors), keeping every number exactly."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        # Perhaps only a number beyond a double's range (1e400), which is JSON all the same.
        exact = _exactly(text) if _risky(text) else _FAILED
        if exact is _FAILED or not _encodable(exact):
            raise exc from None
        return exact
    if not _risky(text):
        return value
    exact = _exactly(text)
    # Deeper than the stdlib parser goes: too deep to be stored, and refused as such.
    return value if exact is _FAILED else exact


_FAILED = object()


def _exactly(text: bytes) -> Any:
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return _FAILED


def _encodable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


def _int(text: str) -> int | orjson.Fragment:
    if len(text) <= 20:  # no slow conversion of a huge digit string
        number = int(text)
        if _INT_MIN <= number <= _INT_MAX:
            return number
    return orjson.Fragment(text)


def _float(text: str) -> float | orjson.Fragment:
    number = float(text)
    if math.isfinite(number) and Decimal(repr(number)) == Decimal(text):
        return number
    return orjson.Fragment(text)


def _not_json(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")
