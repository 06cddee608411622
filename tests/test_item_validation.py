"""A posted item is validated once, whichever way: what the plain checks accept (the fast
way for plainly valid items) is exactly what pydantic's `ItemIn` accepts, as the same draft."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.http.problems import Problem
from app.http.routes import _COLUMNS_FROM, _plain_drafts, _validated
from app.http.schemas import DATA_DEPTH_MAX
from app.settings import Settings

SETTINGS = Settings(publish_token="x")
_NAMES = st.one_of(
    st.text(max_size=5),
    st.text(alphabet="ab*\x00\x1f\x7f\x85\u2028 \u3000", max_size=4),
    st.sampled_from(["", "a" * 256, "a" * 257, "prices.*"]),
)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=3)
)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=12,
)
_ANY = st.one_of(_NAMES, _SCALARS, _DATA, st.floats(min_value=-1, max_value=1e7))
_ENTRIES = st.fixed_dictionaries(
    {"data": _DATA},
    optional={
        "key": st.one_of(_NAMES, _ANY),
        "topic": st.one_of(_NAMES, _ANY),
        "ttl": st.one_of(st.floats(min_value=-1, max_value=1e7), st.integers(-1, 10**7), _ANY),
        "extra": _ANY,
    },
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _by_pydantic(entries: list[Any]) -> Any:
    try:
        return _validated(entries, (), SETTINGS)
    except Problem:
        return None


@settings(max_examples=500)
@given(_ENTRIES)
def test_the_plain_checks_accept_only_what_pydantic_accepts_as_the_same_draft(
    entry: dict[str, Any],
) -> None:
    plain = _plain_drafts([entry], SETTINGS)
    if plain is not None:
        assert _by_pydantic([entry]) == plain


@settings(max_examples=300)
@given(st.lists(_ENTRIES | _ANY, min_size=1, max_size=5))
def test_the_plain_checks_accept_only_batches_pydantic_accepts_as_the_same_drafts(
    entries: list[Any],
) -> None:
    plain = _plain_drafts(entries, SETTINGS)
    if plain is not None:
        assert _by_pydantic(entries) == plain


@settings(max_examples=300)
@given(_ENTRIES, st.integers(0, _COLUMNS_FROM))
@example({"data": 1, "topic": "prices.*"}, 3)  # a pattern is no topic to publish on
@example({"data": _nested(DATA_DEPTH_MAX + 1)}, 0)  # deeper than stored
def test_the_field_at_a_time_checks_of_large_batches_accept_only_what_pydantic_accepts(
    entry: dict[str, Any], at: int
) -> None:
    # Batches from `_COLUMNS_FROM` items are checked a field at a time, not item by item:
    # one entry drawn, among plainly valid ones, decides whether the batch is plain.
    entries: list[Any] = [{"data": n, "key": f"k{n}"} for n in range(_COLUMNS_FROM)]
    entries.insert(at, entry)
    plain = _plain_drafts(entries, SETTINGS)
    if plain is not None:
        assert _by_pydantic(entries) == plain


def test_the_plain_checks_take_plainly_valid_batches() -> None:
    entries = [
        {"topic": "prices", "key": f"k{n}", "data": {"s": n, "t": 1733333333333333333}}
        for n in range(3)
    ] + [{"data": [1, {"a": None}], "ttl": 60}, {"data": "x", "topic": "t", "key": None}]
    assert _plain_drafts(entries, SETTINGS) == _by_pydantic(entries)
