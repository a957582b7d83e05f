"""What an action returns: contributions to the blackboard.

An action never writes; it returns (or yields) contributions and the
controller applies them, after the policy check and conflict resolution.
``post(...)``, ``revise(...)`` and ``retract(...)`` build them.
"""

from __future__ import annotations

from typing import Any

from blackboard import UNSET, Entry


class Post:
    """A new entry to post. ``supports`` defaults to the triggering entries."""

    __slots__ = ("space", "value", "key", "confidence", "supports", "context")

    def __init__(
        self,
        space: str,
        value: Any,
        key: str | None = None,
        confidence: float = 1.0,
        supports: tuple[int | Entry, ...] | list[int | Entry] | None = None,
        context: int | None = None,
    ) -> None:
        self.space = space
        self.value = value
        self.key = key
        self.confidence = confidence
        self.supports = supports
        self.context = context

    def __repr__(self) -> str:
        return f"Post({self.space!r}, {self.value!r}, key={self.key!r}, confidence={self.confidence!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Post) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__
        )


class Revise:
    """A new version of an existing entry (same space and key)."""

    __slots__ = ("entry", "value", "confidence", "supports")

    def __init__(self, entry: int | Entry, value: Any = UNSET, confidence: Any = UNSET,
                 supports: tuple[int | Entry, ...] | None = None) -> None:
        self.entry = entry.id if isinstance(entry, Entry) else entry
        self.value = value
        self.confidence = confidence
        self.supports = supports

    def __repr__(self) -> str:
        return f"Revise({self.entry!r}, value={self.value!r}, confidence={self.confidence!r})"


class Retract:
    """Withdraw an entry (it stays, with status ``retracted``)."""

    __slots__ = ("entry", "reason")

    def __init__(self, entry: int | Entry, reason: str = "") -> None:
        self.entry = entry.id if isinstance(entry, Entry) else entry
        self.reason = reason

    def __repr__(self) -> str:
        return f"Retract({self.entry!r}, reason={self.reason!r})"


class Alternative:
    """One world of a :class:`Fork`: a label and the entries posted in it."""

    __slots__ = ("label", "posts", "confidence")

    def __init__(self, label: str, posts: list[Post] | tuple[Post, ...], confidence: float = 1.0) -> None:
        self.label = label
        self.posts = tuple(posts)
        self.confidence = confidence

    def __repr__(self) -> str:
        return f"Alternative({self.label!r}, {len(self.posts)} posts, confidence={self.confidence!r})"


class Fork:
    """Open one child context per alternative, under the trigger's context."""

    __slots__ = ("alternatives",)

    def __init__(self, alternatives: list[Alternative] | tuple[Alternative, ...]) -> None:
        self.alternatives = tuple(alternatives)

    def __repr__(self) -> str:
        return f"Fork({list(self.alternatives)!r})"


class FailContext:
    """The trigger's context (or ``context``) holds a contradiction: fail it."""

    __slots__ = ("context", "reason")

    def __init__(self, reason: str, context: int | None = None) -> None:
        self.reason = reason
        self.context = context

    def __repr__(self) -> str:
        return f"FailContext({self.reason!r}, context={self.context!r})"


class PromoteContext:
    """The trigger's context (or ``context``) reached the goal: it is the answer."""

    __slots__ = ("context",)

    def __init__(self, context: int | None = None) -> None:
        self.context = context

    def __repr__(self) -> str:
        return f"PromoteContext(context={self.context!r})"


Contribution = Post | Revise | Retract | Fork | FailContext | PromoteContext


def post(space: str, value: Any, *, key: str | None = None, confidence: float = 1.0,
         supports: tuple[int | Entry, ...] | list[int | Entry] | None = None,
         context: int | None = None) -> Post:
    """A contribution that posts a new entry."""
    return Post(space, value, key, confidence, supports, context)


def revise(entry: int | Entry, *, value: Any = UNSET, confidence: Any = UNSET,
           supports: tuple[int | Entry, ...] | None = None) -> Revise:
    """A contribution that revises an entry."""
    return Revise(entry, value, confidence, supports)


def retract(entry: int | Entry, reason: str = "") -> Retract:
    """A contribution that retracts an entry."""
    return Retract(entry, reason)


def alternative(label: str, *posts: Post, confidence: float = 1.0) -> Alternative:
    """One alternative world for :func:`fork`, with what is posted in it."""
    return Alternative(label, posts, confidence)


def fork(*alternatives: Alternative) -> Fork:
    """Hypothetical reasoning: open a child context per alternative ("suppose r1c1 = 4")."""
    return Fork(alternatives)


def fail_context(reason: str, context: int | None = None) -> FailContext:
    """A contradiction: the context and everything posted in it are retracted."""
    return FailContext(reason, context)


def promote_context(context: int | None = None) -> PromoteContext:
    """The context reached the goal: its entries are the answer."""
    return PromoteContext(context)
