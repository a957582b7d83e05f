"""The ``blackboard`` command: a thin layer over the public API.

::

    blackboard solve sudoku|tracking|triage PROBLEM [--db PATH] [--json]
    blackboard batch sudoku|tracking|triage SOURCE --workers N --db PATH [--json] [--ray ADDRESS]
    blackboard resume PATH [--run ID] [--json]
    blackboard show PATH [--run ID] [--agenda | --entry ID] [--json]
    blackboard explain PATH ENTRY [--run ID] [--json]
    blackboard review PATH list|approve|reject|edit [ID] [--by NAME] [--reason TEXT] [--value JSON]
    blackboard verify PATH [--json]
    blackboard export PATH DIRECTORY --run ID [--format parquet|csv]

``show``, ``explain`` and ``export`` open the file read-only: looking at a
run never changes it.

Exit status: 0 on success (a puzzle solved, a file shown, a log intact), 1
when the problem has no solution or could not be finished, or the log is
broken, 2 on bad input (a malformed puzzle, a file that is not a
blackboard), with the error on stderr; 3 from ``resume`` when the file holds
no run to resume (a one-line message on stderr). ``resume`` of a run that
already finished prints that run's result again, as ``solve`` printed it, and
exits as ``solve`` did.

``batch --ray ADDRESS`` spreads the problems over a Ray cluster instead of
local worker processes, into the same file: ``local`` starts Ray here (with
``--workers`` CPUs, default all cores), ``auto`` joins the cluster started on
this machine by ``ray start --head``, ``ray://HOST:10001`` connects to a
remote head. It needs the extra: ``pip install 'duckdb-blackboard[ray]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from blackboard import Blackboard, BlackboardError, read_runs, verify

from . import _show as show
from ._domains import DOMAINS, domain_module
from ._resume import NothingToResumeError
from ._show import EXPORT_FORMATS

NOTHING_TO_RESUME = 3  # the exit status of ``resume`` on a file with no run to resume


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

    show = commands.add_parser("show", help="summarise the runs stored in a blackboard file, or one run")
    show.add_argument("path")
    show.add_argument("--run", type=int, default=None,
                      help="show one run: its outcome, figures, sources and entries by space")
    what = show.add_mutually_exclusive_group()
    what.add_argument("--agenda", action="store_true",
                      help="every activation of the run in order (default run: the newest)")
    what.add_argument("--entry", type=int, default=None, metavar="ID",
                      help="why an entry is there, as explain does (default run: the newest)")
    show.add_argument("--json", action="store_true", help="print one JSON object (the runs list: one a line)")

    why = commands.add_parser("explain", help="why an entry is on the blackboard: source, triggers, conflicts")
    why.add_argument("path")
    why.add_argument("entry", type=int)
    why.add_argument("--run", type=int, default=None, help="which run (default: the newest)")
    why.add_argument("--json", action="store_true")

    again = commands.add_parser("resume", help="finish an interrupted run from its file (a finished one: print its result)")
    again.add_argument("path")
    again.add_argument("--run", type=int, default=None,
                       help="which run (default: the newest unfinished one, else the newest finished one)")
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

    export = commands.add_parser("export", help="export a run to Parquet (or CSV) files")
    export.add_argument("path")
    export.add_argument("directory")
    export.add_argument("--run", type=int, required=True)
    export.add_argument("--format", choices=EXPORT_FORMATS, default="parquet",
                        help="file format of entries, events, activations and run (default: parquet)")
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
        if args.command == "explain":
            return _explain(args)
        if args.command == "verify":
            return _verify(args)
        if args.command == "resume":
            return _resume(args)
        if args.command == "review":
            return _review(args)
        return _export(args)
    except NothingToResumeError as exc:
        print(f"blackboard: {exc}", file=sys.stderr)
        return NOTHING_TO_RESUME
    except BlackboardError as exc:
        print(f"blackboard: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (``blackboard show ... --agenda | head``): stop quietly
        _silence_stdout()
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (a test's capture)
        pass


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
    if args.entry is not None:
        return _explain(argparse.Namespace(path=args.path, entry=args.entry, run=args.run, json=args.json))
    with show.read_only(args.path) as con:
        if args.run is None and not args.agenda:
            return _print_runs(args.path, show.list_runs(con), args.json)
        run = show.pick_run(con, args.path, args.run)
        if args.agenda:
            return _print_agenda(args.path, run, show.agenda_history(con, run), args.json)
        summary = show.run_summary(con, args.path, run)
    if args.json:
        print(json.dumps(summary, default=str))
        return 0
    print(_summary_text(summary))
    return 0


def _print_runs(path: str, rows: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        for row in rows:
            print(json.dumps(row, default=str))
        return 0
    print(f"{path}: {len(rows)} run(s)")
    for r in rows:
        print(f"  run {r['id']:>4} {r['name']!s:<16} {r['state']!s:<9} {r['outcome'] or '-':<10} "
              f"cycles={r['cycles']} activations={r['activations']} entries={r['entries']} events={r['events']}")
    return 0


def _summary_text(s: dict[str, Any]) -> str:
    def secs(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f} s"

    budget = f" ({s['budget']} budget)" if s["budget"] else ""
    lines = [
        f"run {s['run']} ({s['name']}) in {s['path']}: {s['state']}, outcome {s['outcome'] or '-'}{budget}",
        f"  cycles {s['cycles']}, activations {s['activations']} ({s['failed']} failed, {s['obviated']} obviated"
        + (f", {s['pending']} pending" if s["pending"] else "") + f"), contributions {s['contributions']}",
        f"  time {secs(s['seconds'])}: actions {secs(s['action_seconds'])}, controller {secs(s['controller_seconds'])}",
        f"  entries {s['entries']}, events {s['events']}, contexts {s['contexts']}",
        "",
        "sources",
    ]
    if s["sources"]:
        lines.append(show.text_table(s["sources"], [
            ("source", "source"), ("activations", "activations"), ("done", "done"), ("failed", "failed"),
            ("obviated", "obviated"), ("retries", "retries"), ("denied", "denied"),
            ("contributions", "contributions"), ("seconds", "total s", show.seconds),
            ("mean_seconds", "mean ms", show.millis),
        ]))
    else:
        lines.append("  (no activation recorded)")
    lines += ["", "entries"]
    if s["spaces"]:
        lines.append(show.text_table(s["spaces"], [
            ("space", "space"), ("status", "status"), ("n", "entries"), ("mean_confidence", "mean confidence"),
        ]))
    else:
        lines.append("  (no entry)")
    return "\n".join(lines)


def _print_agenda(path: str, run: int, rows: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print(json.dumps({"path": path, "run": run, "activations": rows}, default=str))
        return 0
    print(f"run {run} in {path}: {len(rows)} activation(s), in the order they were queued")
    if not rows:
        return 0
    shown = [r | {"triggers": show.id_list(r["triggers"]), "produced": show.id_list(r["produced"]),
                  "error": show.first_line(r["error"])} for r in rows]
    print(show.text_table(shown, [
        ("id", "id"), ("queued_cycle", "queued"), ("cycle", "cycle"), ("source", "source"), ("state", "state"),
        ("rating", "rating"), ("seconds", "ms", show.millis), ("triggers", "triggers"),
        ("produced", "produced"), ("error", "error"),
    ]))
    return 0


def _explain(args: argparse.Namespace) -> int:
    run, explanation = show.explain_entry(args.path, args.entry, args.run)
    if args.json:
        print(json.dumps({"path": args.path, "run": run, **explanation.to_dict()}, default=str))
    else:
        print(f"run {run} in {args.path}")
        print(explanation.text)
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
    with show.read_only(args.path) as con:
        run = show.pick_run(con, args.path, args.run)
        written = show.export_run(con, run, args.directory, args.format)
    for name, target in written.items():
        print(f"{name}: {target}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
