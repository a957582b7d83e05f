"""W5 sudoku: every top95 puzzle solved on the blackboard, against plain Python.

Ours: :func:`knowledge_sources.sudoku.solve`, one run per puzzle on an
in-memory blackboard: propagation by knowledge sources, search through
contexts. The baseline: :func:`plain_solve`, a plain-Python
constraint-propagation-and-search solver written for the benchmark (the same
deductions: elimination, naked and hidden singles, then a guess on the cell
with the fewest candidates, depth first). Every answer of both is checked
against the rules. Target: ``ratio`` = seconds / baseline_seconds <= 25.
"""

from __future__ import annotations

import time
from typing import Any

from knowledge_sources import sudoku

from ._harness import Options, result

NAME = "W5"
TARGET = 25.0
ALL = 0b1111111110
_ROWS = [[r * 9 + c for c in range(9)] for r in range(9)]
_COLS = [[r * 9 + c for r in range(9)] for c in range(9)]
_BOXES = [[(br * 3 + r) * 9 + bc * 3 + c for r in range(3) for c in range(3)] for br in range(3) for bc in range(3)]
_UNITS = _ROWS + _COLS + _BOXES
_PEERS = [sorted({j for u in _UNITS if i in u for j in u} - {i}) for i in range(81)]
_COUNT = [bin(m).count("1") for m in range(1 << 10)]


def _assign(cand: list[int], i: int, d: int) -> bool:
    """Set cell i to d and propagate: peer elimination to a fixed point (a queue
    of decided cells), then one pass of hidden singles over the units, again
    until nothing changes. False on a contradiction."""
    todo = [(i, d)]
    while todo:
        while todo:
            i, d = todo.pop()
            bit = 1 << d
            if not cand[i] & bit:
                return False
            cand[i] = bit
            for j in _PEERS[i]:
                m = cand[j]
                if m & bit:
                    m &= ~bit
                    if not m:
                        return False
                    cand[j] = m
                    if _COUNT[m] == 1:
                        todo.append((j, m.bit_length() - 1))
        for unit in _UNITS:  # the queue is empty: hidden singles, once over every unit
            once = twice = 0
            for j in unit:
                twice |= once & cand[j]
                once |= cand[j]
            if once != ALL:
                return False
            only = once & ~twice
            if only:
                for j in unit:
                    m = cand[j] & only
                    if m and cand[j] != m:
                        todo.append((j, m.bit_length() - 1))
    return True


def _search(cand: list[int]) -> list[int] | None:
    best, fewest = -1, 10
    for i in range(81):
        n = _COUNT[cand[i]]
        if 1 < n < fewest:
            best, fewest = i, n
    if best < 0:
        return cand
    for d in range(1, 10):
        if cand[best] >> d & 1:
            child = list(cand)
            if _assign(child, best, d):
                found = _search(child)
                if found is not None:
                    return found
    return None


def plain_solve(puzzle: str) -> str | None:
    """The baseline: constraint propagation and depth-first search, no framework."""
    cand = [ALL] * 81
    for i, ch in enumerate(puzzle):
        if ch in "123456789" and not _assign(cand, i, int(ch)):
            return None
    found = _search(cand)
    return None if found is None else "".join(str(m.bit_length() - 1) for m in found)


def ours(items: list[str]) -> tuple[float, int, int]:
    """(seconds, puzzles solved and checked, activations) on the blackboard."""
    started = time.perf_counter()
    solved = activations = 0
    for puzzle in items:
        out = sudoku.solve(puzzle)
        activations += out.activations
        solved += out.status == "solved" and sudoku.check(puzzle, out.solution)
    return time.perf_counter() - started, solved, activations


def baseline(items: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    solved = sum(sudoku.check(p, plain_solve(p)) for p in items)
    return time.perf_counter() - started, solved


def run(opts: Options) -> list[dict[str, Any]]:
    items = sudoku.puzzles("top95")
    if opts.quick:
        items = items[:10]
    sudoku.solve(items[0])  # warm up
    base_seconds, base_solved = min(baseline(items) for _ in range(max(1, opts.repeat)))
    seconds, solved, activations = ours(items)
    if base_solved != len(items):
        raise AssertionError(f"the baseline solved {base_solved} of {len(items)}")
    return [result(NAME, {
        "puzzles": len(items), "solved": solved, "seconds": seconds,
        "baseline_seconds": base_seconds, "ratio": seconds / base_seconds, "activations": activations,
    }, metric="ratio", target=TARGET, extra_ok=solved == len(items))]


def profile(opts: Options) -> None:
    ours(sudoku.puzzles("top95")[:10])
