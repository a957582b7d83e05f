"""The trigger index: which sources does a new entry activate?

Sources are filed by (space, event kind), so an entry is only ever tested
against the sources that watch its space. Within that, rules that test the
same expression for equality with a literal (``value % 200 == i``) are
grouped: the expression is evaluated once, and a dict lookup finds the few
sources whose literal matches. The rest are tested one by one. See
``knowledge_sources._rules`` for why the index never skips a rule that
could match.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from knowledge_sources import KnowledgeSource
from knowledge_sources._fastrule import fast_value
from knowledge_sources._rules import _UNHASHABLE, RULE_ERRORS, discriminator, index_key

_Errors = RULE_ERRORS


class _Bucket:
    """The sources watching one (space, kind)."""

    __slots__ = ("scan", "groups")

    def __init__(self) -> None:
        self.scan: list[tuple[int, KnowledgeSource]] = []
        # expression key -> (node, its fast form, literal -> [(order, source)])
        self.groups: dict[Any, tuple[Any, Any, dict[Any, list[tuple[int, KnowledgeSource]]]]] = {}

    def add(self, order: int, source: KnowledgeSource) -> None:
        rule = source.rule
        found = discriminator(rule) if rule is not None else None
        if found is None or found[2] is _UNHASHABLE:
            self.scan.append((order, source))
            return
        node, key, literal = found
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = (node, fast_value(node), {})
        group[2].setdefault(literal, []).append((order, source))

    def match(self, entry: Any) -> list[KnowledgeSource]:
        hits: list[tuple[int, KnowledgeSource]] = []
        for order, source in self.scan:
            if source.matches(entry):
                hits.append((order, source))
        for node, fast, by_literal in self.groups.values():
            try:
                value = index_key(fast(entry)) if fast is not None else index_key(node.evaluate(entry))
            except LookupError:
                try:
                    value = index_key(node.evaluate(entry))
                except _Errors:
                    continue
            except _Errors:
                continue
            if value is _UNHASHABLE:
                candidates: Iterable[tuple[int, KnowledgeSource]] = [
                    item for items in by_literal.values() for item in items
                ]
            else:
                candidates = by_literal.get(value, ())
            for order, source in candidates:
                if source.matches(entry):
                    hits.append((order, source))
        if len(hits) > 1:
            hits.sort(key=lambda item: item[0])
        return [source for _, source in hits]


class TriggerIndex:
    """Finds the sources a (space, event kind) entry activates."""

    def __init__(self, sources: Iterable[KnowledgeSource] = ()) -> None:
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._count = 0
        for source in sources:
            self.add(source)

    def add(self, source: KnowledgeSource) -> None:
        for space in source.watches:
            for kind in source.events:
                bucket = self._buckets.get((space, kind))
                if bucket is None:
                    bucket = self._buckets[(space, kind)] = _Bucket()
                bucket.add(self._count, source)
        self._count += 1

    def bucket(self, space: str, kind: str) -> _Bucket | None:
        return self._buckets.get((space, kind))

    def watched(self, space: str, kind: str) -> bool:
        return (space, kind) in self._buckets
