"""Where actions run: in the event loop (default), in worker processes, or on Ray.

The blackboard stays with the controller, its single writer. An executor
only runs actions: it ships an action what the action reads (its trigger
entry and, if it takes one, a view) and brings back what it returns. The
controller applies those contributions exactly as it applies local ones, at
the end of the cycle and in agenda order, so a run's result does not depend
on which executor ran its actions, nor on which worker finished first.

What a remote action reads is a :class:`ViewSnapshot`: the run's entries as
they were when the cycle's actions were dispatched (taken once per cycle,
shared by every activation of the cycle). The blackboard cannot change
during that time anyway (contributions are applied after every action of the
cycle returned), so a snapshot answers ``get``, ``latest``, ``find`` and
``entries`` exactly as the live view would. It cannot run ``sql`` (that needs
the controller's DuckDB connection): a source that queries SQL stays in the
loop, which the per-source form of the setting makes a one-word change::

    Controller(bb, sources, executor={"*": "ray", "reference_lookup": "loop"})

Stateful sources (declared as a class) keep their state in a host of their
own, by default: one worker process per source for :class:`~controller.ProcessExecutor`,
one Ray actor per source for :class:`~controller.RayExecutor`; the local
object is copied there once, at its first activation. Sources declared with
the decorator are functions: any worker runs them.

Sync actions run in the loop are called inline, with no task spawned. An
executor is the opposite trade: every remote activation pays a round trip
(W6 measured 0.9 ms to a local process, 5.5 ms to a local Ray, on a 2-core
machine; see the README) and goes through the waiting path, so timeouts, retries and failure recording apply to
it as to an async action. With the default ``"loop"`` the controller holds no
executor at all and its inline path is unchanged.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import importlib
import inspect
import itertools
import os
import pickle
import socket
import sys
import traceback
import weakref
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ClassVar, Self

import anyio

from blackboard import Entry
from knowledge_sources import KnowledgeSource, ReadView
from knowledge_sources._source import _FunctionSource

from ._errors import ConfigurationError, ExecutorError
from ._snapshot import ViewSnapshot


class Executor(abc.ABC):
    """Runs a controller's actions somewhere else than its event loop.

    Subclasses implement :meth:`call`. An executor given to a controller as
    an object belongs to the caller (share it among controllers; close it,
    or use it as a context manager); one named by a string belongs to its
    controller and is closed when the controller is collected.
    """

    kind: ClassVar[str] = ""

    def __init__(self) -> None:
        self._snapshot_of: tuple[Any, int, int] | None = None  # (blackboard, cycle, events) it shows
        self._snapshot_payload: Any = None
        self._snapshots = itertools.count(1)  # names each snapshot for the workers' caches

    @abc.abstractmethod
    async def call(self, source: KnowledgeSource, trigger: Entry, view: ReadView | None) -> Any:
        """Run ``source``'s action on ``trigger`` (and a snapshot of ``view``); its contributions."""

    def close(self) -> None:
        """Release the workers (an executor can be used again: they start anew)."""

    def snapshot(self, view: ReadView | None) -> Any:
        """The packed snapshot of ``view`` for this cycle (built once per cycle), or None."""
        if view is None:
            return None
        bb = view._bb
        held = self._snapshot_of
        # the blackboard itself, not its id: another one may be made at the same address
        if held is None or held[0] is not bb or held[1] != bb.cycle or held[2] != len(bb._events):
            self._snapshot_of = self._snapshot_payload = None  # let the last one go before packing the next
            self._snapshot_payload = self._pack(next(self._snapshots), ViewSnapshot.of(view))
            self._snapshot_of = (bb, bb.cycle, len(bb._events))
        return self._snapshot_payload

    def _forget_snapshot(self) -> None:
        self._snapshot_of = self._snapshot_payload = None

    def _pack(self, serial: int, snapshot: ViewSnapshot) -> Any:
        """How a snapshot travels to the workers (default: as it is)."""
        return snapshot

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


# ------------------------------------------------------------- both sides
def perform(fn: Callable[..., Any], trigger: Entry, view: Any) -> tuple[bool, Any]:
    """Run an action where it was sent: (True, contributions) or (False, what it raised)."""
    args = (trigger,) if view is None else (trigger, view)
    try:
        if inspect.isasyncgenfunction(fn):
            out: Any = asyncio.run(_collect(fn(*args)))
        elif inspect.iscoroutinefunction(fn):
            out = asyncio.run(fn(*args))
        else:
            out = fn(*args)
            if inspect.isgenerator(out):
                out = list(out)
        return True, out
    except Exception as exc:  # noqa: BLE001 - whatever an action raises fails only its activation, at home
        where = f"in process {os.getpid()} on {socket.gethostname()}"
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8))
        try:
            pickle.loads(pickle.dumps(exc))  # it must arrive, not only leave
        except Exception:  # noqa: BLE001 - any failure to travel: send its text instead
            exc = ExecutorError(f"the action raised {type(exc).__name__}: {exc}")
        return False, (exc, where, text)


async def _collect(gen: Any) -> list[Any]:
    return [item async for item in gen]


def unwrap(outcome: tuple[bool, Any]) -> Any:
    """The contributions of a remote call, or its error raised here with the remote traceback."""
    ok, value = outcome
    if ok:
        return value
    exc, where, text = value
    exc.add_note(f"raised {where}; remote traceback:\n{text.rstrip()}")
    raise exc


async def wait(future: concurrent.futures.Future[Any], cancel: Callable[[], Any]) -> Any:
    """Await a future of another thread or process; ``cancel()`` it if the wait is cancelled (a timeout)."""
    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # another anyio backend: wait on a worker thread
            return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)
        return await asyncio.wrap_future(future)
    except BaseException:
        if not future.done() or future.cancelled():  # a cancelled wait cancels the future, not the work
            cancel()
        raise


def dumps(obj: Any, what: str) -> bytes:
    """Pickle by value what plain pickle cannot (``__main__``, notebooks, closures) when cloudpickle is there."""
    try:
        return _pickler().dumps(obj)  # type: ignore[no-any-return]
    except Exception as exc:  # noqa: BLE001 - picklers raise many kinds; each is reported the same way
        hint = ("install cloudpickle (pip install cloudpickle) to send functions defined in __main__, "
                "a notebook or another function, or " if _pickler() is pickle else "")
        raise ExecutorError(f"cannot send {what} to a worker ({type(exc).__name__}: {exc}); "
                            f"{hint}define it at module level in an importable module") from None


def action_of(source: KnowledgeSource) -> Any:
    """What to send for a source's action: a decorated module-level function goes by name.

    ``@knowledge_source`` binds the function's name to the source, so pickle
    cannot find the function by its name; this finds it through the source.
    """
    fn = source._fn
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if isinstance(source, _FunctionSource) and module not in (None, "__main__") and "<" not in qualname:
        target: Any = sys.modules.get(module)  # type: ignore[arg-type]
        for part in qualname.split("."):
            target = getattr(target, part, None)
        if isinstance(target, _FunctionSource) and target._function is fn:
            return _Named(module, qualname)  # type: ignore[arg-type]
    return fn


class _Named:
    """A decorated function, pickled as the module path of its source."""

    __slots__ = ("module", "qualname")

    def __init__(self, module: str, qualname: str) -> None:
        self.module, self.qualname = module, qualname

    def __reduce__(self) -> tuple[Any, ...]:
        return _function_of, (self.module, self.qualname)


def _function_of(module: str, qualname: str) -> Callable[..., Any]:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target._function  # type: ignore[no-any-return]


_PICKLER: Any = None


def _pickler() -> Any:
    global _PICKLER
    if _PICKLER is None:
        try:
            import cloudpickle
        except ImportError:
            try:
                from ray import cloudpickle  # type: ignore[no-redef]  # Ray vendors one
            except ImportError:
                cloudpickle = pickle  # type: ignore[assignment]
        _PICKLER = cloudpickle
    return _PICKLER


def is_stateful(source: KnowledgeSource) -> bool:
    """A source declared as a class may keep state between activations; a decorated function does not."""
    return not isinstance(source, _FunctionSource)


# ---------------------------------------------------------------- routing
class Routing:
    """Which executor runs each source's actions (a name absent: the ``"*"`` one)."""

    __slots__ = ("_default", "_named", "_owned")

    def __init__(self, named: dict[str, Executor | None], default: Executor | None, owned: list[Executor]) -> None:
        self._named = named
        self._default = default
        self._owned = owned

    def __contains__(self, name: object) -> bool:
        return self.executor_for(name) is not None  # type: ignore[arg-type]

    def executor_for(self, name: str) -> Executor | None:
        return self._named.get(name, self._default)

    def close(self) -> None:
        for executor in self._owned:
            executor.close()


def routing(setting: Any, owner: object) -> Routing | None:
    """The routing of ``Controller(executor=setting)``; None when every action runs in the loop."""
    owned: dict[str, Executor] = {}

    def one(value: Any, where: str) -> Executor | None:
        if isinstance(value, Executor):
            return value
        if value == "loop":
            return None
        if isinstance(value, str) and value in EXECUTOR_KINDS:
            if value not in owned:
                owned[value] = EXECUTOR_KINDS[value]()
            return owned[value]
        raise ConfigurationError(where, f"must be 'loop', {', '.join(repr(k) for k in EXECUTOR_KINDS)} or an Executor "
                                        f"(or a mapping from source name, '*' for the rest, to one), not {value!r}")

    if isinstance(setting, Mapping):
        for name in setting:
            if not isinstance(name, str):
                raise ConfigurationError("executor", f"keys must be source names or '*', not {name!r}")
        named = {name: one(value, f"executor[{name!r}]") for name, value in setting.items() if name != "*"}
        default = one(setting.get("*", "loop"), "executor['*']")
    else:
        named, default = {}, one(setting, "executor")
    if default is None and all(ex is None for ex in named.values()):
        return None
    route = Routing(named, default, list(owned.values()))
    if owned:
        weakref.finalize(owner, route.close)
    return route


#: The executors ``Controller(executor="name")`` can make, by name: each
#: executor module registers its own (:func:`register_executor`), so this
#: module, which they build on, imports none of them.
EXECUTOR_KINDS: dict[str, Callable[[], Executor]] = {}


def register_executor(kind: str, factory: Callable[[], Executor]) -> None:
    """Let ``executor=kind`` name executors made by ``factory()`` (with their defaults)."""
    EXECUTOR_KINDS[kind] = factory
