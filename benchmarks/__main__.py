"""``python -m benchmarks``: run the workloads, one JSON object per line on stdout.

Exit status: 0 when every named workload ran (whether or not it met its
target; ``--strict`` makes a missed target exit 1), 1 when one raised (its
line then carries ``error``), 2 for bad arguments such as an unknown name.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import json
import pstats
import sys
import traceback
from typing import Any

from . import WORKLOADS
from ._harness import PROFILER, Options, note


def parse(argv: list[str] | None) -> tuple[list[str], Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the benchmark workloads; prints one JSON object per line.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"workloads to run (default: all of {', '.join(WORKLOADS)})")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for CI smoke tests")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="timed repeats per contender; the median is reported (default 3)")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, profile our side of each workload once; "
                             "top 15 functions by tottime on stderr")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    args = parser.parse_args(argv)
    names = [n.upper() for n in args.names] or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    return list(dict.fromkeys(names)), Options(quick=args.quick, repeat=args.repeat), args


def warm_up() -> None:
    """Imports and the first event loop, before anything is timed."""
    import anyio

    import blackboard  # noqa: F401
    import controller  # noqa: F401
    import knowledge_sources  # noqa: F401

    anyio.run(anyio.sleep, 0)


def profile(module: Any, options: Options) -> None:
    """Profile the timed parts of one run of our side; top 15 by tottime on stderr."""
    profiler = cProfile.Profile()
    token = PROFILER.set(profiler)
    try:
        module.profile(options)
    finally:
        PROFILER.reset(token)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    note(f"=== profile of {module.NAME}: our side, timed parts of one run, top 15 by tottime ===")
    note(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    names, options, args = parse(argv)
    warm_up()
    failed = missed = False
    for name in names:
        note(f"running {name}{' (quick)' if options.quick else ''}, {options.repeat} repeats ...")
        try:
            module = importlib.import_module(WORKLOADS[name])
            lines = module.run(options)
        except Exception as exc:
            failed = True
            traceback.print_exc()
            lines = [{"bench": name, "error": f"{type(exc).__name__}: {exc}", "ok": False}]
        for line in lines:
            missed |= not line.get("ok", False)
            print(json.dumps(line), flush=True)
    if args.profile:
        for name in names:
            profile(importlib.import_module(WORKLOADS[name]), options)
    if failed:
        return 1
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
