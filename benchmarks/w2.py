"""W2 fan-out: many independent chains.

100 start entries ``{"chain": c, "value": 0}`` and the same relay, K = 100
per chain: 10,000 activations, up to 100 ready at once.
Target: at most 30x the plain-Python baseline.

A second line measures the same run with a progress bar
(``run(progress=ProgressBar(file=StringIO()))``): ``progress_ratio`` is its
time over the plain run's, interleaved in the same process (issue 5: the bar
must not slow a run measurably).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from controller import ProgressBar

from ._harness import Options, interleaved, result, us_per, warm_up
from ._relay import (
    CHAIN_TOKEN,
    baseline_chain_relay,
    baseline_chain_starts,
    chain_relay,
    chain_starts,
    relay_run,
    time_baseline,
    time_run,
)

NAME = "W2"
TARGET = 30.0
PROGRESS_TARGET = 1.05  # "does not slow the run measurably": within the noise of a shared machine


def sizes(opts: Options) -> tuple[int, int]:
    """(chains, K per chain)."""
    return opts.size((100, 100), (20, 50))


def ours(chains: int, k: int, path: str | None = None, durability: str = "interval",
         progress: bool = False) -> float:
    """Seconds of one W2 run on our side (``path``: a DuckDB file, for W7)."""
    bb, ctl = relay_run([chain_relay(k)], chain_starts(chains), spaces=[CHAIN_TOKEN], path=path)
    ctl.durability = durability
    bar = ProgressBar(file=io.StringIO()) if progress else False
    return time_run(bb, ctl, chains * k, progress=bar)


def calls(chains: int, k: int) -> dict[str, Callable[[], float]]:
    return {
        "ours": lambda: ours(chains, k),
        "base": lambda: time_baseline(baseline_chain_relay(k), baseline_chain_starts(chains), chains * k),
    }


def run(opts: Options) -> list[dict[str, Any]]:
    chains, k = sizes(opts)
    n = chains * k
    warm_up(calls(5, 10))
    t = interleaved(calls(chains, k), opts.repeat)
    ours_us, base_us = us_per(t["ours"], n), us_per(t["base"], n)
    lines = [result(NAME, {
        "chains": chains, "k": k, "activations": n, "seconds": t["ours"],
        "us_per_activation": ours_us, "baseline_us_per_activation": base_us,
        "ratio": ours_us / base_us,
    }, metric="ratio", target=TARGET)]
    with_bar = interleaved({"plain": lambda: ours(chains, k), "progress": lambda: ours(chains, k, progress=True)},
                           opts.repeat)
    lines.append(result(NAME, {
        "variant": "progress", "chains": chains, "k": k, "activations": n, "seconds": with_bar["progress"],
        "plain_seconds": with_bar["plain"], "progress_ratio": with_bar["progress"] / with_bar["plain"],
    }, metric="progress_ratio", target=PROGRESS_TARGET))
    return lines


def profile(opts: Options) -> None:
    ours(*sizes(opts))
