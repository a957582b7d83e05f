"""SQL: what an action's ``view.sql`` costs in the sandbox, against the owner's ``bb.sql``.

A memory blackboard holds ``entries`` entries of one run. ``view.sql`` runs
one SELECT in the SQL sandbox (a separate, locked-down DuckDB holding Arrow
copies of the run's rows); ``bb.sql`` runs the same SELECT on the
blackboard's own connection, as the view did before the sandbox (its parse
check included). Two cases: ``steady`` (nothing changed since the last
call: the sandbox's copies are reused) and ``changed`` (one entry posted
before each call: the sandbox copies the run's entries again). Reported
per call, in milliseconds; target: the sandbox adds at most 1 ms a call in
the steady case.
"""

from __future__ import annotations

import time
from typing import Any

from ._harness import Options, interleaved, result, warm_up

NAME = "SQL"
TARGET_MS = 1.0
QUERY = "SELECT count(*) AS n, max(confidence) AS c FROM entries WHERE space = 's'"


def _board(entries: int) -> Any:
    from blackboard import Blackboard

    bb = Blackboard(spaces=["s"])
    for i in range(entries):
        bb.post("s", {"i": i}, key=f"k{i % 50}", confidence=0.5)
    return bb


def _timer(call: Any, calls: int, change: Any = None) -> Any:
    def timed() -> float:
        started = time.perf_counter()
        for _ in range(calls):
            if change is not None:
                change()
            call(QUERY)
        return (time.perf_counter() - started) / calls
    return timed


def run(opts: Options) -> list[dict[str, Any]]:
    from knowledge_sources import ReadView
    from knowledge_sources._view import check_read_only

    entries, calls = (200, 50) if opts.quick else (1_000, 300)
    bb = _board(entries)
    view = ReadView(bb)

    def trusted(query: str) -> Any:  # what view.sql did before the sandbox
        check_read_only(bb, query)
        return bb.sql(query)

    def change() -> None:
        bb.post("s", {"i": -1}, key="changing", confidence=0.4)

    steady = {"sandbox": _timer(view.sql, calls), "trusted": _timer(trusted, calls)}
    changed = {"sandbox": _timer(view.sql, calls, change), "trusted": _timer(trusted, calls, change)}
    warm_up(steady)
    t = interleaved(steady, opts.repeat)
    c = interleaved(changed, opts.repeat)
    bb.close()
    ms = 1000.0
    return [result(NAME, {
        "entries": entries,
        "steady_sandbox_ms": t["sandbox"] * ms, "steady_trusted_ms": t["trusted"] * ms,
        "steady_added_ms": (t["sandbox"] - t["trusted"]) * ms,
        "changed_sandbox_ms": c["sandbox"] * ms, "changed_trusted_ms": c["trusted"] * ms,
        "changed_added_ms": (c["sandbox"] - c["trusted"]) * ms,
    }, metric="steady_added_ms", target=TARGET_MS)]


def profile(opts: Options) -> None:
    from knowledge_sources import ReadView

    bb = _board(200)
    view = ReadView(bb)
    for _ in range(100):
        view.sql(QUERY)
    bb.close()
