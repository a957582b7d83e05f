"""The sudoku domain: propagation by knowledge sources, search through contexts."""

from __future__ import annotations

from pathlib import Path

import pytest

from blackboard import Blackboard, BlackboardError, Status
from controller import Controller
from knowledge_sources import KnowledgeSource, sudoku
from knowledge_sources.sudoku import (
    SudokuError,
    SudokuResult,
    check,
    format_grid,
    load,
    parse,
    solve,
    sources,
    spaces,
)

EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
EASY_SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
TOP95 = sudoku.puzzles("top95")
HARD = TOP95[0]


def _grid(*givens: tuple[str, int]) -> str:
    cells = ["."] * 81
    for key, digit in givens:
        row, col = int(key[1]), int(key[3])
        cells[(row - 1) * 9 + col - 1] = str(digit)
    return "".join(cells)


# Row 1 holds 1-8 and column 9 holds a 9: r1c9 is left without a candidate,
# though no two givens share a unit and a digit.
EMPTY_CELL = _grid(*((f"r1c{c}", c) for c in range(1, 9)), ("r5c9", 9))
# Two solutions are impossible to tell apart by propagation alone, but a grid
# whose every guess fails has none: a 9 is forced in two places of row 1.
NO_PLACE = _grid(("r1c4", 5), ("r2c7", 5), ("r4c1", 5), ("r7c2", 5), ("r3c3", 1))


# ------------------------------------------------------------------- solving
def test_easy_puzzle_is_solved_by_propagation_alone() -> None:
    """An easy puzzle is solved in the root context, without any hypothesis."""
    result = solve(EASY)
    assert isinstance(result, SudokuResult)
    assert result.status == "solved" and result.solution == EASY_SOLUTION
    assert result.contexts == 0 and result.activations > 0
    assert result.path == ":memory:" and result.contradictions == ()


def test_easy_puzzle_is_solved_on_a_file_and_reopened(tmp_path: Path) -> None:
    """Solved on a file, the run reopens with its solution and the grid's history."""
    path = tmp_path / "sudoku.duckdb"
    result = solve(EASY, path)
    assert result.status == "solved" and result.path == str(path)
    with Blackboard(path, run=result.run_id) as bb:
        (answer,) = bb.find("solution", "solution")
        assert answer.value["grid"] == EASY_SOLUTION
        versions = bb.find("grid", "grid", status=None)
        assert len(versions) > 3 and [e.status for e in versions].count(Status.ACTIVE) == 1
        rows = bb.sql("SELECT source, count(*) AS n FROM entries WHERE space = 'grid' GROUP BY ALL").to_pylist()
        assert {r["source"] for r in rows} >= {"puzzle", "candidate_elimination", "naked_single"}


def test_a_file_holds_one_run_per_puzzle(tmp_path: Path) -> None:
    """Each solve() on the same file is a run of its own."""
    path = tmp_path / "many.duckdb"
    first, second = solve(EASY, path), solve(HARD, path)
    assert first.run_id != second.run_id
    with Blackboard(path, run=second.run_id) as bb:
        (answer,) = bb.entries("solution")  # posted in the promoted context
        assert answer.value["grid"] == second.solution
        assert bb.context(answer.context).status == "promoted"


def test_hard_puzzle_is_solved_through_contexts() -> None:
    """A top95 puzzle needs hypotheses: contexts are opened, refuted ones retracted, the right one promoted."""
    with Blackboard(spaces=spaces()) as bb:
        load(bb, HARD)
        result = Controller(bb, sources(), concurrency=1, contexts="fewest_alternatives").run(
            goal=lambda view: view.entries("solution"))
        assert result.outcome == "goal"
        (answer,) = bb.entries("solution")
        assert check(HARD, answer.value["grid"])
        statuses = {c.status for c in bb.contexts()[1:]}
        assert statuses >= {"failed", "promoted"}
        failed = [c.id for c in bb.contexts("failed")]
        in_failed = [e for e in bb.entries(status=None) if e.context in failed]
        assert in_failed and not any(e.status == Status.ACTIVE for e in in_failed)
        assert any(e.status == Status.RETRACTED for e in in_failed)
        (winner,) = bb.contexts("promoted")
        assert answer.context == winner.id
        visible = bb.sql(f"SELECT id FROM visible_entries({winner.id}) WHERE space = 'solution'").to_pylist()
        assert [r["id"] for r in visible] == [answer.id]


@pytest.mark.slow
def test_every_top95_puzzle_is_solved_correctly() -> None:
    """All 95 hard puzzles are solved, each answer checked against the rules."""
    for puzzle in TOP95:
        result = solve(puzzle)
        assert result.status == "solved", puzzle
        assert check(puzzle, result.solution), puzzle


def test_unsolvable_puzzles_have_no_solution() -> None:
    """A puzzle with no solution ends no_solution, by a root contradiction or by refuting every world."""
    for puzzle in (EMPTY_CELL, NO_PLACE):
        result = solve(puzzle)
        assert result.status == "no_solution" and result.solution is None
        assert result.contradictions


def test_contradictory_givens_are_invalid() -> None:
    """Givens that clash give status 'invalid' without running anything."""
    result = solve(_grid(("r1c1", 4), ("r1c2", 4)))
    assert result.status == "invalid" and result.run_id is None
    assert "row 1" in result.contradictions[0]


def test_budget_leaves_the_puzzle_stuck() -> None:
    """A run cut short by a budget is stuck, not wrong."""
    result = solve(HARD, max_activations=10)
    assert result.status == "stuck" and result.solution is None


@pytest.mark.parametrize("concurrency", [1, 4, 16])
def test_any_concurrency_gives_the_right_answer(concurrency: int) -> None:
    """More activations per cycle (clashing revisions are requeued) never changes the answer."""
    result = solve(HARD, concurrency=concurrency)
    assert result.status == "solved" and check(HARD, result.solution)


def test_to_json_has_the_command_line_fields() -> None:
    """The JSON form has puzzle, status, solution, seconds and activations."""
    data = solve(EASY).to_json()
    assert {"puzzle", "status", "solution", "seconds", "activations"} <= set(data)
    assert data["solution"] == EASY_SOLUTION


# --------------------------------------------------------------------- parse
def test_parse_reads_digits_dots_zeros_and_whitespace() -> None:
    """parse() maps '.' and '0' to 0 and ignores whitespace."""
    text = "\n".join(EASY[r * 9:r * 9 + 9].replace(".", "0") for r in range(9))
    cells = parse("  " + text + "\n")
    assert cells == parse(EASY)
    assert len(cells) == 81 and cells[:3] == [5, 3, 0]


@pytest.mark.parametrize("text", [EASY[:80], EASY + "1", ""])
def test_parse_refuses_a_wrong_length(text: str) -> None:
    """A puzzle without exactly 81 cells raises SudokuError."""
    with pytest.raises(SudokuError, match="81"):
        parse(text)


def test_parse_names_a_bad_character_and_its_position() -> None:
    """A bad character is named with its position, row and column."""
    text = EASY[:12] + "x" + EASY[13:]
    with pytest.raises(SudokuError) as info:
        parse(text)
    assert info.value.position == 12
    assert "'x'" in str(info.value) and "position 12" in str(info.value)
    assert "row 2, column 4" in str(info.value)
    assert isinstance(info.value, BlackboardError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("givens", "unit"),
    [
        ((("r1c1", 7), ("r1c9", 7)), "row 1"),
        ((("r2c5", 3), ("r8c5", 3)), "column 5"),
        ((("r4c4", 6), ("r6c6", 6)), "box 5"),
    ],
)
def test_parse_refuses_contradictory_givens(givens: tuple[tuple[str, int], ...], unit: str) -> None:
    """Two equal givens in one row, column or box raise SudokuError."""
    with pytest.raises(SudokuError, match=unit) as info:
        parse(_grid(*givens))
    second = givens[1][0]
    assert info.value.position == (int(second[1]) - 1) * 9 + int(second[3]) - 1


def test_solve_raises_on_a_malformed_puzzle() -> None:
    """solve() raises SudokuError for text that is not a puzzle."""
    with pytest.raises(SudokuError):
        solve("123")


# ------------------------------------------------------------------ helpers
def test_check_accepts_only_valid_grids_keeping_the_givens() -> None:
    """check() wants a full valid grid that keeps every given."""
    assert check(EASY, EASY_SOLUTION)
    assert not check(EASY, EASY_SOLUTION[:80] + ".")
    swapped = EASY_SOLUTION[1] + EASY_SOLUTION[0] + EASY_SOLUTION[2:]
    assert not check(EASY, swapped)  # changes the givens 5 and 3
    assert not check(EASY, "123456789" * 9)
    assert not check(EASY, "not a grid")
    assert not check(EASY, None)
    assert check("." * 81, EASY_SOLUTION)


def test_format_grid_draws_nine_rows_and_box_rules() -> None:
    """format_grid() shows 9 rows of 9 cells with boxes ruled off."""
    text = format_grid(EASY)
    lines = text.splitlines()
    assert len(lines) == 11
    assert lines[0] == "5 3 . | . 7 . | . . ."
    assert lines[3] == "------+-------+------"
    assert format_grid(EASY_SOLUTION).count("|") == 18


def test_sources_are_fresh_and_declared_with_rules() -> None:
    """sources() returns new KnowledgeSource objects whose rules check against the spaces."""
    first, second = sources(), sources()
    assert all(isinstance(s, KnowledgeSource) for s in first)
    assert {s.name for s in first} == {
        "contradiction", "solution", "candidate_elimination", "naked_single", "hidden_single", "hypothesis",
    }
    assert all(a is not b for a, b in zip(first, second))
    assert {s.name for s in spaces()} == {"grid", "contradiction", "solution"}
    with Blackboard(spaces=spaces()) as bb:
        Controller(bb, first)  # registration checks every precondition's symbols


def test_load_posts_the_grid_and_refuses_a_second() -> None:
    """load() posts one grid entry in the root context and refuses a second grid."""
    with Blackboard() as bb:
        grid = load(bb, EASY)
        assert grid.space == "grid" and grid.context == 0
        assert grid.value["digits"][:3] == [5, 3, 0] and grid.value["open"] == 51
        with pytest.raises(SudokuError, match="already"):
            load(bb, EASY)
    with Blackboard(spaces=["other"]) as bb:  # declared spaces get the sudoku ones added
        load(bb, EASY)
        assert set(bb.spaces) >= {"other", "grid", "contradiction", "solution"}
