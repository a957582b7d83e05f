"""W6 batch: W5's puzzles through the batch command, with 1 and with 2 workers.

Each run is ``run_batch("sudoku", top95, workers=N, db=<fresh file>)`` (what
``blackboard batch sudoku FILE --workers N --db PATH`` does), timed whole:
process start-up and writing every run into the DuckDB file included. One
worker runs in-process; two run in a spawned process pool. Target: 2
workers give at least 1.7x the throughput of 1 (``speedup`` >= 1.7, reported
as ``ratio`` = 1 / speedup <= 1 / 1.7 so that smaller is better like the rest).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from controller._batch import run_batch

from ._harness import Options, result
from .w5 import TOP95, puzzles

NAME = "W6"
SPEEDUP = 1.7


def batch_seconds(source: Path, workers: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="bb-w6-") as tmp:
        started = time.perf_counter()
        summary = run_batch("sudoku", source, db=Path(tmp) / "w6.duckdb", workers=workers)
        seconds = time.perf_counter() - started
    return seconds, summary.counts.get("solved", 0)


def run(opts: Options) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bb-w6-in-") as tmp:
        source = Path(tmp) / "puzzles.txt"
        items = puzzles(TOP95)[: 20 if opts.quick else None]
        source.write_text("\n".join(items) + "\n")
        lines = []
        one, solved_one = batch_seconds(source, 1)
        two, solved_two = batch_seconds(source, 2)
        speedup = one / two
        for workers, seconds, solved in ((1, one, solved_one), (2, two, solved_two)):
            lines.append(result(NAME, {
                "workers": workers, "problems": len(items), "solved": solved, "seconds": seconds,
                "problems_per_second": len(items) / seconds, "speedup": speedup if workers == 2 else 1.0,
                "ratio": 1 / speedup if workers == 2 else 1.0,
            }, metric="ratio", target=round(1 / SPEEDUP, 4) if workers == 2 else 1.0, extra_ok=solved == len(items)))
        return lines


def profile(opts: Options) -> None:
    pass
