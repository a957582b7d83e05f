"""How a knowledge source is declared.

A source is a plain object holding its declaration (what it watches, its
precondition, what it may write, how it wants to be scheduled) and its
action. It is built by the :func:`knowledge_source` decorator on a function,
or by subclassing :class:`KnowledgeSource` and defining ``action``. Nothing is
registered anywhere on declaration: a source belongs to the controllers it is
given to, so re-running a notebook cell simply makes a new object.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import rule_engine

from blackboard import Space

from ._errors import SourceDefinitionError
from ._fastrule import fast_matcher
from ._rules import compile_rule, symbol_types

OnStale = Literal["obviate", "revalidate"]
EVENT_KINDS = frozenset({"posted", "revised", "retracted", "superseded", "reinstated"})


def _names(value: str | Iterable[str] | None, what: str, owner: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise SourceDefinitionError(owner, f"{what} must be a name or names, not {value!r}") from None
    for n in names:
        if not isinstance(n, str) or not n:
            raise SourceDefinitionError(owner, f"{what} must be non-empty strings, not {n!r}")
    return names


class KnowledgeSource:
    """An independent problem-solver: watches spaces, checks a rule, contributes.

    Subclass and define ``action(self, entry, view)`` (sync or async; it may
    return, or yield, contributions), or use :func:`knowledge_source`.

    Parameters
    ----------
    name: unique among the sources of one controller.
    watches: spaces whose new entries may trigger this source.
    when: precondition, a rule-engine expression over the entry's facts
        (metadata and the top-level fields of its value). None: always.
    writes: spaces this source may write (default: the watched spaces).
    events: event kinds that trigger it (default ``posted``; also
        ``revised``, ``retracted``, ``superseded``, ``reinstated``).
    priority: added to the activation's rating; higher runs first.
    on_stale: what happens to a waiting activation whose trigger was
        retracted or superseded: ``"obviate"`` drops it, ``"revalidate"``
        checks the precondition again on the trigger's latest version.
    retrigger_on_revision: trigger again when the trigger entry is revised.
    timeout, retries, retry_on, backoff, fallback: failure handling
        (seconds; attempts after the first; exception types; base delay;
        the name of a source that takes over when retries are exhausted).
    breaker_threshold, breaker_cooldown: after this many failures in a row
        the source is not activated for this many seconds (circuit breaker).
    reliability: weight of this source's claims in weighted-vote conflicts.
    tags: free labels that policies can test (``"reviewed" in tags``).
    """

    name: str = ""
    watches: tuple[str, ...] = ()
    when: str | None = None
    writes: tuple[str, ...] | None = None
    events: tuple[str, ...] = ("posted",)
    priority: float = 0.0
    on_stale: OnStale = "obviate"
    retrigger_on_revision: bool = False
    timeout: float | None = None
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    backoff: float = 0.05
    fallback: str | None = None
    breaker_threshold: int | None = None
    breaker_cooldown: float = 30.0
    reliability: float = 1.0
    tags: tuple[str, ...] = ()
    description: str = ""

    def __init__(self, **options: Any) -> None:
        cls = type(self)
        for option, value in options.items():
            if not hasattr(cls, option) or option.startswith("_") or option in ("action", "check"):
                raise SourceDefinitionError(
                    options.get("name") or cls.__name__, f"unknown option {option!r}"
                )
            setattr(self, option, value)
        if "name" not in options and not self.name:
            self.name = cls.__name__
        self._fn: Callable[..., Any] = self._bound_action()
        self._setup()

    @property
    def definition(self) -> tuple[str, str]:
        """Where this source was defined: (module, qualified name).

        A controller takes a new source with a taken name in place of the old
        one when both have the same definition: that is a notebook cell run
        again, not two different sources that clash.
        """
        return (type(self).__module__, type(self).__qualname__)

    def _bound_action(self) -> Callable[..., Any]:
        action = getattr(self, "action", None)
        if action is None or not callable(action):
            raise SourceDefinitionError(self.name, "has no action: define action(self, entry, view)")
        return action  # type: ignore[no-any-return]

    def _setup(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name:
            raise SourceDefinitionError(repr(name), "a source needs a non-empty string name")
        self.watches = _names(self.watches, "watches", name)
        if not self.watches:
            raise SourceDefinitionError(name, "watches no space; give watches='space' or several")
        self.writes = _names(self.writes, "writes", name) if self.writes is not None else self.watches
        self.events = _names(self.events, "events", name)
        unknown = set(self.events) - EVENT_KINDS
        if unknown:
            raise SourceDefinitionError(name, f"unknown event kinds {sorted(unknown)}; known: {sorted(EVENT_KINDS)}")
        self.tags = _names(self.tags, "tags", name)
        if self.on_stale not in ("obviate", "revalidate"):
            raise SourceDefinitionError(name, f"on_stale must be 'obviate' or 'revalidate', not {self.on_stale!r}")
        for field, value in (("priority", self.priority), ("reliability", self.reliability), ("backoff", self.backoff)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SourceDefinitionError(name, f"{field} must be a finite number, not {value!r}")
        if self.backoff < 0 or self.reliability < 0:
            raise SourceDefinitionError(name, "backoff and reliability must not be negative")
        if self.timeout is not None and (isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float))
                                         or not math.isfinite(self.timeout) or self.timeout <= 0):
            raise SourceDefinitionError(name, f"timeout must be a positive number of seconds, not {self.timeout!r}")
        threshold = self.breaker_threshold
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1):
            raise SourceDefinitionError(name, f"breaker_threshold must be a positive int or None, not {threshold!r}")
        cooldown = self.breaker_cooldown
        if isinstance(cooldown, bool) or not isinstance(cooldown, (int, float)) or cooldown < 0:
            raise SourceDefinitionError(name, f"breaker_cooldown must be a non-negative number of seconds, not {cooldown!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise SourceDefinitionError(name, f"retries must be a non-negative int, not {self.retries!r}")
        if isinstance(self.retry_on, type):
            self.retry_on = (self.retry_on,)
        try:
            self.retry_on = tuple(self.retry_on)
        except TypeError:
            raise SourceDefinitionError(name, f"retry_on must be exception classes, not {self.retry_on!r}") from None
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in self.retry_on):
            raise SourceDefinitionError(name, f"retry_on must be exception classes, not {self.retry_on!r}")
        if not isinstance(name, str) or not name.isprintable() or not name.isascii() and not _utf8(name):
            raise SourceDefinitionError(repr(name), "a source name must be printable text")
        fn = self._fn
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
        # Sync actions without timeout or retries run inline; the rest as tasks.
        self.needs_task = self.is_async or self.timeout is not None or self.retries > 0
        self.wants_view = _arity(fn, name) >= 2
        # Parsed now, so a syntax error is reported at declaration; symbols
        # are checked again by check() once the spaces' fields are known.
        self.rule: rule_engine.Rule | None = None
        self._use_rule(compile_rule(name, self.when) if self.when is not None else None)

    def _use_rule(self, rule: rule_engine.Rule | None) -> None:
        self.rule = rule
        self.matches: Callable[[Any], bool] = _always if rule is None else fast_matcher(rule)

    def check(self, spaces: Mapping[str, Space]) -> None:
        """Check the declared spaces it watches and writes, and its precondition's symbols."""
        if spaces:
            missing = [s for s in self.watches if s not in spaces]
            if missing:
                raise SourceDefinitionError(
                    self.name, f"watches undeclared space(s) {missing}; declared: {sorted(spaces)}"
                )
            not_writable = [s for s in self.writes or () if s not in spaces]
            if not_writable:
                raise SourceDefinitionError(
                    self.name, f"writes undeclared space(s) {not_writable}; declared: {sorted(spaces)}"
                )
        if self.when is None:
            return
        symbols = symbol_types(spaces.get(s) for s in self.watches)
        if symbols is not None:
            self._use_rule(compile_rule(self.name, self.when, symbols))

    def __call__(self, entry: Any, view: Any = None) -> Any:
        """Run the action directly (handy in tests and notebooks)."""
        return self._fn(entry, view) if self.wants_view else self._fn(entry)

    def __repr__(self) -> str:
        when = f" when {self.when!r}" if self.when else ""
        return f"<KnowledgeSource {self.name!r} watches {list(self.watches)}{when}>"


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _always(entry: Any) -> bool:
    return True


def _arity(fn: Callable[..., Any], owner: str) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 2
    if not positional:
        raise SourceDefinitionError(owner, "its action must take the triggering entry (and optionally the view)")
    return len(positional)


class _FunctionSource(KnowledgeSource):
    def __init__(self, fn: Callable[..., Any], **options: Any) -> None:
        self._function = fn
        if "name" not in options:
            options["name"] = getattr(fn, "__name__", "")
        options.setdefault("description", (inspect.getdoc(fn) or "").strip())
        super().__init__(**options)

    def _bound_action(self) -> Callable[..., Any]:
        return self._function

    @property
    def definition(self) -> tuple[str, str]:
        fn = self._function
        return (getattr(fn, "__module__", "") or "", getattr(fn, "__qualname__", "") or repr(fn))


def knowledge_source(
    fn: Callable[..., Any] | None = None,
    /,
    **options: Any,
) -> Any:
    """Declare a knowledge source from a function (sync or async).

    ::

        @knowledge_source(watches="token", when="value < 10")
        def relay(entry, view):
            return post("token", entry.value + 1)

    Takes the options of :class:`KnowledgeSource`; the name defaults to the
    function's name. Returns the source, which is still callable.
    """
    if fn is not None:
        if not callable(fn):
            raise SourceDefinitionError(repr(fn), "knowledge_source decorates a function")
        return _FunctionSource(fn, **options)

    def decorate(function: Callable[..., Any]) -> KnowledgeSource:
        return _FunctionSource(function, **options)

    return decorate
