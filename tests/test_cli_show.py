"""The command line looks inside a run's DuckDB file: show, explain, export."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from blackboard import Blackboard, Space
from controller import Controller, RunResult, explain
from controller._cli import main
from knowledge_sources import knowledge_source, post, tracking

EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOURCE_FIGURES = ("activations", "failed", "obviated", "retries", "contributions", "denied")


def _small_run(path: Path) -> RunResult:
    """A run with three sources: one counting, one failing once, one retried once."""
    calls = {"flaky": 0}

    @knowledge_source(watches="number", when="n < 6")
    def step(entry: Any) -> Any:
        return post("number", {"n": entry.value["n"] + 1})

    @knowledge_source(watches="number", when="n == 3")
    def boom(entry: Any) -> Any:
        raise ValueError(f"boom at {entry.value['n']}\nsecond line of the message")

    @knowledge_source(watches="number", when="n == 2", writes=["fact"], retries=1, backoff=0.0)
    def flaky(entry: Any) -> Any:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("first try fails")
        return post("fact", "two is reached")

    with Blackboard(path, spaces=[Space("number", fields={"n": int}), "fact"]) as bb:
        bb.post("number", {"n": 1})
        return Controller(bb, [step, boom, flaky]).run()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = _run(capsys, *argv, "--json")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1
    return json.loads(out)


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, RunResult]:
    """A file holding the small run, and what the run returned."""
    path = tmp_path / "small.duckdb"
    return path, _small_run(path)


# --------------------------------------------------------------- summary
def test_show_run_json_figures_equal_the_run_result(small: tuple[Path, RunResult],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """show --run --json gives the run's outcome, counts and per-source figures RunResult reported."""
    path, result = small
    data = _json(capsys, "show", path, "--run", result.run_id)
    assert data["run"] == result.run_id and data["outcome"] == result.outcome == "quiescent"
    assert (data["cycles"], data["activations"], data["failed"], data["obviated"], data["contributions"]) == (
        result.cycles, result.activations, result.failed, result.obviated, result.contributions)
    assert data["seconds"] == pytest.approx(result.seconds, abs=1e-5)
    assert data["action_seconds"] == pytest.approx(result.action_seconds, abs=1e-5)
    assert data["controller_seconds"] == pytest.approx(result.controller_seconds, abs=1e-5)
    by_name = {s["source"]: s for s in data["sources"]}
    assert set(by_name) == {"step", "boom", "flaky"}
    for name, stats in result.sources.items():
        assert {f: by_name[name][f] for f in SOURCE_FIGURES} == {f: getattr(stats, f) for f in SOURCE_FIGURES}
        assert by_name[name]["seconds"] == pytest.approx(stats.seconds)
    assert (by_name["step"]["activations"], by_name["step"]["contributions"]) == (5, 5)
    assert (by_name["boom"]["failed"], by_name["flaky"]["retries"], by_name["flaky"]["contributions"]) == (1, 1, 1)
    assert by_name["step"]["mean_seconds"] == pytest.approx(by_name["step"]["seconds"] / 5)
    spaces = {(s["space"], s["status"]): s["n"] for s in data["spaces"]}
    assert spaces == {("number", "active"): 6, ("fact", "active"): 1}


def test_show_run_text_is_an_aligned_summary(small: tuple[Path, RunResult],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The text summary names outcome and times, and its tables are aligned columns."""
    path, result = small
    code, out, err = _run(capsys, "show", path, "--run", result.run_id)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"run {result.run_id} (run-{result.run_id}) in {path}: finished, outcome quiescent"
    assert f"activations {result.activations} (1 failed, 0 obviated), contributions 6" in out
    assert "actions" in out and "controller" in out
    table = lines[lines.index("sources") + 1:lines.index("sources") + 5]
    assert table[0].split() == ["source", "activations", "done", "failed", "obviated", "retries", "denied",
                                "contributions", "total", "s", "mean", "ms"]
    assert len({len(line) for line in table}) == 1  # every row as wide as the heading
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["boom"][1:8] == ["1", "0", "1", "0", "0", "0", "0"]
    assert rows["flaky"][1:8] == ["1", "1", "0", "0", "1", "0", "1"]
    assert rows["step"][1:8] == ["5", "5", "0", "0", "0", "0", "5"]
    entries = lines[lines.index("entries") + 1:]
    assert entries[0].split() == ["space", "status", "entries", "mean", "confidence"]
    assert entries[1].split()[:3] == ["fact", "active", "1"] and entries[2].split()[:3] == ["number", "active", "6"]


def test_show_tracking_run_counts_obviated_activations_as_the_run_did(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On a real tracking run (obviated activations included) every source's figures equal RunResult's."""
    path = tmp_path / "tracking.duckdb"
    scenario = tracking.simulate(3, targets=3, steps=12)
    with Blackboard(path, spaces=tracking.spaces(), problem={"domain": "tracking"}) as bb:
        tracking.load(bb, scenario)
        result = Controller(bb, tracking.sources(), conflict=tracking.conflict_strategies(),
                            rating=tracking.time_order, concurrency=4).run()
    assert result.obviated > 0
    data = _json(capsys, "show", path, "--run", result.run_id)
    by_name = {s["source"]: s for s in data["sources"]}
    for name, stats in result.sources.items():
        if stats.activations or stats.obviated:
            assert {f: by_name[name][f] for f in SOURCE_FIGURES} == {f: getattr(stats, f) for f in SOURCE_FIGURES}
        else:
            assert name not in by_name
    assert data["obviated"] == result.obviated and data["activations"] == result.activations


def test_show_without_run_still_lists_the_runs(small: tuple[Path, RunResult],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """show PATH keeps its runs list, and --json its one object per run per line."""
    path, result = small
    _small_run(path)  # a second run in the same file
    code, out, _ = _run(capsys, "show", path)
    assert code == 0
    assert out.splitlines()[0] == f"{path}: 2 run(s)"
    assert out.splitlines()[1].split()[:5] == ["run", "1", "run-1", "finished", "quiescent"]
    code, out, _ = _run(capsys, "show", path, "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == [1, 2] and rows[0]["activations"] == result.activations


# ---------------------------------------------------------------- agenda
def test_agenda_json_lists_every_activation_in_order(small: tuple[Path, RunResult],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """--agenda --json: each activation with cycle, source, state, triggers, produced and its error."""
    path, result = small
    data = _json(capsys, "show", path, "--run", result.run_id, "--agenda")
    rows = data["activations"]
    assert [r["id"] for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) == result.activations
    with Blackboard(path, run=result.run_id) as bb:
        for r in rows:
            for eid in r["produced"]:
                assert bb.get(eid).source == r["source"]
            assert all(bb.get(t).space == "number" for t in r["triggers"])
    failed = [r for r in rows if r["state"] == "failed"]
    assert [(r["source"], r["error"]) for r in failed] == [("boom", "ValueError: boom at 3")]
    assert "second line of the message" in failed[0]["error_text"] and failed[0]["produced"] == []
    flaky = next(r for r in rows if r["source"] == "flaky")
    assert flaky["attempts"] == 2 and flaky["state"] == "done" and len(flaky["produced"]) == 1
    assert all(r["cycle"] >= r["queued_cycle"] for r in rows)


def test_agenda_text_shows_one_aligned_line_per_activation(small: tuple[Path, RunResult],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--agenda text: a heading, then a line per activation with the error's first line only."""
    path, result = small
    code, out, _ = _run(capsys, "show", path, "--agenda")  # the newest run by default
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"run {result.run_id} in {path}: {result.activations} activation(s), in the order they were queued"
    assert lines[1].split() == ["id", "queued", "cycle", "source", "state", "rating", "ms", "triggers", "produced", "error"]
    body = lines[2:]
    assert len(body) == result.activations
    assert [int(line.split()[0]) for line in body] == list(range(1, len(body) + 1))
    failed = [line for line in body if " failed " in line]
    assert len(failed) == 1 and failed[0].endswith("ValueError: boom at 3")
    assert "second line" not in out
    start = lines[1].index("source")
    assert all(line[start:].split()[0] in {"step", "boom", "flaky"} for line in body)


# --------------------------------------------------------------- explain
def test_explain_and_show_entry_print_the_explanation(small: tuple[Path, RunResult],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """explain PATH ENTRY and show --entry print controller.explain's text and its to_dict as JSON."""
    path, result = small
    with Blackboard(path, run=result.run_id) as bb:
        fact = bb.entries("fact")[0]
        expected = explain(bb, fact)
    code, out, _ = _run(capsys, "explain", path, fact.id, "--run", result.run_id)
    assert code == 0
    assert out == f"run {result.run_id} in {path}\n{expected.text}\n"
    assert "posted by 'flaky'" in out
    assert _run(capsys, "show", path, "--entry", fact.id)[1] == out
    data = _json(capsys, "explain", path, fact.id)
    assert data == json.loads(json.dumps({"path": str(path), "run": result.run_id, **expected.to_dict()}, default=str))
    assert data["posted_by"] == "flaky" and data["activation"]["source"] == "flaky"
    assert _json(capsys, "show", path, "--run", result.run_id, "--entry", fact.id) == data


def test_explain_a_sudoku_solution_from_a_solve_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run made by 'blackboard solve sudoku --db' is shown and its solution explained."""
    path = tmp_path / "sudoku.duckdb"
    code, _, _ = _run(capsys, "solve", "sudoku", EASY, "--db", path)
    assert code == 0
    summary = _json(capsys, "show", path, "--run", 1)
    assert summary["outcome"] == "goal" and summary["failed"] == 0
    assert sum(s["activations"] for s in summary["sources"]) == summary["activations"]
    with duckdb.connect(str(path), read_only=True) as con:
        (solution,) = con.execute("SELECT id FROM bb_entry WHERE space = 'solution'").fetchone()  # type: ignore[misc]
    data = _json(capsys, "explain", path, solution)
    assert data["posted_by"] == "solution" and data["entry"]["space"] == "solution"


# ---------------------------------------------------------------- export
def test_export_csv_writes_the_tables_parquet_does(small: tuple[Path, RunResult], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """export --format csv writes entries, events, activations and run as CSV, row for row the Parquet files."""
    path, result = small
    code, out, _ = _run(capsys, "export", path, tmp_path / "csv", "--run", result.run_id, "--format", "csv")
    assert code == 0
    assert out.splitlines() == [f"{n}: {tmp_path / 'csv' / n}.csv" for n in ("entries", "events", "activations", "run")]
    assert _run(capsys, "export", path, tmp_path / "pq", "--run", result.run_id)[0] == 0
    for name in ("entries", "events", "activations", "run"):
        from_csv = pacsv.read_csv(tmp_path / "csv" / f"{name}.csv")
        from_parquet = pq.read_table(tmp_path / "pq" / f"{name}.parquet")
        assert from_csv.column_names == from_parquet.column_names
        assert from_csv.num_rows == from_parquet.num_rows > 0
        key = "seq" if name == "events" else "id"
        assert from_csv.column(key).to_pylist() == from_parquet.column(key).to_pylist()
    activations = pacsv.read_csv(tmp_path / "csv" / "activations.csv").to_pylist()
    assert len(activations) == result.activations
    assert sorted(a["state"] for a in activations).count("failed") == 1
    with duckdb.connect() as con:
        (n,) = con.execute(f"SELECT count(*) FROM read_csv('{tmp_path / 'csv' / 'entries.csv'}')").fetchone()  # type: ignore[misc]
    assert n == 7


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("argv", [
    ("show", "{path}"), ("show", "{path}", "--run", "1"), ("show", "{path}", "--agenda"),
    ("explain", "{path}", "1"), ("export", "{path}", "{out}", "--run", "1"),
])
def test_missing_file_is_an_error_and_is_not_created(argv: tuple[str, ...], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A path with no file exits 2 with the reason on stderr, and no file appears."""
    path = tmp_path / "absent.duckdb"
    code, out, err = _run(capsys, *(a.format(path=path, out=tmp_path / "out") for a in argv))
    assert (code, out) == (2, "")
    assert err == f"blackboard: error: cannot use {path}: no such file\n"
    assert not path.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "it is empty, not a blackboard"),
    (b'{"format": "json, not duckdb"}\n', "not a DuckDB database"),
    (None, "a DuckDB database of another program (tables: other)"),
])
def test_a_file_that_is_not_a_blackboard_is_refused_untouched(
        content: bytes | None, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        file_hash: Callable[[Path], str]) -> None:
    """An empty file, a text file or another program's DuckDB exit 2 and keep their bytes."""
    path = tmp_path / "other.duckdb"
    if content is None:
        with duckdb.connect(str(path)) as con:
            con.execute("CREATE TABLE other (x INTEGER)")
    else:
        path.write_bytes(content)
    before = file_hash(path)
    for argv in (("show", path), ("show", path, "--run", 1), ("explain", path, 1)):
        code, _, err = _run(capsys, *argv)
        assert code == 2 and reason in err and err.startswith("blackboard: error: ")
    assert file_hash(path) == before


@pytest.mark.parametrize("damage", [
    "cut 2 KiB", "UPDATE bb_activation SET triggers = 'x'", "ALTER TABLE bb_activation DROP COLUMN produced",
], ids=["cut", "activation-triggers", "activation-column"])
def test_a_damaged_file_gives_errors_not_tracebacks(
        damage: str, small: tuple[Path, RunResult], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        file_hash: Callable[[Path], str]) -> None:
    """A file cut short or with damaged activation rows: each form works or exits 2 with a message, untouched."""
    path, _ = small
    if damage.startswith("cut"):
        path.write_bytes(path.read_bytes()[:-2048])
    else:
        with duckdb.connect(str(path)) as con:
            con.execute(damage)
    before = file_hash(path)
    codes = []
    for argv in (("show", path), ("show", path, "--run", 1), ("show", path, "--run", 1, "--json"),
                 ("show", path, "--agenda"), ("show", path, "--agenda", "--json"), ("explain", path, 3),
                 ("export", path, tmp_path / "out", "--run", 1, "--format", "csv")):
        code, _, err = _run(capsys, *argv)
        assert code in (0, 2)
        if code == 2:
            assert err.startswith(f"blackboard: error: cannot use {path}: ") or "export failed" in err
            assert ("damaged" in err or "export failed" in err) and "Traceback" not in err
            assert "blackboard-explain-" not in err  # the temporary copy is never named
        codes.append(code)
    assert 2 in codes  # the damage was met somewhere
    assert file_hash(path) == before


def test_unknown_run_and_entry_are_errors(small: tuple[Path, RunResult], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown run id (show, agenda, explain, export) or entry id exits 2 naming it."""
    path, _ = small
    for argv in (("show", path, "--run", 9), ("show", path, "--run", 9, "--agenda"),
                 ("explain", path, 1, "--run", 9), ("export", path, tmp_path / "x", "--run", 9)):
        code, out, err = _run(capsys, *argv)
        assert (code, out, err) == (2, "", f"blackboard: error: invalid run: no run with id 9 in {path}\n")
    for argv in (("explain", path, 999), ("show", path, "--run", 1, "--entry", 999)):
        code, out, err = _run(capsys, *argv)
        assert (code, out, err) == (2, "", f"blackboard: error: no entry with id 999 in run 1 of {path}\n")


def test_agenda_and_entry_cannot_be_asked_together(small: tuple[Path, RunResult],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """--agenda and --entry are exclusive: argparse refuses with exit status 2."""
    path, _ = small
    with pytest.raises(SystemExit) as stop:
        main(["show", str(path), "--agenda", "--entry", "1"])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_showing_never_changes_the_file(small: tuple[Path, RunResult], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str],
                                        file_hash: Callable[[Path], str]) -> None:
    """Every show, explain and export form leaves the file's bytes as they were, and its hash chain intact."""
    path, _ = small
    before = file_hash(path)
    for argv in (("show", path), ("show", path, "--json"), ("show", path, "--run", 1),
                 ("show", path, "--run", 1, "--json"), ("show", path, "--agenda"),
                 ("show", path, "--agenda", "--json"), ("show", path, "--entry", 2),
                 ("explain", path, 2, "--json"), ("export", path, tmp_path / "e", "--run", 1, "--format", "csv"),
                 ("export", path, tmp_path / "p", "--run", 1), ("show", path, "--run", 9)):
        main([str(a) for a in argv])
    capsys.readouterr()
    assert file_hash(path) == before
    assert not Path(f"{path}.wal").exists()
    code, out, _ = _run(capsys, "verify", path)
    assert code == 0 and "every hash chain intact" in out
