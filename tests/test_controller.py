"""The controller end to end: runs, budgets, failures, concurrency, staleness, conflicts, durability."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import live_state

from blackboard import Blackboard, Entry, Status
from controller import (
    ConfigurationError,
    Controller,
    HighestConfidence,
    NoisyOr,
    RunResult,
    SourceStats,
    UserRule,
    WeightedVote,
)
from knowledge_sources import KnowledgeSource, knowledge_source, post, retract, revise


def relay(limit: int | None = 10, name: str = "relay", **options: Any) -> KnowledgeSource:
    """A source passing a token on: token n posts token n+1 (while n < limit)."""
    when = None if limit is None else f"value < {limit}"

    def action(entry: Entry, view: Any) -> Any:
        return post("token", entry.value + 1)

    return knowledge_source(action, name=name, watches="token", when=when, **options)


def tokens(board: Blackboard) -> list[Any]:
    return sorted(e.value for e in board.entries("token"))


# ================================================================== basics
def test_relay_chain_runs_to_quiescence(any_bb: Blackboard) -> None:
    """A relay chain runs until nothing is left to do; each token supports the previous one."""
    first = any_bb.post("token", 0)
    result = Controller(any_bb, [relay()]).run()
    assert result.outcome == "quiescent" and result.budget is None and not result.solved
    assert tokens(any_bb) == list(range(11))
    assert result.activations == 10 and result.contributions == 10 and result.cycles == 10
    by_value = {e.value: e for e in any_bb.entries("token")}
    assert by_value[1].supports == (first.id,)
    for n in range(1, 11):
        assert by_value[n].supports == (by_value[n - 1].id,)
        assert by_value[n].source == "relay"
    assert any_bb.replay() == live_state(any_bb)


def test_goal_as_rule_string(bb: Blackboard) -> None:
    """A goal expression stops the run as soon as an active entry satisfies it."""
    bb.post("token", 0)
    result = Controller(bb, [relay()]).run(goal="space == 'token' and value >= 5")
    assert result.outcome == "goal" and result.solved
    assert [e.value for e in result.goal_entries] == [5]
    assert max(tokens(bb)) == 5


def test_goal_already_met_before_running(bb: Blackboard) -> None:
    """A goal met by the initial entries ends the run at once, without activations."""
    bb.post("token", 7)
    result = Controller(bb, [relay()]).run(goal="value == 7")
    assert result.outcome == "goal" and result.activations == 0 and result.cycles == 0


def test_goal_as_callable(bb: Blackboard) -> None:
    """A goal callable gets the read view; the entries it returns are the goal entries."""
    bb.post("token", 0)
    calls: list[int] = []

    def reached_three(view: Any) -> list[Entry]:
        calls.append(view.cycle)
        return [e for e in view.find("token") if e.value >= 3]

    result = Controller(bb, [relay()]).run(goal=reached_three)
    assert result.outcome == "goal"
    assert [e.value for e in result.goal_entries] == [3]
    assert calls and calls == sorted(calls)


def test_goal_callable_returning_bool(bb: Blackboard) -> None:
    """A goal callable may return a plain truth value."""
    bb.post("token", 0)
    result = Controller(bb, [relay()]).run(goal=lambda view: len(view.find("token")) >= 4)
    assert result.outcome == "goal" and result.goal_entries == ()
    assert len(tokens(bb)) == 4


def test_unreached_goal_ends_quiescent(bb: Blackboard) -> None:
    """A goal that never holds ends the run as quiescent with no goal entries."""
    bb.post("token", 0)
    result = Controller(bb, [relay(3)]).run(goal="value > 100")
    assert result.outcome == "quiescent" and result.goal_entries == ()


# ================================================================= budgets
@pytest.mark.parametrize(
    ("budget", "name", "check"),
    [
        ({"max_cycles": 3}, "cycles", lambda r: r.cycles == 3),
        ({"max_activations": 4}, "activations", lambda r: r.activations == 4),
        ({"max_seconds": 0}, "seconds", lambda r: r.activations == 0),
        ({"max_seconds": 0.05}, "seconds", lambda r: r.activations > 0),
    ],
    ids=["cycles", "activations", "seconds-zero", "seconds"],
)
def test_budgets_end_the_run(bb: Blackboard, budget: dict[str, Any], name: str, check: Any) -> None:
    """Each budget stops an endless chain with outcome 'budget' naming the budget."""
    bb.post("token", 0)
    result = Controller(bb, [relay(None)]).run(**budget)
    assert result.outcome == "budget" and result.budget == name
    assert check(result)
    assert bb.replay() == live_state(bb)


def test_activation_budget_limits_a_wide_cycle(bb: Blackboard) -> None:
    """max_activations caps the activations even when a cycle could run more at once."""
    for i in range(10):
        bb.post("wide", i)
    src = knowledge_source(lambda e: None, name="noop", watches="wide")
    result = Controller(bb, [src], concurrency=8).run(max_activations=5)
    assert result.outcome == "budget" and result.budget == "activations"
    assert result.activations == 5


def test_run_continues_after_a_budget(bb: Blackboard) -> None:
    """Calling run() again on the same controller continues where the budget stopped it."""
    bb.post("token", 0)
    controller = Controller(bb, [relay(6)])
    assert controller.run(max_cycles=2).outcome == "budget"
    assert tokens(bb) == [0, 1, 2]
    assert controller.run().outcome == "quiescent"
    assert tokens(bb) == list(range(7))


def test_reopened_run_continues_after_a_budget(bb_path: Path) -> None:
    """A run stopped by a budget, reopened from its file, finishes the pending work."""
    with Blackboard(bb_path) as board:
        board.post("token", 0)
        assert Controller(board, [relay(6)]).run(max_cycles=2).outcome == "budget"
        run_id = board.run_id
    with Blackboard(bb_path, run=run_id) as board:
        Controller(board, [relay(6)]).run()
        assert tokens(board) == list(range(7))


# ================================================================ failures
def test_raising_source_does_not_stop_the_run(any_bb: Blackboard) -> None:
    """A source that raises fails its activation (logged with traceback); the others carry on."""

    @knowledge_source(watches="in", writes="out")
    def boom(entry):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"kaboom {entry.value}")

    @knowledge_source(watches="in", writes="out")
    def fine(entry):  # type: ignore[no-untyped-def]
        return post("out", entry.value * 10)

    for i in range(3):
        any_bb.post("in", i)
    result = Controller(any_bb, [boom, fine]).run()
    assert result.outcome == "quiescent"
    assert result.failed == 3 and result.activations == 6
    assert sorted(e.value for e in any_bb.entries("out")) == [0, 10, 20]
    failures = any_bb.events("activation_failed")
    assert len(failures) == 3 and {e.source for e in failures} == {"boom"}
    error = failures[0].details["error"]
    assert "RuntimeError: kaboom" in error and "Traceback" in error
    assert failures[0].details["attempts"] == 1
    rows = any_bb.sql("SELECT source, state, error FROM activations ORDER BY id").to_pylist()
    assert {(r["source"], r["state"]) for r in rows} == {("boom", "failed"), ("fine", "done")}
    assert all("kaboom" in r["error"] for r in rows if r["source"] == "boom")
    assert result.sources["boom"].failed == 3 and result.sources["fine"].contributions == 3


@pytest.mark.parametrize(
    "garbage",
    [42, {"space": "out", "value": 1}, "post", [post("out", 1), 42], (post("out", 1), None)],
    ids=["int", "dict", "str", "list-with-int", "tuple-with-none"],
)
def test_garbage_contribution_fails_the_activation(bb: Blackboard, garbage: Any) -> None:
    """A source returning something that is not a contribution is marked failed and writes nothing."""
    src = knowledge_source(lambda e: garbage, name="garbage", watches="in", writes="out")
    ok = knowledge_source(lambda e: post("out", "ok"), name="ok", watches="in", writes="out")
    bb.post("in", 1)
    result = Controller(bb, [src, ok]).run()
    assert result.failed == 1
    assert [e.value for e in bb.entries("out")] == ["ok"]
    (failure,) = bb.events("activation_failed")
    assert failure.source == "garbage" and "ContributionError" in failure.details["error"]


def test_invalid_contribution_fails_the_activation(bb: Blackboard) -> None:
    """A contribution with an invalid value or confidence fails its activation atomically."""
    src = knowledge_source(
        lambda e: [post("out", "first"), post("out", {1, 2})], name="bad_value", watches="in", writes="out"
    )
    conf = knowledge_source(lambda e: post("out", 1, confidence=3), name="bad_conf", watches="in", writes="out")
    bb.post("in", 1)
    result = Controller(bb, [src, conf]).run()
    assert result.failed == 2
    assert bb.entries("out") == []
    errors = [e.details["error"] for e in bb.events("activation_failed")]
    assert any("ValidationError" in err and "value" in err for err in errors)
    assert any("confidence" in err for err in errors)


@pytest.mark.parametrize("bad", [lambda e: retract(9999), lambda e: revise(9999, value=1), lambda e: retract("x")])
def test_contribution_naming_a_missing_entry_fails_the_activation(bb: Blackboard, bad: Any) -> None:
    """A source retracting or revising an entry that does not exist fails; the run goes on."""
    src = knowledge_source(bad, name="ghost", watches="in")
    ok = knowledge_source(lambda e: post("out", 1), name="ok", watches="in", writes="out")
    bb.post("in", 1)
    result = Controller(bb, [src, ok]).run()
    assert result.failed == 1 and result.outcome == "quiescent"
    assert len(bb.entries("out")) == 1


def test_writing_an_undeclared_space_is_denied(any_bb: Blackboard) -> None:
    """A contribution to a space the source does not declare is not written; a 'denied' event says why."""

    @knowledge_source(watches="in", writes="out")
    def sneaky(entry):  # type: ignore[no-untyped-def]
        return [post("out", "allowed"), post("secret", "forbidden")]

    any_bb.post("in", 1)
    result = Controller(any_bb, [sneaky]).run()
    assert [e.value for e in any_bb.entries("out")] == ["allowed"]
    assert any_bb.entries("secret") == []
    (denied,) = any_bb.events("denied")
    assert denied.source == "sneaky"
    assert denied.details["policy"] == "writes"
    assert "secret" in denied.details["reason"]
    assert result.sources["sneaky"].denied == 1 and result.failed == 0


def test_revising_an_entry_of_an_unwritable_space_is_denied(bb: Blackboard) -> None:
    """Revising or retracting an entry in a space the source may not write is denied."""
    target = bb.post("facts", "keep me")

    @knowledge_source(watches="in", writes="out")
    def vandal(entry):  # type: ignore[no-untyped-def]
        return [revise(target, value="changed"), retract(target)]

    bb.post("in", 1)
    Controller(bb, [vandal]).run()
    assert bb.get(target.id).value == "keep me" and bb.get(target.id).active
    assert len(bb.events("denied")) == 2


# ============================================================ concurrency
@pytest.mark.parametrize("limit", [1, 3, 8])
def test_async_sources_run_concurrently_within_the_limit(bb: Blackboard, limit: int) -> None:
    """Async actions of one cycle overlap, and never more than `concurrency` at once."""
    state = {"now": 0, "max": 0}

    @knowledge_source(watches="job", writes="done")
    async def work(entry):  # type: ignore[no-untyped-def]
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await anyio.sleep(0.02)
        state["now"] -= 1
        return post("done", entry.value)

    for i in range(8):
        bb.post("job", i)
    result = Controller(bb, [work], concurrency=limit).run()
    assert state["max"] == limit
    assert sorted(e.value for e in bb.entries("done")) == list(range(8))
    assert result.cycles == -(-8 // limit)


def test_results_are_applied_in_agenda_order(bb: Blackboard) -> None:
    """Contributions of concurrent actions are applied in agenda order, not completion order."""

    @knowledge_source(watches="job", writes="done")
    async def work(entry):  # type: ignore[no-untyped-def]
        await anyio.sleep(0.005 * (5 - entry.value))
        return post("done", entry.value)

    for i in range(5):
        bb.post("job", i)
    Controller(bb, [work], concurrency=5).run()
    assert [e.value for e in sorted(bb.entries("done"), key=lambda e: e.id)] == [0, 1, 2, 3, 4]


def test_timeout_cancels_a_hanging_action(bb: Blackboard) -> None:
    """An async action exceeding its timeout is cancelled and failed; the run goes on."""

    @knowledge_source(watches="in", writes="out", timeout=0.05)
    async def hang(entry):  # type: ignore[no-untyped-def]
        await anyio.sleep(60)

    @knowledge_source(watches="in", writes="out")
    async def quick(entry):  # type: ignore[no-untyped-def]
        return post("out", "quick")

    bb.post("in", 1)
    result = Controller(bb, [hang, quick]).run()
    assert result.failed == 1 and result.outcome == "quiescent"
    assert [e.value for e in bb.entries("out")] == ["quick"]
    (failure,) = bb.events("activation_failed")
    assert "timed out" in failure.details["error"]
    assert result.seconds < 10


def test_timeout_applies_to_sync_actions_too(bb: Blackboard) -> None:
    """A sync action with a timeout runs in a worker thread and is abandoned when it overruns."""
    import threading

    release = threading.Event()

    def stuck(entry: Entry) -> Any:
        release.wait(5)
        return post("out", "late")

    src = knowledge_source(stuck, name="stuck", watches="in", writes="out", timeout=0.05)
    bb.post("in", 1)
    try:
        result = Controller(bb, [src]).run()
    finally:
        release.set()
    assert result.failed == 1 and bb.entries("out") == []


def test_retries_with_retry_on(bb: Blackboard) -> None:
    """A failing action is retried on the listed exceptions and succeeds within its retries."""
    attempts: list[int] = []

    @knowledge_source(watches="in", writes="out", retries=2, retry_on=ValueError, backoff=0.001)
    async def flaky(entry):  # type: ignore[no-untyped-def]
        attempts.append(1)
        if len(attempts) < 3:
            raise ValueError("not yet")
        return post("out", "finally")

    bb.post("in", 1)
    result = Controller(bb, [flaky], seed=1).run()
    assert len(attempts) == 3 and result.failed == 0
    assert [e.value for e in bb.entries("out")] == ["finally"]
    assert result.sources["flaky"].retries == 2
    assert bb.sql("SELECT attempts, state FROM activations").to_pylist() == [{"attempts": 3, "state": "done"}]


def test_retries_exhausted(bb: Blackboard) -> None:
    """An action failing more often than its retries allow fails after retries+1 attempts."""
    attempts: list[int] = []

    def always(entry: Entry) -> Any:
        attempts.append(1)
        raise ValueError("never")

    src = knowledge_source(always, name="always", watches="in", retries=2, backoff=0.001)
    bb.post("in", 1)
    result = Controller(bb, [src]).run()
    assert len(attempts) == 3 and result.failed == 1
    assert bb.events("activation_failed")[0].details["attempts"] == 3


def test_no_retry_for_exceptions_not_listed(bb: Blackboard) -> None:
    """An exception not in retry_on fails at once, without retrying."""
    attempts: list[int] = []

    @knowledge_source(watches="in", retries=5, retry_on=(KeyError,), backoff=0.001)
    async def picky(entry):  # type: ignore[no-untyped-def]
        attempts.append(1)
        raise ValueError("not retryable")

    bb.post("in", 1)
    result = Controller(bb, [picky]).run()
    assert len(attempts) == 1 and result.failed == 1
    assert result.sources["picky"].retries == 0


# ================================================================ staleness
def _retractor() -> KnowledgeSource:
    return knowledge_source(lambda e: retract(e, "withdrawn"), name="retractor", watches="s", priority=10)


def test_retracted_trigger_obviates_waiting_activation(bb: Blackboard) -> None:
    """An activation whose trigger was retracted before it ran is obviated, not run."""
    calls: list[Any] = []
    late = knowledge_source(lambda e: calls.append(e) or post("out", 1), name="late", watches="s", writes="out")
    x = bb.post("s", 1)
    result = Controller(bb, [_retractor(), late], concurrency=1).run()
    assert calls == [] and bb.entries("out") == []
    assert result.obviated == 1 and result.sources["late"].obviated == 1
    (event,) = bb.events("obviated")
    assert event.source == "late" and event.details["triggers"] == [x.id]
    assert "changed" in event.details["reason"]
    assert bb.sql("SELECT state FROM activations WHERE source = 'late'").column("state").to_pylist() == ["obviated"]


def _reviser() -> KnowledgeSource:
    return knowledge_source(
        lambda e: revise(e, value=e.value + 1), name="reviser", watches="s", when="value == 0", priority=10
    )


def test_revalidate_runs_on_the_revised_trigger(bb: Blackboard) -> None:
    """on_stale='revalidate': a revised trigger whose new version still matches is run on the new version."""
    seen: list[Any] = []
    checker = knowledge_source(
        lambda e: seen.append(e.value) or post("out", e.value), name="checker", watches="s",
        writes="out", when="value >= 0", on_stale="revalidate",
    )
    x = bb.post("s", 0)
    result = Controller(bb, [_reviser(), checker], concurrency=1).run()
    assert seen == [1]
    newest = bb.find("s")[0]
    (event,) = bb.events("revalidated")
    assert event.source == "checker"
    assert event.details == {"triggers": [newest.id], "was": [x.id]}
    assert result.obviated == 0
    assert bb.entries("out")[0].supports == (newest.id,)


def test_revalidate_obviates_when_precondition_fails(bb: Blackboard) -> None:
    """on_stale='revalidate': if the revised trigger no longer matches, the activation is obviated."""
    seen: list[Any] = []
    zero_only = knowledge_source(
        lambda e: seen.append(e.value), name="zero_only", watches="s", when="value == 0",
        on_stale="revalidate",
    )
    bb.post("s", 0)
    result = Controller(bb, [_reviser(), zero_only], concurrency=1).run()
    assert seen == [] and result.obviated == 1
    assert "revalidation failed" in bb.events("obviated")[0].details["reason"]


def test_revalidate_obviates_a_retracted_trigger(bb: Blackboard) -> None:
    """on_stale='revalidate' still obviates an activation whose trigger was retracted."""
    seen: list[Any] = []
    careful = knowledge_source(lambda e: seen.append(e), name="careful", watches="s", on_stale="revalidate")
    bb.post("s", 1)
    result = Controller(bb, [_retractor(), careful], concurrency=1).run()
    assert seen == [] and result.obviated == 1


@pytest.mark.parametrize("retrigger", [True, False])
def test_retrigger_on_revision(bb: Blackboard, retrigger: bool) -> None:
    """retrigger_on_revision=True runs the source again on each revision of an entry it ran on."""
    seen: list[Any] = []
    watcher = knowledge_source(
        lambda e: seen.append(e.value), name="watcher", watches="s", priority=20,
        retrigger_on_revision=retrigger,
    )
    reviser = knowledge_source(
        lambda e: revise(e, value=e.value + 1), name="reviser", watches="s", when="value == 0"
    )
    bb.post("s", 0)
    Controller(bb, [watcher, reviser], concurrency=1).run()
    assert seen == ([0, 1] if retrigger else [0])


def test_revised_events_trigger_sources_that_watch_them(bb: Blackboard) -> None:
    """A source watching 'revised' events runs on each new version."""
    seen: list[Any] = []
    on_rev = knowledge_source(lambda e: seen.append(e.value), name="on_rev", watches="s", events="revised")
    bb.post("s", 0)
    controller = Controller(bb, [on_rev, _reviser()])
    controller.run()
    assert seen == [1]


def test_duplicates_never_queued_twice(bb: Blackboard) -> None:
    """The same source is never queued twice on the same trigger, whatever events name it."""
    calls: list[int] = []
    src = knowledge_source(
        lambda e: calls.append(e.id), name="once", watches="s", events=("posted", "reinstated", "superseded")
    )
    x = bb.post("s", 1)
    bb.supersede(x, reason="test")
    bb.reinstate(x, reason="test")
    controller = Controller(bb, [src])
    result = controller.run()
    assert calls == [x.id] and result.activations == 1
    bb.supersede(x, reason="again")
    bb.reinstate(x, reason="again")
    assert controller.run().activations == 0
    assert calls == [x.id]


def test_unregistered_source_is_not_run(bb: Blackboard) -> None:
    """Activations of a source unregistered before they run are dropped."""
    calls: list[int] = []
    src = knowledge_source(lambda e: calls.append(1), name="gone", watches="s")
    bb.post("s", 1)
    controller = Controller(bb, [src])
    controller.unregister("gone")
    result = controller.run()
    assert calls == [] and result.activations == 0


# =============================================================== conflicts
def _claimer(name: str, value: Any, confidence: float, trigger: str = "q", space: str = "ans", **options: Any) -> KnowledgeSource:
    return knowledge_source(
        lambda e: post(space, value, key="k", confidence=confidence),
        name=name, watches=trigger, writes=space, **options,
    )


def test_conflict_loser_is_superseded_with_reason(any_bb: Blackboard) -> None:
    """Two sources claiming one key with different values: the weaker claim is superseded, with the reason logged."""
    any_bb.post("q", 1)
    Controller(any_bb, [_claimer("strong", "x", 0.9), _claimer("weak", "y", 0.6)]).run()
    (winner,) = any_bb.find("ans", "k")
    assert winner.value == "x" and winner.source == "strong"
    (loser,) = [e for e in any_bb.slot("ans", "k") if e.value == "y"]
    assert loser.status == Status.SUPERSEDED
    event = [e for e in any_bb.events("superseded") if e.entry == loser.id][0]
    assert "lost conflict resolution" in event.details["reason"]
    assert event.details["strategy"] == "highest_confidence"
    assert event.details["by"] == winner.id
    assert set(event.details["scores"]) == {'"x"', '"y"'}
    assert any_bb.replay() == live_state(any_bb)


def test_later_stronger_evidence_reinstates_the_loser(bb: Blackboard) -> None:
    """New, stronger evidence for a losing value reinstates it and supersedes the former winner."""
    bb.post("q", 1)
    controller = Controller(bb, [_claimer("strong", "x", 0.9), _claimer("weak", "y", 0.6)])
    controller.run()
    loser = [e for e in bb.slot("ans", "k") if e.value == "y"][0]
    assert loser.status == Status.SUPERSEDED
    controller.register(_claimer("expert", "y", 0.95, trigger="q2"))
    bb.post("q2", 1)
    controller.run()
    assert bb.get(loser.id).status == Status.ACTIVE
    assert sorted(e.value for e in bb.find("ans", "k")) == ["y", "y"]
    former = [e for e in bb.slot("ans", "k") if e.value == "x"][0]
    assert former.status == Status.SUPERSEDED
    (reinstated,) = bb.events("reinstated")
    assert reinstated.entry == loser.id and "new evidence" in reinstated.details["reason"]
    assert bb.replay() == live_state(bb)


def test_agreeing_claims_both_stay_active(bb: Blackboard) -> None:
    """Claims with equal values agree: nobody is superseded."""
    bb.post("q", 1)
    Controller(bb, [_claimer("a", {"v": 1}, 0.3), _claimer("b", {"v": 1}, 0.9)]).run()
    assert len(bb.find("ans", "k")) == 2
    assert bb.events("superseded") == []


def test_per_space_strategy(bb: Blackboard) -> None:
    """A mapping of space to strategy applies NoisyOr in one space and the default elsewhere."""
    sources = []
    for space in ("combined", "plain"):
        sources += [
            _claimer(f"{space}_a", "x", 0.6, space=space),
            _claimer(f"{space}_b", "x", 0.6, space=space),
            _claimer(f"{space}_c", "y", 0.8, space=space),
        ]
    bb.post("q", 1)
    controller = Controller(bb, sources, conflict={"combined": NoisyOr(), "*": HighestConfidence()})
    assert isinstance(controller.strategy("combined"), NoisyOr)
    assert isinstance(controller.strategy("plain"), HighestConfidence)
    controller.run()
    assert {e.value for e in bb.find("combined", "k")} == {"x"}
    assert {e.value for e in bb.find("plain", "k")} == {"y"}
    strategies = {e.details["strategy"] for e in bb.events("superseded")}
    assert strategies == {"noisy_or", "highest_confidence"}


def test_weighted_vote_uses_declared_reliability(bb: Blackboard) -> None:
    """WeightedVote weighs each claim by its source's declared reliability."""
    bb.post("q", 1)
    sources = [_claimer("novice", "x", 0.9, reliability=0.1), _claimer("expert", "y", 0.5, reliability=1.0)]
    Controller(bb, sources, conflict="weighted_vote").run()
    assert [e.value for e in bb.find("ans", "k")] == ["y"]


def test_user_rule_strategy_end_to_end(bb: Blackboard) -> None:
    """A UserRule expression decides conflicts during a run."""
    bb.post("q", 1)
    sources = [_claimer("expert", "x", 0.4), _claimer("novice", "y", 0.7)]
    rule = UserRule("confidence * (source == 'expert' ? 2 : 1)")
    Controller(bb, sources, conflict=rule).run()
    assert [e.value for e in bb.find("ans", "k")] == ["x"]


def test_conflict_strategy_by_name(bb: Blackboard) -> None:
    """Strategies can be named; unknown names are refused with ConfigurationError."""
    assert isinstance(Controller(bb, conflict="noisy_or").strategy("any"), NoisyOr)
    assert isinstance(Controller(bb, conflict={"a": "weighted_vote"}).strategy("a"), WeightedVote)
    with pytest.raises(ConfigurationError, match="nope"):
        Controller(bb, conflict="nope")
    with pytest.raises(ConfigurationError):
        Controller(bb, conflict=3)  # type: ignore[arg-type]


def test_conflict_outcome_independent_of_completion_order(bb: Blackboard) -> None:
    """Concurrent async claimers finishing in any order give the same winner."""
    winners = set()
    for delays in ((0.0, 0.02), (0.02, 0.0)):
        with Blackboard() as board:

            def make(name: str, value: str, conf: float, delay: float) -> KnowledgeSource:
                async def act(entry: Entry) -> Any:
                    await anyio.sleep(delay)
                    return post("ans", value, key="k", confidence=conf)

                return knowledge_source(act, name=name, watches="q", writes="ans")

            board.post("q", 1)
            Controller(board, [make("a", "x", 0.7, delays[0]), make("b", "y", 0.7, delays[1])]).run()
            winners.add(tuple(e.value for e in board.find("ans", "k")))
    assert winners == {("x",)}


# ======================================================== event loop & async
@pytest.mark.anyio
async def test_sync_run_inside_a_running_event_loop() -> None:
    """run() called from inside a running event loop (a notebook cell) still returns the result."""
    with Blackboard() as board:
        board.post("token", 0)
        result = Controller(board, [relay(5)]).run()
        assert result.outcome == "quiescent"
        assert tokens(board) == list(range(6))


@pytest.mark.anyio
async def test_arun(any_bb: Blackboard) -> None:
    """await arun() runs to completion in the caller's event loop."""
    any_bb.post("token", 0)

    @knowledge_source(watches="token", when="value < 4")
    async def async_relay(entry):  # type: ignore[no-untyped-def]
        await anyio.sleep(0)
        return post("token", entry.value + 1)

    result = await Controller(any_bb, [async_relay]).arun(goal="value == 4")
    assert result.outcome == "goal" and tokens(any_bb) == [0, 1, 2, 3, 4]


def _slow_source(started: list[int]) -> KnowledgeSource:
    @knowledge_source(watches="job", writes="done")
    async def slow(entry):  # type: ignore[no-untyped-def]
        started.append(entry.value)
        await anyio.sleep(0.1 if entry.value < 2 else 30)
        return post("done", entry.value)

    return slow


@pytest.mark.anyio
async def test_cancellation_leaves_the_blackboard_consistent(bb_path: Path) -> None:
    """Cancelling arun() mid-cycle applies nothing of that cycle; the file is flushed and replay equals live."""
    board = Blackboard(bb_path)
    try:
        for i in range(4):
            board.post("job", i)
        started: list[int] = []
        controller = Controller(board, [_slow_source(started)], concurrency=2, durability="end")
        with anyio.move_on_after(0.4) as scope:
            await controller.arun()
        assert scope.cancelled_caught
        assert sorted(started) == [0, 1, 2, 3]
        assert sorted(e.value for e in board.entries("done")) == [0, 1]
        assert board.replay() == live_state(board)
        with Blackboard(bb_path, run=board.run_id) as other:
            assert live_state(other) == live_state(board)
            assert other.events() == board.events()
        run = board.sql("SELECT state, outcome FROM bb_run WHERE id = ?", [board.run_id]).to_pylist()
        assert run == [{"state": "cancelled", "outcome": "cancelled"}]
        assert board.events()[-1].kind == "run_finished"
        assert board.events()[-1].details["outcome"] == "cancelled"
    finally:
        board.close()


@pytest.mark.anyio
async def test_cancelled_activations_are_not_lost(bb: Blackboard) -> None:
    """After a cancelled cycle, the interrupted activations run again on the next arun()."""
    for i in range(4):
        bb.post("job", i)
    started: list[int] = []

    @knowledge_source(watches="job", writes="done")
    async def slow(entry):  # type: ignore[no-untyped-def]
        started.append(entry.value)
        await anyio.sleep(0.1 if len(started) <= 2 else 0.3)
        return post("done", entry.value)

    controller = Controller(bb, [slow], concurrency=2)
    with anyio.move_on_after(0.25):
        await controller.arun()
    assert sorted(started) == [0, 1, 2, 3]
    await controller.arun()
    assert sorted(e.value for e in bb.entries("done")) == [0, 1, 2, 3]


# =============================================================== durability
@pytest.mark.parametrize("mode", ["cycle", "interval", "end"])
def test_durability_modes_persist_the_final_state(bb_path: Path, mode: str) -> None:
    """Every durability mode leaves the finished run fully written to the file (seen by another handle)."""
    board = Blackboard(bb_path)
    try:
        board.post("token", 0)
        result = Controller(board, [relay(8)], durability=mode, flush_interval=0.001).run()
        with Blackboard(bb_path, run=board.run_id) as other:
            assert live_state(other) == live_state(board)
            assert other.events() == board.events()
            assert other.replay() == live_state(board)
            acts = other.sql("SELECT count(*) AS n FROM activations WHERE state = 'done'")
            assert acts.column("n").to_pylist() == [result.activations]
        run_id = board.run_id
    finally:
        board.close()
    with Blackboard(bb_path, run=run_id) as reopened:
        assert tokens(reopened) == list(range(9))
        row = reopened.sql("SELECT state, outcome, cycles, activations, result FROM bb_run WHERE id = ?", [run_id]).to_pylist()[0]
        assert (row["state"], row["outcome"]) == ("finished", "quiescent")
        assert row["cycles"] == result.cycles and row["activations"] == result.activations
        assert json.loads(row["result"])["outcome"] == "quiescent"


def test_cycle_durability_flushes_during_the_run(bb_path: Path) -> None:
    """durability='cycle' writes each cycle: another handle sees earlier tokens while the run goes on."""
    board = Blackboard(bb_path)
    seen_in_file: list[int] = []

    def peek(entry: Entry) -> Any:
        if entry.value == 3:
            with Blackboard(bb_path, run=board.run_id) as other:
                seen_in_file.extend(e.value for e in other.entries("token"))
        return post("token", entry.value + 1) if entry.value < 5 else None

    try:
        board.post("token", 0)
        Controller(board, [knowledge_source(peek, name="peek", watches="token")], durability="cycle").run()
    finally:
        board.close()
    assert seen_in_file == [0, 1, 2, 3]


# ================================================================ results
def test_run_result_fields(bb: Blackboard) -> None:
    """RunResult reports outcome, counts, timings and per-source stats, and serialises to JSON."""
    bb.post("token", 0)
    failing = knowledge_source(lambda e: 1 / 0, name="failing", watches="token", when="value == 2")
    result = Controller(bb, [relay(3), failing]).run(goal="value == 3")
    assert isinstance(result, RunResult)
    assert result.outcome == "goal" and result.solved and result.budget is None
    assert result.run_id == bb.run_id and result.path == ":memory:"
    assert result.cycles == 3 and result.activations == 4
    assert result.failed == 1 and result.obviated == 0 and result.contributions == 3
    assert [e.value for e in result.goal_entries] == [3]
    assert result.seconds >= result.action_seconds >= 0
    assert result.controller_seconds == pytest.approx(result.seconds - result.action_seconds)
    assert set(result.sources) == {"relay", "failing"}
    assert isinstance(result.sources["relay"], SourceStats)
    assert result.sources["relay"].activations == 3 and result.sources["relay"].contributions == 3
    assert result.sources["failing"].failed == 1
    summary = result.to_dict()
    assert json.loads(json.dumps(summary))["outcome"] == "goal"
    assert summary["goal_entries"][0]["value"] == 3 and summary["goal_entries"][0]["status"] == "active"
    assert "goal" in str(result) and "3 cycles" in str(result)
    stored = json.loads(bb.sql("SELECT result FROM bb_run").column("result").to_pylist()[0])
    assert stored["goal_entries"] == [result.goal_entries[0].id]
    assert bb.events()[-1].kind == "run_finished"


def test_rating_expression_orders_the_agenda(bb: Blackboard) -> None:
    """A rating expression decides which activation runs first."""
    order: list[Any] = []
    src = knowledge_source(lambda e: order.append(e.value), name="rec", watches="s")
    for v in (1, 5, 3):
        bb.post("s", v)
    Controller(bb, [src], concurrency=1, rating="value").run()
    assert order == [5, 3, 1]
    order.clear()
    with Blackboard() as other:
        for v in (1, 5, 3):
            other.post("s", v)
        Controller(other, [src], concurrency=1, rating=lambda s, triggers: -triggers[0].value).run()
    assert order == [1, 3, 5]


def test_priority_orders_sources(bb: Blackboard) -> None:
    """With the default rating, a higher priority runs first."""
    order: list[str] = []
    low = knowledge_source(lambda e: order.append("low"), name="low", watches="s")
    high = knowledge_source(lambda e: order.append("high"), name="high", watches="s", priority=5)
    bb.post("s", 1)
    Controller(bb, [low, high], concurrency=1).run()
    assert order == ["high", "low"]


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"durability": "sometimes"}, "durability"),
        ({"flush_interval": 0}, "flush_interval"),
        ({"rating": 5}, "rating"),
    ],
)
def test_bad_controller_settings_refused(bb: Blackboard, kwargs: dict[str, Any], setting: str) -> None:
    """Invalid controller settings raise ConfigurationError naming the setting."""
    with pytest.raises(ConfigurationError, match=setting) as info:
        Controller(bb, **kwargs)
    assert info.value.setting == setting


def test_bad_run_arguments_refused(bb: Blackboard) -> None:
    """Negative budgets and goals of the wrong type are refused before anything runs."""
    controller = Controller(bb, [relay()])
    for kwargs in ({"max_cycles": -1}, {"max_seconds": "1"}, {"max_activations": True}):
        with pytest.raises(ConfigurationError):
            controller.run(**kwargs)
    with pytest.raises(ConfigurationError, match="goal"):
        controller.run(goal=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Controller("not a blackboard")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Controller(bb, ["not a source"])  # type: ignore[list-item]
