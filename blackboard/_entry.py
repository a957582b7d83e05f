"""Typed records of the blackboard: entries, events and spaces.

Entries and events are ``NamedTuple``s: immutable, cheap to build (the hot
path builds one per contribution) and readable by attribute. A status change
replaces the entry in the store, so a reference someone keeps is a snapshot;
``Blackboard.get`` always returns the current one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, NamedTuple

from ._display import badge, card, confidence_bar, escape, short, text_bar

ROOT_CONTEXT = 0


class Status(enum.StrEnum):
    """Life-cycle of an entry."""

    ACTIVE = "active"
    SUPERSEDED = "superseded"
    RETRACTED = "retracted"
    PENDING_REVIEW = "pending_review"
    REJECTED = "rejected"


class Entry(NamedTuple):
    """A hypothesis or partial result on the blackboard."""

    id: int
    space: str
    key: str | None
    value: Any
    confidence: float
    status: str
    source: str
    cycle: int
    context: int
    supports: tuple[int, ...]
    revises: int | None
    run: int

    @property
    def active(self) -> bool:
        return self.status == Status.ACTIVE

    def facts(self) -> dict[str, Any]:
        """The symbols a rule sees for this entry (see :func:`entry_facts`)."""
        return entry_facts(self)

    def _repr_html_(self) -> str:
        return entry_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(entry_text(self))


class Event(NamedTuple):
    """One record of the append-only event log."""

    seq: int
    run: int
    cycle: int
    kind: str
    entry: int | None
    source: str | None
    activation: int | None
    details: Mapping[str, Any] | None


METADATA_FIELDS: dict[str, type] = {
    "id": int,
    "space": str,
    "key": str,
    "confidence": float,
    "status": str,
    "source": str,
    "cycle": int,
    "context": int,
    "run": int,
}


def entry_facts(entry: Entry) -> dict[str, Any]:
    """The symbols a rule-engine expression sees for ``entry``.

    The metadata fields (``id``, ``space``, ``key``, ``confidence``, ``status``,
    ``source``, ``cycle``, ``context``, ``run``) always mean the metadata.
    When the value is a JSON object its top-level keys are symbols of their
    own, so ``row == 3`` reads ``value["row"]``. ``value`` is the whole value,
    unless the object has a key ``value`` of its own, which then wins.
    """
    value = entry.value
    if type(value) is dict:
        facts = {"value": value}
        facts.update(value)
    else:
        facts = {"value": value}
    facts["id"] = entry.id
    facts["space"] = entry.space
    facts["key"] = entry.key
    facts["confidence"] = entry.confidence
    facts["status"] = entry.status
    facts["source"] = entry.source
    facts["cycle"] = entry.cycle
    facts["context"] = entry.context
    facts["run"] = entry.run
    return facts


class Context(NamedTuple):
    """A hypothetical world (see :meth:`Blackboard.open_context`); 0 is the root."""

    id: int
    parent: int
    label: str
    status: str  # "open", "failed" or "promoted"
    depth: int
    alternatives: int  # how many siblings it was opened among
    confidence: float
    cycle: int


ROOT = Context(ROOT_CONTEXT, ROOT_CONTEXT, "root", "open", 0, 1, 1.0, 0)


class Space:
    """A named level of abstraction, optionally with the fields of its values.

    ``fields`` maps the top-level keys of the values posted in this space to
    their Python types. When given, preconditions over the space are checked
    at registration: a symbol that is neither a field nor metadata is refused.
    """

    __slots__ = ("name", "fields", "description")

    def __init__(
        self,
        name: str,
        fields: Mapping[str, type] | None = None,
        description: str = "",
    ) -> None:
        from ._values import check_name

        check_name("space", name)
        if fields is not None and (not isinstance(fields, Mapping) or not all(isinstance(k, str) for k in fields)):
            from ._errors import ValidationError

            raise ValidationError("fields", f"must map field names to types, not {fields!r}", fields)
        self.name = name
        self.fields: dict[str, type] | None = dict(fields) if fields is not None else None
        self.description = description

    def __repr__(self) -> str:
        return f"Space({self.name!r}, fields={self.fields!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Space)
            and (self.name, self.fields) == (other.name, other.fields)
        )

    def __hash__(self) -> int:
        return hash(self.name)

    def to_json(self) -> dict[str, Any]:
        fields = None
        if self.fields is not None:
            fields = {k: getattr(t, "__name__", str(t)) for k, t in self.fields.items()}
        return {"name": self.name, "fields": fields, "description": self.description}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Space:
        types = {t.__name__: t for t in (int, float, str, bool, dict, list, object)}
        fields = data.get("fields")
        resolved = None
        if fields is not None:
            resolved = {k: types.get(v, object) for k, v in fields.items()}
        return cls(data["name"], resolved, data.get("description", ""))


# ------------------------------------------------------------------ display
def entry_html(entry: Entry) -> str:
    pairs = [
        ("space", escape(entry.space)), ("key", escape(entry.key) if entry.key is not None else "—"),
        ("value", f"<code>{escape(short(entry.value, 200))}</code>"),
        ("confidence", confidence_bar(entry.confidence)), ("status", badge(entry.status)),
        ("source", escape(entry.source)), ("cycle", str(entry.cycle)), ("context", str(entry.context)),
        ("derived from", ", ".join(map(str, entry.supports)) or "—"),
        ("revises", str(entry.revises) if entry.revises is not None else "—"),
    ]
    return card(f"entry {entry.id}", pairs)


def entry_text(entry: Entry) -> str:
    key = f"[{entry.key}]" if entry.key is not None else ""
    extra = f" from {list(entry.supports)}" if entry.supports else ""
    return (f"entry {entry.id} {entry.space}{key} = {short(entry.value, 60)}  "
            f"{text_bar(entry.confidence)}  {entry.status}  by {entry.source} in cycle {entry.cycle}"
            f"{'' if not entry.context else f' (context {entry.context})'}{extra}")
