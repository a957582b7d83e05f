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
from blackboard._display import card, escape, html_table, short

from ._errors import blackboard_of


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
    lost_to: dict[str, Any] | None = None

    @property
    def verdict(self) -> str:
        """One sentence: did it compete, and why did it win or lose?"""
        if self.lost_to is not None:
            lost = self.lost_to
            return (f"lost to entry {lost['entry']} ({short(lost['value'], 60)}) by {lost['strategy']}: "
                    f"scores {lost['scores']}, margin {lost['margin']}")
        if self.beat:
            strategies = ", ".join(sorted({str(b["strategy"]) for b in self.beat}))
            beaten = ", ".join(f"entry {b['entry']}" for b in self.beat)
            plural = "s" if len(self.beat) > 1 else ""
            return f"won against {len(self.beat)} competitor{plural} ({beaten}) by {strategies}"
        if self.entry.key is None:
            return "no slot (no key), so it competed with nothing"
        return "nothing else claimed its slot"

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
            "lost_to": self.lost_to,
            "verdict": self.verdict,
        }

    @property
    def text(self) -> str:
        e = self.entry
        lines = [f"entry {e.id} in {e.space!r}" + (f" (key {e.key!r})" if e.key else "")
                 + f" = {short(e.value, 120)}, confidence {e.confidence:g}, {e.status}"]
        how = f"posted by {self.posted_by!r} in cycle {e.cycle}"
        if self.activation is not None:
            how += f", activation {self.activation['id']}"
            if self.triggers:
                how += " triggered by " + ", ".join(f"entry {t.id} ({t.space} {short(t.value, 60)})" for t in self.triggers)
        lines.append(how)
        if self.supports:
            lines.append("derived from " + ", ".join(f"entry {s.id}" for s in self.supports))
        if self.revises:
            lines.append("revises " + " <- ".join(f"entry {r.id} ({short(r.value, 60)})" for r in self.revises))
        lines.append(self.verdict)
        for b in self.beat:
            lines.append(f"beat entry {b['entry']} ({short(b['value'], 60)}) by {b['strategy']}: scores {b['scores']}, margin {b['margin']}")
        for h in self.history:
            if h["kind"] in ("superseded", "reinstated", "retracted", "denied"):
                reason = h.get("details", {}).get("reason", "")
                lines.append(f"cycle {h['cycle']}: {h['kind']}" + (f" ({reason})" if reason else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text)

    def _repr_html_(self) -> str:
        def one(entries: tuple[Entry, ...]) -> str:
            return ", ".join(f"{e.id} <code>{escape(short(e.value, 24))}</code> ({e.confidence:.3g})"
                             for e in entries) or "—"

        pairs = [
            ("posted by", escape(self.posted_by) + (f", activation {self.activation['id']}" if self.activation else "")),
            ("triggered by", one(self.triggers)), ("derived from", one(self.supports)),
            ("revises", one(self.revises)), ("verdict", escape(self.verdict)),
        ]
        rows = [[str(b["entry"]), f"<code>{escape(short(b['value'], 30))}</code>", escape(b["strategy"]),
                 escape(b["scores"]), escape(b["margin"]), str(b["cycle"])] for b in self.beat]
        beaten = html_table(("beat entry", "value", "strategy", "scores", "margin", "cycle"), rows) if rows else ""
        return self.entry._repr_html_() + card("why", pairs) + beaten


def explain(bb: Blackboard, entry: int | Entry) -> Explanation:
    """Explain an entry of ``bb``: its source, triggers, provenance and conflicts."""
    current = blackboard_of(bb).get(entry)
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
    lost_to = None
    for e in mine:
        if e.kind == "reinstated":
            lost_to = None
        elif (e.kind == "superseded" and e.details
                and e.details.get("reason") != "revised" and e.details.get("by") is not None):
            winner = e.details["by"]
            lost_to = {"entry": winner, "value": bb.get(winner).value if winner in bb else None, "cycle": e.cycle,
                       "strategy": e.details.get("strategy"), "scores": e.details.get("scores"),
                       "margin": e.details.get("margin")}
    history = tuple(
        {"seq": e.seq, "cycle": e.cycle, "kind": e.kind, "source": e.source, "details": dict(e.details or {})}
        for e in mine
    )
    return Explanation(current, current.source, record, triggers, supports, tuple(chain), history, beat, lost_to)
