"""Conflict resolution: which of the claims on one slot stands.

A *slot* is a (context, space, key); its *claims* are the entries on it that
are active, or were superseded by an earlier resolution (not by revision and
not retracted), so a loser is reconsidered whenever new evidence arrives.

Claims with equal values agree; each strategy scores every group of
agreeing claims and the best group wins: all its claims stay active, the
others are superseded with the scores and the reason in the event log.

Every strategy is a pure function of the *set* of claims: groups are keyed
by canonical JSON, scores are summed with ``math.fsum`` and multiplied in
sorted order, and ties go to the smallest canonical JSON. So the outcome
does not depend on the order in which concurrent sources finished.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import rule_engine

from blackboard import Entry
from knowledge_sources import compile_rule
from knowledge_sources._rules import RULE_ERRORS

from ._errors import ConfigurationError


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Resolution:
    """The outcome of resolving one slot."""

    strategy: str
    winners: tuple[int, ...]
    losers: tuple[int, ...]
    scores: Mapping[str, float] = field(default_factory=dict)
    margin: float = math.inf

    @property
    def contested(self) -> bool:
        return bool(self.losers)


class ConflictStrategy:
    """Base of the strategies: score each group of agreeing claims."""

    name = "strategy"

    def score(self, group: Sequence[Entry], reliability: Mapping[str, float]) -> float:
        raise NotImplementedError

    def resolve(self, claims: Sequence[Entry], reliability: Mapping[str, float] | None = None) -> Resolution:
        groups: dict[str, list[Entry]] = {}
        for claim in claims:
            groups.setdefault(canonical(claim.value), []).append(claim)
        if len(groups) == 1:
            return Resolution(self.name, tuple(sorted(c.id for c in claims)), ())
        rel = reliability or {}
        scores = {text: float(self.score(group, rel)) for text, group in groups.items()}
        ranked = sorted(scores, key=lambda text: (-scores[text], text))
        best = ranked[0]
        winners = tuple(sorted(c.id for c in groups[best]))
        losers = tuple(sorted(c.id for text in ranked[1:] for c in groups[text]))
        return Resolution(self.name, winners, losers, scores, scores[best] - scores[ranked[1]])

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class HighestConfidence(ConflictStrategy):
    """The value with the most confident claim wins (the default)."""

    name = "highest_confidence"

    def score(self, group: Sequence[Entry], reliability: Mapping[str, float]) -> float:
        return max(c.confidence for c in group)


class NoisyOr(ConflictStrategy):
    """Agreeing claims combine as independent evidence: 1 - prod(1 - c)."""

    name = "noisy_or"

    def score(self, group: Sequence[Entry], reliability: Mapping[str, float]) -> float:
        doubt = 1.0
        for c in sorted(c.confidence for c in group):
            doubt *= 1.0 - c
        return 1.0 - doubt


class WeightedVote(ConflictStrategy):
    """Each claim votes with its source's reliability times its confidence.

    ``reliability`` maps source names to weights; sources not named use the
    weight declared on the source (``reliability=``), else 1.
    """

    name = "weighted_vote"

    def __init__(self, reliability: Mapping[str, float] | None = None) -> None:
        if reliability is not None and not isinstance(reliability, Mapping):
            raise ConfigurationError("conflict", f"WeightedVote takes a mapping of source names to weights, not {reliability!r}")
        for name, weight in (reliability or {}).items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
                raise ConfigurationError("conflict", f"the weight of {name!r} must be a finite number >= 0, not {weight!r}")
        self.reliability = dict(reliability or {})

    def score(self, group: Sequence[Entry], reliability: Mapping[str, float]) -> float:
        weights = {**reliability, **self.reliability}
        return math.fsum(weights.get(c.source, 1.0) * c.confidence for c in group)


class UserRule(ConflictStrategy):
    """A rule of the user's: an expression scoring each claim, or a callable.

    ``UserRule("confidence * (source == 'expert' ? 2 : 1)")`` scores each
    claim with a rule-engine expression over its facts (a group scores its
    best claim). ``UserRule(fn)`` calls ``fn(claims)``, which returns the
    winning entry or value.
    """

    name = "user_rule"

    def __init__(self, rule: str | Callable[[Sequence[Entry]], Any], name: str = "user_rule") -> None:
        self.name = name
        self._fn: Callable[[Sequence[Entry]], Any] | None = None
        self._rule: rule_engine.Rule | None = None
        if isinstance(rule, str):
            self._rule = compile_rule(f"conflict rule {name}", rule)
        elif callable(rule):
            self._fn = rule
        else:
            raise ConfigurationError("conflict", f"UserRule takes an expression or a callable, not {rule!r}")

    def score(self, group: Sequence[Entry], reliability: Mapping[str, float]) -> float:
        """The best claim's score; a claim the rule cannot score (or scores
        with something not a finite number) scores 0."""
        assert self._rule is not None
        best = 0.0
        for claim in group:
            try:
                value = float(self._rule.evaluate(claim))
            except (*RULE_ERRORS, OverflowError):
                self._rule.context._tls.reset()
                continue
            if math.isfinite(value):
                best = max(best, value)
        return best

    def resolve(self, claims: Sequence[Entry], reliability: Mapping[str, float] | None = None) -> Resolution:
        if self._fn is None:
            return super().resolve(claims, reliability)
        ordered = sorted(claims, key=lambda c: (canonical(c.value), c.id))
        if len({canonical(c.value) for c in ordered}) == 1:
            return Resolution(self.name, tuple(c.id for c in ordered), ())
        try:
            choice = self._fn(ordered)
        except Exception as exc:
            raise ConflictRuleError(self.name, f"raised {type(exc).__name__}: {exc}") from exc
        value = choice.value if isinstance(choice, Entry) else choice
        text = canonical(value)
        winners = tuple(sorted(c.id for c in ordered if canonical(c.value) == text))
        if not winners:
            raise ConflictRuleError(self.name, f"chose {value!r}, which no claim holds")
        losers = tuple(sorted(c.id for c in ordered if c.id not in winners))
        return Resolution(self.name, winners, losers, {text: 1.0}, math.nan)


class ConflictRuleError(ConfigurationError):
    """A user's conflict rule failed on real claims; the slot keeps its state."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"conflict rule {name}", problem)


def strategy_named(name: str) -> ConflictStrategy:
    strategies: dict[str, Callable[[], ConflictStrategy]] = {
        "highest_confidence": HighestConfidence,
        "noisy_or": NoisyOr,
        "weighted_vote": WeightedVote,
    }
    if name not in strategies:
        raise KeyError(name)
    return strategies[name]()
