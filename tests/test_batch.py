"""Batch runs: many problems, worker processes, one DuckDB file, resumable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from blackboard import Blackboard, read_runs
from controller._batch import run_batch
from controller._cli import main as cli
from knowledge_sources import sudoku

ROOT = Path(__file__).resolve().parents[1]
TOP95 = sudoku.puzzles("top95")
EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
UNSOLVABLE = "12345678." + "." * 8 + "9" + "." * 63
CLASH = "11" + "." * 79


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_batch_command_prints_one_json_line_per_puzzle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`blackboard batch sudoku FILE --json`: puzzle, status, solution, seconds, activations per line."""
    source = write(tmp_path / "p.txt", [EASY, TOP95[0], UNSOLVABLE, CLASH, "not a puzzle"])
    db = tmp_path / "batch.duckdb"
    assert cli(["batch", "sudoku", str(source), "--workers", "1", "--db", str(db), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 5
    assert all({"puzzle", "status", "solution", "seconds", "activations"} <= set(line) for line in lines)
    by_puzzle = {line["puzzle"]: line for line in lines}
    assert by_puzzle[EASY]["status"] == "solved" and sudoku.check(EASY, by_puzzle[EASY]["solution"])
    assert by_puzzle[TOP95[0]]["status"] == "solved"
    assert by_puzzle[UNSOLVABLE]["status"] == "no_solution" and by_puzzle[UNSOLVABLE]["solution"] is None
    assert by_puzzle[CLASH]["status"] == "invalid"
    assert by_puzzle["not a puzzle"]["status"] == "invalid"
    con = duckdb.connect(str(db), read_only=True)
    rows = con.sql("SELECT status, count(*) AS n FROM bb_batch GROUP BY ALL ORDER BY status").fetchall()
    entries = con.execute("SELECT count(*) FROM bb_entry e JOIN bb_batch b ON e.run = b.run WHERE b.status = 'solved'").fetchall()[0]
    con.close()
    assert dict(rows) == {"invalid": 2, "no_solution": 1, "solved": 2}
    assert entries[0] > 0  # each problem's whole run is in the file


def test_two_workers_give_the_same_answers(tmp_path: Path) -> None:
    """With two worker processes every run lands in the one file, answers unchanged."""
    source = write(tmp_path / "p.txt", TOP95[:6])
    summary = run_batch("sudoku", source, db=tmp_path / "two.duckdb", workers=2)
    assert summary.counts == {"solved": 6}
    runs = read_runs(tmp_path / "two.duckdb")
    assert len(runs) == 6 and len({r["id"] for r in runs}) == 6
    for line in summary.results:
        with Blackboard(tmp_path / "two.duckdb", run=line["run_id"]) as bb:
            (answer,) = bb.entries("solution")
            assert answer.value["grid"] == line["solution"]


def test_an_interrupted_batch_resumes_without_redoing_finished_problems(tmp_path: Path) -> None:
    """A batch killed part-way, run again, solves only what is left; nothing is counted twice."""
    source = write(tmp_path / "p.txt", TOP95[:8])
    db = tmp_path / "resume.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-m", "controller._cli", "batch", "sudoku", str(source), "--db", str(db), "--json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert child.stdout is not None
    first = [child.stdout.readline() for _ in range(2)]
    child.kill()
    child.communicate()
    assert all(json.loads(line)["status"] == "solved" for line in first)
    summary = run_batch("sudoku", source, db=db, workers=1)
    assert summary.skipped >= 2 and summary.skipped + summary.run == 8
    con = duckdb.connect(str(db), read_only=True)
    items = con.sql("SELECT item, count(*) FROM bb_batch GROUP BY item").fetchall()
    con.close()
    assert sorted(i for i, _ in items) == list(range(8)) and all(n == 1 for _, n in items)


def test_batch_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing input file or a bad worker count is an error naming the problem (exit 2)."""
    assert cli(["batch", "sudoku", str(tmp_path / "missing.txt"), "--db", str(tmp_path / "x.duckdb")]) == 2
    assert "cannot read the puzzle file" in capsys.readouterr().err
    source = write(tmp_path / "p.txt", [EASY])
    assert cli(["batch", "sudoku", str(source), "--workers", "0", "--db", str(tmp_path / "x.duckdb")]) == 2


def test_solve_command_json_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`blackboard solve sudoku PUZZLE` prints the grid or one JSON object; exit 1 when unsolved."""
    assert cli(["solve", "sudoku", EASY, "--db", str(tmp_path / "s.duckdb")]) == 0
    out = capsys.readouterr().out
    assert "solved" in out and "s.duckdb" in out
    assert cli(["solve", "sudoku", UNSOLVABLE, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "no_solution" and data["solution"] is None
    assert cli(["solve", "sudoku", "12"]) == 2
