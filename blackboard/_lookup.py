"""Answering reads from the in-memory working set: ``find``, ``latest``, ``entries``.

Pure functions over the maps a blackboard keeps (entries by id, ids by
space and by slot, each context's chain of ancestors, revisions). The
blackboard answers with them, and so does the snapshot a remote action reads
(``controller/_snapshot.py``), so the two agree by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._entry import ROOT_CONTEXT, Entry
from ._errors import ValidationError

Slot = tuple[int, str, str]


def check_find(space: Any, key: Any, context: Any) -> None:
    if type(space) is not str or (key is not None and type(key) is not str) or type(context) is not int:
        raise ValidationError("find", f"space and key must be strings and context an int, not {space!r}, {key!r}, {context!r}")


def chain_of(chains: Mapping[int, tuple[int, ...]], context: int) -> tuple[int, ...]:
    """The context and its ancestors, nearest first."""
    chain = chains.get(context)
    if chain is None:
        raise ValidationError("context", f"no context {context!r} in this run", context)
    return chain


def find(entries: Mapping[int, Entry], by_space: Mapping[str, Sequence[int]], slots: Mapping[Slot, Sequence[int]],
         chains: Mapping[int, tuple[int, ...]], space: str, key: str | None, context: int) -> list[Entry]:
    """Entries of ``space`` (with ``key``) visible in ``context``, whatever their status, oldest first."""
    if key is not None:
        ids: Iterable[int] = ()
        # the nearest context of the chain that holds the slot shadows the others
        for ctx in chain_of(chains, context) if context != ROOT_CONTEXT else (ROOT_CONTEXT,):
            found_ids = slots.get((ctx, space, key))
            if found_ids:
                ids = found_ids
                break
        return [entries[i] for i in ids]
    if context == ROOT_CONTEXT:
        return [e for e in (entries[i] for i in by_space.get(space, ())) if e.context == context]
    return visible(entries, by_space.get(space, ()), chain_of(chains, context))


def visible(entries: Mapping[int, Entry], ids: Iterable[int], chain: tuple[int, ...]) -> list[Entry]:
    """Of ``ids``, the entries visible along ``chain``: the nearest version of each slot."""
    depth = {ctx: i for i, ctx in enumerate(chain)}
    nearest: dict[str, int] = {}
    candidates = []
    for e in (entries[i] for i in ids):
        d = depth.get(e.context)
        if d is None:
            continue
        candidates.append((d, e))
        if e.key is not None and d < nearest.get(e.key, len(chain)):
            nearest[e.key] = d
    return [e for d, e in candidates if e.key is None or nearest[e.key] == d]


def newest(revised_by: Mapping[int, int], entry_id: int) -> int:
    """The id of the newest version of ``entry_id`` (following revisions)."""
    while entry_id in revised_by:
        entry_id = revised_by[entry_id]
    return entry_id


def with_status(found: Iterable[Entry], status: str | None) -> list[Entry]:
    return [e for e in found if status is None or e.status == status]
