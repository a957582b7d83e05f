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

from blackboard import ROOT_CONTEXT, Entry, EntryNotFoundError, QueryError, Status
from blackboard import _lookup as lookup
from blackboard._lookup import check_find, newest, with_status
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
        return self.get(newest(self._revised_by, eid))

    def find(self, space: str, key: str | None = None, *, status: str | None = Status.ACTIVE,
             context: int = ROOT_CONTEXT) -> list[Entry]:
        """As :meth:`Blackboard.find`: entries of ``space`` (with ``key``) visible in ``context``."""
        check_find(space, key, context)
        by_space, slots = self._index()
        return with_status(lookup.find(self._entries, by_space, slots, self._chains, space, key, context), status)

    def entries(self, space: str | None = None, *, status: str | None = Status.ACTIVE) -> list[Entry]:
        if space is not None:
            return with_status((self._entries[i] for i in self._index()[0].get(space, ())), status)
        return with_status(self._entries.values(), status)

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

    def __repr__(self) -> str:
        return f"<ViewSnapshot run={self._run_id} cycle={self._cycle} entries={len(self._entries)}>"
