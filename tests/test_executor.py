"""Executors: actions in the loop, in worker processes or on Ray, same result."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from blackboard import Blackboard, Entry, MissingExtraError, QueryError
from controller import (
    ConfigurationError,
    Controller,
    ExecutorError,
    ProcessExecutor,
    RunResult,
    ViewSnapshot,
    run_batch,
)
from controller._cli import main as cli
from knowledge_sources import (
    KnowledgeSource,
    ReadView,
    alternative,
    fail_context,
    fork,
    knowledge_source,
    post,
    promote_context,
    retract,
    revise,
    sudoku,
)

ROOT = Path(__file__).resolve().parents[1]
TOP95 = sudoku.puzzles("top95")
SPACES = ["number", "tally", "note", "world"]


# ------------------------------------------------------- a synthetic problem
@knowledge_source(watches="number", when="value < 24")
def grow(entry: Entry) -> Any:
    """Two successors of each small number (a sync function: any worker runs it)."""
    yield post("number", entry.value * 2 + 1)
    yield post("number", entry.value * 2 + 2)


class Tally(KnowledgeSource):
    """Counts the numbers it has seen: state that must persist across activations."""

    watches = ("number",)
    writes = ("tally",)

    def __init__(self, **options: Any) -> None:
        self.seen = 0
        super().__init__(**options)

    def action(self, entry: Entry) -> Any:
        self.seen += 1
        return post("tally", {"seen": self.seen, "last": entry.value}, key="count",
                    confidence=min(1.0, 0.05 * self.seen))


@knowledge_source(watches="tally", writes=("note",))
def observe(entry: Entry, view: ReadView) -> Any:
    """Reads the blackboard through its view: every number, the latest tally, entries by id."""
    numbers = sorted(e.value for e in view.find("number"))
    latest = view.latest(entry.id)
    return post("note", {"numbers": len(numbers), "top": numbers[-1], "tally": latest.value["seen"],
                         "same": view.get(entry.id) == entry, "cycle": view.cycle,
                         "tallies": len(view.entries("tally", status=None))}, key=f"n{entry.id}")


@knowledge_source(watches="note", when="tally == 3", writes=("note",))
async def settle(entry: Entry) -> Any:
    """An async action that revises."""
    await anyio.lowlevel.checkpoint()
    return [revise(entry, value={**entry.value, "settled": True}, confidence=0.5)]


@knowledge_source(watches="note", when="tally == 20", writes=("world",))
def suppose(entry: Entry) -> Any:
    """Hypothetical reasoning: two worlds, one will fail."""
    return fork(alternative("even", post("world", {"parity": 0}, key="p")),
                alternative("odd", post("world", {"parity": 1}, key="p"), confidence=0.5))


@knowledge_source(watches="world", writes=("world",))
def judge(entry: Entry, view: ReadView) -> Any:
    """Fails the odd world, promotes the even one (reading the world's view)."""
    seen = view.find("world", "p", context=entry.context)
    if entry.value["parity"]:
        return fail_context(f"odd, {len(seen)} seen")
    return promote_context()


@knowledge_source(watches="note", when="tally == 1", writes=("note",))
def withdraw(entry: Entry) -> Any:
    """A retraction."""
    return retract(entry, "third tally withdrawn")


def problem_sources() -> list[KnowledgeSource]:
    return [grow, Tally(), observe, settle, suppose, judge, withdraw]


def run_problem(executor: Any) -> tuple[RunResult, dict[str, Any]]:
    """Run the synthetic problem on a fresh blackboard; the result and everything it recorded."""
    bb = Blackboard(spaces=SPACES)
    try:
        bb.post("number", 1)
        result = Controller(bb, problem_sources(), executor=executor, seed=1).run()
        return result, recorded(bb)
    finally:
        bb.close()


def recorded(bb: Blackboard) -> dict[str, Any]:
    """Entries (values, confidences, statuses, provenance), events, contexts and activations."""
    return {
        "entries": [tuple(e) for e in bb.entries(status=None)],
        "events": [(e.seq, e.cycle, e.kind, e.entry, e.source, e.activation, e.details) for e in bb.events()],
        "contexts": [tuple(c) for c in bb.contexts()],
        "activations": bb.sql("SELECT id, source, triggers, rating, state, attempts, queued_cycle, cycle, produced "
                              "FROM activations ORDER BY id").to_pylist(),
    }


def outcome(result: RunResult) -> tuple[Any, ...]:
    return result.outcome, result.cycles, result.activations, result.failed, result.obviated, result.contributions


@pytest.fixture(scope="module")
def reference() -> tuple[RunResult, dict[str, Any]]:
    """The synthetic problem run in the event loop: what every executor must reproduce."""
    return run_problem("loop")


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessExecutor]:
    """Two worker processes shared by this module's tests (spawning costs a second or two)."""
    with ProcessExecutor(2) as executor:
        yield executor


@pytest.fixture
def executor(request: pytest.FixtureRequest) -> Iterator[Any]:
    """An executor by name: the module's process pool, or a RayExecutor on the session's local Ray."""
    if request.param == "ray":
        request.getfixturevalue("ray_session")
        from controller import RayExecutor

        with RayExecutor() as ray_executor:
            yield ray_executor
    elif request.param == "process":
        yield request.getfixturevalue("pool")
    else:
        yield request.param


# ------------------------------------------------------------------- tests
def test_the_reference_run_exercises_what_remote_actions_must_reproduce(reference: tuple[RunResult, dict[str, Any]]) -> None:
    """The synthetic problem uses state, views, async actions, revisions, retractions and worlds."""
    result, state = reference
    kinds = {e[2] for e in state["events"]}
    assert {"posted", "revised", "retracted", "superseded", "context_opened", "context_failed", "context_promoted"} <= kinds
    assert result.outcome == "quiescent" and result.failed == 0
    tallies = [e for e in state["entries"] if e[1] == "tally"]
    assert [t[3]["seen"] for t in tallies] == list(range(1, len(tallies) + 1))


@pytest.mark.parametrize("executor", ["loop", "process", "ray"], indirect=True)
def test_the_result_is_the_same_whichever_executor_ran_it(executor: Any, reference: tuple[RunResult, dict[str, Any]]) -> None:
    """Entries (values, confidences, statuses, provenance), events, worlds and activations equal the loop's."""
    result, state = run_problem(executor)
    assert outcome(result) == outcome(reference[0])
    for part in ("entries", "events", "contexts", "activations"):
        assert state[part] == reference[1][part], part


@pytest.mark.parametrize("executor", ["process", "ray"], indirect=True)
def test_a_sudoku_with_worlds_solves_the_same_remotely(executor: Any) -> None:
    """A top95 sudoku (hypotheses, contexts, a view) gives the loop's run entry for entry."""
    boards = []
    for chosen in ("loop", executor):
        states: list[dict[str, Any]] = []
        result = sudoku.solve(TOP95[0], executor=chosen, on_close=lambda bb, states=states: states.append(recorded(bb)))
        boards.append((result.status, result.solution, result.activations, result.contexts, states))
    assert boards[0][0] == "solved"
    assert boards[1] == boards[0]


def test_the_default_executor_is_the_loop_and_adds_nothing(bb: Blackboard) -> None:
    """executor='loop' (default), or a mapping of only 'loop', leaves the controller without an executor."""
    for setting in ("loop", {"*": "loop"}, {"grow": "loop"}):
        assert Controller(bb, [grow], executor=setting)._remote is None
    assert Controller(bb, [grow])._remote is None


@pytest.mark.parametrize("setting", ["threads", 3, None, {"grow": "gpu"}, {1: "loop"}, {"*": object()}])
def test_a_bad_executor_setting_is_refused(bb: Blackboard, setting: Any) -> None:
    """An unknown executor name or type is a ConfigurationError naming the setting."""
    with pytest.raises(ConfigurationError, match="executor"):
        Controller(bb, [grow], executor=setting)


@pytest.mark.parametrize("workers", [0, -1, True, 1.5])
def test_process_executor_checks_its_workers(workers: Any) -> None:
    """ProcessExecutor(workers=...) must be a positive int."""
    with pytest.raises(ConfigurationError, match="workers"):
        ProcessExecutor(workers)


def test_a_snapshot_answers_like_the_live_view() -> None:
    """get, latest, find (every space, key, status and world) and entries agree with ReadView, also once pickled."""
    import pickle

    holder: dict[str, Any] = {}

    def compare(bb: Blackboard) -> None:
        live = ReadView(bb)
        snap = pickle.loads(pickle.dumps(ViewSnapshot.of(live)))
        assert (snap.run_id, snap.cycle) == (live.run_id, live.cycle)
        contexts = [c.id for c in bb.contexts()]
        keys = {e.key for e in bb.entries(status=None)} | {None}
        for status in ("active", "superseded", "retracted", None):
            assert snap.entries(status=status) == live.entries(status=status)
            assert snap.entries("grid", status=status) == live.entries("grid", status=status)
            for context in contexts:
                for key in keys:
                    assert snap.find("grid", key, status=status, context=context) == \
                        live.find("grid", key, status=status, context=context)
        for e in bb.entries(status=None):
            assert snap.get(e.id) == live.get(e.id) and snap.latest(e) == live.latest(e)
        holder["contexts"] = len(contexts)

    sudoku.solve(TOP95[0], on_close=compare)
    assert holder["contexts"] > 10


def test_a_snapshot_refuses_sql_and_says_what_to_do(bb: Blackboard) -> None:
    """view.sql in a remote action raises QueryError telling to run that source in the loop."""
    snap = ViewSnapshot.of(ReadView(bb))
    with pytest.raises(QueryError, match="in the loop"):
        snap.sql("SELECT 1")


@knowledge_source(watches="number", writes=("note",))
def count_by_sql(entry: Entry, view: ReadView) -> Any:
    """Reads with SQL: needs the controller's database."""
    (row,) = view.sql("SELECT count(*) AS n FROM entries").to_pylist()
    return post("note", {"n": row["n"]})


def test_a_source_can_stay_in_the_loop_while_the_rest_runs_remotely(pool: ProcessExecutor) -> None:
    """executor={'*': pool, 'count_by_sql': 'loop'}: the SQL source works; sent remotely it fails and says why."""
    for setting, failed in (({"*": pool, "count_by_sql": "loop"}, 0), (pool, 3)):
        board = Blackboard(spaces=SPACES)
        board.post("number", 20)  # grow (remote) posts 41 and 42; count_by_sql sees all three
        result = Controller(board, [count_by_sql, grow], executor=setting).run()
        assert (result.activations, result.failed) == (4, failed)
        assert len(board.entries("number")) == 3
        errors = [e.details["error"] for e in board.events("activation_failed")]
        assert len(errors) == failed and all("in the loop" in error for error in errors)
        board.close()


@knowledge_source(watches="number", writes=("note",))
def boom(entry: Entry) -> Any:
    """Raises on 2."""
    if entry.value == 2:
        raise ValueError(f"boom on {entry.value}")
    return post("note", {"seen": entry.value})


def test_a_remote_failure_is_recorded_with_its_remote_traceback(pool: ProcessExecutor) -> None:
    """An action raising in a worker process fails its activation with the worker's traceback; the rest applies."""
    board = Blackboard(spaces=SPACES)
    for value in (1, 2, 3):
        board.post("number", value)
    result = Controller(board, [boom], executor=pool).run()
    assert (result.activations, result.failed) == (3, 1)
    (event,) = board.events("activation_failed")
    assert "ValueError: boom on 2" in event.details["error"]
    assert "remote traceback" in event.details["error"] and "in boom" in event.details["error"]
    assert [e.value["seen"] for e in board.entries("note")] == [1, 3]
    board.close()


@knowledge_source(watches="number", writes=("note",), timeout=0.2)
def dawdle(entry: Entry) -> Any:
    """Sleeps far beyond its timeout."""
    import time

    time.sleep(3)
    return post("note", {"late": True})


def test_a_timeout_applies_to_a_process_action(pool: ProcessExecutor) -> None:
    """A remote action past its timeout fails its activation; nothing it would have posted is applied."""
    board = Blackboard(spaces=SPACES)
    board.post("number", 1)
    result = Controller(board, [dawdle], executor=pool).run()
    assert result.failed == 1 and not board.entries("note")
    (event,) = board.events("activation_failed")
    assert "timed out after 0.2 s" in event.details["error"]
    board.close()


def test_a_function_defined_in_a_function_can_be_sent_to_a_process(pool: ProcessExecutor) -> None:
    """Closures (like functions of __main__ or a notebook) travel by value to worker processes."""
    offset = 100

    def shift(entry: Entry) -> Any:
        return post("note", {"shifted": entry.value + offset})

    board = Blackboard(spaces=SPACES)
    board.post("number", 1)
    source = knowledge_source(shift, watches="number", writes=("note",))
    result = Controller(board, [source], executor=pool).run()
    assert result.failed == 0
    assert [e.value for e in board.entries("note")] == [{"shifted": 101}]
    board.close()


def test_a_source_that_cannot_be_pickled_fails_with_a_clear_error(monkeypatch: pytest.MonkeyPatch, pool: ProcessExecutor) -> None:
    """Without cloudpickle a closure cannot travel: the activation fails saying how to fix it."""
    import pickle

    import controller._executor as executor_module

    monkeypatch.setattr(executor_module, "_PICKLER", pickle)

    def local(entry: Entry) -> Any:
        return None

    board = Blackboard(spaces=SPACES)
    board.post("number", 1)
    result = Controller(board, [knowledge_source(local, watches="number")], executor=pool).run()
    assert result.failed == 1
    (event,) = board.events("activation_failed")
    assert "ExecutorError" in event.details["error"] and "install cloudpickle" in event.details["error"]
    board.close()


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import ray` fails, as when the extra is not installed (and no pickler borrowed from it)."""
    import controller._executor as executor_module

    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "cloudpickle", None)
    monkeypatch.setattr(executor_module, "_PICKLER", None)


def test_without_ray_the_ray_options_name_the_extra(no_ray: None, bb: Blackboard, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """executor='ray', RayExecutor(), run_batch(ray=...) and --ray say: pip install 'duckdb-blackboard[ray]'."""
    from controller import RayExecutor

    extra = "pip install 'duckdb-blackboard[ray]'"
    with pytest.raises(MissingExtraError, match=r"duckdb-blackboard\[ray\]") as caught:
        Controller(bb, [grow], executor="ray")
    assert extra in str(caught.value)
    with pytest.raises(MissingExtraError, match=r"duckdb-blackboard\[ray\]"):
        RayExecutor()
    source = tmp_path / "p.txt"
    source.write_text(TOP95[0] + "\n")
    with pytest.raises(MissingExtraError, match=r"duckdb-blackboard\[ray\]"):
        run_batch("sudoku", source, db=tmp_path / "b.duckdb", ray="local")
    assert cli(["batch", "sudoku", str(source), "--db", str(tmp_path / "b.duckdb"), "--ray", "local"]) == 2
    assert extra in capsys.readouterr().err
    assert not (tmp_path / "b.duckdb").exists()


def test_without_ray_the_rest_works(no_ray: None, bb: Blackboard, pool: ProcessExecutor) -> None:
    """Without Ray (nor cloudpickle), the loop and the process executor run as ever."""
    bb.post("number", 1)
    result = Controller(bb, [grow, Tally()], executor={"*": "loop", "grow": pool}).run()
    assert result.failed == 0 and len(bb.entries("number")) == 31


def test_executor_errors_share_the_root() -> None:
    """ExecutorError is a ControllerError and a RuntimeError."""
    from blackboard import BlackboardError

    assert issubclass(ExecutorError, BlackboardError) and issubclass(ExecutorError, RuntimeError)


@knowledge_source(watches="number", writes=("note",))
def crash(entry: Entry) -> Any:
    """Ends its worker process on 1 (as a segfault or the OOM killer would)."""
    if entry.value == 1:
        os._exit(3)
    return post("note", {"survived": entry.value})


def test_a_worker_process_that_dies_fails_its_activation_and_the_pool_recovers() -> None:
    """The activation whose process died fails with ExecutorError; the next run gets a new pool."""
    with ProcessExecutor(1) as own, Blackboard(spaces=SPACES) as board:
        board.post("number", 1)
        assert Controller(board, [crash], executor=own).run().failed == 1
        (event,) = board.events("activation_failed")
        assert "ExecutorError" in event.details["error"] and "died" in event.details["error"]
        board.post("number", 2)
        assert Controller(board, [crash], executor=own).run().failed == 0
        assert [e.value for e in board.entries("note")] == [{"survived": 2}]


def test_an_executor_named_by_a_string_belongs_to_its_controller(bb: Blackboard) -> None:
    """executor='process' makes a pool for this controller, shut down when the controller is collected."""
    bb.post("number", 20)
    controller = Controller(bb, [grow], executor="process")
    assert controller.run().failed == 0 and len(bb.entries("number")) == 3
    (owned,) = controller._remote._owned  # type: ignore[union-attr]
    assert isinstance(owned, ProcessExecutor) and owned._pool is not None
    del controller
    gc.collect()
    assert owned._pool is None


@knowledge_source(watches="number", writes=("note",))
def recount(entry: Entry, view: ReadView) -> Any:
    """Reports the numbers its view shows."""
    return post("note", {"seen": sorted(e.value for e in view.find("number"))})


def test_one_executor_serves_several_blackboards_each_its_own_snapshot(pool: ProcessExecutor) -> None:
    """Two blackboards at the same cycle and event count, one executor: each action sees its own board."""
    boards = [Blackboard(spaces=SPACES) for _ in range(2)]
    for value, board in enumerate(boards):
        board.post("number", value)
    for board in boards + boards[::-1]:
        board.post("number", 10)
        Controller(board, [recount], executor=pool).run()
    assert [[n.value["seen"] for n in board.entries("note")] for board in boards] == \
        [[[0, 10], [0, 10], [0, 10, 10]], [[1, 10], [1, 10], [1, 10, 10]]]
    for board in boards:
        board.close()
