"""Conflict resolution strategies: pure functions of the set of claims."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import claim, claims, reliabilities

from blackboard import Entry
from controller import (
    ConfigurationError,
    ConflictStrategy,
    HighestConfidence,
    NoisyOr,
    Resolution,
    UserRule,
    WeightedVote,
)
from knowledge_sources import PreconditionError

PROPERTY = settings(max_examples=50, deadline=None)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _pick_max_id(ordered: Sequence[Entry]) -> Entry:
    return max(ordered, key=lambda c: c.id)


STRATEGIES = [
    pytest.param(HighestConfidence, id="highest_confidence"),
    pytest.param(NoisyOr, id="noisy_or"),
    pytest.param(WeightedVote, id="weighted_vote"),
    pytest.param(lambda: WeightedVote({"alpha": 3.0, "beta": 0.5}), id="weighted_vote_fixed"),
    pytest.param(lambda: UserRule("confidence * (source == 'alpha' ? 2 : 1)"), id="user_rule_expression"),
    pytest.param(lambda: UserRule(_pick_max_id), id="user_rule_callable"),
]


def _key(resolution: Resolution) -> tuple[Any, ...]:
    return resolution.strategy, set(resolution.winners), set(resolution.losers), dict(resolution.scores)


# ================================================================ properties
@pytest.mark.parametrize("make", STRATEGIES)
@PROPERTY
@given(data=st.data(), group=claims(), reliability=reliabilities)
def test_resolution_is_independent_of_claim_order(
    make: Any, data: st.DataObject, group: list[Entry], reliability: dict[str, float]
) -> None:
    """Any permutation of the claims gives the same winners, losers and scores."""
    strategy: ConflictStrategy = make()
    first = strategy.resolve(group, reliability)
    shuffled = data.draw(st.permutations(group))
    second = strategy.resolve(shuffled, reliability)
    assert _key(first) == _key(second)
    assert first.winners == tuple(sorted(first.winners)) and first.losers == tuple(sorted(first.losers))


@pytest.mark.parametrize("make", STRATEGIES)
@PROPERTY
@given(group=claims(), reliability=reliabilities)
def test_winners_and_losers_partition_the_claims(make: Any, group: list[Entry], reliability: dict[str, float]) -> None:
    """Every claim is a winner or a loser, never both; all winners hold one value; no loser holds it."""
    resolution = make().resolve(group, reliability)
    ids = {c.id for c in group}
    assert set(resolution.winners) | set(resolution.losers) == ids
    assert not set(resolution.winners) & set(resolution.losers)
    by_id = {c.id: c for c in group}
    winning = {_canon(by_id[i].value) for i in resolution.winners}
    assert len(winning) == 1
    assert not winning & {_canon(by_id[i].value) for i in resolution.losers}
    assert resolution.contested == bool(resolution.losers)


@PROPERTY
@given(group=claims())
def test_highest_confidence_picks_the_max_with_deterministic_ties(group: list[Entry]) -> None:
    """HighestConfidence: the value of the most confident claim wins; ties go to the smallest canonical JSON."""
    resolution = HighestConfidence().resolve(group)
    groups = {_canon(c.value) for c in group}
    if len(groups) == 1:
        assert resolution.losers == ()
        return
    best = max(c.confidence for c in group)
    tied = sorted({_canon(c.value) for c in group if c.confidence == best})
    winner = tied[0]
    assert set(resolution.winners) == {c.id for c in group if _canon(c.value) == winner}
    assert resolution.margin >= 0


@pytest.mark.parametrize("make", STRATEGIES)
@PROPERTY
@given(group=claims(values=st.just("same")), reliability=reliabilities)
def test_single_value_has_no_losers(make: Any, group: list[Entry], reliability: dict[str, float]) -> None:
    """When every claim holds the same value, all win and nobody loses."""
    resolution = make().resolve(group, reliability)
    assert resolution.losers == ()
    assert set(resolution.winners) == {c.id for c in group}
    assert not resolution.contested


@PROPERTY
@given(confs=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=6), other=st.floats(0.0, 1.0))
def test_noisy_or_never_below_its_strongest_claim(confs: list[float], other: float) -> None:
    """NoisyOr scores a group at least as high as its most confident claim, and at most 1."""
    group = [claim(i, "a", c) for i, c in enumerate(confs, start=1)] + [claim(100, "b", other)]
    scores = NoisyOr().resolve(group).scores
    assert max(confs) - 1e-12 <= scores[_canon("a")] <= 1.0


# ================================================================= examples
def test_highest_confidence_example() -> None:
    """HighestConfidence: 0.9 beats 0.6 and 0.8, whatever the number of claims."""
    resolution = HighestConfidence().resolve(
        [claim(1, "x", 0.9), claim(2, "y", 0.6), claim(3, "y", 0.8)]
    )
    assert resolution.winners == (1,) and resolution.losers == (2, 3)
    assert resolution.strategy == "highest_confidence"
    assert resolution.margin == pytest.approx(0.1)


def test_highest_confidence_tie_goes_to_smallest_canonical_value() -> None:
    """With equal confidences the smallest canonical JSON wins, in any order."""
    a, b = claim(1, "zebra", 0.7), claim(2, "apple", 0.7)
    assert HighestConfidence().resolve([a, b]).winners == (2,)
    assert HighestConfidence().resolve([b, a]).winners == (2,)


def test_noisy_or_two_agreeing_claims_beat_one_stronger() -> None:
    """NoisyOr: two claims of 0.6 (0.84 combined) beat one claim of 0.8."""
    group = [claim(1, "x", 0.6, "alpha"), claim(2, "x", 0.6, "beta"), claim(3, "y", 0.8, "gamma")]
    resolution = NoisyOr().resolve(group)
    assert resolution.winners == (1, 2) and resolution.losers == (3,)
    assert resolution.scores[_canon("x")] == pytest.approx(0.84)
    assert resolution.scores[_canon("y")] == pytest.approx(0.8)
    assert HighestConfidence().resolve(group).winners == (3,)


def test_weighted_vote_uses_reliability() -> None:
    """WeightedVote: the reliable source's weaker claim beats an unreliable source's stronger one."""
    group = [claim(1, "x", 0.9, "novice"), claim(2, "y", 0.5, "expert")]
    assert WeightedVote().resolve(group).winners == (1,)
    resolution = WeightedVote().resolve(group, {"novice": 0.2, "expert": 1.0})
    assert resolution.winners == (2,)
    assert resolution.scores[_canon("x")] == pytest.approx(0.18)
    assert resolution.scores[_canon("y")] == pytest.approx(0.5)


def test_weighted_vote_own_weights_override_declared_ones() -> None:
    """Weights given to WeightedVote(...) override the sources' declared reliability; others default to 1."""
    group = [claim(1, "x", 0.9, "novice"), claim(2, "y", 0.5, "expert")]
    strategy = WeightedVote({"novice": 0.1})
    assert strategy.resolve(group, {"novice": 5.0, "expert": 1.0}).winners == (2,)
    assert WeightedVote({"expert": 2.0}).resolve(group).winners == (2,)


def test_weighted_vote_sums_agreeing_votes() -> None:
    """WeightedVote adds up agreeing claims: three weak votes beat one strong."""
    group = [claim(1, "x", 0.4), claim(2, "x", 0.4), claim(3, "x", 0.4), claim(4, "y", 1.0)]
    assert WeightedVote().resolve(group).winners == (1, 2, 3)


def test_user_rule_expression() -> None:
    """UserRule with an expression scores each claim by it; a group scores its best claim."""
    rule = UserRule("confidence * (source == 'expert' ? 2 : 1)", name="expert_doubles")
    group = [claim(1, "x", 0.7, "novice"), claim(2, "y", 0.4, "expert")]
    resolution = rule.resolve(group)
    assert resolution.strategy == "expert_doubles"
    assert resolution.winners == (2,) and resolution.losers == (1,)
    assert resolution.scores[_canon("y")] == pytest.approx(0.8)


def test_user_rule_expression_sees_value_fields() -> None:
    """UserRule expressions see the top-level fields of a claim's value."""
    rule = UserRule("votes")
    group = [claim(1, {"votes": 3, "v": "a"}, 0.9), claim(2, {"votes": 7, "v": "b"}, 0.1)]
    assert rule.resolve(group).winners == (2,)


def test_user_rule_callable_returning_entry_or_value() -> None:
    """UserRule with a callable: it gets the claims (sorted) and returns the winning entry or value."""
    seen: list[list[int]] = []

    def choose(ordered: Sequence[Entry]) -> Any:
        seen.append([c.id for c in ordered])
        return "y"

    group = [claim(3, "y", 0.1), claim(1, "x", 0.9), claim(2, "y", 0.2)]
    resolution = UserRule(choose).resolve(group)
    assert resolution.winners == (2, 3) and resolution.losers == (1,)
    assert seen == [[1, 2, 3]]
    by_entry = UserRule(lambda ordered: ordered[0]).resolve(group)
    assert by_entry.winners == (1,)


def test_user_rule_callable_must_choose_a_claimed_value() -> None:
    """A callable choosing a value no claim holds raises ValueError."""
    with pytest.raises(ValueError, match="no claim holds"):
        UserRule(lambda ordered: "nobody").resolve([claim(1, "x", 0.5), claim(2, "y", 0.5)])


def test_user_rule_callable_not_called_for_a_single_value() -> None:
    """With a single value the callable is not consulted: nobody loses."""

    def boom(ordered: Sequence[Entry]) -> Any:
        raise AssertionError("should not be called")

    resolution = UserRule(boom).resolve([claim(1, "x", 0.5), claim(2, "x", 0.1)])
    assert resolution.winners == (1, 2) and resolution.losers == ()


def test_user_rule_refuses_bad_rules() -> None:
    """UserRule refuses an expression that does not parse, and anything not a string or callable."""
    with pytest.raises(PreconditionError):
        UserRule("confidence *")
    with pytest.raises(ConfigurationError):
        UserRule(42)  # type: ignore[arg-type]


def test_single_claim_wins_alone() -> None:
    """One claim wins alone, with every strategy."""
    for strategy in (HighestConfidence(), NoisyOr(), WeightedVote(), UserRule("confidence"), UserRule(_pick_max_id)):
        resolution = strategy.resolve([claim(5, "x", 0.0)])
        assert resolution.winners == (5,) and resolution.losers == ()
        assert math.isinf(resolution.margin) or resolution.margin >= 0
