"""Topic patterns: ``*`` matches any run of characters (none included); nothing else is special.

Matching never backtracks. A pattern is split at its stars: the part before the first star
must begin the topic, the part after the last must end it, and each part in between is
found left to right at its first place after the previous one (the first place is always
the best: it leaves the most room for the rest). So a match costs at most one scan of the
topic per part, O(pattern * topic) at worst and usually O(topic), whatever either holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

STAR = "*"


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

    def matches(self, topic: str) -> bool:
        if self.matches_everything or topic in self._exact:
            return True
        return any(pattern.matches(topic) for pattern in self._globs)
