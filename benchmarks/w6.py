"""W6 batch: W5's puzzles through the batch command, with 1 and 2 workers, and on Ray.

Each run is ``run_batch("sudoku", top95, workers=N, db=<fresh file>)`` (what
``blackboard batch sudoku FILE --workers N --db PATH`` does), timed whole:
process start-up and writing every run into the DuckDB file included. One
worker runs in-process; two run in a spawned process pool. Target: 2
workers give at least 1.7x the throughput of 1 (``speedup`` >= 1.7, reported
as ``ratio`` = 1 / speedup <= 1 / 1.7 so that smaller is better like the rest).

In the same run, with Ray installed: the same batch on a local Ray with 2
CPUs (``run_batch(..., ray="local")``, ``executor: "ray"``), timed the same
way except Ray's own start (``ray_start_seconds``, apart: a cluster is
started once and serves many batches, a process pool is started by each).
Target: ``pool_ratio`` (Ray seconds / the 2-process pool's) <= 1.25: on one
machine Ray costs at most a quarter more than the pool it replaces.

And Ray's per-task overhead (``measure: "task_overhead"``): a no-op task's
round trip (submit, wait for it, then the next) and its cost when many are
in flight, on Ray and on a 2-process pool, and one activation of a relay
chain through the controller's ``ray`` and ``process`` executors. Target:
``ray_task_ms`` (no-ops in flight) <= 1 ms.
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from blackboard import Blackboard, Space
from controller import Controller, ProcessExecutor
from controller._batch import run_batch
from knowledge_sources import knowledge_source, post, sudoku

from ._harness import Options, note, result

NAME = "W6"
SPEEDUP = 1.7
RAY_POOL_RATIO = 1.25
RAY_TASK_MS = 1.0
RAY_CPUS = 2


def batch_seconds(source: Path, workers: int, ray: str | None = None) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="bb-w6-") as tmp:
        started = time.perf_counter()
        summary = run_batch("sudoku", source, db=Path(tmp) / "w6.duckdb", workers=workers, ray=ray)
        seconds = time.perf_counter() - started
    return seconds, summary.counts.get("solved", 0)


def run(opts: Options) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bb-w6-in-") as tmp:
        source = Path(tmp) / "puzzles.txt"
        items = sudoku.puzzles("top95")[: 20 if opts.quick else None]
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
        ray = _start_ray()
        if ray is None:
            return lines
        try:
            started = time.perf_counter()
            on_ray, solved_ray = batch_seconds(source, RAY_CPUS, ray="local")
            lines.append(result(NAME, {
                "workers": RAY_CPUS, "executor": "ray", "problems": len(items), "solved": solved_ray,
                "seconds": on_ray, "problems_per_second": len(items) / on_ray, "speedup": one / on_ray,
                "ratio": on_ray / one, "pool_ratio": on_ray / two, "ray_start_seconds": ray[1],
            }, metric="pool_ratio", target=RAY_POOL_RATIO, extra_ok=solved_ray == len(items)))
            lines.append(overhead(opts))
            note(f"W6 on Ray: {time.perf_counter() - started:.1f} s")
        finally:
            ray[0].shutdown()
        return lines


def _start_ray() -> tuple[Any, float] | None:
    """A local Ray with 2 CPUs, and the seconds it took to start; None without Ray."""
    try:
        import ray
    except ImportError:
        note("W6: Ray is not installed (pip install 'duckdb-blackboard[ray]'): no Ray lines")
        return None
    started = time.perf_counter()
    ray.init(address="local", num_cpus=RAY_CPUS, include_dashboard=False, logging_level="ERROR")
    return ray, time.perf_counter() - started


# ------------------------------------------------------------ overhead
def noop() -> None:
    """The task whose round trip is the overhead."""


def overhead(opts: Options) -> dict[str, Any]:
    """Per-task milliseconds of no-op tasks on Ray and on a process pool, and per activation via executors."""
    import ray

    tasks = opts.size(1000, 200)
    chain = opts.size(200, 50)
    remote = ray.remote(noop)
    ray.get([remote.remote() for _ in range(RAY_CPUS * 4)])  # workers up, function exported
    samples: dict[str, list[float]] = {}
    with ProcessPoolExecutor(RAY_CPUS, mp_context=multiprocessing.get_context("spawn")) as pool:
        wait([pool.submit(noop) for _ in range(RAY_CPUS * 4)])
        contenders: dict[str, Callable[[], float]] = {
            "ray_round_trip": lambda: _each(tasks // 4, lambda: ray.get(remote.remote())),
            "process_round_trip": lambda: _each(tasks // 4, lambda: pool.submit(noop).result()),
            "ray_task": lambda: _all(tasks, lambda: ray.get([remote.remote() for _ in range(tasks)])),
            "process_task": lambda: _all(tasks, lambda: wait([pool.submit(noop) for _ in range(tasks)])),
        }
        for _ in range(opts.repeat):
            for name, call in contenders.items():
                samples.setdefault(name, []).append(call())
    with ProcessExecutor(RAY_CPUS) as processes:
        from controller import RayExecutor

        with RayExecutor() as on_ray:
            executors = {"loop": "loop", "process": processes, "ray": on_ray}
            for name, executor in executors.items():
                _relay(executor, 5)  # workers up, actions shipped
            for _ in range(opts.repeat):
                for name, executor in executors.items():
                    samples.setdefault(f"{name}_activation", []).append(_relay(executor, chain))
    ms = {name: statistics.median(values) * 1e3 for name, values in samples.items()}
    return result(NAME, {
        "executor": "ray", "measure": "task_overhead", "tasks": tasks, "chain": chain,
        "ray_round_trip_ms": ms["ray_round_trip"], "process_round_trip_ms": ms["process_round_trip"],
        "ray_task_ms": ms["ray_task"], "process_task_ms": ms["process_task"],
        "round_trip_ratio": ms["ray_round_trip"] / ms["process_round_trip"],
        "task_ratio": ms["ray_task"] / ms["process_task"],
        "ray_activation_ms": ms["ray_activation"], "process_activation_ms": ms["process_activation"],
        "loop_activation_ms": ms["loop_activation"],
    }, metric="ray_task_ms", target=RAY_TASK_MS)


def _each(count: int, call: Callable[[], Any]) -> float:
    """Seconds per call of ``count`` calls one after the other."""
    started = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - started) / count


def _all(count: int, call: Callable[[], Any]) -> float:
    """Seconds per task of one call that runs ``count`` tasks at once."""
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) / count


TOKEN = Space("token", fields={"value": int})


@knowledge_source(watches="token", when="value < limit")
def step(entry: Any) -> Any:
    """W1's relay, declared at module level so that any worker can import it."""
    return post("token", {"value": entry.value["value"] + 1, "limit": entry.value["limit"]})


def _relay(executor: Any, k: int) -> float:
    """Seconds per activation of a K-long relay chain whose actions run on ``executor``."""
    bb = Blackboard(spaces=[Space("token", fields={"value": int, "limit": int})])
    bb.post("token", {"value": 0, "limit": k})
    controller = Controller(bb, [step], executor=executor)
    started = time.perf_counter()
    out = controller.run()
    seconds = time.perf_counter() - started
    bb.close()
    if out.activations != k or out.failed:
        raise AssertionError(f"expected {k} activations without failure, got {out}")
    return seconds / k


def profile(opts: Options) -> None:
    pass
