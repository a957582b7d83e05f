"""Governance: rules every contribution must satisfy before it is written.

A source may only write the spaces it declares (checked for every
contribution, always). On top of that, a :class:`Policy` is a rule-engine
expression that must hold for a contribution to be written; it sees the
contribution and the source that made it::

    kind          "post", "revise" or "retract"
    space, key, confidence, value and the value's top-level fields
    supports      how many entries it says it was derived from
    source, tags, priority, reliability    of the contributing source

``Policy("two-supports", "confidence <= 0.9 or supports >= 2")`` and
``Policy("reviewed-decisions", "space != 'decision' or 'reviewed' in tags")``
are the classic examples. A contribution a policy denies is not written, and
the denial, with the policy's name, goes into the event log. A policy that
cannot be evaluated on a contribution (a field it names is missing) denies
it: policies fail closed.
"""

from __future__ import annotations

from typing import Any

from knowledge_sources import KnowledgeSource, compile_rule
from knowledge_sources._rules import RULE_ERRORS

_Errors = RULE_ERRORS


class Policy:
    """A named rule that contributions must satisfy (see the module docstring)."""

    __slots__ = ("name", "rule", "expression", "description")

    def __init__(self, name: str, rule: str, description: str = "") -> None:
        if not isinstance(name, str) or not name:
            from ._errors import ConfigurationError

            raise ConfigurationError("policies", f"a policy needs a non-empty name, not {name!r}")
        self.name = name
        self.expression = rule
        self.rule = compile_rule(f"policy {name}", rule)
        self.description = description

    def check(self, facts: dict[str, Any]) -> str | None:
        """None if the contribution may be written, else why not."""
        try:
            if self.rule.matches(facts):
                return None
            return f"policy {self.name!r} ({self.expression}) does not hold"
        except _Errors as exc:
            return f"policy {self.name!r} could not be evaluated ({exc}); denied"

    def __repr__(self) -> str:
        return f"Policy({self.name!r}, {self.expression!r})"


def contribution_facts(kind: str, space: str, key: str | None, value: Any, confidence: Any,
                       supports: int, source: KnowledgeSource) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if type(value) is dict:
        facts.update(value)
    facts.update({
        "value": value, "kind": kind, "space": space, "key": key, "confidence": confidence,
        "supports": supports, "source": source.name, "tags": list(source.tags),
        "priority": source.priority, "reliability": source.reliability,
    })
    return facts
