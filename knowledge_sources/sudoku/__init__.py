"""Sudoku on the blackboard: propagation by independent sources, search by contexts.

Each world (context) holds one ``grid`` entry: the candidates of the 81
cells as bitmasks (bit d set: digit d still possible), the digits decided,
and the decided cells whose digit has not yet been removed from their peers.
Every deduction is a revision of the grid (a new version; the old one stays,
superseded), so the event log tells the whole story of a solve.

Sources, each a single pass over its trigger's grid, none looping to a
solution::

    contradiction        a cell with no candidate, a digit twice in a unit, or
                         a digit with no place left in a unit: in a hypothetical
                         context it fails the context (everything posted in it is
                         retracted, and a parent whose alternatives all failed
                         fails too); in the root it is posted: no solution
    candidate_elimination   remove the digits just decided from their peers
    naked_single         a cell with one candidate left: decide it
    hidden_single        a digit with one place left in a unit: decide it there
    solution             every cell decided, nothing contradicts: post the
                         solution and promote the context
    hypothesis           nothing else applies: open one child context per
                         candidate of the cell with the fewest candidates
                         ("suppose r1c1 = 4")

Search happens only through contexts on the blackboard: the hypothesis source
forks, the contradiction source fails worlds, and the controller works
depth first on the most promising world (``contexts="fewest_alternatives"``).
Opening a context copies nothing: a child sees its parent's entries until it
posts its own grid version.

Public: :func:`parse`, :func:`check`, :func:`format_grid`, :func:`spaces`,
:func:`sources`, :func:`load`, :func:`solve`, :func:`resume`, :func:`puzzles`,
:class:`SudokuResult`, :class:`SudokuError`; with matplotlib,
:func:`plot_board` and :func:`plot_search`.

Modules: ``_grid`` (geometry, reading and checking puzzles, the shipped
puzzle sets), ``_sources`` (the spaces and sources), ``_solve`` (the
controller assembled for the domain: solve, resume, batches) and ``_plot``.
"""

from __future__ import annotations

from ._grid import KEYS as KEYS
from ._grid import PUZZLE_SETS as PUZZLE_SETS
from ._grid import SudokuError as SudokuError
from ._grid import check as check
from ._grid import format_grid as format_grid
from ._grid import parse as parse
from ._grid import puzzles as puzzles
from ._plot import plot_board as plot_board
from ._plot import plot_search as plot_search
from ._solve import SudokuResult as SudokuResult
from ._solve import batch_failure as batch_failure
from ._solve import batch_problems as batch_problems
from ._solve import batch_status as batch_status
from ._solve import resume as resume
from ._solve import solve as solve
from ._sources import candidate_elimination as candidate_elimination
from ._sources import contradiction as contradiction
from ._sources import hidden_single as hidden_single
from ._sources import hypothesis as hypothesis
from ._sources import load as load
from ._sources import naked_single as naked_single
from ._sources import solution as solution
from ._sources import sources as sources
from ._sources import spaces as spaces

__all__ = [
    "SudokuError",
    "SudokuResult",
    "check",
    "format_grid",
    "load",
    "parse",
    "plot_board",
    "plot_search",
    "puzzles",
    "resume",
    "solve",
    "sources",
    "spaces",
]
