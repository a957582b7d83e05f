"""The agenda: activations waiting to run, best first.

An activation (a KSAR in blackboard terms) is one source triggered by one
entry. The agenda is a heap ordered by rating (higher first) and then by
arrival, so the choice of what runs next is a pure function of the agenda:
:meth:`Agenda.select` can be property-tested without running anything.
A key of (source, trigger ids) is remembered for the whole run, so the same
activation is never queued twice.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from blackboard import Entry
from blackboard._display import escape, html_table, short, text_table
from knowledge_sources import KnowledgeSource

PENDING = "pending"
DONE = "done"
FAILED = "failed"
OBVIATED = "obviated"
SHOWN = 20  # rows a display shows


class Activation:
    """One source triggered by its entries, and what became of it."""

    __slots__ = (
        "id", "source", "triggers", "rating", "state", "attempts", "error",
        "queued_cycle", "cycle", "seconds", "started", "produced", "result", "worlds",
    )

    def __init__(self, aid: int, source: KnowledgeSource, triggers: tuple[Entry, ...],
                 rating: float, queued_cycle: int) -> None:
        self.id = aid
        self.source = source
        self.triggers = triggers
        self.rating = rating
        self.state = PENDING
        self.attempts = 0
        self.error: str | None = None
        self.queued_cycle = queued_cycle
        self.cycle: int | None = None
        self.seconds: float | None = None
        self.started: float | None = None  # Unix time its action started
        self.produced: tuple[int, ...] = ()
        self.result: Any = None
        self.worlds: list[Any] = []

    @property
    def trigger(self) -> Entry:
        return self.triggers[0]

    def __repr__(self) -> str:
        ids = ",".join(str(t.id) for t in self.triggers)
        return f"<Activation {self.id} {self.source.name}({ids}) rating={self.rating:.3g} {self.state}>"


class Agenda:
    """Pending activations, best first; never the same one twice."""

    __slots__ = ("_heap", "_seen")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Activation]] = []
        self._seen: set[tuple[str, tuple[int, ...]]] = set()

    def add(self, activation: Activation) -> bool:
        """Queue it unless the same source was already queued on the same triggers."""
        triggers = activation.triggers
        key = (activation.source.name, (triggers[0].id,) if len(triggers) == 1 else tuple(t.id for t in triggers))
        if key in self._seen:
            return False
        self._seen.add(key)
        heapq.heappush(self._heap, (-activation.rating, activation.id, activation))
        return True

    def requeue(self, activation: Activation) -> None:
        """Put an activation back (it must run again on fresh state)."""
        activation.state = PENDING
        heapq.heappush(self._heap, (-activation.rating, activation.id, activation))

    def seen(self, source: str, trigger_ids: tuple[int, ...]) -> bool:
        return (source, trigger_ids) in self._seen

    def pop(self) -> Activation:
        return heapq.heappop(self._heap)[2]

    def select(self, limit: int) -> list[Activation]:
        """Remove and return the best ``limit`` activations (rating, then age)."""
        heap = self._heap
        if limit == 1 and heap:
            return [heapq.heappop(heap)[2]]
        return [heapq.heappop(heap)[2] for _ in range(min(limit, len(heap)))]

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def __iter__(self) -> Iterator[Activation]:
        """Pending activations, best first (without removing them)."""
        return iter([item[2] for item in sorted(self._heap)])

    def _rows(self) -> list[Activation]:
        return [item[2] for item in heapq.nsmallest(SHOWN, self._heap)]

    def __repr__(self) -> str:
        return f"<Agenda: {len(self._heap)} waiting>"

    def __str__(self) -> str:
        rows = [(a.id, a.source.name, ",".join(str(t.id) for t in a.triggers), a.rating, a.queued_cycle)
                for a in self._rows()]
        more = len(self._heap) - SHOWN
        return text_table(("id", "source", "triggers", "rating", "queued in cycle"), rows,
                          title=f"agenda: {len(self._heap)} activations waiting, best first",
                          note=f"… {more} more" if more > 0 else "")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        rows = [[str(a.id), escape(a.source.name),
                 ", ".join(f"{t.id} <code>{escape(short(t.value, 24))}</code>" for t in a.triggers),
                 f"{a.rating:.4g}", str(a.queued_cycle)] for a in self._rows()]
        more = len(self._heap) - SHOWN
        return html_table(("id", "source", "triggers", "rating", "queued in cycle"), rows,
                          caption=f"agenda: {len(self._heap)} activations waiting, best first",
                          note=f"… {more} more" if more > 0 else "")
