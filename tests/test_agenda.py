"""The agenda: best rating first, then oldest; never the same activation twice."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from blackboard import Entry
from controller import Activation, Agenda
from knowledge_sources import KnowledgeSource, knowledge_source

PROPERTY = settings(max_examples=60, deadline=None)


def _source(name: str = "src") -> KnowledgeSource:
    return knowledge_source(lambda entry: None, name=name, watches="s")


def _entry(eid: int) -> Entry:
    return Entry(eid, "s", None, eid, 1.0, "active", "user", 0, 0, (), None, 1)


def _activation(aid: int, rating: float, source: KnowledgeSource | None = None, trigger: int | None = None) -> Activation:
    return Activation(aid, source or _source(), (_entry(aid if trigger is None else trigger),), rating, 0)


def test_select_best_rating_first_then_oldest() -> None:
    """select() returns higher ratings first and, among equal ratings, the oldest (lowest id) first."""
    agenda = Agenda()
    for aid, rating in [(1, 0.5), (2, 2.0), (3, 0.5), (4, 2.0), (5, 1.0)]:
        assert agenda.add(_activation(aid, rating))
    assert [a.id for a in agenda] == [2, 4, 5, 1, 3]
    assert [a.id for a in agenda.select(1)] == [2]
    assert [a.id for a in agenda.select(3)] == [4, 5, 1]
    assert [a.id for a in agenda.select(10)] == [3]
    assert agenda.select(1) == [] and not agenda and len(agenda) == 0


def test_iteration_does_not_remove() -> None:
    """Iterating the agenda shows pending activations best first without removing them."""
    agenda = Agenda()
    agenda.add(_activation(1, 0.1))
    agenda.add(_activation(2, 0.9))
    assert [a.id for a in agenda] == [2, 1]
    assert len(agenda) == 2
    assert agenda.pop().id == 2


def test_same_source_and_triggers_never_queued_twice() -> None:
    """An activation with the same (source, trigger ids) is refused, even after the first was selected."""
    agenda = Agenda()
    src = _source("a")
    assert agenda.add(_activation(1, 1.0, src, trigger=7))
    assert not agenda.add(_activation(2, 5.0, src, trigger=7))
    assert len(agenda) == 1
    assert agenda.seen("a", (7,))
    agenda.select(1)
    assert not agenda.add(_activation(3, 1.0, src, trigger=7))
    assert len(agenda) == 0


def test_other_source_or_trigger_is_a_different_activation() -> None:
    """A different source on the same trigger, or the same source on another trigger, is queued."""
    agenda = Agenda()
    assert agenda.add(_activation(1, 1.0, _source("a"), trigger=7))
    assert agenda.add(_activation(2, 1.0, _source("b"), trigger=7))
    assert agenda.add(_activation(3, 1.0, _source("a"), trigger=8))
    assert len(agenda) == 3
    assert not agenda.seen("c", (7,))


def test_new_activation_is_pending() -> None:
    """A new activation is pending, unattempted, knows its trigger; repr names source and state."""
    act = _activation(4, 0.25, _source("named"), trigger=9)
    assert (act.id, act.source.name, act.rating, act.state, act.attempts) == (4, "named", 0.25, "pending", 0)
    assert act.trigger.id == 9 and [t.id for t in act.triggers] == [9]
    assert act.error is None and act.produced == ()
    assert "named" in repr(act) and "pending" in repr(act)


_ratings = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.sampled_from([0.0, 1.0, 2.0]),
    min_size=0, max_size=30,
)


@PROPERTY
@given(ratings=_ratings, k=st.integers(min_value=0, max_value=35))
def test_select_k_returns_the_k_best(ratings: list[float], k: int) -> None:
    """select(k) returns the k best activations (rating desc, then id asc), in that order, and removes them."""
    agenda = Agenda()
    for aid, rating in enumerate(ratings, start=1):
        agenda.add(_activation(aid, rating))
    expected = sorted(range(1, len(ratings) + 1), key=lambda aid: (-ratings[aid - 1], aid))
    chosen = [a.id for a in agenda.select(k)]
    assert chosen == expected[:k]
    assert len(agenda) == len(ratings) - len(chosen)
    assert [a.id for a in agenda] == expected[k:]


@PROPERTY
@given(
    batches=st.lists(st.tuples(_ratings, st.integers(min_value=1, max_value=5)), min_size=1, max_size=5)
)
def test_interleaved_adds_and_selects(batches: list[tuple[list[float], int]]) -> None:
    """Whatever the interleaving of add() and select(), each selection is the best of what is pending."""
    agenda = Agenda()
    pending: dict[int, float] = {}
    next_id = 1
    for ratings, k in batches:
        for rating in ratings:
            agenda.add(_activation(next_id, rating))
            pending[next_id] = rating
            next_id += 1
        expected = sorted(pending, key=lambda aid: (-pending[aid], aid))[:k]
        assert [a.id for a in agenda.select(k)] == expected
        for aid in expected:
            del pending[aid]


@PROPERTY
@given(keys=st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 5)), max_size=40))
def test_never_twice_property(keys: list[tuple[str, int]]) -> None:
    """However often (source, trigger) pairs are offered, each is accepted exactly once."""
    agenda = Agenda()
    sources: dict[str, Any] = {name: _source(name) for name in "abc"}
    accepted = []
    for aid, (name, trigger) in enumerate(keys, start=1):
        if agenda.add(_activation(aid, 1.0, sources[name], trigger=trigger)):
            accepted.append((name, trigger))
    assert sorted(accepted) == sorted(set(keys))
    assert len(agenda) == len(set(keys))
