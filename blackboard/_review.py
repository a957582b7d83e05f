"""The review queue: items held for a person, and their decisions.

The controller puts an item in review when an escalation rule says so (an
entry that needs a person's eye, a conflict won by too small a margin, an
activation that failed with no fallback). A held entry has the status
``pending_review``: it triggers nothing and wins nothing until a person
decides. Requests and decisions are events of the log, so every decision is
kept with who made it and why, and a file can be reviewed from another
process (``blackboard review PATH ...``) and the run resumed afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._entry import Event

REQUESTED = "review_requested"
DECISIONS = {"approve": "review_approved", "reject": "review_rejected", "edit": "review_edited"}


@dataclass(frozen=True)
class Review:
    """One item waiting for (or given) a person's decision."""

    id: int
    kind: str  # "entry", "conflict" or "failure"
    rule: str
    reason: str
    entry: int | None
    activation: int | None
    cycle: int
    details: Mapping[str, Any]
    decision: str | None = None
    by: str | None = None
    why: str | None = None

    @property
    def pending(self) -> bool:
        return self.decision is None

    def __str__(self) -> str:
        what = f"entry {self.entry}" if self.entry is not None else f"activation {self.activation}"
        state = "pending" if self.pending else f"{self.decision} by {self.by}"
        return f"review {self.id} [{self.kind}] {what}: {self.reason} ({state})"


def reviews_from(events: list[Event]) -> dict[int, Review]:
    """Every review of a run, by id (the seq of its request), with its decision."""
    found: dict[int, Review] = {}
    for event in events:
        if event.kind == REQUESTED and event.details:
            d = event.details
            found[event.seq] = Review(
                event.seq, d["kind"], d["rule"], d["reason"], event.entry, event.activation,
                event.cycle, dict(d),
            )
        elif event.kind in DECISIONS.values() and event.details:
            review = found.get(event.details["review"])
            if review is not None:
                found[review.id] = Review(
                    review.id, review.kind, review.rule, review.reason, review.entry,
                    review.activation, review.cycle, review.details,
                    event.kind.removeprefix("review_"), event.details.get("by"), event.details.get("why"),
                )
    return found
