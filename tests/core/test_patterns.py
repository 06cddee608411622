"""Topic patterns: ``*`` matches any run of characters, nothing else is special, and matching
takes time linear in what it reads, whatever the pattern."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.patterns import TopicPattern, TopicPatterns

# Few letters, so that parts of a pattern often recur in a topic.
letters = st.text(alphabet="ab*?.", max_size=12)
topics = st.text(alphabet="ab?.", max_size=16)


def reference(pattern: str, topic: str) -> bool:
    """The meaning of a pattern, as a regular expression (fine for short inputs)."""
    regex = ".*".join(map(re.escape, pattern.split("*")))
    return re.fullmatch(regex, topic, re.DOTALL) is not None


@given(pattern=letters, topic=topics)
def test_a_pattern_matches_as_its_meaning_says(pattern: str, topic: str) -> None:
    assert TopicPattern.parse(pattern).matches(topic) == reference(pattern, topic)


@given(patterns=st.lists(letters, max_size=4), topic=topics)
def test_a_set_matches_when_any_pattern_does(patterns: list[str], topic: str) -> None:
    expected = any(reference(pattern, topic) for pattern in patterns)
    assert TopicPatterns(patterns).matches(topic) == expected


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("prices.*", "prices.btc", True),
        ("prices.*", "prices.", True),
        ("prices.*", "prices", False),
        ("a?c", "a?c", True),
        ("a?c", "abc", False),
        ("[x]", "[x]", True),
        ("[x]", "x", False),
        ("*", "", True),
        ("a*a", "a", False),  # the parts may not overlap
        ("ab*ba", "aba", False),
        ("*.*.*", "a.b", False),
        ("x*\n", "x\n", True),  # a star spans any character
    ],
)
def test_only_the_star_is_special(pattern: str, topic: str, matches: bool) -> None:
    assert TopicPattern.parse(pattern).matches(topic) is matches


def test_every_topic_is_granted_only_by_the_star_itself() -> None:
    assert TopicPatterns(["a", "*"]).matches_everything
    assert not TopicPatterns(["**", "*x", ""]).matches_everything


def test_a_backtracking_pattern_takes_linear_time() -> None:
    # A regular expression built from this pattern backtracks: seconds per topic at 5 stars.
    patterns = TopicPatterns(["*a*a*a*a*a*a*a*a*a*a*a*a*b", "*" + "a*" * 1000 + "b"])
    start = time.perf_counter()
    for length in (256, 10_000, 100_000):
        assert not patterns.matches("a" * length)
    assert time.perf_counter() - start < 1.0
