"""Pictures of a sudoku run (with matplotlib): the board, with the digits
by kind (given, derived, guessed in the winning world), and the tree of
hypothetical worlds that the search opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blackboard import Blackboard

from .._plotting import axes, pyplot
from ._grid import _INDEX, KEYS, SudokuError, _read
from ._solve import SudokuResult

# ------------------------------------------------------------------ plots
GIVEN_COLOR = "black"
DERIVED_COLOR = "tab:blue"
GUESSED_COLOR = "tab:orange"
_GUESS_FILL = "#fde3c8"  # the cells a hypothesis supposed, behind their digit


@dataclass(frozen=True)
class _Board:
    """What a board plot shows: digits by kind (0: none), the guessed cells, a title."""

    givens: list[int]
    derived: list[int]
    guessed: list[int]
    guesses: frozenset[int]
    title: str


def _board(source: Any, context: int | None) -> _Board:
    """The digits of ``source`` (see :func:`plot_board`) split by where they come from."""
    none = [0] * 81
    if isinstance(source, Blackboard):
        return _board_of(source, context)
    if context is not None:
        raise SudokuError("context= needs a Blackboard to read the context from")
    if isinstance(source, SudokuResult):
        givens = _read(source.puzzle)
        derived = list(none)
        if source.solution:
            derived = [0 if g else d for g, d in zip(givens, _read(source.solution, "solution"))]
        return _Board(givens, derived, none, frozenset(), f"{source.status}: run {source.run_id}")
    return _Board(_read(source), none, list(none), frozenset(), "puzzle")


def _board_of(bb: Blackboard, context: int | None) -> _Board:
    versions = bb.find("grid", "grid", status=None)
    if not versions:
        raise SudokuError(f"run {bb.run_id} of {bb.path} holds no sudoku grid")
    givens = list(versions[0].value["digits"])
    active = bb.find("grid", "grid")
    root = (active or versions)[-1].value["digits"]
    if context is None:
        promoted = [c.id for c in bb.contexts("promoted")]
        context = promoted[-1] if promoted else 0
    ctx = bb.context(context)
    world = root
    if context:
        shown = bb.find("grid", "grid", context=context) or bb.find("grid", "grid", status=None, context=context)
        world = shown[-1].value["digits"]
    derived = [0 if g else d for g, d in zip(givens, root)]
    guessed = [0 if r else d for r, d in zip(root, world)]
    guesses = set()
    while ctx.id:
        key, _, digit = ctx.label.partition("=")
        if key in _INDEX and digit.isdigit():
            guesses.add(_INDEX[key])
        ctx = bb.context(ctx.parent)
    where = "root" if not context else f"context {context} ({bb.context(context).status})"
    return _Board(givens, derived, guessed, frozenset(guesses), f"run {bb.run_id}, {where}")


def plot_board(source: Any, *, ax: Any = None, context: int | None = None, title: str | None = None) -> Any:
    """Draw a 9x9 board with matplotlib; returns the Axes.

    Givens are bold black, digits the blackboard derived blue, digits of a
    hypothetical world (a context other than the root) orange, the cells a
    hypothesis supposed shaded orange; empty cells stay empty. Each of the
    81 cells is one text artist whose gid is its key (``"r1c1"``).

    ``source`` is one of:

    - a puzzle (81 characters, or 81 ints): its givens;
    - a :class:`SudokuResult`: the givens, and the solution's other digits
      as derived (a result does not say which were guessed: pass the
      blackboard for that, e.g. ``Blackboard(result.path, run=result.run_id)``);
    - a :class:`~blackboard.Blackboard` holding a sudoku run: the givens
      (its first grid), the root grid's digits as derived, and the digits of
      ``context`` beyond the root's as guessed. ``context`` defaults to the
      promoted context (the world the solution was found in), else the root.

    Needs matplotlib (``pip install 'duckdb-blackboard[notebook]'``).
    """

    board = _board(source, context)
    plt = pyplot("sudoku.plot_board")
    ax = axes(ax, "sudoku.plot_board", (5.0, 5.4))
    for i in board.guesses:
        ax.add_patch(plt.Rectangle((i % 9, i // 9), 1, 1, facecolor=_GUESS_FILL, edgecolor="none", zorder=0))
    for k in range(10):
        width = 2.0 if k % 3 == 0 else 0.5
        color = "black" if k % 3 == 0 else "0.6"
        ax.plot([k, k], [0, 9], color=color, linewidth=width, zorder=2, solid_capstyle="projecting")
        ax.plot([0, 9], [k, k], color=color, linewidth=width, zorder=2, solid_capstyle="projecting")
    for i, key in enumerate(KEYS):
        if board.givens[i]:
            digit, color, weight = board.givens[i], GIVEN_COLOR, "bold"
        elif board.derived[i]:
            digit, color, weight = board.derived[i], DERIVED_COLOR, "normal"
        elif board.guessed[i]:
            digit, color, weight = board.guessed[i], GUESSED_COLOR, "normal"
        else:
            digit, color, weight = 0, GIVEN_COLOR, "normal"
        ax.text(i % 9 + 0.5, i // 9 + 0.52, str(digit) if digit else "", ha="center", va="center",
                fontsize=15, color=color, fontweight=weight, gid=key, zorder=3)
    ax.set_xlim(-0.05, 9.05)
    ax.set_ylim(9.05, -0.05)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    kinds = [("given", GIVEN_COLOR, True), ("derived", DERIVED_COLOR, any(board.derived)),
             ("guessed", GUESSED_COLOR, any(board.guessed))]
    handles = [plt.Line2D([], [], linestyle="", marker="s", markersize=8, color=color, label=label)
               for label, color, shown in kinds if shown]
    if len(handles) > 1:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles),
                  frameon=False, handletextpad=0.3)
    ax.set_title(board.title if title is None else title)
    return ax


def plot_search(bb: Blackboard, *, ax: Any = None, title: str | None = None) -> Any:
    """Draw the tree of hypothetical worlds (contexts) of a sudoku run; returns the Axes.

    A context's x is the order it was opened in, its y its depth (the root
    at the top); a line joins it to its parent. Failed worlds are red
    crosses, the promoted one (the solution's) a green star, open ones grey
    dots; the few first worlds are labelled with their hypothesis. Each
    marker collection has the status as gid (``"failed"``, ...).
    Needs matplotlib (``pip install 'duckdb-blackboard[notebook]'``).
    """

    if not isinstance(bb, Blackboard):
        raise SudokuError(f"plot_search draws a Blackboard's contexts, not {type(bb).__name__}")
    contexts = bb.contexts()
    ax = axes(ax, "sudoku.plot_search", (8.0, 4.0))
    for c in contexts:
        if c.id:
            parent = bb.context(c.parent)
            ax.plot([parent.id, c.id], [parent.depth, c.depth], color="0.75", linewidth=0.8, zorder=1)
    styles = {"open": ("o", "0.45", 20), "failed": ("x", "tab:red", 30), "promoted": ("*", "tab:green", 160)}
    for status, (marker, color, size) in styles.items():
        chosen = [c for c in contexts if c.status == status]
        if chosen:
            ax.scatter([c.id for c in chosen], [c.depth for c in chosen], marker=marker, color=color, s=size,
                       zorder=3, label=f"{status} ({len(chosen)})", gid=status)
    if len(contexts) <= 30:
        for c in contexts:
            if c.id:
                ax.annotate(c.label, (c.id, c.depth), textcoords="offset points", xytext=(3, -9), fontsize=7)
    ax.set_xlabel("context, in the order opened")
    ax.set_ylabel("depth (hypotheses made)")
    ax.invert_yaxis()
    ax.legend(loc="lower left", frameon=False, fontsize=8)
    ax.set_title(f"run {bb.run_id}: {len(contexts) - 1} hypothetical worlds" if title is None else title)
    return ax


