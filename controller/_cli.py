"""The ``blackboard`` command: a thin layer over the public API.

::

    blackboard solve sudoku|tracking|triage PROBLEM [--db PATH] [--json]
    blackboard batch sudoku|tracking|triage SOURCE --workers N --db PATH [--json] [--ray ADDRESS]
    blackboard resume PATH [--run ID] [--json]
    blackboard show PATH [--run ID] [--json]
    blackboard review PATH list|approve|reject|edit [ID] [--by NAME] [--reason TEXT] [--value JSON]
    blackboard verify PATH [--json]
    blackboard export PATH DIRECTORY --run ID

Exit status: 0 on success (a puzzle solved, a file shown, a log intact), 1
when the problem has no solution or could not be finished, or the log is
broken, 2 on bad input (a malformed puzzle, a file that is not a
blackboard), with the error on stderr.

``batch --ray ADDRESS`` spreads the problems over a Ray cluster instead of
local worker processes, into the same file: ``local`` starts Ray here (with
``--workers`` CPUs, default all cores), ``auto`` joins the cluster started on
this machine by ``ray start --head``, ``ray://HOST:10001`` connects to a
remote head. It needs the extra: ``pip install 'duckdb-blackboard[ray]'``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from blackboard import Blackboard, BlackboardError, read_runs, verify

from ._domains import DOMAINS, domain_module


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blackboard",
        description="Knowledge sources cooperating on a DuckDB blackboard.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    solve = commands.add_parser("solve", help="solve one problem and print the result")
    solve.add_argument("domain", choices=sorted(DOMAINS), help="sudoku: 81 characters; tracking: a scenario file; triage: a case id or JSON")
    solve.add_argument("problem")
    solve.add_argument("--db", default=None, help="DuckDB file to keep the whole run in (default: memory)")
    solve.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    batch = commands.add_parser("batch", help="solve many problems with worker processes into one DuckDB file")
    batch.add_argument("domain", choices=sorted(DOMAINS))
    batch.add_argument("source", help="sudoku: a file of puzzles, one a line; tracking: a directory of scenarios; triage: a JSONL file of cases")
    batch.add_argument("--workers", type=int, default=None,
                       help="worker processes (default 1); with --ray local, Ray's CPUs (default: all cores)")
    batch.add_argument("--db", required=True, help="the DuckDB file every run goes into")
    batch.add_argument("--json", action="store_true", help="one JSON object a line on stdout, per problem")
    batch.add_argument("--ray", metavar="ADDRESS", default=None,
                       help="run the problems as Ray tasks: local (start Ray here), auto, ray://HOST:10001 "
                            "(needs: pip install 'duckdb-blackboard[ray]')")

    show = commands.add_parser("show", help="summarise the runs stored in a blackboard file")
    show.add_argument("path")
    show.add_argument("--run", type=int, default=None, help="show one run's entries by space")
    show.add_argument("--json", action="store_true")

    again = commands.add_parser("resume", help="finish an interrupted run from its file")
    again.add_argument("path")
    again.add_argument("--run", type=int, default=None, help="which run (default: the newest unfinished one)")
    again.add_argument("--json", action="store_true", help="print one JSON object, as the command that started it")

    review = commands.add_parser("review", help="list or decide the items held for a person")
    review.add_argument("path")
    review.add_argument("action", choices=["list", "approve", "reject", "edit"])
    review.add_argument("review_id", nargs="?", type=int)
    review.add_argument("--run", type=int, default=None, help="which run (default: the newest)")
    review.add_argument("--by", default=None, help="who decides (required to decide)")
    review.add_argument("--reason", default="", help="why")
    review.add_argument("--value", default=None, help="edit: the value to post instead, as JSON")
    review.add_argument("--all", action="store_true", help="list: decided items too")
    review.add_argument("--json", action="store_true")

    check = commands.add_parser("verify", help="check the tamper-evident event log of a file")
    check.add_argument("path")
    check.add_argument("--json", action="store_true")

    export = commands.add_parser("export", help="export a run to Parquet files")
    export.add_argument("path")
    export.add_argument("directory")
    export.add_argument("--run", type=int, required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "solve":
            return _solve(args)
        if args.command == "batch":
            return _batch(args)
        if args.command == "show":
            return _show(args)
        if args.command == "verify":
            return _verify(args)
        if args.command == "resume":
            return _resume(args)
        if args.command == "review":
            return _review(args)
        return _export(args)
    except BlackboardError as exc:
        print(f"blackboard: error: {exc}", file=sys.stderr)
        return 2


SUCCESS = ("solved", "tracked", "decided")


def _solve(args: argparse.Namespace) -> int:
    module = domain_module(args.domain)
    return _print_result(module.solve(args.problem, path=args.db), args.json)


def _resume(args: argparse.Namespace) -> int:
    from ._resume import resume

    return _print_result(resume(args.path, args.run), args.json)


def _print_result(result: Any, as_json: bool) -> int:
    data = result.to_json()
    if as_json:
        print(json.dumps(data, default=str))
    else:
        print(result)
        where = data.get("db")
        print(f"the whole run (entries, events, activations) is in {where}, run {data.get('run_id')}")
        if where and where != ":memory:":
            print(f"  look inside: blackboard show {where} --run {data.get('run_id')}")
    return 0 if data.get("status") in SUCCESS else 1


def _batch(args: argparse.Namespace) -> int:
    from ._batch import progress_bar, run_batch

    def emit(line: dict[str, Any]) -> None:
        if args.json:
            line = {k: v for k, v in line.items() if k != "traceback"}
            print(json.dumps(line, default=str), flush=True)

    summary = run_batch(args.domain, args.source, db=args.db, workers=args.workers,
                        on_result=emit, progress=progress_bar(), ray=args.ray)
    print(summary, file=sys.stderr if args.json else sys.stdout)
    return 0 if not summary.counts.get("failed") else 1


def _show(args: argparse.Namespace) -> int:
    if args.run is None:
        rows = read_runs(args.path)
        if args.json:
            for row in rows:
                print(json.dumps(row, default=str))
            return 0
        print(f"{args.path}: {len(rows)} run(s)")
        for r in rows:
            print(f"  run {r['id']:>4} {r['name']!s:<16} {r['state']!s:<9} {r['outcome'] or '-':<10} "
                  f"cycles={r['cycles']} activations={r['activations']} entries={r['entries']} events={r['events']}")
        return 0
    with Blackboard(args.path, run=args.run) as bb:
        table = bb.sql(
            "SELECT space, status, count(*) AS n, round(avg(confidence), 3) AS mean_confidence "
            "FROM entries GROUP BY ALL ORDER BY space, status"
        )
        rows = table.to_pylist()
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
        return 0
    print(f"run {args.run} in {args.path}")
    for r in rows:
        print(f"  {r['space']:<16} {r['status']:<11} {r['n']:>7}  mean confidence {r['mean_confidence']}")
    return 0


def _review(args: argparse.Namespace) -> int:
    run = args.run
    if run is None:
        runs = read_runs(args.path)
        if not runs:
            raise BlackboardError(f"{args.path} holds no run")
        run = runs[-1]["id"]
    with Blackboard(args.path, run=run) as bb:
        if args.action == "list":
            items = bb.reviews(pending=None if args.all else True)
            for item in items:
                print(json.dumps(_review_dict(item)) if args.json else str(item))
            if not items and not args.json:
                print(f"run {run}: nothing waiting for review")
            return 0
        if args.review_id is None or not args.by:
            raise BlackboardError(f"review {args.action} needs a review id and --by NAME")
        if args.action == "approve":
            decided = bb.approve(args.review_id, by=args.by, reason=args.reason)
        elif args.action == "reject":
            decided = bb.reject(args.review_id, by=args.by, reason=args.reason)
        else:
            if args.value is None:
                raise BlackboardError("review edit needs --value JSON")
            try:
                value = json.loads(args.value)
            except json.JSONDecodeError as exc:
                raise BlackboardError(f"--value is not JSON: {exc}") from None
            bb.edit(args.review_id, value=value, by=args.by, reason=args.reason)
            decided = bb.review(args.review_id)
    print(json.dumps(_review_dict(decided)) if args.json else str(decided))
    return 0


def _review_dict(item: Any) -> dict[str, Any]:
    return {"id": item.id, "kind": item.kind, "rule": item.rule, "reason": item.reason,
            "entry": item.entry, "activation": item.activation, "decision": item.decision,
            "by": item.by, "why": item.why}


def _verify(args: argparse.Namespace) -> int:
    report = verify(args.path)
    if args.json:
        print(json.dumps(report.to_dict()))
    elif report.ok:
        print(f"{args.path}: ok, {report.runs} run(s), {report.events} events, every hash chain intact")
    else:
        print(f"{args.path}: BROKEN at {report.broken[0]}")
        for link in report.broken[1:]:
            print(f"  also {link}")
    return 0 if report.ok else 1


def _export(args: argparse.Namespace) -> int:
    with Blackboard(args.path, run=args.run) as bb:
        written = bb.export_parquet(args.directory)
    for name, target in written.items():
        print(f"{name}: {target}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
