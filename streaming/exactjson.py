"""Parsing JSON so that every number comes back out exactly as it went in.

orjson holds integers of 64 bits and doubles: a longer integer becomes a rounded float,
and a decimal with more digits than a double keeps (or beyond its range) is rounded or
refused. Such numbers are kept as `orjson.Fragment`s of their own text instead, which
`orjson.dumps` writes out verbatim, so an item is still encoded once, exactly.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

import orjson

# Numbers orjson may not keep have 16 or more digits (and points) in a row, or an exponent
# of three digits or more; any other number a double holds exactly as written. They are
# found by mapping every byte to its class (D: digit or point, E: exponent, S: sign, x:
# other) and looking for such runs with `in` (a regular expression over the text itself
# would scan it many times slower). A run inside a string is checked as if it were a
# number; if it is not one, the slower exact parse runs, to the same result.
_NUMBER_BYTES, _NUMBER_CLASSES = b"0123456789.eE+-", b"DDDDDDDDDDDEESS"
_CLASSES = bytes(
    _NUMBER_CLASSES[_NUMBER_BYTES.index(byte)] if byte in _NUMBER_BYTES else ord("x")
    for byte in range(256)
)
_LONG_RUN = b"D" * 16
_IN_NUMBER = frozenset(b"DES")
_SIGN = ord("S")
# A run of 16 D starts a number (or follows its sign): D{16} is a literal prefix, which the
# regular expression engine searches for fast.
_LONG = re.compile(rb"D{16}[DES]*")
_EXPONENT = re.compile(rb"ES?D{3}[DES]*")
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson keeps


def _inexact(text: bytes, classes: bytes) -> bool:
    """Whether ``text`` (its bytes' ``classes``) may hold a number orjson would not keep."""
    for found in _LONG.finditer(classes):
        start = found.start() - (found.start() > 0 and classes[found.start() - 1] == _SIGN)
        if not _kept(text[start : found.end()]):
            return True
    for found in _EXPONENT.finditer(classes):
        start = found.start()
        while start and classes[start - 1] in _IN_NUMBER:
            start -= 1
        if not _kept(text[start : found.end()]):
            return True
    return False


def _kept(token: bytes) -> bool:
    """Whether orjson keeps the number ``token`` spells exactly (False for a non-number)."""
    digits = token.removeprefix(b"-")
    if digits.isdigit():
        return len(digits) <= 20 and _INT_MIN <= int(token) <= _INT_MAX
    try:
        number = float(token)
    except ValueError:
        return False
    shortest = repr(number)  # what orjson writes (or another spelling of it)
    return math.isfinite(number) and (
        shortest.encode() == token or Decimal(shortest) == Decimal(token.decode())
    )


def loads(text: bytes) -> Any:
    """Parse ``text`` as orjson does (the same errors), keeping every number exactly."""
    classes = text.translate(_CLASSES)
    risky = _LONG_RUN in classes or b"EDDD" in classes or b"ESDDD" in classes
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        # Perhaps only a number beyond a double's range (1e400), which is JSON all the same.
        exact = _exactly(text) if risky else _FAILED
        if exact is _FAILED or not _encodable(exact):
            raise exc from None
        return exact
    if not risky or _written_back(value, text) or not _inexact(text, classes):
        return value
    exact = _exactly(text)
    # Deeper than the stdlib parser goes: too deep to be stored, and refused as such.
    return value if exact is _FAILED else exact


_FAILED = object()
_WHITESPACE = b" \t\n\r"


def _written_back(value: Any, text: bytes) -> bool:
    """Whether orjson writes ``value`` back as ``text``, but for whitespace: then every
    number was kept (machines often send what orjson writes). Whitespace is dropped in
    strings too, on both sides alike; numbers hold none, and values are delimited by
    other bytes, so the numbers still line up one for one."""
    written = orjson.dumps(value)
    if written == text:
        return True
    return written.translate(None, _WHITESPACE) == text.translate(None, _WHITESPACE)


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
