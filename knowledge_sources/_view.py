"""The read view an action receives: it can look, it cannot write.

Actions get this view, never the store, so the only way a source changes
the blackboard is by returning contributions. SQL through the view runs in
the blackboard's SQL sandbox (``Blackboard.sandboxed_sql``): a separate,
locked-down DuckDB holding only this run's ``entries``, ``events`` and
``activations``, with no access to files, URLs, extensions or settings. That
is the boundary. Before it, DuckDB's parse of the statement
(``json_serialize_sql``) gives a clear early error for the usual mistakes
(several statements, a write, a ``bb_*`` table, a table function); it is a
courtesy, not a guard: a name it lets through still finds nothing to read.

A source with a ``timeout`` runs inside :meth:`ReadView.time_limit`, so a
query that never ends is interrupted at that limit and the run goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import pyarrow as pa

from blackboard import ROOT_CONTEXT, Blackboard, Entry, QueryError, Status

_VIEWS = frozenset({"entries", "events", "activations"})
# the deadline of the activation running in this task or thread (anyio copies it into worker threads)
_DEADLINE: ContextVar[float | None] = ContextVar("view_sql_deadline", default=None)


class ReadView:
    """What an action may read: entries of its own run, by id, key, space or SQL."""

    __slots__ = ("_bb",)

    def __init__(self, blackboard: Blackboard) -> None:
        self._bb = blackboard

    @property
    def run_id(self) -> int:
        return self._bb.run_id

    @property
    def cycle(self) -> int:
        return self._bb.cycle

    def get(self, entry_id: int) -> Entry:
        return self._bb.get(entry_id)

    def latest(self, entry: int | Entry) -> Entry:
        """The newest version of an entry (following revisions)."""
        return self._bb.latest(entry)

    def find(self, space: str, key: str | None = None, *, status: str | None = Status.ACTIVE,
             context: int = ROOT_CONTEXT) -> list[Entry]:
        return self._bb.find(space, key, status=status, context=context)

    def entries(self, space: str | None = None, *, status: str | None = Status.ACTIVE) -> list[Entry]:
        return self._bb.entries(space, status=status)

    def sql(self, query: str, params: Any = None) -> pa.Table:
        """One SELECT over this run's ``entries``, ``events`` and ``activations``."""
        check_read_only(self._bb, query)
        return self._bb.sandboxed_sql(query, params, deadline=_DEADLINE.get())

    @contextmanager
    def time_limit(self, seconds: float | None) -> Iterator[None]:
        """Interrupt any ``sql`` call made inside (in this task or its threads) ``seconds`` from now."""
        if seconds is None:
            yield
            return
        token = _DEADLINE.set(time.monotonic() + seconds)
        try:
            yield
        finally:
            _DEADLINE.reset(token)

    def __repr__(self) -> str:
        return f"<ReadView run={self._bb.run_id}>"


def check_read_only(bb: Blackboard, query: str) -> None:
    """The early, friendly refusal of what is plainly not one SELECT over the run's own views."""
    if not isinstance(query, str):
        raise QueryError(repr(query), "a query must be a string")
    problem = _verdicts.get(query)
    if problem is None:
        problem = _verdicts[query] = _problem(bb.parse_sql(query))
        if len(_verdicts) > 1024:  # SQL built anew at each call: keep the newest
            _verdicts.pop(next(iter(_verdicts)))
    if problem:
        raise QueryError(query, problem)


_verdicts: dict[str, str] = {}  # query text -> "" (fine) or why it is refused; a parse depends on the text only


def _problem(text: str) -> str:
    tree = json.loads(text)
    if tree.get("error"):
        return f"a knowledge source may only run one SELECT statement ({tree.get('error_message', 'not a SELECT')})"
    if len(tree.get("statements", ())) != 1:
        return "a knowledge source may run one statement at a time"
    allowed = _VIEWS | set(_cte_names(tree))
    for node in _nodes(tree):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            return "a knowledge source may not call table functions; read the views entries, events, activations"
        if kind == "BASE_TABLE" and str(node.get("table_name", "")).lower() not in allowed:
            return f"a knowledge source sees only its own run: read the views entries, events, activations, not {node.get('table_name')!r}"
    return ""


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _cte_names(tree: Any) -> Iterator[str]:
    for node in _nodes(tree):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for item in cte_map.get("map", ()):
                if isinstance(item, dict) and isinstance(item.get("key"), str):
                    yield item["key"].lower()
