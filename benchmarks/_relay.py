"""The relay workloads (W1, W2, W3, W7) written through the public API.

A ``token`` space, relay sources that post ``value + 1`` while a rule holds,
and the same workload as plain-Python baseline sources. Our side is built
the way a user would write it: spaces with declared fields, sources from
the ``knowledge_source`` decorator with rule-engine preconditions, a
``Controller`` over a ``Blackboard``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from blackboard import Blackboard, Space
from controller import Controller
from knowledge_sources import KnowledgeSource, knowledge_source, post

from . import baseline
from ._harness import timed
from .baseline import Entry, Source

TOKEN = Space("token", fields={"value": int})
CHAIN_TOKEN = Space("token", fields={"chain": int, "value": int})


def relay(k: int, *, name: str = "relay", when: str | None = None) -> KnowledgeSource:
    """W1's source: while ``value < k`` (or ``when``), post ``value + 1``."""

    def action(entry: Any) -> Any:
        return post("token", entry.value + 1)

    return knowledge_source(action, name=name, watches="token", when=when or f"value < {k}")


def relays(k: int, count: int) -> list[KnowledgeSource]:
    """W1 ``ks=count``: source ``i`` matches only ``value % count == i`` (and ``value < k``)."""
    return [
        relay(k, name=f"relay_{i}", when=f"value < {k} and value % {count} == {i}")
        for i in range(count)
    ]


def chain_relay(k: int) -> KnowledgeSource:
    """W2's source: the same relay over ``{"chain": c, "value": n}`` entries."""

    @knowledge_source(watches="token", when=f"value < {k}")
    def relay(entry: Any) -> Any:
        v = entry.value
        return post("token", {"chain": v["chain"], "value": v["value"] + 1})

    return relay


def relay_run(sources: list[KnowledgeSource], starts: list[Any], *,
              spaces: Sequence[Space] = (TOKEN,), path: str | None = None,
              prepare: Callable[[Blackboard], Any] | None = None,
              ) -> tuple[Blackboard, Controller]:
    """A blackboard with ``starts`` posted and a controller ready to ``run()``.

    ``prepare(bb)`` runs first (W3 preloads there).
    """
    bb = Blackboard(path, spaces=spaces)
    if prepare is not None:
        prepare(bb)
    for value in starts:
        bb.post("token", value)
    return bb, Controller(bb, sources)


def time_run(bb: Blackboard, ctl: Controller, expected: int, progress: Any = False) -> float:
    """Seconds of the whole ``ctl.run()``; checks the activation count, closes ``bb``."""
    seconds, out = timed(lambda: ctl.run(progress=progress))
    bb.close()
    if out.activations != expected or out.outcome != "quiescent":
        raise AssertionError(f"expected {expected} activations to quiescence, got {out}")
    return seconds


def time_baseline(sources: list[Source], starts: list[Entry], expected: int) -> float:
    """Seconds of one plain-Python baseline run; checks the activation count."""
    seconds, (_, activations) = timed(lambda: baseline.run(sources, starts))
    if activations != expected:
        raise AssertionError(f"baseline: expected {expected} activations, got {activations}")
    return seconds


# ------------------------------------------------------------------ baseline
def baseline_relay(k: int) -> list[Source]:
    return [(lambda e: e["value"] < k, lambda e: {"space": "token", "value": e["value"] + 1})]


def baseline_relays(k: int, count: int) -> list[Source]:
    def make(i: int) -> Source:
        return (
            lambda e: e["value"] < k and e["value"] % count == i,
            lambda e: {"space": "token", "value": e["value"] + 1},
        )
    return [make(i) for i in range(count)]


def baseline_chain_relay(k: int) -> list[Source]:
    return [(
        lambda e: e["value"] < k,
        lambda e: {"space": "token", "chain": e["chain"], "value": e["value"] + 1},
    )]


def chain_starts(chains: int) -> list[dict[str, int]]:
    return [{"chain": c, "value": 0} for c in range(chains)]


def baseline_chain_starts(chains: int) -> list[Entry]:
    return [{"space": "token", "chain": c, "value": 0} for c in range(chains)]
