"""W7 durability: W2 on a blackboard stored in a DuckDB file.

The same W2 run (100 chains x 100) on a file in a fresh temporary
directory and in memory, interleaved in one process, with the controller's
default durability (``"interval"``). Target: the file costs at most 1.5x
memory (``ratio`` = seconds / memory_seconds). The same run with the other
durability modes is reported beside it (``cycle_ratio``, ``end_ratio``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import w2
from ._harness import Options, interleaved, result, us_per, warm_up

NAME = "W7"
TARGET = 1.5


def on_file(chains: int, k: int, durability: str = "interval") -> float:
    with tempfile.TemporaryDirectory(prefix="bb-w7-") as tmp:
        return w2.ours(chains, k, path=str(Path(tmp) / "w7.duckdb"), durability=durability)


def calls(chains: int, k: int) -> dict[str, Callable[[], float]]:
    return {
        "file": lambda: on_file(chains, k),
        "memory": lambda: w2.ours(chains, k),
        "cycle": lambda: on_file(chains, k, "cycle"),
        "end": lambda: on_file(chains, k, "end"),
    }


def run(opts: Options) -> list[dict[str, Any]]:
    chains, k = w2.sizes(opts)
    n = chains * k
    warm_up(calls(5, 10))
    t = interleaved(calls(chains, k), opts.repeat)
    return [result(NAME, {
        "chains": chains, "k": k, "activations": n, "durability": "interval",
        "seconds": t["file"], "us_per_activation": us_per(t["file"], n),
        "memory_seconds": t["memory"], "ratio": t["file"] / t["memory"],
        # the other durability modes, same run on a file, against memory
        "cycle_seconds": t["cycle"], "cycle_ratio": t["cycle"] / t["memory"],
        "end_seconds": t["end"], "end_ratio": t["end"] / t["memory"],
    }, metric="ratio", target=TARGET)]


def profile(opts: Options) -> None:
    on_file(*w2.sizes(opts))
