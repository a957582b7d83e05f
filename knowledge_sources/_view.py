"""The read view an action receives: it can look, it cannot write.

Actions get this view, never the store, so the only way a source changes
the blackboard is by returning contributions. SQL through the view is
checked by DuckDB's own parser (``json_serialize_sql``, which only accepts
SELECT statements): exactly one SELECT, reading only the views ``entries``,
``events`` and ``activations`` of the source's own run (and its own CTEs),
and no table functions (``query_table``, ``read_csv``...), which could reach
other runs or files. Checking the parsed statement, not the text, means a
keyword inside a string literal is harmless and a table name built at run
time cannot slip through.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from blackboard import ROOT_CONTEXT, Blackboard, Entry, QueryError, Status

_VIEWS = frozenset({"entries", "events", "activations"})


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
        return self._bb.sql(query, params)

    def __repr__(self) -> str:
        return f"<ReadView run={self._bb.run_id}>"


def check_read_only(bb: Blackboard, query: str) -> None:
    """Refuse anything but one SELECT over the run's own views."""
    if not isinstance(query, str):
        raise QueryError(repr(query), "a query must be a string")
    text = bb.parse_sql(query)
    tree = json.loads(text)
    if tree.get("error"):
        raise QueryError(query, "a knowledge source may only run one SELECT statement "
                                f"({tree.get('error_message', 'not a SELECT')})")
    if len(tree.get("statements", ())) != 1:
        raise QueryError(query, "a knowledge source may run one statement at a time")
    allowed = _VIEWS | set(_cte_names(tree))
    for node in _nodes(tree):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            raise QueryError(query, "a knowledge source may not call table functions; read the views entries, events, activations")
        if kind == "BASE_TABLE" and str(node.get("table_name", "")).lower() not in allowed:
            raise QueryError(query, f"a knowledge source sees only its own run: read the views entries, events, activations, not {node.get('table_name')!r}")


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
