"""Durable runs: a run killed at random points resumes with nothing lost or done twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blackboard import Blackboard, read_runs, verify
from controller import NothingToResumeError, resume
from controller._cli import main as cli
from knowledge_sources import sudoku

PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
ROOT = Path(__file__).resolve().parents[1]
CHILD = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from knowledge_sources import sudoku
print("started", flush=True)
sudoku.solve({PUZZLE!r}, path=sys.argv[1], durability=sys.argv[2], concurrency=int(sys.argv[3]))
print("finished", flush=True)
"""
KILLS = int(os.environ.get("BLACKBOARD_KILLS", "10"))


def committed(path: Path) -> dict[int, tuple]:
    """The entries committed in the file: id -> immutable content."""
    runs = read_runs(path)
    if not runs:
        return {}
    with Blackboard(path, run=runs[-1]["id"]) as bb:
        rows = bb.sql("SELECT id, space, key, value, confidence, source, cycle, supports, revises FROM entries").to_pylist()
    return {r["id"]: tuple(r.values()) for r in rows}


def child_seconds(path: Path, durability: str, concurrency: int) -> float:
    """How long an uninterrupted child takes from 'started' to 'finished'."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), durability, str(concurrency)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"started"
    started = time.perf_counter()
    assert child.stdout.readline().strip() == b"finished"
    seconds = time.perf_counter() - started
    child.communicate()
    return seconds


def kill_at_random(path: Path, rng: random.Random, durability: str, concurrency: int,
                   within: float = 0.6) -> bool:
    """Start a solving child, SIGKILL it at a random moment of its run; True if it was killed mid-run."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), durability, str(concurrency)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"started"
    time.sleep(rng.uniform(0.02, 0.95) * within)
    child.send_signal(signal.SIGKILL)
    out = child.communicate()[0]
    return b"finished" not in out


@pytest.mark.slow
@pytest.mark.parametrize("durability", ["cycle", "interval"])
def test_killed_runs_resume_with_nothing_lost_or_repeated(tmp_path: Path, durability: str) -> None:
    """Across seeded random SIGKILLs, resume() finishes the run: committed entries kept, no activation twice, chain intact."""
    rng = random.Random(20261126)
    expected = sudoku.solve(PUZZLE).solution
    within = child_seconds(tmp_path / f"{durability}-timing.duckdb", durability, 1)
    killed = 0
    for attempt in range(3 * KILLS):  # kills that land before the first commit or after the end don't count
        if killed >= KILLS // 2:
            break
        path = tmp_path / f"{durability}-{attempt}.duckdb"
        if not kill_at_random(path, rng, durability, rng.choice([1, 4, 16]), within):
            continue
        if not path.exists() or not read_runs(path) or read_runs(path)[-1]["state"] == "finished":
            continue  # killed before the file held a run, or after it finished: nothing to resume
        killed += 1
        before = committed(path)
        result = resume(path)
        assert result.status == "solved" and result.solution == expected
        after = committed(path)
        assert all(after.get(i) == content for i, content in before.items()), "a committed entry was lost or changed"
        with Blackboard(path, run=result.run_id) as bb:
            keys = bb.sql(
                "SELECT source, triggers, count(*) AS n FROM activations WHERE state = 'done' GROUP BY ALL HAVING n > 1"
            ).to_pylist()
        assert keys == [], f"activations ran twice: {keys}"
        assert verify(path).ok
    assert killed >= KILLS // 4, f"only {killed} of {attempt + 1} kills landed mid-run"


def test_resume_command_prints_the_same_form_as_solve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`blackboard resume PATH --json` prints the object `blackboard solve sudoku ... --json` prints."""
    path = tmp_path / "s.duckdb"
    with Blackboard(path, spaces=sudoku.spaces(), problem={"domain": "sudoku", "puzzle": PUZZLE}) as bb:
        sudoku.load(bb, PUZZLE)  # a run that was started and never ran
    assert cli(["resume", str(path), "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert cli(["solve", "sudoku", PUZZLE, "--json"]) == 0
    solved = json.loads(capsys.readouterr().out)
    assert set(resumed) == set(solved)
    assert resumed["status"] == "solved" and resumed["solution"] == solved["solution"]


def test_nothing_to_resume_is_a_clear_error(tmp_path: Path) -> None:
    """A file whose runs are all finished has nothing to resume; the command exits 2."""
    path = tmp_path / "done.duckdb"
    sudoku.solve(PUZZLE, path=path)
    with pytest.raises(NothingToResumeError, match="no unfinished run"):
        resume(path)
    assert cli(["resume", str(path)]) == 2
