"""The tamper-evident event log: each event's hash covers the one before it.

``hash = sha256(previous hash | run | seq | cycle | kind | entry | source |
activation | details | entry content)``, where the entry content is what a
``posted`` or ``revised`` event brought onto the blackboard (space, key,
value as stored, confidence, source, cycle, context, supports, revises), and
empty for other events. One hash per event: about 2 us. The
run row keeps the newest hash (its *head*), so a removed tail shows too.
:func:`verify` recomputes every chain from the file and names the first
broken link: an event altered, removed or inserted, an entry altered, or a
head that does not match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb

GENESIS = ""


def entry_content(space: str, key: str | None, value_text: str, confidence: float, source: str,
                  cycle: int, context: int, supports_text: str, revises: int | None) -> str:
    """The text of an entry's immutable fields, as the chain covers them."""
    return f"{space}\x1f{key}\x1f{value_text}\x1f{confidence!r}\x1f{source}\x1f{cycle}\x1f{context}\x1f{supports_text}\x1f{revises}"


_sha256 = hashlib.sha256


def link(previous: str, run: int, seq: int, cycle: int, kind: str, entry: int | None,
         source: str | None, activation: int | None, details: str | None, content: str) -> str:
    text = f"{previous}\x1e{run}\x1f{seq}\x1f{cycle}\x1f{kind}\x1f{entry}\x1f{source}\x1f{activation}\x1f{details}\x1f{content}"
    return _sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    """Where a chain breaks, and how."""

    run: int
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"run {self.run}" + (f", event {self.seq}" if self.seq is not None else "")
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify`."""

    path: str
    runs: int
    events: int
    broken: tuple[BrokenLink, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.broken

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "ok": self.ok, "runs": self.runs, "events": self.events,
            "first_broken": None if self.ok else {
                "run": self.broken[0].run, "seq": self.broken[0].seq, "problem": self.broken[0].problem},
        }


def verify_connection(con: duckdb.DuckDBPyConnection, path: str) -> VerifyReport:
    """Recompute every run's chain from the tables; report the first broken link of each."""
    runs = con.execute("SELECT id, head FROM bb_run ORDER BY id").fetchall()
    entries: dict[tuple[int, int], tuple[Any, ...]] = {
        (r[0], r[1]): r[2:] for r in con.execute(
            "SELECT run, id, space, key, value, confidence, source, cycle, context, supports, revises FROM bb_entry"
        ).fetchall()
    }
    broken: list[BrokenLink] = []
    total = 0
    for run, head in runs:
        events = con.execute(
            "SELECT seq, cycle, kind, entry, source, activation, details, hash FROM bb_event "
            "WHERE run = ? ORDER BY seq", [run]
        ).fetchall()
        total += len(events)
        problem = _check_run(run, head or GENESIS, events, entries)
        if problem is not None:
            broken.append(problem)
    return VerifyReport(path, len(runs), total, tuple(broken))


def _check_run(run: int, head: str, events: Iterable[tuple[Any, ...]],
               entries: dict[tuple[int, int], tuple[Any, ...]]) -> BrokenLink | None:
    previous = GENESIS
    expected_seq = 1
    for seq, cycle, kind, entry, source, activation, details, stored in events:
        if seq != expected_seq:
            what = "missing (removed?)" if seq > expected_seq else "repeated (inserted?)"
            return BrokenLink(run, expected_seq if seq > expected_seq else seq, f"event {what}")
        digest = ""
        if kind in ("posted", "revised"):
            row = entries.get((run, entry))
            if row is None:
                return BrokenLink(run, seq, f"the entry {entry} it posted is missing")
            digest = entry_content(*row)
        computed = link(previous, run, seq, cycle, kind, entry, source, activation, details, digest)
        if computed != stored:
            return BrokenLink(run, seq, "hash mismatch: the event (or the entry it posted) was altered, or one before it was removed or inserted")
        previous = computed
        expected_seq += 1
    if previous != head:
        return BrokenLink(run, None, "the run's head hash does not match its last event: events were removed or added at the end")
    return None
