"""Domain plots: a sudoku board and its search tree, tracking truth against tracks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle

from blackboard import Blackboard, BlackboardError, MissingExtraError
from knowledge_sources import sudoku, tracking

matplotlib.use("Agg")  # no window: figures are drawn to memory and saved

EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
EASY_SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
# the first of the top95 puzzles: propagation alone cannot solve it, it needs hypotheses
HARD = "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"
BLACK, BLUE, ORANGE = to_hex("black"), to_hex("tab:blue"), to_hex("tab:orange")


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    """Every figure a test made is closed after it."""
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def hard_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, sudoku.SudokuResult]:
    """A hard puzzle solved on a file, with hypothetical worlds."""
    path = tmp_path_factory.mktemp("sudoku") / "hard.duckdb"
    result = sudoku.solve(HARD, path)
    assert result.solved and result.contexts > 1
    return path, result


@pytest.fixture(scope="module")
def tracking_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tracking.Scenario, tracking.TrackingResult]:
    """A small tracking scenario solved on a file."""
    path = tmp_path_factory.mktemp("tracking") / "tracks.duckdb"
    scenario = tracking.simulate(3, targets=3, steps=14)
    result = tracking.solve(scenario, path)
    assert result.tracks
    return path, scenario, result


def _cells(ax: Any) -> dict[str, tuple[str, str, str]]:
    """The board's cell texts by key: (digit, colour, weight)."""
    return {t.get_gid(): (t.get_text(), to_hex(t.get_color()), str(t.get_fontweight()))
            for t in ax.texts if t.get_gid()}


def _saved(ax: Any, path: Path) -> Path:
    ax.figure.savefig(path, dpi=60)
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


# ------------------------------------------------------------------- sudoku
def test_board_of_a_puzzle_shows_its_givens_bold_and_empty_cells_empty(tmp_path: Path) -> None:
    """A puzzle string: 81 cell texts, the givens bold black, the others empty; 3x3 boxes ruled thick."""
    ax = sudoku.plot_board(EASY)
    cells = _cells(ax)
    assert list(cells) == list(sudoku.KEYS)
    for key, ch in zip(sudoku.KEYS, EASY):
        text, colour, weight = cells[key]
        if ch == ".":
            assert text == ""
        else:
            assert (text, colour, weight) == (ch, BLACK, "bold")
    widths = sorted(line.get_linewidth() for line in ax.lines)
    assert widths == [0.5] * 12 + [2.0] * 8
    assert ax.get_title() == "puzzle" and ax.get_legend() is None
    _saved(ax, tmp_path / "puzzle.png")


def test_board_of_a_result_shows_derived_digits_blue(tmp_path: Path) -> None:
    """A solved result: its solution in every cell, givens bold black, the rest blue; drawn on the axes given."""
    result = sudoku.solve(EASY)
    _, given_ax = plt.subplots()
    ax = sudoku.plot_board(result, ax=given_ax, title="easy")
    assert ax is given_ax and ax.get_title() == "easy"
    cells = _cells(ax)
    assert "".join(cells[k][0] for k in sudoku.KEYS) == EASY_SOLUTION
    for key, ch in zip(sudoku.KEYS, EASY):
        assert cells[key][1:] == ((BLACK, "bold") if ch != "." else (BLUE, "normal"))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["given", "derived"]
    _saved(ax, tmp_path / "result.png")


def test_board_of_a_blackboard_shows_guessed_digits_orange(hard_run: tuple[Path, sudoku.SudokuResult],
                                                           tmp_path: Path) -> None:
    """A blackboard: root digits blue, the promoted world's own digits orange, its hypotheses shaded."""
    path, result = hard_run
    with Blackboard(path, run=result.run_id) as bb:
        (promoted,) = bb.contexts("promoted")
        root = bb.find("grid", "grid")[-1].value["digits"]
        ax = sudoku.plot_board(bb)
    cells = _cells(ax)
    assert "".join(cells[k][0] for k in sudoku.KEYS) == result.solution
    colours = {key: colour for key, (_, colour, _) in cells.items()}
    for i, key in enumerate(sudoku.KEYS):
        if HARD[i] != ".":
            assert cells[key][1:] == (BLACK, "bold")
        elif root[i]:
            assert colours[key] == BLUE and cells[key][0] == str(root[i])
        else:
            assert colours[key] == ORANGE
    assert list(colours.values()).count(ORANGE) > 0
    shaded = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(shaded) == promoted.depth  # one supposed cell per hypothesis on the way
    assert ax.get_title() == f"run {result.run_id}, context {promoted.id} (promoted)"
    png = _saved(ax, tmp_path / "hard.png")
    assert png.exists()


def test_board_of_the_root_or_a_failed_world(hard_run: tuple[Path, sudoku.SudokuResult]) -> None:
    """context=0 shows what propagation alone found; a failed world shows its own (refuted) digits."""
    path, result = hard_run
    with Blackboard(path, run=result.run_id) as bb:
        root = bb.find("grid", "grid")[-1].value["digits"]
        failed = bb.contexts("failed")[0]
        root_ax = sudoku.plot_board(bb, context=0)
        failed_ax = sudoku.plot_board(bb, context=failed.id)
    cells = _cells(root_ax)
    assert [cells[k][0] for k in sudoku.KEYS] == [str(d) if d else "" for d in root]
    assert ORANGE not in {c[1] for c in cells.values()}
    assert ORANGE in {c[1] for c in _cells(failed_ax).values()}
    assert "(failed)" in failed_ax.get_title()


def test_board_refuses_what_it_cannot_draw(bb: Blackboard) -> None:
    """A malformed puzzle, a context without a blackboard, a run without a grid: SudokuError."""
    with pytest.raises(sudoku.SudokuError, match="bad character"):
        sudoku.plot_board("x" * 81)
    with pytest.raises(sudoku.SudokuError, match="needs a Blackboard"):
        sudoku.plot_board(EASY, context=1)
    with pytest.raises(sudoku.SudokuError, match="holds no sudoku grid"):
        sudoku.plot_board(bb)
    with pytest.raises(sudoku.SudokuError, match="draws a Blackboard"):
        sudoku.plot_search(EASY)  # type: ignore[arg-type]


def test_search_tree_marks_failed_and_promoted_worlds(hard_run: tuple[Path, sudoku.SudokuResult],
                                                      tmp_path: Path) -> None:
    """plot_search: one marker per context by status, one edge per non-root context, labelled axes."""
    path, result = hard_run
    with Blackboard(path, run=result.run_id) as bb:
        contexts = bb.contexts()
        ax = sudoku.plot_search(bb)
    markers = {c.get_gid(): c.get_offsets() for c in ax.collections}
    for status in ("open", "failed", "promoted"):
        chosen = [c for c in contexts if c.status == status]
        assert sorted(map(tuple, markers[status].tolist())) == sorted((c.id, c.depth) for c in chosen)
    assert len(markers["failed"]) > 0 and len(markers["promoted"]) == 1
    assert len(ax.lines) == len(contexts) - 1 == result.contexts
    assert ax.get_xlabel() == "context, in the order opened" and ax.get_ylabel() == "depth (hypotheses made)"
    assert ax.yaxis_inverted()
    _saved(ax, tmp_path / "search.png")


# ----------------------------------------------------------------- tracking
def _lines(ax: Any, gid: str) -> list[Any]:
    return [line for line in ax.lines if line.get_gid() == gid]


def test_tracks_of_a_result_on_a_file(tracking_run: tuple[Path, tracking.Scenario, tracking.TrackingResult],
                                      tmp_path: Path) -> None:
    """A result solved on a file: one truth line per target, one line per track, readings per sensor."""
    _, scenario, result = tracking_run
    ax = tracking.plot_tracks(result)
    truth = _lines(ax, "truth")
    tracks = _lines(ax, "track")
    assert len(truth) == scenario.targets and len(tracks) == len(result.tracks)
    for line, target in zip(truth, scenario.truth):
        assert list(line.get_xdata()) == [p[1] for p in target] and line.get_linestyle() == "--"
    for line, track in zip(tracks, result.tracks):
        assert list(zip(line.get_xdata(), line.get_ydata())) == [(p[1], p[2]) for p in track.points]
    readings = [c for c in ax.collections if c.get_gid() == "readings"]
    assert len(readings) == len(scenario.sensors)
    assert sum(len(c.get_offsets()) for c in readings) == len(scenario.readings)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "y")
    assert ax.get_xlim() == (0.0, scenario.area[0])
    assert ax.get_title() == f"scenario {scenario.name}: {len(result.tracks)} tracks for {scenario.targets} targets"
    _saved(ax, tmp_path / "tracks.png")


def test_tracks_of_a_blackboard(tracking_run: tuple[Path, tracking.Scenario, tracking.TrackingResult]) -> None:
    """A blackboard holding the run: the tracks read off it, the scenario from its problem."""
    path, scenario, result = tracking_run
    with Blackboard(path, run=result.run_id) as bb:
        expected = tracking.tracks_on(bb, scenario.steps)
        ax = tracking.plot_tracks(bb, readings=False)
    assert expected == result.tracks
    assert len(_lines(ax, "track")) == len(expected) and len(_lines(ax, "truth")) == scenario.targets
    assert not ax.collections


def test_tracks_of_a_result_in_memory_need_its_scenario() -> None:
    """Solved in memory, a result has no scenario: TrackingError, unless scenario= is given or layers are off."""
    scenario = tracking.simulate(5, targets=2, steps=10)
    result = tracking.solve(scenario)
    with pytest.raises(tracking.TrackingError, match="pass scenario="):
        tracking.plot_tracks(result)
    ax = tracking.plot_tracks(result, scenario=scenario)
    assert len(_lines(ax, "truth")) == 2 and len(_lines(ax, "track")) == len(result.tracks)
    bare = tracking.plot_tracks(result, truth=False, readings=False)
    assert not _lines(bare, "truth") and not bare.collections
    assert len(_lines(bare, "track")) == len(result.tracks)


def test_tracks_of_a_scenario_alone(tmp_path: Path) -> None:
    """A bare scenario (or its file given as scenario=): truth and readings, no track."""
    scenario = tracking.simulate(9, targets=3, steps=8)
    ax = tracking.plot_tracks(scenario, readings=False)
    assert len(_lines(ax, "truth")) == 3 and not _lines(ax, "track")
    assert ax.get_title() == f"scenario {scenario.name}: 3 targets, {len(scenario.readings)} readings"
    with pytest.raises(tracking.TrackingError, match="not str"):
        tracking.plot_tracks("a path is not a run")


# ------------------------------------------------------------ missing extra
def test_missing_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without matplotlib a plot raises MissingExtraError (a BlackboardError and ImportError) naming the extra."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    for call in (lambda: sudoku.plot_board(EASY), lambda: tracking.plot_tracks(tracking.simulate(1, steps=3))):
        with pytest.raises(MissingExtraError) as caught:
            call()
        assert isinstance(caught.value, BlackboardError) and isinstance(caught.value, ImportError)
        assert "pip install 'duckdb-blackboard[notebook]'" in str(caught.value)


def test_packages_import_without_matplotlib() -> None:
    """The domain packages (and the controller) import in a Python where matplotlib cannot be imported."""
    code = ("import sys; sys.modules['matplotlib'] = None; "
            "import knowledge_sources.sudoku, knowledge_sources.tracking, controller, controller._cli; "
            "assert 'matplotlib.pyplot' not in sys.modules; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
