"""Presence: how many open subscriptions receive each topic, by name or by pattern.

Subscriptions are counted per set of topics they ask for (a group), and each name and
pattern in use points to its groups; opening or closing one costs O(its topics) when its
group is new or gone, O(1) otherwise. A topic's count adds up the groups that name it,
those of the patterns that match it (found once per topic, `PatternIndex`) and those on
every topic, each group once, however many of its names and patterns match.
"""

from __future__ import annotations

from .patterns import PatternIndex, is_pattern

_EVERY: frozenset[str] = frozenset()


class Presence:
    """Open subscriptions counted by the topics and patterns they ask for."""

    __slots__ = ("_by_name", "_by_pattern", "_groups", "patterns", "version")

    def __init__(self) -> None:
        self._groups: dict[frozenset[str], int] = {}
        self._by_name: dict[str, dict[frozenset[str], None]] = {}
        self._by_pattern: dict[str, dict[frozenset[str], None]] = {}
        self.patterns = PatternIndex()
        """The patterns in use; the fan-out asks it which match a published topic."""
        self.version = 0
        """Bumped whenever a topic name gains its first subscriber or loses its last."""

    def add(self, topics: frozenset[str]) -> None:
        """Count a subscription on ``topics`` (every topic when empty)."""
        count = self._groups.get(topics, 0)
        self._groups[topics] = count + 1
        if count:
            return
        for topic in topics:
            if is_pattern(topic):
                self.patterns.add(topic)
                self._by_pattern.setdefault(topic, {})[topics] = None
            else:
                if topic not in self._by_name:
                    self._by_name[topic] = {}
                    self.version += 1
                self._by_name[topic][topics] = None

    def remove(self, topics: frozenset[str]) -> None:
        """Forget a subscription counted by `add` with the same ``topics``."""
        count = self._groups[topics] - 1
        if count:
            self._groups[topics] = count
            return
        del self._groups[topics]
        for topic in topics:
            index = self._by_pattern if is_pattern(topic) else self._by_name
            groups = index[topic]
            del groups[topics]
            if not groups:
                del index[topic]
                if index is self._by_name:
                    self.version += 1
            if is_pattern(topic):
                self.patterns.remove(topic)

    def names(self) -> list[str]:
        """The topic names some subscription asks for by name."""
        return list(self._by_name)

    def subscribers(self, topic: str) -> int:
        """Open subscriptions that receive ``topic``: by name, by pattern, or on every topic."""
        groups = dict(self._by_name.get(topic, {}))
        for pattern in self.patterns.matching(topic) if self.patterns else ():
            groups.update(self._by_pattern[pattern])
        every = self._groups.get(_EVERY, 0)
        return every + sum(self._groups[group] for group in groups)
