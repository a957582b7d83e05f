"""The read view an action receives: it can look, it cannot write.

Actions get this view, never the store, so the only way a source changes
the blackboard is by returning contributions. SQL through the view is
limited to one read-only statement (``SELECT``/``WITH``/``FROM``...), and its
``entries``/``events`` views are those of the source's own run.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

from blackboard import ROOT_CONTEXT, Blackboard, Entry, QueryError, Status

_READ_ONLY = re.compile(r"^\s*(select|with|from|values|describe|summarize|show)\b", re.I)
_WRITES = re.compile(
    r"\b(insert|update|delete|create|drop|alter|attach|detach|copy|export|import|install|load|"
    r"pragma|set|call|checkpoint|vacuum|truncate|begin|commit|rollback|use)\b",
    re.I,
)
_OTHER_RUNS = re.compile(r"\bbb_(entry|event|activation|run)\b", re.I)


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

    def find(self, space: str, key: str | None = None, *, status: str | None = Status.ACTIVE,
             context: int = ROOT_CONTEXT) -> list[Entry]:
        return self._bb.find(space, key, status=status, context=context)

    def entries(self, space: str | None = None, *, status: str | None = Status.ACTIVE) -> list[Entry]:
        return self._bb.entries(space, status=status)

    def sql(self, query: str, params: Any = None) -> pa.Table:
        """One read-only SQL statement over this run's ``entries`` and ``events``."""
        if not _READ_ONLY.match(query) or ";" in query.strip().rstrip(";") or _WRITES.search(query):
            raise QueryError(query, "a knowledge source may only run one read-only statement (SELECT)")
        if _OTHER_RUNS.search(query):
            raise QueryError(query, "a knowledge source sees only its own run: use the views entries, events, activations")
        return self._bb.sql(query, params)

    def __repr__(self) -> str:
        return f"<ReadView run={self._bb.run_id}>"
