"""W1 relay: one long dependent chain, with 1 and with 200 registered sources.

One ``token`` entry ``value = 0``; a relay posts ``value + 1`` while
``value < K``; K = 2000 activations, each depending on the previous one.
The ``ks=200`` variant registers 200 sources, source ``i`` matching only
``value < K and value % 200 == i`` (the ``value < K`` makes it terminate),
and shows what many registered sources cost.

Targets: ``ks=1`` at most 40x the plain-Python baseline; ``ks=200`` at most
2x our own ``ks=1``, measured in the same process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._harness import Options, interleaved, result, us_per, warm_up
from ._relay import (
    baseline_relay,
    baseline_relays,
    relay,
    relay_run,
    relays,
    time_baseline,
    time_run,
)

NAME = "W1"
KS = 200
BASELINE_TARGET = 40.0
KS_TARGET = 2.0


def calls(k: int) -> dict[str, Callable[[], float]]:
    start = [{"space": "token", "value": 0}]
    return {
        "ours_1": lambda: time_run(*relay_run([relay(k)], [0]), k),
        "base_1": lambda: time_baseline(baseline_relay(k), start, k),
        "ours_many": lambda: time_run(*relay_run(relays(k, KS), [0]), k),
        "base_many": lambda: time_baseline(baseline_relays(k, KS), start, k),
    }


def run(opts: Options) -> list[dict[str, Any]]:
    k = opts.size(2000, 500)
    warm_up(calls(50))
    t = interleaved(calls(k), opts.repeat)
    one = us_per(t["ours_1"], k)
    many = us_per(t["ours_many"], k)
    base_one, base_many = us_per(t["base_1"], k), us_per(t["base_many"], k)
    common = {"k": k, "activations": k}
    return [
        result(NAME, {"ks": 1, **common, "seconds": t["ours_1"], "us_per_activation": one,
                      "baseline_us_per_activation": base_one, "ratio": one / base_one},
               metric="ratio", target=BASELINE_TARGET),
        result(NAME, {"ks": KS, **common, "seconds": t["ours_many"], "us_per_activation": many,
                      "baseline_us_per_activation": base_many, "ratio": many / base_many,
                      "ks1_us_per_activation": one, "ks1_ratio": many / one},
               metric="ks1_ratio", target=KS_TARGET),
    ]


def profile(opts: Options) -> None:
    """Our side alone, once per variant (for cProfile)."""
    k = opts.size(2000, 500)
    time_run(*relay_run([relay(k)], [0]), k)
    time_run(*relay_run(relays(k, KS), [0]), k)
