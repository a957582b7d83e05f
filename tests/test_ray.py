"""Ray: stateful actors, remote failures and timeouts, batch runs over a (local) cluster."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from blackboard import Blackboard, Entry, read_runs
from controller import ConfigurationError, Controller, RayExecutor, run_batch
from controller._cli import main as cli
from knowledge_sources import KnowledgeSource, knowledge_source, post, sudoku

pytestmark = pytest.mark.usefixtures("ray_session")

ROOT = Path(__file__).resolve().parents[1]
TOP95 = sudoku.puzzles("top95")
EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
UNSOLVABLE = "12345678." + "." * 8 + "9" + "." * 63
CLASH = "11" + "." * 79


class Counter(KnowledgeSource):
    """Counts its activations: its state must outlive each call."""

    watches = ("number",)
    writes = ("note",)

    def __init__(self, **options: Any) -> None:
        self.calls = 0
        super().__init__(**options)

    def action(self, entry: Entry) -> Any:
        self.calls += 1
        return post("note", {"calls": self.calls, "pid": os.getpid()})


def notes(stateful: bool, rounds: int) -> list[dict[str, Any]]:
    """Run Counter over ``rounds`` runs of one controller, two numbers per run; the notes posted."""
    with Blackboard(spaces=["number", "note"]) as bb, RayExecutor(stateful=stateful) as executor:
        controller = Controller(bb, [Counter()], executor=executor, concurrency=1)
        for i in range(rounds):
            bb.post("number", 2 * i)
            bb.post("number", 2 * i + 1)
            assert controller.run().failed == 0
        return [e.value for e in bb.entries("note")]


def test_a_stateful_source_keeps_its_state_in_one_actor() -> None:
    """A class-declared source lives in one Ray actor: its count goes on across activations and runs."""
    seen = notes(stateful=True, rounds=2)
    assert [n["calls"] for n in seen] == [1, 2, 3, 4]
    assert len({n["pid"] for n in seen}) == 1 and seen[0]["pid"] != os.getpid()


def test_without_actors_each_call_gets_a_fresh_copy() -> None:
    """RayExecutor(stateful=False) runs a class-declared source as tasks, each on a copy as registered."""
    assert [n["calls"] for n in notes(stateful=False, rounds=1)] == [1, 1]


@knowledge_source(watches="number", writes=("note",))
def fragile(entry: Entry) -> Any:
    """Fails on odd numbers."""
    if entry.value % 2:
        raise ArithmeticError(f"odd: {entry.value}")
    return post("note", {"even": entry.value})


def test_a_ray_action_that_raises_fails_its_activation_with_the_remote_traceback() -> None:
    """The remote error and its traceback are recorded; the other activations' contributions apply."""
    with Blackboard(spaces=["number", "note"]) as bb:
        for value in range(4):
            bb.post("number", value)
        result = Controller(bb, [fragile], executor="ray").run()
        assert (result.activations, result.failed) == (4, 2)
        errors = sorted(e.details["error"] for e in bb.events("activation_failed"))
        assert all("ArithmeticError: odd" in error and "remote traceback" in error for error in errors)
        assert "in fragile" in errors[0]
        assert sorted(e.value["even"] for e in bb.entries("note")) == [0, 2]


@knowledge_source(watches="number", writes=("note",), timeout=0.5)
def stuck(entry: Entry) -> Any:
    """Never returns in time."""
    time.sleep(60)
    return post("note", {"late": True})


@knowledge_source(watches="number", writes=("note",), when="value == 2")
def halve(entry: Entry) -> Any:
    """Quick."""
    return post("note", {"half": entry.value // 2})


def test_a_timed_out_ray_task_fails_and_is_cancelled() -> None:
    """A Ray action past its timeout fails its activation, nothing of it applies, and the next run goes on."""
    with Blackboard(spaces=["number", "note"]) as bb, RayExecutor() as executor:
        bb.post("number", 1)
        result = Controller(bb, [stuck], executor=executor).run()
        assert result.failed == 1 and not bb.entries("note")
        (event,) = bb.events("activation_failed")
        assert "timed out after 0.5 s" in event.details["error"]
        bb.post("number", 2)
        assert Controller(bb, [halve], executor=executor).run().failed == 0  # the executor goes on


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def batch_rows(db: Path) -> list[tuple[Any, ...]]:
    """(item, problem, status, activations, entries of its run) per problem of the file."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(
            "SELECT b.item, b.problem, b.status, b.activations, count(e.id) AS entries "
            "FROM bb_batch b LEFT JOIN bb_entry e ON e.run = b.run GROUP BY ALL ORDER BY b.item").fetchall()
    finally:
        con.close()


def test_a_batch_on_ray_gives_what_a_local_batch_gives(tmp_path: Path) -> None:
    """Same statuses, solutions, activations and stored runs per problem, in the same kind of file."""
    source = write(tmp_path / "p.txt", [EASY, *TOP95[:2], UNSOLVABLE, CLASH, "not a puzzle"])
    local = run_batch("sudoku", source, db=tmp_path / "local.duckdb")
    remote = run_batch("sudoku", source, db=tmp_path / "ray.duckdb", ray="local")
    assert remote.counts == local.counts == {"solved": 3, "no_solution": 1, "invalid": 2}
    assert batch_rows(tmp_path / "ray.duckdb") == batch_rows(tmp_path / "local.duckdb")
    by_puzzle = {line["puzzle"]: line for line in local.results}
    for line in remote.results:
        assert line["solution"] == by_puzzle[line["puzzle"]]["solution"]
        assert line["node"]  # solved on a Ray worker, which says where
    assert len(read_runs(tmp_path / "ray.duckdb")) == 4  # the two invalid ones have no run
    again = run_batch("sudoku", source, db=tmp_path / "ray.duckdb", ray="local")
    assert again.skipped == 6 and again.run == 0  # resumable as a local batch


def test_the_batch_command_takes_a_ray_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`blackboard batch sudoku FILE --ray local --json` prints one line per puzzle, as without Ray."""
    source = write(tmp_path / "p.txt", [EASY, TOP95[0]])
    assert cli(["batch", "sudoku", str(source), "--db", str(tmp_path / "b.duckdb"), "--ray", "local", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["status"] for line in lines] == ["solved", "solved"]


@pytest.mark.parametrize("address", ["", 7])
def test_a_bad_ray_address_is_refused(tmp_path: Path, address: Any) -> None:
    """run_batch(ray=...) must be an address string."""
    with pytest.raises(ConfigurationError, match="ray"):
        run_batch("sudoku", write(tmp_path / "p.txt", [EASY]), db=tmp_path / "b.duckdb", ray=address)


def parent(pid: int) -> int:
    """The parent process id of ``pid`` (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def busy_ray_workers() -> list[int]:
    """Pids of this session's Ray workers solving a batch problem now (their title names the task).

    Workers are children of the raylet, a child of this process: other Ray
    clusters on the machine are left alone.
    """
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                title = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::solve_remote") and parent(parent(int(proc.name))) == os.getpid():
                pids.append(int(proc.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's workers through /proc")
def test_a_worker_killed_mid_batch_has_its_problem_re_run_and_nothing_counted_twice(tmp_path: Path) -> None:
    """SIGKILL a Ray worker while it solves: the batch finishes, every problem recorded exactly once."""
    puzzles = [TOP95[i] for i in (0, 1, 2, 4, 8, 10)]  # 0.1 to 0.5 s each
    source = write(tmp_path / "p.txt", puzzles)
    db = tmp_path / "killed.duckdb"
    killed: list[int] = []

    def kill_one(line: dict[str, Any]) -> None:
        for _ in range(200):  # wait for a problem to be running (at most ~10 s)
            if killed:
                return
            busy = busy_ray_workers()
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
                return
            time.sleep(0.05)

    summary = run_batch("sudoku", source, db=db, ray="local", on_result=kill_one)
    assert killed, "no Ray worker was running a problem to kill"
    assert summary.counts == {"solved": len(puzzles)}
    con = duckdb.connect(str(db), read_only=True)
    try:
        items = con.sql("SELECT item, count(*) FROM bb_batch GROUP BY item ORDER BY item").fetchall()
        runs = con.execute("SELECT count(*), count(DISTINCT run) FROM bb_batch").fetchone()
        stored = con.execute("SELECT count(*) FROM bb_run").fetchone()
    finally:
        con.close()
    assert items == [(i, 1) for i in range(len(puzzles))]
    assert runs == (len(puzzles), len(puzzles)) and stored == (len(puzzles),)


class Fragile(KnowledgeSource):
    """A stateful source whose process ends on 1."""

    watches = ("number",)
    writes = ("note",)

    def action(self, entry: Entry) -> Any:
        if entry.value == 1:
            os._exit(3)
        return post("note", {"actor": entry.value})


@knowledge_source(watches="number", writes=("note",))
def crash(entry: Entry) -> Any:
    """Ends its worker on 1."""
    if entry.value == 1:
        os._exit(3)
    return post("note", {"task": entry.value})


@pytest.mark.slow
def test_a_ray_worker_or_actor_that_dies_fails_its_activation_once() -> None:
    """No hidden re-runs of actions: the activation fails with ExecutorError; the next ones get new workers."""
    with Blackboard(spaces=["number", "note"]) as bb, RayExecutor() as executor:
        sources = [Fragile(), crash]
        bb.post("number", 1)
        result = Controller(bb, sources, executor=executor).run()
        assert (result.activations, result.failed) == (2, 2)
        errors = sorted(e.details["error"] for e in bb.events("activation_failed"))
        assert all(error.startswith("ExecutorError") for error in errors)
        assert any("actor holding 'Fragile' died" in error for error in errors)
        bb.post("number", 2)
        assert Controller(bb, sources, executor=executor).run().failed == 0
        assert sorted(map(str, (e.value for e in bb.entries("note")))) == ["{'actor': 2}", "{'task': 2}"]


def test_an_unreachable_ray_address_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no Ray session in this process, a dead address fails before the batch file is created."""
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)

    def refuse(address: str | None = None, **options: Any) -> None:
        raise ConnectionError(f"could not connect to {address}")

    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(ConfigurationError, match="cannot start or reach Ray at 'ray://nowhere:10001'"):
        run_batch("sudoku", write(tmp_path / "p.txt", [EASY]), db=tmp_path / "b.duckdb", ray="ray://nowhere:10001")
    assert not (tmp_path / "b.duckdb").exists()
