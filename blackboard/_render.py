"""How a blackboard, a space and an entry look in a notebook and a terminal.

Everything here reads the in-memory working set (no SQL, no flush), so
displaying a blackboard in the middle of a run costs microseconds and never
writes to the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ._display import (
    badge,
    confidence_bar,
    escape,
    html_table,
    short,
    text_bar,
    text_table,
)
from ._entry import Entry, Status


class Blackboard(Protocol):
    """What a blackboard display reads: a protocol, so that this module, which the
    store imports, does not import the store back."""

    @property
    def path(self) -> str: ...
    @property
    def run_id(self) -> int: ...
    cycle: int

    def __len__(self) -> int: ...
    def space_names(self) -> list[str]: ...
    def space(self, name: str) -> SpaceView: ...
    def contexts(self, status: str | None = None) -> Sequence[Any]: ...
    def reviews(self, *, pending: bool | None = True) -> Sequence[Any]: ...

ENTRY_COLUMNS = ("id", "key", "value", "confidence", "status", "source", "cycle", "context")
STATUS_ORDER = {s.value: i for i, s in enumerate(Status)}
SHOWN = 20


class SpaceView:
    """One space of a blackboard: its entries, best first (``bb.space(name)``)."""

    __slots__ = ("_entries", "description", "name")

    def __init__(self, name: str, description: str, entries: Sequence[Entry]) -> None:
        self.name = name
        self.description = description
        self._entries = sorted(entries, key=lambda e: (STATUS_ORDER.get(e.status, 9), -e.confidence, e.id))

    @property
    def entries(self) -> list[Entry]:
        """Active entries, most confident first."""
        return [e for e in self._entries if e.status == Status.ACTIVE]

    @property
    def all(self) -> list[Entry]:
        """Every version, whatever its status."""
        return list(self._entries)

    @property
    def best(self) -> Entry | None:
        active = self.entries
        return active[0] if active else None

    def counts(self) -> dict[str, int]:
        return dict(Counter(str(e.status) for e in self._entries))

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __repr__(self) -> str:
        return f"<SpaceView {self.name!r}: {self._summary()}>"

    def _summary(self) -> str:
        counts = self.counts()
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: STATUS_ORDER.get(kv[0], 9))) or "empty"

    def __str__(self) -> str:
        rows = [_text_row(e) for e in self._entries[:SHOWN]]
        more = len(self._entries) - SHOWN
        return text_table(ENTRY_COLUMNS, rows, title=f"space {self.name!r}: {self._summary()}",
                          note=f"… {more} more" if more > 0 else "")

    def _repr_html_(self) -> str:
        rows = [_html_row(e) for e in self._entries[:SHOWN]]
        more = len(self._entries) - SHOWN
        caption = f"space {escape(self.name)} <span style='font-weight:normal;color:#666'>{escape(self._summary())}</span>"
        return html_table(ENTRY_COLUMNS, rows, caption=caption, note=f"… {more} more (bb.space({self.name!r}).all)" if more > 0 else "")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def space_rows(bb: Blackboard) -> list[tuple[str, dict[str, int], Entry | None]]:
    rows = []
    for name in bb.space_names():
        view = bb.space(name)
        rows.append((name, view.counts(), view.best))
    return rows


def blackboard_text(bb: Blackboard) -> str:
    rows = []
    for name, counts, best in space_rows(bb):
        rows.append((name, counts.get("active", 0), sum(counts.values()) - counts.get("active", 0),
                     text_bar(best.confidence) if best else "—", short(best.value, 30) if best else ""))
    head = f"blackboard {bb.path}  run {bb.run_id}  cycle {bb.cycle}  {len(bb)} entries"
    return text_table(("space", "active", "other", "best", "best value"), rows, title=head)


def blackboard_html(bb: Blackboard) -> str:
    rows = []
    for name, counts, best in space_rows(bb):
        others = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "active") or "—"
        rows.append((
            f"<b>{escape(name)}</b>", str(counts.get("active", 0)), escape(others),
            confidence_bar(best.confidence) if best else "—",
            f"<code>{escape(short(best.value, 40))}</code>" if best else "",
        ))
    caption = (f"blackboard <code>{escape(bb.path)}</code> "
               f"<span style='font-weight:normal;color:#666'>run {bb.run_id} · cycle {bb.cycle} · "
               f"{len(bb)} entries · {len(bb.contexts()) - 1} contexts · "
               f"{len(bb.reviews())} waiting for review</span>")
    return html_table(("space", "active", "other versions", "best confidence", "best value"), rows, caption=caption,
                      note="bb.space(name) shows a space's entries")


def _html_row(e: Entry) -> list[str]:
    return [str(e.id), escape(e.key) if e.key is not None else "", f"<code>{escape(short(e.value))}</code>",
            confidence_bar(e.confidence), badge(e.status), escape(e.source), str(e.cycle), str(e.context)]


def _text_row(e: Entry) -> list[Any]:
    return [e.id, e.key if e.key is not None else "", short(e.value, 40), text_bar(e.confidence),
            str(e.status), e.source, e.cycle, e.context]
