"""START: how long ``blackboard solve sudoku PUZZLE --db F`` takes before its first cycle.

Each measurement is a fresh process, timed from its spawn by the parent:
ours runs the command line (``controller._cli.main``, what the
``blackboard`` script calls) on a new file and prints a marker when the
controller's run starts (its ``run_started`` hook, just before the first
cycle), so it covers the interpreter, every import, the new file with its
schema and run, and the controller's set-up. The reference is
``python -c "import duckdb"``, the floor nobody here can lower. The two are
interleaved, repeat by repeat. Target: ``beyond_duckdb_seconds`` (ours minus
the reference) at most 0.3 s.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._harness import Options, interleaved, result, warm_up

NAME = "START"
TARGET = 0.3
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
ROOT = Path(__file__).resolve().parents[1]
MARKER = "first-cycle"
# the command line, with an instrument added to every controller that says when its run starts
CHILD = f"""
import sys
from controller import Controller, Instrument, _cli

class Starts(Instrument):
    def run_started(self, controller, goal, config):
        print({MARKER!r}, flush=True)

made = Controller.__init__
def with_marker(self, *args, instruments=(), **kwargs):
    made(self, *args, instruments=[*instruments, Starts()], **kwargs)
Controller.__init__ = with_marker
sys.exit(_cli.main(sys.argv[1:]))
"""


def _until(command: list[str], marker: str | None) -> float:
    """Seconds from spawning ``command`` until it prints ``marker`` (None: until it exits)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert child.stdout is not None
    seconds = None
    for line in child.stdout:
        if marker is not None and seconds is None and line.strip() == marker:
            seconds = time.perf_counter() - started
    child.wait()
    if marker is None:
        return time.perf_counter() - started
    if seconds is None or child.returncode != 0:
        raise AssertionError(f"{command[:4]} exited {child.returncode} without printing {marker!r}")
    return seconds


def ours() -> float:
    with tempfile.TemporaryDirectory(prefix="bb-start-") as tmp:
        return _until([sys.executable, "-c", CHILD, "solve", "sudoku", PUZZLE, "--db", str(Path(tmp) / "s.duckdb")],
                      MARKER)


def duckdb_import() -> float:
    return _until([sys.executable, "-c", "import duckdb"], None)


def run(opts: Options) -> list[dict[str, Any]]:
    calls = {"ours": ours, "duckdb": duckdb_import}
    warm_up(calls)  # the file cache, the bytecode caches
    t = interleaved(calls, max(3, opts.repeat))
    return [result(NAME, {
        "seconds": t["ours"], "duckdb_import_seconds": t["duckdb"],
        "beyond_duckdb_seconds": t["ours"] - t["duckdb"],
    }, metric="beyond_duckdb_seconds", target=TARGET)]


def profile(opts: Options) -> None:
    ours()
