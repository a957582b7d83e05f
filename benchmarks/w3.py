"""W3 scale: W1 (K = 500) on a blackboard preloaded with N entries.

N = 10,000, 100,000 and 1,000,000 entries are imported with
``Blackboard.import_arrow`` from one Arrow table: 90% in a space ``noise``
(``{"i": n}``), 10% in ``token`` with ``value = -1`` (imported entries never
trigger sources, and -1 would not match anyway). Then W1 runs.

Two targets: the per-activation cost must not grow with N
(``scale_ratio`` = us_per_activation at N / at the smallest N, at most 1.3);
and the load must cost at most 3x a raw DuckDB insert of the same Arrow
table into a plain two-column table of a fresh in-memory connection
(``load_ratio``), measured interleaved in the same process.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from blackboard import Space

from ._harness import Options, median, result, timed, us_per
from ._relay import TOKEN, relay, relay_run, time_run

NAME = "W3"
K = 500
LOAD_TARGET = 3.0
SCALE_TARGET = 1.3
NOISE = Space("noise", fields={"i": int})


def preload_table(n: int) -> pa.Table:
    """``n`` rows (space, value JSON text): every tenth a ``token`` -1, the rest noise."""
    index = pa.array(range(n), pa.int64())
    # i % 10 == 0, in integer division (Arrow has no modulo kernel)
    is_token = pc.equal(pc.divide(index, 10), pc.divide(pc.add(index, 9), 10))
    noise = pc.binary_join_element_wise('{"i":', pc.cast(index, pa.string()), "}", "")
    return pa.table({
        "space": pc.if_else(is_token, "token", "noise"),
        "value": pc.if_else(is_token, "-1", noise),
    })


def ours(table: pa.Table, k: int) -> tuple[float, float]:
    """(load seconds, run seconds) of one preload-then-W1 run."""
    holder: dict[str, float] = {}

    def prepare(bb: Any) -> None:
        holder["load"], count = timed(lambda: bb.import_arrow(table))
        if count != table.num_rows:
            raise AssertionError(f"imported {count} of {table.num_rows} rows")

    bb, ctl = relay_run([relay(k)], [0], spaces=[TOKEN, NOISE], prepare=prepare)
    return holder["load"], time_run(bb, ctl, k)


def raw_insert(table: pa.Table) -> float:
    """Seconds of one INSERT of ``table`` into a plain table (fresh in-memory DuckDB)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("CREATE TABLE raw (space VARCHAR, value VARCHAR)")
        con.register("rows", table)
        seconds, _ = timed(lambda: con.execute("INSERT INTO raw SELECT space, value FROM rows"))
        return seconds
    finally:
        con.close()


def sizes(opts: Options) -> tuple[list[int], int]:
    return opts.size(([10_000, 100_000, 1_000_000], K), ([1_000, 10_000, 100_000], 200))


def run(opts: Options) -> list[dict[str, Any]]:
    ns, k = sizes(opts)
    tables = {n: preload_table(n) for n in ns}
    small = preload_table(100)
    ours(small, 20)
    raw_insert(small)
    loads: dict[int, list[float]] = {n: [] for n in ns}
    runs: dict[int, list[float]] = {n: [] for n in ns}
    raws: dict[int, list[float]] = {n: [] for n in ns}
    for _ in range(opts.repeat):
        for n in ns:
            load, seconds = ours(tables[n], k)
            loads[n].append(load)
            runs[n].append(seconds)
            raws[n].append(raw_insert(tables[n]))
    first = us_per(median(runs[ns[0]]), k)
    lines = []
    for n in ns:
        us = us_per(median(runs[n]), k)
        load, raw = median(loads[n]), median(raws[n])
        scale = us / first
        lines.append(result(NAME, {
            "preloaded": n, "k": k, "activations": k, "seconds": median(runs[n]),
            "us_per_activation": us, "load_seconds": load, "raw_insert_seconds": raw,
            "load_ratio": load / raw, "scale_ratio": scale, "scale_target": SCALE_TARGET,
        }, metric="load_ratio", target=LOAD_TARGET, extra_ok=scale <= SCALE_TARGET))
    return lines


def profile(opts: Options) -> None:
    ns, k = sizes(opts)
    ours(preload_table(ns[-1]), k)
