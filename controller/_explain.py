"""Why is this entry on the blackboard, and why did it win (or lose)?

:func:`explain` reads the event log and the activation records: who posted
the entry, which activation and triggers led to it, what it was derived
from, which versions it replaced, and every conflict resolution on its slot
that concerned it, with the strategy, the scores and the margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from blackboard import Blackboard, Entry


@dataclass(frozen=True)
class Explanation:
    """An entry's story, as data (:meth:`to_dict`) and in words (:attr:`text`)."""

    entry: Entry
    posted_by: str
    activation: dict[str, Any] | None
    triggers: tuple[Entry, ...]
    supports: tuple[Entry, ...]
    revises: tuple[Entry, ...]
    history: tuple[dict[str, Any], ...]
    beat: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry": self.entry._asdict() | {"status": str(self.entry.status)},
            "posted_by": self.posted_by,
            "activation": self.activation,
            "triggers": [t.id for t in self.triggers],
            "supports": [s.id for s in self.supports],
            "revises": [r.id for r in self.revises],
            "history": list(self.history),
            "beat": list(self.beat),
        }

    @property
    def text(self) -> str:
        e = self.entry
        lines = [f"entry {e.id} in {e.space!r}" + (f" (key {e.key!r})" if e.key else "")
                 + f" = {e.value!r}, confidence {e.confidence:g}, {e.status}"]
        how = f"posted by {self.posted_by!r} in cycle {e.cycle}"
        if self.activation is not None:
            how += f", activation {self.activation['id']}"
            if self.triggers:
                how += " triggered by " + ", ".join(f"entry {t.id} ({t.space} {t.value!r})" for t in self.triggers)
        lines.append(how)
        if self.supports:
            lines.append("derived from " + ", ".join(f"entry {s.id}" for s in self.supports))
        if self.revises:
            lines.append("revises " + " <- ".join(f"entry {r.id} ({r.value!r})" for r in self.revises))
        for b in self.beat:
            lines.append(f"beat entry {b['entry']} ({b['value']!r}) by {b['strategy']}: scores {b['scores']}, margin {b['margin']}")
        for h in self.history:
            if h["kind"] in ("superseded", "reinstated", "retracted", "denied"):
                reason = h.get("details", {}).get("reason", "")
                lines.append(f"cycle {h['cycle']}: {h['kind']}" + (f" ({reason})" if reason else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text


def explain(bb: Blackboard, entry: int | Entry) -> Explanation:
    """Explain an entry of ``bb``: its source, triggers, provenance and conflicts."""
    current = bb.get(entry)
    events = bb.events()
    mine = [e for e in events if e.entry == current.id]
    posted = next((e for e in mine if e.kind in ("posted", "revised")), None)
    record = bb.activation(posted.activation) if posted is not None and posted.activation is not None else None
    triggers = tuple(bb.get(t) for t in record["triggers"]) if record else ()
    supports = tuple(bb.get(s) for s in current.supports if s in bb)
    chain = []
    older = current.revises
    while older is not None:
        version = bb.get(older)
        chain.append(version)
        older = version.revises
    beat = tuple(
        {"entry": e.entry, "value": bb.get(e.entry).value, "cycle": e.cycle,
         "strategy": (e.details or {}).get("strategy"), "scores": (e.details or {}).get("scores"),
         "margin": (e.details or {}).get("margin")}
        for e in events
        if e.kind == "superseded" and e.details and e.details.get("by") == current.id
        and e.details.get("reason") != "revised"
    )
    history = tuple(
        {"seq": e.seq, "cycle": e.cycle, "kind": e.kind, "source": e.source, "details": dict(e.details or {})}
        for e in mine
    )
    return Explanation(current, current.source, record, triggers, supports, tuple(chain), history, beat)
