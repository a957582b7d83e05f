"""Batch runs: many problems, several worker processes, one DuckDB file.

Each problem is solved in a worker process on an in-memory blackboard; the
worker exports its run and the parent adds it to the batch file under a new
run id, with a ``bb_batch`` record (problem, status, seconds, activations),
in one transaction. DuckDB files have a single writer, so only the parent
writes. A batch is identified by its domain and input; running the same
batch again skips every problem already recorded, so an interrupted batch
resumes without redoing finished work. One worker runs in this process (no
process start-up); more run in a process pool (spawned, so no DuckDB state
is forked). Given a Ray address, the problems become Ray tasks spread over
the cluster and the results land in the same file, the same way
(``controller._ray``); a problem whose worker dies is re-run elsewhere, and
each problem is stored once, by its item number.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from blackboard import BlackboardError, RunArchive

from ._domains import domain_module
from ._errors import ConfigurationError


@dataclass
class BatchSummary:
    """What a batch did: counts by status, time, throughput, and each result."""

    domain: str
    batch: str
    db: str
    problems: int
    skipped: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run(self) -> int:
        return self.problems - self.skipped

    @property
    def problems_per_second(self) -> float:
        return self.run / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "batch": self.batch, "db": self.db, "problems": self.problems,
                "skipped": self.skipped, "run": self.run, "seconds": round(self.seconds, 6),
                "problems_per_second": round(self.problems_per_second, 3), "counts": self.counts}

    def __str__(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts.items()))
        skipped = f", {self.skipped} already done" if self.skipped else ""
        return (f"{self.run} {self.domain} problems in {self.seconds:.1f} s "
                f"({self.problems_per_second:.2f}/s): {counts or 'nothing to do'}{skipped}; "
                f"every run is in {self.db} (SELECT * FROM bb_batch)")


def solve_one(domain: str, label: str, problem: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Solve one problem in memory; (its JSON line, its exported run or None)."""
    module = domain_module(domain)
    holder: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        result = module.solve(problem, on_close=lambda bb: holder.update(tables=bb.export_run()))
        line = result.to_json()
        line["status"] = module.batch_status(result) if hasattr(module, "batch_status") else line["status"]
    except BlackboardError as exc:
        line = module.batch_failure(label, "invalid", str(exc))
    except Exception as exc:  # a bug or a crash inside a source: this problem fails, the batch goes on
        line = module.batch_failure(label, "failed", f"{type(exc).__name__}: {exc}")
        line["traceback"] = traceback.format_exc(limit=5)
    line.setdefault("seconds", round(time.perf_counter() - started, 6))
    line.setdefault("activations", 0)
    line["worker"] = os.getpid()
    return line, holder.get("tables")


def run_batch(domain: str, source: str | os.PathLike[str], *, db: str | os.PathLike[str], workers: int | None = None,
              on_result: Callable[[dict[str, Any]], None] | None = None,
              progress: Callable[[int, int, dict[str, int]], None] | None = None,
              batch: str | None = None, ray: str | None = None) -> BatchSummary:
    """Run every problem of ``source`` (the domain reads it) with ``workers`` processes into ``db``.

    ``workers`` defaults to 1 (in this process). ``ray``: a Ray address
    (``"local"`` starts Ray here with ``workers`` CPUs, default all cores;
    ``"auto"``, ``"ray://head:10001"``, ``"host:port"`` join a cluster; a Ray
    session already started in this process is used as it is): problems run
    as Ray tasks, at most ``2 * workers`` (default: the cluster's CPUs) at once.
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigurationError("workers", f"must be a positive int, not {workers!r}")
    if ray is not None:
        if not isinstance(ray, str) or not ray:
            raise ConfigurationError("ray", f"must be a Ray address ('local', 'auto', 'ray://host:10001'), not {ray!r}")
        from ._ray import connect

        connect(ray, num_cpus=workers, setting="ray")  # before the file is touched: a wrong address changes nothing
    module = domain_module(domain)
    problems: Sequence[tuple[str, Any]] = module.batch_problems(source)
    name = batch or f"{domain}:{os.path.abspath(os.fspath(source))}"
    summary = BatchSummary(domain, name, os.fspath(db), len(problems))
    started = time.perf_counter()
    with RunArchive(db) as archive:
        done = archive.done(name)
        summary.skipped = len(done)
        todo = [(i, label, problem) for i, (label, problem) in enumerate(problems) if i not in done]

        stored: set[int] = set()

        def store(item: int, label: str, line: dict[str, Any], tables: dict[str, Any] | None) -> None:
            if item in stored:  # a problem solved twice (a re-run task) is counted once
                return
            stored.add(item)
            status = str(line.get("status") or "failed")
            line["status"] = status
            record = {"batch": name, "item": item, "domain": domain, "problem": label, "status": status,
                      "seconds": float(line.get("seconds", 0.0)), "activations": int(line.get("activations", 0)),
                      "result": line, "worker": str(line.get("worker"))}
            if tables is not None:
                line["run_id"] = archive.add_run(tables, record)
                line["db"] = summary.db
            else:
                archive.add_record(record)
            summary.counts[status] = summary.counts.get(status, 0) + 1
            summary.results.append(line)
            if on_result is not None:
                on_result(line)
            if progress is not None:
                progress(len(summary.results), len(todo), summary.counts)

        if ray is not None:
            for item, label, outcome in solve_on_ray(domain, todo, address=ray, workers=workers):
                if isinstance(outcome, BaseException):
                    outcome = module.batch_failure(label, "failed", f"worker died: {outcome}"), None
                store(item, label, *outcome)
        elif workers is None or workers == 1:
            for item, label, problem in todo:
                store(item, label, *solve_one(domain, label, problem))
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                pending: dict[Future[Any], tuple[int, str]] = {}
                queue = list(todo)
                while queue or pending:
                    while queue and len(pending) < workers * 2:
                        item, label, problem = queue.pop(0)
                        pending[pool.submit(solve_one, domain, label, problem)] = (item, label)
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        item, label = pending.pop(future)
                        try:
                            line, tables = future.result()
                        except Exception as exc:  # the worker process died
                            line, tables = module.batch_failure(label, "failed", f"worker died: {exc}"), None
                        store(item, label, line, tables)
    summary.seconds = time.perf_counter() - started
    return summary


def progress_bar(stream: Any = sys.stderr) -> Callable[[int, int, dict[str, int]], None]:
    """A one-line text progress bar (on a terminal; silent otherwise)."""
    started = time.perf_counter()
    live = hasattr(stream, "isatty") and stream.isatty()

    def show(done: int, total: int, counts: dict[str, int]) -> None:
        if not live or total == 0:
            return
        width = 30
        filled = int(width * done / total)
        rate = done / max(time.perf_counter() - started, 1e-9)
        tally = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {rate:.1f}/s {tally}  ")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show


# ------------------------------------------------------------------ on Ray
def solve_remote(domain: str, label: str, problem: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """:func:`solve_one` as a Ray task: the line also names the node that solved it."""
    line, tables = solve_one(domain, label, problem)
    line["node"] = socket.gethostname()
    return line, tables


def solve_on_ray(domain: str, todo: Sequence[tuple[int, str, Any]], *, address: str,
                 workers: int | None) -> Iterator[tuple[int, str, Any]]:
    """Solve each (item, label, problem) as a Ray task; yield (item, label, (line, tables) or the error)."""
    from ._ray import MAX_RETRIES, connect  # Ray is an extra: imported when asked for

    ray = connect(address, num_cpus=workers, setting="ray")
    solve = ray.remote(max_retries=MAX_RETRIES)(solve_remote)
    window = 2 * (workers or max(1, int(ray.cluster_resources().get("CPU", 1))))
    queue = deque(todo)
    pending: dict[Any, tuple[int, str]] = {}
    while queue or pending:
        while queue and len(pending) < window:
            item, label, problem = queue.popleft()
            pending[solve.remote(domain, label, problem)] = (item, label)
        finished, _ = ray.wait(list(pending), num_returns=1)
        for ref in finished:
            item, label = pending.pop(ref)
            try:
                outcome: Any = ray.get(ref)
            except ray.exceptions.RayError as exc:  # its retries were spent: every worker it ran on died
                outcome = exc
            yield item, label, outcome
