"""What every workload shares: options, timing, medians and result lines.

Timing rules (BENCHMARKS.md): absolute times are noisy on shared machines,
so each workload measures its own side and its reference (the plain-Python
baseline, a raw DuckDB insert, the in-memory run) in the same process,
interleaved repeat by repeat, and reports the median of each. Only the
measured call is timed (for the controller: the whole ``run()``, final
flush included, which ``RunResult.seconds`` leaves out); building the
blackboard and registering sources are set-up. ``gc.collect()`` runs before
every timed call so one run's garbage is not collected in the next.
"""

from __future__ import annotations

import cProfile
import gc
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    """How to run the workloads: ``quick`` sizes for CI, ``repeat`` timed runs each."""

    quick: bool = False
    repeat: int = 3

    def size(self, full: T, quick: T) -> T:
        return quick if self.quick else full


#: Set by ``--profile``: every timed call then runs under this profiler, so
#: the profile shows the measured part alone, not the set-up around it.
PROFILER: ContextVar[cProfile.Profile | None] = ContextVar("PROFILER", default=None)


def timed(call: Callable[[], T]) -> tuple[float, T]:
    """Seconds taken by ``call()`` (after a ``gc.collect()``), and its result."""
    gc.collect()
    profiler = PROFILER.get()
    if profiler is not None:
        profiler.enable()
    started = time.perf_counter()
    try:
        out = call()
    finally:
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
    return seconds, out


def median(values: list[float]) -> float:
    return statistics.median(values)


def us_per(seconds: float, count: int) -> float:
    return seconds / count * 1e6 if count else float("nan")


def result(bench: str, fields: Mapping[str, Any], *, metric: str, target: float,
           extra_ok: bool = True) -> dict[str, Any]:
    """One output line: ``fields`` plus ``target_metric``, ``target`` and ``ok``.

    ``ok`` holds when ``fields[metric] <= target`` (and ``extra_ok``, for
    lines that carry a second target).
    """
    line: dict[str, Any] = {"bench": bench}
    line.update({k: _round(v) for k, v in fields.items()})
    value = fields[metric]
    line["target_metric"] = metric
    line["target"] = target
    line["ok"] = bool(value <= target and extra_ok)
    return line


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) if abs(value) < 1 else round(value, 3)
    return value


def note(message: str) -> None:
    """Progress for humans, on stderr (stdout carries only JSON lines)."""
    print(message, file=sys.stderr, flush=True)


def interleaved(calls: Mapping[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """Median seconds of each call over ``repeat`` rounds, each round calling all in turn.

    Each call does its own set-up and returns the seconds of its timed part.
    Interleaving spreads a slow spell of the machine over every contender
    instead of charging it to one.
    """
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            samples[name].append(call())
    return {name: median(values) for name, values in samples.items()}


def warm_up(calls: Mapping[str, Callable[[], float]]) -> None:
    """Run each call once, untimed (imports, first queries, first event loop)."""
    for call in calls.values():
        call()
