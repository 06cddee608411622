"""Topic patterns: ``*`` matches any run of characters, nothing else is special, and matching
takes time linear in what it reads, whatever the pattern."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.patterns import PatternIndex, TopicPattern, TopicPatterns

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


# Covering: a pattern asked for on a read is covered by a token's patterns when every topic
# it matches is matched by one of them. Checked against brute force: every topic up to a
# length over the patterns' letters and one letter none of them holds (topics may hold any
# character but the star, so a pattern's star can always be filled with a stranger).
short = st.text(alphabet="ab*", max_size=5)
_STRANGER = "c"


def _all_topics(longest: int) -> list[str]:
    found = [""]
    level = [""]
    for _ in range(longest):
        level = [topic + letter for topic in level for letter in "ab" + _STRANGER]
        found += level
    return found


_TOPICS = _all_topics(7)


def brute_covers(claims: list[str], asked: str) -> bool:
    return all(
        any(reference(claim, topic) for claim in claims)
        for topic in _TOPICS
        if reference(asked, topic)
    )


@given(claim=short, asked=short)
def test_a_pattern_covers_another_exactly_when_it_matches_all_its_topics(
    claim: str, asked: str
) -> None:
    assert TopicPatterns([claim]).covers(asked) == brute_covers([claim], asked)


@given(claims=st.lists(short, max_size=3), asked=short)
def test_a_set_covers_a_pattern_exactly_when_its_patterns_together_match_all_its_topics(
    claims: list[str], asked: str
) -> None:
    assert TopicPatterns(claims).covers(asked) == brute_covers(claims, asked)


@pytest.mark.parametrize(
    ("claims", "asked", "covered"),
    [
        (["prices.*"], "prices.*", True),
        (["prices.*"], "prices.b*", True),
        (["prices.*"], "prices*", False),  # "prices" itself is not granted
        (["*.eth"], "prices.*", False),
        (["*"], "*", True),
        (["*a*"], "*a*a*", True),
        (["*ab*"], "*a*b*", False),  # "acb": over two letters alone it would be covered
        (["a*", "b*"], "*", False),
    ],
)
def test_covering_examples(claims: list[str], asked: str, covered: bool) -> None:
    assert TopicPatterns(claims).covers(asked) is covered


def test_a_pattern_index_finds_the_patterns_in_use_that_match_a_topic() -> None:
    index = PatternIndex()
    index.add("prices.*")
    index.add("*.eth")
    assert set(index.matching("prices.eth")) == {"prices.*", "*.eth"}
    index.add("*")  # a new pattern: answers cached before it are forgotten
    assert set(index.matching("prices.eth")) == {"prices.*", "*.eth", "*"}
    index.remove("*.eth")
    assert set(index.matching("prices.eth")) == {"prices.*", "*"}
    assert set(index.expand(["news"])) == {"news", "*"}


def test_a_pattern_stays_in_use_until_its_last_user_leaves() -> None:
    index = PatternIndex()
    index.add("a*")
    index.add("a*")
    index.remove("a*")
    assert index.matching("ab") == ("a*",)
    index.remove("a*")
    assert index.matching("ab") == ()
    assert not index


@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["add", "remove", "match"]), st.text(alphabet="ab*", max_size=3)),
        max_size=30,
    )
)
def test_a_pattern_index_answers_as_a_scan_of_the_patterns_in_use(
    steps: list[tuple[str, str]],
) -> None:
    index = PatternIndex()
    in_use: dict[str, int] = {}
    for action, text in steps:
        if action == "add":
            index.add(text)
            in_use[text] = in_use.get(text, 0) + 1
        elif action == "remove" and in_use.get(text):
            index.remove(text)
            in_use[text] -= 1
        topic = text.replace("*", "a")
        expected = {p for p, n in in_use.items() if n and reference(p, topic)}
        assert set(index.matching(topic)) == expected
        assert len(index.matching(topic)) == len(expected)
