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

import duckdb
import pytest

from blackboard import Blackboard, read_runs, verify
from controller import NothingToResumeError, resume
from controller._cli import NOTHING_TO_RESUME
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


def test_resuming_a_finished_run_prints_its_result_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`resume` of a finished run prints solve's JSON again and exits 0, twice, leaving the file as it was."""
    path = tmp_path / "done.duckdb"
    assert cli(["solve", "sudoku", PUZZLE, "--db", str(path), "--json"]) == 0
    solved = json.loads(capsys.readouterr().out)
    events = read_runs(path)[-1]["events"]
    for _ in range(2):
        assert cli(["resume", str(path), "--json"]) == 0
        resumed = json.loads(capsys.readouterr().out)
        assert {k: v for k, v in resumed.items() if k != "seconds"} == {k: v for k, v in solved.items() if k != "seconds"}
    assert read_runs(path)[-1]["events"] == events, "resuming a finished run wrote to it"
    assert verify(path).ok
    assert resume(path).solution == solved["solution"]


def test_a_file_with_no_run_exits_with_its_own_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file holding no run (or none of a known domain) exits 3 with one line; a missing file is bad input (2)."""
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()  # what a process killed as DuckDB created the file could leave
    own = tmp_path / "own.duckdb"
    Blackboard(own, problem={"mine": 1}).close()
    for path, says in [(empty, "holds no run"), (own, "none of a known domain")]:
        with pytest.raises(NothingToResumeError, match=says):
            resume(path)
        assert cli(["resume", str(path)]) == NOTHING_TO_RESUME == 3
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, err
    assert cli(["resume", str(tmp_path / "missing.duckdb")]) == 2
    assert "no such file" in capsys.readouterr().err


# A child that solves through the command line and SIGKILLs itself at a named
# phase: the kill is real (nothing is cleaned up), only its moment is chosen.
PHASE_CHILD = f"""
import os, signal, sys
sys.path.insert(0, {str(ROOT)!r})
from blackboard import Blackboard, _store
from controller import _cli
path, phase, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
calls = {{"n": 0}}
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
def on_nth(original):
    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == nth:
            die()
        return original(*args, **kwargs)
    return wrapper
if phase == "creating":          # schema and run committed under the temporary name, not yet linked
    _store._publish = die
elif phase == "linked":          # linked into place, the temporary name not yet removed
    link = os.link
    os.link = lambda a, b: (link(a, b), die())
elif phase == "mid-run":         # at the nth write of the run
    Blackboard.flush = on_nth(Blackboard.flush)
elif phase == "finishing":       # the run marked finished in the file, its result not yet recorded
    log = Blackboard.log
    Blackboard.log = lambda self, kind, **kw: die() if kind == "sudoku_result" else log(self, kind, **kw)
elif phase == "result-written":  # the result recorded and the file closed, before it is printed
    _cli._print_result = die
sys.exit(_cli.main(["solve", "sudoku", {PUZZLE!r}, "--db", path, "--json"]))
"""


def phase_of(path: Path) -> str:
    """Which phase a killed run's file shows: none, mid-run, finishing or result-written."""
    if not path.exists():
        return "no file"
    (run,) = read_runs(path)
    if run["state"] != "finished":
        return "mid-run"
    with Blackboard(path, run=run["id"], read_only=True) as bb:
        return "result-written" if bb.events("sudoku_result") else "finishing"


def check_resumes(path: Path, expected: dict, capsys: pytest.CaptureFixture[str]) -> None:
    """`blackboard resume F --json` (twice) prints the uninterrupted run's answer; the log verifies."""
    for _ in range(2):
        assert cli(["resume", str(path), "--json"]) == 0
        resumed = json.loads(capsys.readouterr().out)
        assert (resumed["status"], resumed["solution"], resumed["puzzle"]) == (
            expected["status"], expected["solution"], expected["puzzle"])
    assert verify(path).ok


@pytest.mark.slow
def test_kills_in_every_phase_resume_to_the_uninterrupted_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL `blackboard solve sudoku P --db F --json` while creating F, mid-run, finishing, after the
    result: F is absent or resumable, and resume prints the uninterrupted answer."""
    assert cli(["solve", "sudoku", PUZZLE, "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    rng = random.Random(20261206)
    plan = [("creating", 1), ("linked", 1), ("finishing", 1), ("result-written", 1)]
    plan += [("mid-run", n) for n in rng.sample(range(1, 6), 3)]
    seen: dict[str, int] = {}
    for i, (phase, nth) in enumerate(plan):
        path = tmp_path / f"{phase}-{i}.duckdb"
        done = subprocess.run([sys.executable, "-c", PHASE_CHILD, str(path), phase, str(nth)],
                              cwd=ROOT, capture_output=True, check=False)
        if done.returncode == 0:  # the run ended before its nth write: nothing was killed
            continue
        assert done.returncode == -signal.SIGKILL, done.stderr.decode()
        found = phase_of(path)
        seen[found] = seen.get(found, 0) + 1
        if phase in ("creating",):
            assert found == "no file", "a file appeared before its run was recorded"
            assert cli(["resume", str(path), "--json"]) == 2  # no such file: bad input, said so
            capsys.readouterr()
            continue
        assert found == {"linked": "mid-run", "finishing": "finishing", "result-written": "result-written"}.get(phase, found)
        check_resumes(path, expected, capsys)
    print(f"kills by phase: {seen}")  # with -s: the figures of the README's reliability section
    assert {"no file", "mid-run", "finishing", "result-written"} <= set(seen), seen


@pytest.mark.slow
def test_random_kills_of_the_command_always_leave_a_resumable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL the real `blackboard solve ... --db F --json` process at random moments of its whole life:
    every F that exists resumes to the uninterrupted answer."""
    assert cli(["solve", "sudoku", PUZZLE, "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    command = [sys.executable, "-m", "controller._cli", "solve", "sudoku", PUZZLE, "--json"]
    started = time.perf_counter()
    subprocess.run([*command, "--db", str(tmp_path / "timing.duckdb")], cwd=ROOT, capture_output=True, check=True)
    lifetime = time.perf_counter() - started
    rng = random.Random(20261207)
    seen: dict[str, int] = {}
    for i in range(KILLS):
        path = tmp_path / f"random-{i}.duckdb"
        child = subprocess.Popen([*command, "--db", str(path)], cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * lifetime)  # imports take the first part of its life
        child.send_signal(signal.SIGKILL)
        child.wait()
        found = phase_of(path)
        seen[found] = seen.get(found, 0) + 1
        if found != "no file":
            check_resumes(path, expected, capsys)
    print(f"kills by phase: {seen}")  # with -s: the figures of the README's reliability section
    assert sum(n for phase, n in seen.items() if phase != "no file") >= 1, seen
