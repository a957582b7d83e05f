"""Escalation to a person: which items the controller holds for review.

An :class:`Escalation` names what needs a person's eye:

* ``entries="space == 'decision' and confidence < 0.7"``: new entries that
  satisfy a rule are held (status ``pending_review``) instead of acting;
* ``margin_below=0.1``: a conflict won by less than this margin holds its
  winner(s) until a person confirms;
* ``failures=True``: an activation that failed with no fallback is held, so
  a person can have it retried (approve) or give it up (reject).

``spaces`` (and ``sources``, for failures) narrow it down. The controller's
``on_review`` says whether a run pauses as soon as something is held
(``"pause"``) or goes on with other work and stops, waiting, only when
nothing else is left (``"continue"``, the default). Either way the outcome
is ``"review"`` while items are pending; decide them with
``bb.approve / reject / edit`` (or ``blackboard review PATH ...``) and run again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import rule_engine

from blackboard import Entry
from knowledge_sources import compile_rule
from knowledge_sources._fastrule import fast_matcher

from ._errors import ConfigurationError


class Escalation:
    """What to hold for a person (see the module docstring)."""

    def __init__(self, name: str, *, entries: str | None = None, margin_below: float | None = None,
                 failures: bool = False, spaces: Iterable[str] | None = None,
                 sources: Iterable[str] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("escalations", f"an escalation needs a non-empty name, not {name!r}")
        if entries is None and margin_below is None and not failures:
            raise ConfigurationError("escalations", f"escalation {name!r} names nothing to escalate: give entries=, margin_below= or failures=True")
        if margin_below is not None and (isinstance(margin_below, bool) or not isinstance(margin_below, (int, float)) or margin_below < 0):
            raise ConfigurationError("escalations", f"margin_below must be a non-negative number, not {margin_below!r}")
        self.name = name
        self.expression = entries
        self.rule: rule_engine.Rule | None = compile_rule(f"escalation {name}", entries) if entries else None
        self._matches = fast_matcher(self.rule) if self.rule is not None else None
        self.margin_below = None if margin_below is None else float(margin_below)
        self.failures = bool(failures)
        self.spaces = frozenset(spaces) if spaces is not None else None
        self.sources = frozenset(sources) if sources is not None else None

    def holds_entry(self, entry: Entry) -> bool:
        if self._matches is None or (self.spaces is not None and entry.space not in self.spaces):
            return False
        return self._matches(entry)

    def holds_conflict(self, space: str, margin: float) -> bool:
        return (self.margin_below is not None and margin < self.margin_below
                and (self.spaces is None or space in self.spaces))

    def holds_failure(self, source: str) -> bool:
        return self.failures and (self.sources is None or source in self.sources)

    def __repr__(self) -> str:
        parts: list[Any] = []
        if self.expression:
            parts.append(f"entries={self.expression!r}")
        if self.margin_below is not None:
            parts.append(f"margin_below={self.margin_below}")
        if self.failures:
            parts.append("failures=True")
        return f"Escalation({self.name!r}, {', '.join(parts)})"
