"""Topic patterns: ``*`` matches any run of characters (none included); nothing else is special.

Matching never backtracks. A pattern is split at its stars: the part before the first star
must begin the topic, the part after the last must end it, and each part in between is
found left to right at its first place after the previous one (the first place is always
the best: it leaves the most room for the rest). So a match costs at most one scan of the
topic per part, O(pattern * topic) at worst and usually O(topic), whatever either holds.

A topic asked for on a read may itself be a pattern (it holds a star; topics never do).
Such a pattern P is *covered* by a pattern C when every topic P matches, C matches too.
That is decided by matching C against P's own text, read as a topic (`covers`): the stars
of P then stand for characters that no part of C holds, so only C's stars can take them,
and whatever a star of P is replaced by, the same match still holds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

STAR = "*"
_SEEN_MAX = 1024
"""Topics whose match a `TopicFilter` remembers (of at most 256 filters kept); past that it
forgets them all and starts again, so memory stays bounded however many topics pass."""
_MATCHING_MAX = 65_536
"""Topics whose matching patterns a `PatternIndex` remembers, likewise."""


def is_pattern(topic: str) -> bool:
    """Whether a topic asked for is a pattern: it holds a star (topic names never do)."""
    return STAR in topic


@dataclass(frozen=True, slots=True)
class TopicPattern:
    """One pattern, split at its stars once so that matching only scans the topic."""

    text: str
    _parts: tuple[str, ...]
    _literal_length: int

    @classmethod
    def parse(cls, text: str) -> TopicPattern:
        parts = tuple(text.split(STAR))
        return cls(text, parts, sum(map(len, parts)))

    @property
    def is_literal(self) -> bool:
        """Whether the pattern has no star: it matches exactly one topic, itself."""
        return len(self._parts) == 1

    def matches(self, topic: str) -> bool:
        parts = self._parts
        if len(parts) == 1:
            return topic == self.text
        if len(topic) < self._literal_length:
            return False
        head, *middle, tail = parts
        if not (topic.startswith(head) and topic.endswith(tail)):
            return False
        at, end = len(head), len(topic) - len(tail)
        for part in middle:
            found = topic.find(part, at, end)
            if found < 0:
                return False
            at = found + len(part)
        return True


class TopicPatterns:
    """A set of patterns (a token's grant): a topic matches when any pattern matches it.

    Patterns without a star are looked up in a set; ``*`` alone matches every topic.
    """

    __slots__ = ("_exact", "_globs", "matches_everything")

    def __init__(self, patterns: Iterable[str]) -> None:
        parsed = [TopicPattern.parse(text) for text in dict.fromkeys(patterns)]
        self._exact = frozenset(p.text for p in parsed if p.is_literal)
        self._globs = tuple(p for p in parsed if not p.is_literal)
        self.matches_everything = any(p.text == STAR for p in self._globs)
        """Whether the patterns hold ``*`` itself (which alone grants "every topic")."""

    def __bool__(self) -> bool:
        return bool(self._exact or self._globs)

    def matches(self, topic: str) -> bool:
        if self.matches_everything or topic in self._exact:
            return True
        return any(pattern.matches(topic) for pattern in self._globs)

    def covers(self, asked: str) -> bool:
        """Whether every topic ``asked`` matches (a topic, or a pattern) is matched here.

        A set covers a pattern exactly when one of its patterns does: a topic made of the
        pattern's text, its stars replaced by a character none of the set holds, is
        matched only by a pattern that covers it alone.
        """
        return self.matches(asked)


class TopicFilter:
    """The topics a read asks for, names and patterns, as a predicate on topics.

    A pattern's answer for a topic is remembered (boundedly): live items of one topic come
    again and again, and each is then a dictionary lookup.
    """

    __slots__ = ("_seen", "has_patterns", "names", "patterns")

    def __init__(self, topics: Iterable[str]) -> None:
        topics = frozenset(topics)
        self.names = frozenset(topic for topic in topics if not is_pattern(topic))
        self.patterns = TopicPatterns(topic for topic in topics if is_pattern(topic))
        self.has_patterns = bool(self.patterns)
        self._seen: dict[str, bool] = {}

    def matches(self, topic: str) -> bool:
        if topic in self.names:
            return True
        seen = self._seen.get(topic)
        if seen is None:
            if len(self._seen) >= _SEEN_MAX:
                self._seen.clear()
            seen = self._seen[topic] = self.patterns.matches(topic)
        return seen


@functools.lru_cache(maxsize=256)
def topic_filter(topics: frozenset[str]) -> TopicFilter:
    """The filter of a set of topics asked for (streams on the same topics share it)."""
    return TopicFilter(topics)


def has_patterns(topics: frozenset[str]) -> bool:
    """Whether any of ``topics`` is a pattern."""
    return topic_filter(topics).has_patterns if topics else False


class PatternIndex:
    """The patterns subscribers use, counted, with the patterns that match each topic.

    A publish asks which patterns match its items' topics; the answer is computed once per
    topic and kept (boundedly), so a publish never scans every subscriber. When a pattern
    comes, the topics kept are matched against it alone; when it goes, it is taken out of
    the answers that hold it: neither recomputes an answer against every pattern.
    """

    __slots__ = ("_counts", "_matching", "_parsed", "_topics_of")

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._parsed: dict[str, TopicPattern] = {}
        self._matching: dict[str, tuple[str, ...]] = {}
        self._topics_of: dict[str, set[str]] = {}  # pattern -> kept topics it matches

    def __bool__(self) -> bool:
        return bool(self._parsed)

    def add(self, pattern: str) -> None:
        count = self._counts.get(pattern, 0)
        self._counts[pattern] = count + 1
        if count:
            return
        parsed = self._parsed[pattern] = TopicPattern.parse(pattern)
        matched = self._topics_of[pattern] = set()
        matching = self._matching
        for topic, found in matching.items():
            if parsed.matches(topic):
                matching[topic] = (*found, pattern)
                matched.add(topic)

    def remove(self, pattern: str) -> None:
        count = self._counts[pattern] - 1
        if count:
            self._counts[pattern] = count
            return
        del self._counts[pattern], self._parsed[pattern]
        matching = self._matching
        for topic in self._topics_of.pop(pattern):
            matching[topic] = tuple(p for p in matching[topic] if p != pattern)

    def matching(self, topic: str) -> tuple[str, ...]:
        """The patterns in use that match ``topic``."""
        found = self._matching.get(topic)
        if found is None:
            if len(self._matching) >= _MATCHING_MAX:
                self._matching.clear()
                for topics in self._topics_of.values():
                    topics.clear()
            found = tuple(text for text, p in self._parsed.items() if p.matches(topic))
            self._matching[topic] = found
            for pattern in found:
                self._topics_of[pattern].add(topic)
        return found

    def expand(self, topics: Iterable[str]) -> Iterable[str]:
        """``topics`` and the patterns in use that match any of them."""
        if not self._parsed:
            return topics
        expanded = list(topics)
        for topic in tuple(expanded):
            expanded += self.matching(topic)
        return expanded
