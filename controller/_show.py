"""Looking inside a blackboard file without changing it: what ``blackboard show``,
``blackboard explain`` and ``blackboard export`` print and write.

Everything here reads the file through a **read-only** DuckDB connection
(:func:`read_only`, checked as ``Blackboard(path, read_only=True)`` checks a
file), so showing a run never writes to it (no run created, no checkpoint,
no empty file initialised, no upgrade), and a file that is missing, empty,
cut short or of another program is refused. :func:`explain_entry` opens the
run with ``Blackboard(path, run=..., read_only=True)``.

The figures come from the stored records: ``bb_run`` (the run and the
controller's last result), ``bb_activation`` (one row per activation, its
final state) and ``bb_event``. Per source, :func:`source_metrics` gives the
figures :class:`controller.SourceStats` counts during a run:

``activations``    runs of the action: activations done or failed, plus the
                   re-runs of activations requeued after a stale revision
``retries``        attempts beyond the first, minus those requeues
``contributions``  entries written (the ids an activation produced)
``denied``         contributions a policy refused (``denied`` events)
``seconds``        time inside the action (the last attempt's, per activation)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from blackboard import (
    Blackboard,
    BlackboardError,
    BlackboardFileError,
    EntryNotFoundError,
    ValidationError,
)
from blackboard import _display as display
from blackboard._store import _connect

from ._explain import Explanation, explain

EXPORT_FORMATS = ("parquet", "csv")
# what an export writes: file stem, table, the column holding the run id
_EXPORTED = (("entries", "bb_entry", "run"), ("events", "bb_event", "run"),
             ("activations", "bb_activation", "run"), ("run", "bb_run", "id"))


class UnknownEntryError(EntryNotFoundError):
    """No entry with this id in the run shown (the message names run and file)."""

    def __init__(self, entry_id: object, run: int, path: str) -> None:
        super().__init__(entry_id)
        self.args = (f"no entry with id {entry_id!r} in run {run} of {path}",)


# ------------------------------------------------------------------ opening
@contextmanager
def read_only(path: str | os.PathLike[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only DuckDB connection to a blackboard file, closed afterwards.

    Raises :class:`~blackboard.BlackboardFileError` for a missing or unreadable
    file, :class:`~blackboard.NotABlackboardError` for an empty file or a file
    of another program, :class:`~blackboard.IncompatibleVersionError` for
    another format version. The file is never written.
    """
    target = os.fspath(path)
    con = _connect(target, read_only=True)
    try:
        yield con
    except BlackboardError:
        raise
    except (duckdb.Error, json.JSONDecodeError) as exc:  # rows or blocks damaged, columns missing
        raise BlackboardFileError(target, f"its run could not be read; the file may be damaged "
                                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    finally:
        con.close()


def _rows(con: duckdb.DuckDBPyConnection, query: str,
          params: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
    cursor = con.execute(query, params if isinstance(params, Mapping) else list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


# --------------------------------------------------------------------- runs
def list_runs(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The runs of the file with their figures, as :func:`blackboard.read_runs` gives them."""
    runs = _rows(con, (
        "SELECT r.id, r.name, r.state, r.outcome, r.cycles, r.activations, "
        "(SELECT count(*) FROM bb_entry e WHERE e.run = r.id) AS entries, "
        "(SELECT count(*) FROM bb_event v WHERE v.run = r.id) AS events, "
        "r.created_at, r.finished_at, r.problem FROM bb_run r ORDER BY r.id"))
    for r in runs:
        r["problem"] = _json(r["problem"])
    return runs


def pick_run(con: duckdb.DuckDBPyConnection, path: str, run: int | None) -> int:
    """``run`` if the file holds it, the newest run when None; a clear error otherwise."""
    if run is None:
        row = con.execute("SELECT max(id) FROM bb_run").fetchone()
        if row is None or row[0] is None:
            raise ValidationError("run", f"{path} holds no run")
        return int(row[0])
    if not con.execute("SELECT count(*) FROM bb_run WHERE id = ?", [run]).fetchone()[0]:  # type: ignore[index]
        raise ValidationError("run", f"no run with id {run} in {path}", run)
    return run


def run_summary(con: duckdb.DuckDBPyConnection, path: str, run: int) -> dict[str, Any]:
    """One run: its state and outcome, its figures, its sources and its entries by space.

    ``cycles`` and ``activations`` are the run's own counters (every
    controller that worked on it); ``failed``, ``obviated`` and
    ``contributions`` are counted from the activation records; the times
    (``seconds``, ``action_seconds``, ``controller_seconds``) and ``budget``
    are those the last controller reported (None while it has not finished).
    """
    row = _rows(con, "SELECT * FROM bb_run WHERE id = ?", [run])[0]
    result = _json(row["result"]) or {}
    sources = source_metrics(con, run)
    counts = _rows(con, (
        "SELECT (SELECT count(*) FROM bb_entry WHERE run = $run) AS entries, "
        "(SELECT count(*) FROM bb_event WHERE run = $run) AS events, "
        "(SELECT count(*) FROM bb_context WHERE run = $run) AS contexts"), {"run": run})[0]
    return {
        "path": path,
        "run": run,
        "name": row["name"],
        "state": row["state"],
        "outcome": row["outcome"],
        "budget": result.get("budget"),
        "cycles": row["cycles"],
        "activations": row["activations"],
        "failed": sum(s["failed"] for s in sources),
        "obviated": sum(s["obviated"] for s in sources),
        "pending": sum(s["pending"] for s in sources),
        "contributions": sum(s["contributions"] for s in sources),
        "seconds": result.get("seconds"),
        "action_seconds": result.get("action_seconds"),
        "controller_seconds": result.get("controller_seconds"),
        "entries": counts["entries"],
        "events": counts["events"],
        "contexts": counts["contexts"],
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
        "problem": _json(row["problem"]),
        "sources": sources,
        "spaces": entries_by_space(con, run),
    }


def entries_by_space(con: duckdb.DuckDBPyConnection, run: int) -> list[dict[str, Any]]:
    """Entries counted by space and status, with their mean confidence."""
    return _rows(con, (
        "SELECT space, status, count(*) AS n, round(avg(confidence), 3) AS mean_confidence "
        "FROM bb_entry WHERE run = ? GROUP BY ALL ORDER BY space, status"), [run])


def source_metrics(con: duckdb.DuckDBPyConnection, run: int) -> list[dict[str, Any]]:
    """Per source, by name: what its activations became and what they cost (module doc)."""
    extra = {(r["source"], r["kind"]): r["n"] for r in _rows(con, (
        "SELECT source, kind, count(*) AS n FROM bb_event WHERE run = ? "
        "AND kind IN ('requeued', 'denied') GROUP BY ALL"), [run])}
    found: dict[str, dict[str, Any]] = {}
    for source, state, attempts, seconds, produced in con.execute(
        "SELECT source, state, attempts, seconds, produced FROM bb_activation WHERE run = ? ORDER BY id", [run]
    ).fetchall():
        m = found.get(source)
        if m is None:
            m = found[source] = {"source": source, "queued": 0, "done": 0, "failed": 0, "obviated": 0,
                                 "pending": 0, "attempts": 0, "contributions": 0, "seconds": 0.0, "ran": 0}
        m["queued"] += 1
        if state in m:
            m[state] += 1
        if state in ("done", "failed"):
            m["ran"] += 1
            m["seconds"] += seconds or 0.0
        m["attempts"] += max((attempts or 0) - 1, 0)
        m["contributions"] += len(_ids(produced))
    for source, kind in extra:
        found.setdefault(source, {"source": source, "queued": 0, "done": 0, "failed": 0, "obviated": 0,
                                  "pending": 0, "attempts": 0, "contributions": 0, "seconds": 0.0, "ran": 0})
    out = []
    for name in sorted(found):
        m = found[name]
        requeued = extra.get((name, "requeued"), 0)
        ran = m.pop("ran")
        m["activations"] = ran + requeued
        m["retries"] = max(m.pop("attempts") - requeued, 0)
        m["requeued"] = requeued
        m["denied"] = extra.get((name, "denied"), 0)
        m["mean_seconds"] = m["seconds"] / ran if ran else None
        out.append({k: m[k] for k in ("source", "activations", "queued", "done", "failed", "obviated", "pending",
                                      "retries", "requeued", "denied", "contributions", "seconds",
                                      "mean_seconds")})
    return out


def agenda_history(con: duckdb.DuckDBPyConnection, run: int) -> list[dict[str, Any]]:
    """Every activation of the run in id (queueing) order, with what became of it.

    ``error`` is the first line of the stored error, ``error_text`` all of it
    (with the traceback).
    """
    out = []
    for r in _rows(con, (
        "SELECT id, queued_cycle, cycle, source, state, rating, attempts, seconds, triggers, produced, error "
        "FROM bb_activation WHERE run = ? ORDER BY id"), [run]):
        text = r.pop("error")
        r["triggers"] = _ids(r["triggers"])
        r["produced"] = _ids(r["produced"])
        r["error"] = text.splitlines()[0] if text else None
        r["error_text"] = text
        out.append(r)
    return out


def _ids(text: str | None) -> list[int]:
    if not text:
        return []
    value = json.loads(text)
    return list(value) if isinstance(value, list) else []


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


# ------------------------------------------------------------------ explain
def explain_entry(path: str | os.PathLike[str], entry: int, run: int | None = None) -> tuple[int, Explanation]:
    """The run shown (``run``, or the newest) and the :func:`~controller.explain`
    of ``entry`` in it, read through a read-only blackboard."""
    target = os.fspath(path)
    with read_only(target) as con:
        run = pick_run(con, target, run)
        known = con.execute("SELECT count(*) FROM bb_entry WHERE run = ? AND id = ?", [run, entry]).fetchone()
    if isinstance(entry, bool) or not known or not known[0]:
        raise UnknownEntryError(entry, run, target)
    try:
        with Blackboard(target, run=run, read_only=True) as bb:
            return run, explain(bb, entry)
    except BlackboardError:
        raise
    except (duckdb.Error, ValueError, KeyError, TypeError) as exc:  # damaged records met by explain
        raise BlackboardFileError(target, f"the records of entry {entry} could not be read; the file may be "
                                          f"damaged ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


# ------------------------------------------------------------------- export
def export_run(con: duckdb.DuckDBPyConnection, run: int, directory: str | os.PathLike[str],
               fmt: str = "parquet") -> dict[str, Path]:
    """Write the run's entries, events, activations and run row as ``fmt`` files
    (``parquet`` or ``csv`` with a header) into ``directory``; returns them by name."""
    if fmt not in EXPORT_FORMATS:
        raise ValidationError("format", f"must be one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}", fmt)
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BlackboardFileError(os.fspath(directory), f"cannot make the export directory ({exc.strerror or exc})") from None
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    written = {}
    for name, table, column in _EXPORTED:
        target = out / f"{name}.{fmt}"
        quoted = str(target).replace("'", "''")
        try:
            con.execute(f"COPY (SELECT * FROM {table} WHERE {column} = {int(run)}) TO '{quoted}' ({options})")
        except duckdb.Error as exc:
            raise BlackboardFileError(str(target), f"the export failed ({str(exc).splitlines()[0]})") from None
        written[name] = target
    return written


# ------------------------------------------------------------------- tables
Column = tuple[str, str] | tuple[str, str, Callable[[Any], str]]


def text_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], indent: str = "  ") -> str:
    """Rows as an aligned text table. Each column is ``(key, heading)`` or
    ``(key, heading, format)``; numbers go right, text left; None shows as ``-``."""
    return display.text_table(
        [c[1] for c in columns], [[r.get(c[0]) for c in columns] for r in rows],
        formats=[c[2] if len(c) == 3 else None for c in columns], indent=indent, rule=False,  # type: ignore[misc]
    )


def seconds(value: float) -> str:
    """Seconds with four decimals (``0.0123``)."""
    return f"{value:.4f}"


def millis(value: float) -> str:
    """Seconds shown as milliseconds with three decimals (``12.345``)."""
    return f"{value * 1000:.3f}"


def id_list(ids: Sequence[int], width: int = 24) -> str:
    """Ids joined with commas, cut to about ``width`` characters (``+n`` more)."""
    text = ",".join(map(str, ids))
    if len(text) <= width:
        return text or "-"
    shown: list[str] = []
    used = 0
    for i in ids:
        piece = str(i)
        if used + len(piece) + 1 > width - 5:
            break
        shown.append(piece)
        used += len(piece) + 1
    return ",".join(shown) + f",+{len(ids) - len(shown)}"


def first_line(text: str | None, width: int = 60) -> str:
    """The first line of ``text``, cut to ``width`` characters."""
    if not text:
        return ""
    line = text.splitlines()[0]
    return line if len(line) <= width else line[:width - 3] + "..."
