"""The sudoku domain: knowledge sources propagating constraints on the blackboard."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from blackboard import Blackboard, BlackboardError
from controller import Controller
from knowledge_sources import KnowledgeSource
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
# Same solution; naked singles alone stop after 26 cells, hidden singles finish it.
NEEDS_HIDDEN = "...67..126.21......9.......8..7.........53....1...4.56........4.8..19.3.3..2...7."
TOP95 = Path("/work/shared/data/sudoku/top95.txt")


def _grid(*givens: tuple[str, int]) -> str:
    cells = ["."] * 81
    for key, digit in givens:
        row, col = int(key[1]), int(key[3])
        cells[(row - 1) * 9 + col - 1] = str(digit)
    return "".join(cells)


# Row 1 holds 1-8 and column 9 holds a 9: r1c9 is left without a candidate,
# though no two givens share a unit and a digit.
EMPTY_CELL = _grid(*((f"r1c{c}", c) for c in range(1, 9)), ("r5c9", 9))
# Rows 1 and 2 and columns 1 and 2 see a 5, r3c3 is taken: box 1 has no place for 5.
NO_PLACE = _grid(("r1c4", 5), ("r2c7", 5), ("r4c1", 5), ("r7c2", 5), ("r3c3", 1))


def _run(bb: Blackboard, **options: object) -> None:
    Controller(bb, sources(), concurrency=1, **options).run(  # type: ignore[arg-type]
        goal=lambda view: view.find("contradiction")
    )


# ------------------------------------------------------------------- solving
def test_easy_puzzle_is_solved_in_memory() -> None:
    """An easy puzzle is solved by singles, in memory, and the solution checks."""
    result = solve(EASY)
    assert isinstance(result, SudokuResult)
    assert result.status == "solved" and result.solved
    assert result.solution == EASY_SOLUTION
    assert check(EASY, result.solution)
    assert result.grid == [[int(d) for d in EASY_SOLUTION[r * 9:r * 9 + 9]] for r in range(9)]
    assert result.path == ":memory:"
    assert result.activations > 0 and result.seconds > 0
    assert isinstance(result.run_id, int)
    assert result.contradictions == ()


def test_easy_puzzle_is_solved_on_a_file_and_reopened(tmp_path: Path) -> None:
    """Solved on a file, the run reopens with a digit decided for each of the 81 cells."""
    path = tmp_path / "sudoku.duckdb"
    result = solve(EASY, path)
    assert result.status == "solved"
    assert result.path == str(path)
    with Blackboard(path, run=result.run_id) as bb:
        digits = bb.find("digit")  # agreeing claims (naked and hidden single) may both stand
        assert len({e.key for e in digits}) == 81
        assert all(len({e.value["digit"] for e in digits if e.key == k}) == 1 for k in {e.key for e in digits})
        grid = {e.key: e.value["digit"] for e in digits}
        assert "".join(str(grid[f"r{r}c{c}"]) for r in range(1, 10) for c in range(1, 10)) == EASY_SOLUTION
        assert not bb.find("contradiction")
        assert len(bb.find("cell")) == 81
        assert all(e.value["count"] == 1 for e in bb.find("cell"))
        (logged,) = bb.events("sudoku_result")
        assert logged.details is not None and logged.details["status"] == "solved"


def test_a_file_holds_one_run_per_puzzle(tmp_path: Path) -> None:
    """Solving twice into one file makes two runs."""
    path = tmp_path / "batch.duckdb"
    first = solve(EASY, path)
    second = solve(NEEDS_HIDDEN, path)
    assert first.run_id != second.run_id
    assert first.status == second.status == "solved"


def test_hidden_singles_contribute() -> None:
    """A puzzle naked singles cannot finish is solved with hidden singles."""
    result = solve(NEEDS_HIDDEN)
    assert result.status == "solved"
    assert result.solution == EASY_SOLUTION
    with Blackboard(spaces=spaces()) as bb:
        load(bb, NEEDS_HIDDEN)
        _run(bb)
        by = Counter(e.source for e in bb.find("digit"))
    assert by["hidden_single"] > 0 and by["naked_single"] > 0
    with Blackboard(spaces=spaces()) as bb:
        load(bb, NEEDS_HIDDEN)
        without = [s for s in sources() if s.name != "hidden_single"]
        Controller(bb, without, concurrency=1).run()
        assert len(bb.find("digit")) < 81


def test_hard_puzzle_is_stuck_never_wrong() -> None:
    """A hard puzzle ends stuck (or solved), never with a wrong solution."""
    puzzle = TOP95.read_text().splitlines()[0].strip()
    result = solve(puzzle)
    assert result.status in ("stuck", "solved")
    if result.status == "solved":
        assert result.solution is not None and check(puzzle, result.solution)
    else:
        assert result.solution is None
        assert result.contradictions == ()
    givens = parse(puzzle)
    decided = [d for row in result.grid for d in row]
    assert all(not g or g == d for g, d in zip(givens, decided))


def test_unsolvable_puzzle_has_no_solution() -> None:
    """Givens not directly in conflict that leave a cell empty give no_solution."""
    parse(EMPTY_CELL)  # not directly contradictory
    result = solve(EMPTY_CELL, concurrency=1)  # one at a time: this contradiction is found first
    assert result.status == "no_solution"
    assert result.solution is None
    assert any("r1c9 has no candidate" in reason for reason in result.contradictions)


def test_digit_with_no_place_is_a_contradiction() -> None:
    """A unit where a digit has no place left gives no_solution."""
    parse(NO_PLACE)
    result = solve(NO_PLACE, concurrency=1)  # one at a time: this contradiction is found first
    assert result.status == "no_solution"
    assert any("5 has no place left" in reason for reason in result.contradictions)


def test_duplicate_digits_are_detected() -> None:
    """Two equal decided digits in one row are posted as a contradiction."""
    with Blackboard(spaces=spaces()) as bb:
        load(bb, EASY)
        bb.post("digit", {"row": 1, "col": 3, "box": 1, "digit": 9}, key="r1c3")
        bb.post("digit", {"row": 1, "col": 4, "box": 2, "digit": 9}, key="r1c4")
        _run(bb)
        found = bb.find("contradiction")
        assert [e.value["kind"] for e in found] == ["duplicate"]
        assert found[0].value["unit"] == "row 1"
        assert found[0].value["cells"] == ["r1c3", "r1c4"]
        assert found[0].source == "duplicate_digit"


def test_two_digits_for_one_cell_clash() -> None:
    """Two digits decided for one cell are a clash, even after one lost conflict resolution."""
    for supersede in (False, True):
        with Blackboard(spaces=spaces()) as bb:
            load(bb, EASY)
            first = bb.post("digit", {"row": 1, "col": 3, "box": 1, "digit": 4}, key="r1c3")
            bb.post("digit", {"row": 1, "col": 3, "box": 1, "digit": 1}, key="r1c3")
            if supersede:  # as the controller does to the loser of a slot
                bb.supersede(first, reason="lost conflict resolution")
            _run(bb)
            kinds = {e.value["kind"] for e in bb.find("contradiction")}
            assert "clash" in kinds
            (clash,) = [e for e in bb.find("contradiction") if e.value["kind"] == "clash"]
            assert clash.value["reason"] == "r1c3 was decided as both 1 and 4"


def test_contradictory_givens_are_invalid() -> None:
    """solve() reports givens in conflict as invalid, without running."""
    result = solve(_grid(("r1c1", 4), ("r9c1", 4)))
    assert result.status == "invalid"
    assert result.run_id is None and result.activations == 0
    assert "column 1" in result.contradictions[0]


def test_budget_leaves_the_puzzle_stuck() -> None:
    """A run cut short by a budget is stuck, not wrong."""
    result = solve(EASY, max_activations=10)
    assert result.status == "stuck"
    assert result.activations == 10


def test_concurrency_loses_no_elimination() -> None:
    """With many activations per cycle, clashing revisions are requeued, so the puzzles still solve."""
    for puzzle in (EASY, NEEDS_HIDDEN):
        for concurrency in (1, 4, 16):
            result = solve(puzzle, concurrency=concurrency)
            assert result.status == "solved"
            assert check(puzzle, result.solution)


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
        "candidate_elimination", "naked_single", "hidden_single", "empty_cell", "duplicate_digit",
    }
    assert all(a is not b for a, b in zip(first, second))
    by_name = {s.name: s for s in first}
    assert by_name["naked_single"].when == "count == 1"
    assert by_name["empty_cell"].when == "count == 0"
    assert {s.name for s in spaces()} == {"cell", "digit", "contradiction"}
    assert all(s.fields for s in spaces())
    with Blackboard(spaces=spaces()) as bb:
        Controller(bb, first)  # registration checks every precondition's symbols


def test_load_posts_81_cells_and_declares_spaces() -> None:
    """load() posts one cell per square, declares the spaces, and refuses a second grid."""
    with Blackboard() as bb:
        cells = load(bb, EASY)
        assert len(cells) == 81 and {c.space for c in cells} == {"cell"}
        assert set(bb.spaces) >= {"cell", "digit", "contradiction"}
        r1c1 = bb.find("cell", "r1c1")[0].value
        assert r1c1 == {"row": 1, "col": 1, "box": 1, "digits": [5], "count": 1}
        assert bb.find("cell", "r1c3")[0].value["digits"] == list(range(1, 10))
        assert not bb.find("digit")
        with pytest.raises(SudokuError, match="already"):
            load(bb, EASY)
