"""Contexts: hypothetical worlds that inherit their parent's entries and add their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from blackboard import Blackboard, StaleEntryError, Status, ValidationError
from controller import Controller
from knowledge_sources import (
    alternative,
    fail_context,
    fork,
    knowledge_source,
    post,
    revise,
)


def test_a_child_sees_its_ancestors_and_shadows_what_it_revises() -> None:
    """A child context sees the parent's entries; its own version of a slot hides the parent's there only."""
    bb = Blackboard()
    grid = bb.post("grid", [1, 2], key="g")
    note = bb.post("note", "root note")
    child = bb.open_context(0, "suppose")
    assert bb.find("grid", "g", context=child.id) == [grid]
    assert note in bb.find("note", context=child.id)
    (mine,) = bb.transact([("revise", grid.id, [9, 2], 1.0, None)], source="s", default_context=child.id)
    assert mine.context == child.id and mine.revises == grid.id
    assert bb.find("grid", "g", context=child.id) == [mine]
    assert bb.find("grid", "g") == [grid] and bb.get(grid.id).status == Status.ACTIVE
    sibling = bb.open_context(0, "other")
    assert bb.find("grid", "g", context=sibling.id) == [grid]


def test_opening_a_context_copies_nothing() -> None:
    """Opening a context adds no entry, whatever the parent holds."""
    bb = Blackboard()
    for i in range(500):
        bb.post("cell", i, key=f"k{i}")
    before = len(bb)
    ctx = bb.open_context(0, "a")
    deeper = bb.open_context(ctx.id, "b")
    assert len(bb) == before
    assert len(bb.find("cell", context=deeper.id)) == 500


def test_a_stale_revision_from_a_child_is_refused() -> None:
    """Revising the parent's version when the child already has its own is stale (the controller requeues it)."""
    bb = Blackboard()
    grid = bb.post("grid", [1], key="g")
    child = bb.open_context(0, "c")
    bb.transact([("revise", grid.id, [2], 1.0, None)], source="s", default_context=child.id)
    with pytest.raises(StaleEntryError):
        bb.transact([("revise", grid.id, [3], 1.0, None)], source="s", default_context=child.id)


def test_failing_a_context_retracts_its_world_and_backtracks() -> None:
    """A failed context retracts what was posted in it and below; a parent whose alternatives all failed fails too."""
    bb = Blackboard()
    bb.post("grid", [0], key="g")
    a = bb.open_context(0, "a")
    a1 = bb.open_context(a.id, "a1", alternatives=2)
    a2 = bb.open_context(a.id, "a2", alternatives=2)
    x = bb.transact([("post", "guess", 1, None, 1.0, None, None)], source="s", default_context=a1.id)[0]
    y = bb.transact([("post", "guess", 2, None, 1.0, None, None)], source="s", default_context=a2.id)[0]
    assert bb.fail_context(a1.id, reason="no candidate") == [a1.id]
    assert bb.get(x.id).status == Status.RETRACTED and bb.get(y.id).status == Status.ACTIVE
    assert bb.context(a.id).status == "open"
    assert set(bb.fail_context(a2.id, reason="no candidate")) == {a2.id, a.id}
    assert bb.exhausted()
    assert [e.kind for e in bb.events() if e.kind.startswith("context_")][-1] == "context_exhausted"
    with pytest.raises(ValidationError):
        bb.open_context(a.id, "under a failed one")
    with pytest.raises(ValidationError):
        bb.fail_context(0, reason="the root cannot fail")


def test_contexts_are_stored_queried_and_reopened(tmp_path: Path) -> None:
    """Contexts persist with the run: SQL sees visible_entries(ctx), a reopened run knows its worlds."""
    path = tmp_path / "c.duckdb"
    with Blackboard(path) as bb:
        base = bb.post("grid", [1], key="g")
        bb.post("fact", "shared")
        ctx = bb.open_context(0, "c", confidence=0.5)
        bb.transact([("revise", base.id, [2], 1.0, None)], source="s", default_context=ctx.id)
        run = bb.run_id
        visible = bb.sql(f"SELECT space, value, context FROM visible_entries({ctx.id}) ORDER BY space").to_pylist()
        assert visible == [{"space": "fact", "value": '"shared"', "context": 0},
                           {"space": "grid", "value": "[2]", "context": ctx.id}]
        assert bb.replay() == {e.id: e for e in bb.entries(status=None)}
    with Blackboard(path, run=run) as bb:
        assert [c.label for c in bb.contexts()] == ["root", "c"]
        assert bb.context(1).confidence == 0.5
        assert bb.find("grid", "g", context=1)[0].value == [2]


def test_sources_fork_and_fail_worlds_through_contributions() -> None:
    """A source forks alternatives, another fails the contradictory ones; the controller prefers deeper worlds."""
    @knowledge_source(watches="question", writes="answer")
    def guess(entry):  # type: ignore[no-untyped-def]
        return fork(*(alternative(f"x={x}", post("answer", x, key="x")) for x in (1, 2, 3)))

    @knowledge_source(watches="answer", writes="answer")
    def check(entry):  # type: ignore[no-untyped-def]
        if entry.value != 2:
            return fail_context(f"{entry.value} is wrong")
        return revise(entry, confidence=0.99)

    bb = Blackboard()
    bb.post("question", "x?")
    result = Controller(bb, [guess, check], contexts="depth_first").run()
    assert result.outcome == "quiescent"
    alive = [e for e in bb.entries("answer") if e.status == Status.ACTIVE]
    assert [(e.value, e.confidence) for e in alive] == [(2, 0.99)]
    assert {c.label: c.status for c in bb.contexts()[1:]} == {"x=1": "failed", "x=2": "open", "x=3": "failed"}
