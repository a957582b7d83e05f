"""What a remote action reads: a snapshot of the run's entries, taken per cycle.

An action run in another process cannot read the controller's blackboard,
so it gets a copy of what it may read, taken when its cycle is dispatched
(once per cycle, shared by every activation of the cycle). Nothing changes
the blackboard during a cycle (contributions are applied after every action
of the cycle returned), so the copy answers ``get``, ``latest``, ``find`` and
``entries`` exactly as the live :class:`~knowledge_sources.ReadView` would;
the tests compare the two on every space, key, status and world of a sudoku
run. SQL needs the controller's DuckDB connection and is refused, with what
to do instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from blackboard import (
    ROOT_CONTEXT,
    Entry,
    EntryNotFoundError,
    QueryError,
    Status,
    ValidationError,
)
from knowledge_sources import ReadView

from ._errors import ExecutorError


class ViewSnapshot(ReadView):
    """What a remote action reads: the run's entries when its cycle was dispatched.

    A :class:`~knowledge_sources.ReadView` that answers from a copy
    (``run_id``, ``cycle``, ``get``, ``latest``, ``find``, ``entries``);
    ``sql`` raises :class:`~blackboard.QueryError`, since it needs the
    controller's database: run a source that queries SQL in the loop.
    """

    __slots__ = ("_by_space", "_chains", "_cycle", "_entries", "_revised_by", "_run_id", "_slots")

    def __init__(self, run_id: int, cycle: int, entries: Iterable[Entry], revised_by: Mapping[int, int],
                 chains: Mapping[int, tuple[int, ...]]) -> None:
        self._run_id = run_id
        self._cycle = cycle
        self._entries = {e.id: e for e in entries}
        self._revised_by = dict(revised_by)
        self._chains = dict(chains)
        self._by_space: dict[str, list[int]] | None = None
        self._slots: dict[tuple[int, str, str], list[int]] = {}

    @classmethod
    def of(cls, view: ReadView) -> ViewSnapshot:
        """Take a snapshot of what ``view`` shows now."""
        bb = view._bb
        if bb._imported:
            raise ExecutorError(
                f"this run holds {bb._imported} bulk-imported entries, which stay in DuckDB and a snapshot "
                "cannot carry; run the sources that read the blackboard in the loop "
                "(executor={'*': ..., 'NAME': 'loop'})")
        return cls(bb.run_id, bb.cycle, bb._entries.values(), bb._revised_by, bb._chains)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ViewSnapshot, (self._run_id, self._cycle, tuple(self._entries.values()), self._revised_by, self._chains))

    @property
    def run_id(self) -> int:
        return self._run_id

    @property
    def cycle(self) -> int:
        return self._cycle

    def get(self, entry_id: int | Entry) -> Entry:
        eid = entry_id.id if isinstance(entry_id, Entry) else entry_id
        found = self._entries.get(eid) if type(eid) is int else None
        if found is None:
            raise EntryNotFoundError(eid)
        return found

    def latest(self, entry: int | Entry) -> Entry:
        """The newest version of an entry (following revisions)."""
        eid = entry.id if isinstance(entry, Entry) else entry
        if type(eid) is not int:
            raise EntryNotFoundError(eid)
        while eid in self._revised_by:
            eid = self._revised_by[eid]
        return self.get(eid)

    def find(self, space: str, key: str | None = None, *, status: str | None = Status.ACTIVE,
             context: int = ROOT_CONTEXT) -> list[Entry]:
        """As :meth:`Blackboard.find`: entries of ``space`` (with ``key``) visible in ``context``."""
        if type(space) is not str or (key is not None and type(key) is not str) or type(context) is not int:
            raise ValidationError("find", f"space and key must be strings and context an int, not {space!r}, {key!r}, {context!r}")
        by_space, slots = self._index()
        entries = self._entries
        if key is not None:
            ids: list[int] = []
            for ctx in self._chain(context) if context != ROOT_CONTEXT else (ROOT_CONTEXT,):
                ids = slots.get((ctx, space, key), [])
                if ids:
                    break
            found = [entries[i] for i in ids]
        elif context == ROOT_CONTEXT:
            found = [e for e in (entries[i] for i in by_space.get(space, ())) if e.context == context]
        else:
            found = self._visible(space, context)
        return found if status is None else [e for e in found if e.status == status]

    def entries(self, space: str | None = None, *, status: str | None = Status.ACTIVE) -> list[Entry]:
        if space is not None:
            found: Iterable[Entry] = (self._entries[i] for i in self._index()[0].get(space, ()))
        else:
            found = self._entries.values()
        return [e for e in found if status is None or e.status == status]

    def sql(self, query: str, params: Any = None) -> Any:
        """Refused: SQL needs the controller's database (run this source in the loop)."""
        raise QueryError(query, "an action run by the process or Ray executor reads a snapshot of the entries "
                                "(get, latest, find, entries), not SQL; run this source in the loop "
                                "(executor={'*': ..., 'NAME': 'loop'})")

    def _index(self) -> tuple[dict[str, list[int]], dict[tuple[int, str, str], list[int]]]:
        """Entry ids by space and by slot, in the order the blackboard holds them (built on first use)."""
        if self._by_space is None:
            self._by_space = {}
            for e in self._entries.values():
                self._by_space.setdefault(e.space, []).append(e.id)
                if e.key is not None:
                    self._slots.setdefault((e.context, e.space, e.key), []).append(e.id)
        return self._by_space, self._slots

    def _chain(self, context: int) -> tuple[int, ...]:
        chain = self._chains.get(context)
        if chain is None:
            raise ValidationError("context", f"no context {context!r} in this run", context)
        return chain

    def _visible(self, space: str, context: int) -> list[Entry]:
        depth = {ctx: i for i, ctx in enumerate(self._chain(context))}
        nearest: dict[str, int] = {}
        candidates = []
        for e in (self._entries[i] for i in self._index()[0].get(space, ())):
            d = depth.get(e.context)
            if d is None:
                continue
            candidates.append((d, e))
            if e.key is not None and d < nearest.get(e.key, len(depth)):
                nearest[e.key] = d
        return [e for d, e in candidates if e.key is None or nearest[e.key] == d]

    def __repr__(self) -> str:
        return f"<ViewSnapshot run={self._run_id} cycle={self._cycle} entries={len(self._entries)}>"
