"""W4 concurrency: slow agents.

200 ``job`` entries trigger a source whose action awaits
``anyio.sleep(0.05)`` (a stand-in for a model or tool call) and then posts
one ``done`` entry. Concurrency limit 50, so the ideal wall time is
200 / 50 x 0.05 s = 0.2 s. Target: at most 1.1x the ideal
(``ratio`` = seconds / ideal_seconds). The baseline is the same workload on
plain anyio tasks behind a semaphore (:func:`baseline.arun`), reported as
``baseline_seconds`` and ``baseline_ratio``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from blackboard import Blackboard, Space
from controller import Controller
from knowledge_sources import KnowledgeSource, knowledge_source, post

from . import baseline
from ._harness import Options, interleaved, result, timed, warm_up

NAME = "W4"
TARGET = 1.1
DELAY = 0.05
CONCURRENCY = 50
JOB = Space("job", fields={"value": int})
DONE = Space("done", fields={"value": int})


def slow_agent() -> KnowledgeSource:
    @knowledge_source(watches="job", writes="done", when="value >= 0")
    async def slow_agent(entry: Any) -> Any:
        await anyio.sleep(DELAY)
        return post("done", entry.value)

    return slow_agent


def ours(entries: int) -> float:
    bb = Blackboard(spaces=[JOB, DONE])
    for n in range(entries):
        bb.post("job", n)
    ctl = Controller(bb, [slow_agent()], concurrency=CONCURRENCY)
    seconds, out = timed(ctl.run)
    done = len(bb.entries("done"))
    bb.close()
    if out.activations != entries or done != entries:
        raise AssertionError(f"expected {entries} activations and done entries, got {out}, {done} done")
    return seconds


async def _slow(entry: baseline.Entry) -> baseline.Entry:
    await anyio.sleep(DELAY)
    return {"space": "done", "value": entry["value"]}


def base(entries: int) -> float:
    sources: list[baseline.AsyncSource] = [(lambda e: e["space"] == "job" and e["value"] >= 0, _slow)]
    starts = [{"space": "job", "value": n} for n in range(entries)]
    seconds, (board, activations) = timed(lambda: anyio.run(partial(baseline.arun, sources, starts, CONCURRENCY)))
    if activations != entries or len(board) != 2 * entries:
        raise AssertionError(f"baseline: expected {entries} activations, got {activations}")
    return seconds


def calls(entries: int) -> dict[str, Callable[[], float]]:
    return {"ours": lambda: ours(entries), "base": lambda: base(entries)}


def run(opts: Options) -> list[dict[str, Any]]:
    entries = 200
    warm_up(calls(CONCURRENCY))
    t = interleaved(calls(entries), opts.repeat)
    ideal = -(-entries // CONCURRENCY) * DELAY
    return [result(NAME, {
        "entries": entries, "concurrency": CONCURRENCY, "activations": entries,
        "seconds": t["ours"], "ideal_seconds": ideal, "ratio": t["ours"] / ideal,
        "baseline_seconds": t["base"], "baseline_ratio": t["base"] / ideal,
    }, metric="ratio", target=TARGET)]


def profile(opts: Options) -> None:
    ours(200)
