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
own, by default: one worker process per source for :class:`ProcessExecutor`,
one Ray actor per source for :class:`~controller.RayExecutor`; the local
object is copied there once, at its first activation. Sources declared with
the decorator are functions: any worker runs them.

Sync actions run in the loop are called inline, with no task spawned. An
executor is the opposite trade: every remote activation pays a round trip
(about 0.1 ms to a local process, 1 ms to Ray, see the README) and goes
through the waiting path, so timeouts, retries and failure recording apply to
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
import multiprocessing
import os
import pickle
import sys
import traceback
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, ClassVar, Self

import anyio

from blackboard import (
    ROOT_CONTEXT,
    Entry,
    EntryNotFoundError,
    QueryError,
    Status,
    ValidationError,
)
from knowledge_sources import KnowledgeSource, ReadView
from knowledge_sources._source import _FunctionSource

from ._errors import ConfigurationError, ExecutorError

EXECUTORS = ("loop", "process", "ray")
_WORKER_CACHE = 64  # unpickled actions a worker process keeps


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


class ViewSnapshot(ReadView):
    """What a remote action reads: the run's entries when its cycle was dispatched.

    A :class:`~knowledge_sources.ReadView` that answers from a copy
    (``run_id``, ``cycle``, ``get``, ``latest``, ``find``, ``entries``);
    ``sql`` raises :class:`~blackboard.QueryError`, since it needs the
    controller's database: run a source that queries SQL in the loop.
    """

    __slots__ = ("_by_space", "_chains", "_cycle", "_entries", "_revised_by", "_run_id", "_slots")

    def __init__(self, run_id: int, cycle: int, entries: Iterable[Entry], revised_by: Mapping[int, int],
                 chains: Mapping[int, tuple[int, ...]]) -> None:
        self._run_id = run_id
        self._cycle = cycle
        self._entries = {e.id: e for e in entries}
        self._revised_by = dict(revised_by)
        self._chains = dict(chains)
        self._by_space: dict[str, list[int]] | None = None
        self._slots: dict[tuple[int, str, str], list[int]] = {}

    @classmethod
    def of(cls, view: ReadView) -> ViewSnapshot:
        """Take a snapshot of what ``view`` shows now."""
        bb = view._bb
        if bb._imported:
            raise ExecutorError(
                f"this run holds {bb._imported} bulk-imported entries, which stay in DuckDB and a snapshot "
                "cannot carry; run the sources that read the blackboard in the loop "
                "(executor={'*': ..., 'NAME': 'loop'})")
        return cls(bb.run_id, bb.cycle, bb._entries.values(), bb._revised_by, bb._chains)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ViewSnapshot, (self._run_id, self._cycle, tuple(self._entries.values()), self._revised_by, self._chains))

    @property
    def run_id(self) -> int:
        return self._run_id

    @property
    def cycle(self) -> int:
        return self._cycle

    def get(self, entry_id: int | Entry) -> Entry:
        eid = entry_id.id if isinstance(entry_id, Entry) else entry_id
        found = self._entries.get(eid) if type(eid) is int else None
        if found is None:
            raise EntryNotFoundError(eid)
        return found

    def latest(self, entry: int | Entry) -> Entry:
        """The newest version of an entry (following revisions)."""
        eid = entry.id if isinstance(entry, Entry) else entry
        if type(eid) is not int:
            raise EntryNotFoundError(eid)
        while eid in self._revised_by:
            eid = self._revised_by[eid]
        return self.get(eid)

    def find(self, space: str, key: str | None = None, *, status: str | None = Status.ACTIVE,
             context: int = ROOT_CONTEXT) -> list[Entry]:
        """As :meth:`Blackboard.find`: entries of ``space`` (with ``key``) visible in ``context``."""
        if type(space) is not str or (key is not None and type(key) is not str) or type(context) is not int:
            raise ValidationError("find", f"space and key must be strings and context an int, not {space!r}, {key!r}, {context!r}")
        by_space, slots = self._index()
        entries = self._entries
        if key is not None:
            ids: list[int] = []
            for ctx in self._chain(context) if context != ROOT_CONTEXT else (ROOT_CONTEXT,):
                ids = slots.get((ctx, space, key), [])
                if ids:
                    break
            found = [entries[i] for i in ids]
        elif context == ROOT_CONTEXT:
            found = [e for e in (entries[i] for i in by_space.get(space, ())) if e.context == context]
        else:
            found = self._visible(space, context)
        return found if status is None else [e for e in found if e.status == status]

    def entries(self, space: str | None = None, *, status: str | None = Status.ACTIVE) -> list[Entry]:
        if space is not None:
            found: Iterable[Entry] = (self._entries[i] for i in self._index()[0].get(space, ()))
        else:
            found = self._entries.values()
        return [e for e in found if status is None or e.status == status]

    def sql(self, query: str, params: Any = None) -> Any:
        """Refused: SQL needs the controller's database (run this source in the loop)."""
        raise QueryError(query, "an action run by the process or Ray executor reads a snapshot of the entries "
                                "(get, latest, find, entries), not SQL; run this source in the loop "
                                "(executor={'*': ..., 'NAME': 'loop'})")

    def _index(self) -> tuple[dict[str, list[int]], dict[tuple[int, str, str], list[int]]]:
        """Entry ids by space and by slot, in the order the blackboard holds them (built on first use)."""
        if self._by_space is None:
            self._by_space = {}
            for e in self._entries.values():
                self._by_space.setdefault(e.space, []).append(e.id)
                if e.key is not None:
                    self._slots.setdefault((e.context, e.space, e.key), []).append(e.id)
        return self._by_space, self._slots

    def _chain(self, context: int) -> tuple[int, ...]:
        chain = self._chains.get(context)
        if chain is None:
            raise ValidationError("context", f"no context {context!r} in this run", context)
        return chain

    def _visible(self, space: str, context: int) -> list[Entry]:
        depth = {ctx: i for i, ctx in enumerate(self._chain(context))}
        nearest: dict[str, int] = {}
        candidates = []
        for e in (self._entries[i] for i in self._index()[0].get(space, ())):
            d = depth.get(e.context)
            if d is None:
                continue
            candidates.append((d, e))
            if e.key is not None and d < nearest.get(e.key, len(depth)):
                nearest[e.key] = d
        return [e for d, e in candidates if e.key is None or nearest[e.key] == d]

    def __repr__(self) -> str:
        return f"<ViewSnapshot run={self._run_id} cycle={self._cycle} entries={len(self._entries)}>"


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
        where = f"in process {os.getpid()}"
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


def stateful(source: KnowledgeSource) -> bool:
    """A source declared as a class may keep state between activations; a decorated function does not."""
    return not isinstance(source, _FunctionSource)


# ---------------------------------------------------------- process pool
class ProcessExecutor(Executor):
    """Actions run in worker processes (spawned, so no DuckDB state is forked).

    ``workers``: size of the shared pool that runs function sources (default:
    one per core). ``stateful``: each class-declared source lives in a
    process of its own, so its state persists across activations (else it
    runs on a fresh copy every time, in the shared pool).

    Actions and sources travel pickled; with cloudpickle installed (Ray
    brings one) functions defined in ``__main__`` or a notebook work too. A
    timed-out action cannot be stopped in its process: it is abandoned, as a
    sync action on a thread is, and its result discarded. A worker process
    that dies fails its activation with an :class:`ExecutorError` (retries
    and fallbacks apply) and the next call starts a new one; a stateful
    source's host restarts from the local copy. Hosts live until
    :meth:`close`: one per source object given to this executor.
    """

    kind = "process"

    def __init__(self, workers: int | None = None, *, stateful: bool = True) -> None:
        super().__init__()
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ConfigurationError("executor", f"ProcessExecutor workers must be a positive int or None, not {workers!r}")
        self.workers = workers or os.cpu_count() or 1
        self.stateful = stateful
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._hosts: dict[int, tuple[KnowledgeSource, concurrent.futures.ProcessPoolExecutor]] = {}
        self._actions: dict[int, tuple[KnowledgeSource, bytes]] = {}

    async def call(self, source: KnowledgeSource, trigger: Entry, view: ReadView | None) -> Any:
        payload = self.snapshot(view)
        if self.stateful and stateful(source):
            pool = self._host(source)
            future = pool.submit(_call_hosted, trigger, payload)
        else:
            pool = self._shared()
            future = pool.submit(_call_shipped, self._action(source), trigger, payload)
        try:
            return unwrap(await wait(future, future.cancel))
        except concurrent.futures.process.BrokenProcessPool:
            self._forget(pool)
            raise ExecutorError(f"the worker process running {source.name!r} died") from None

    def _pack(self, serial: int, snapshot: ViewSnapshot) -> Any:
        return serial, pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)

    def _shared(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def _action(self, source: KnowledgeSource) -> bytes:
        held = self._actions.get(id(source))
        if held is None or held[0] is not source:
            held = (source, dumps(action_of(source), f"the action of {source.name!r}"))
            self._actions[id(source)] = held
        return held[1]

    def _host(self, source: KnowledgeSource) -> concurrent.futures.ProcessPoolExecutor:
        held = self._hosts.get(id(source))
        if held is None or held[0] is not source:
            pool = concurrent.futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=_adopt,
                initargs=(dumps(source, f"source {source.name!r}"),))
            held = (source, pool)
            self._hosts[id(source)] = held
        return held[1]

    def _forget(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        """A broken pool is dropped; the next call starts a new one (a host restarts from the local copy)."""
        if pool is self._pool:
            self._pool = None
        self._hosts = {k: v for k, v in self._hosts.items() if v[1] is not pool}
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pools = [held[1] for held in self._hosts.values()] + ([self._pool] if self._pool is not None else [])
        self._pool, self._hosts, self._actions = None, {}, {}
        self._forget_snapshot()
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return f"<ProcessExecutor workers={self.workers} stateful={self.stateful}>"


# what a worker process holds: the last snapshot, recent actions, its hosted source
_SNAPSHOT: tuple[Any, Any] = (None, None)
_ACTIONS: dict[bytes, Callable[..., Any]] = {}
_HOSTED: list[KnowledgeSource] = []


def _view(payload: tuple[Any, bytes] | None) -> ViewSnapshot | None:
    global _SNAPSHOT
    if payload is None:
        return None
    key, data = payload
    if _SNAPSHOT[0] != key:
        _SNAPSHOT = (key, pickle.loads(data))
    return _SNAPSHOT[1]  # type: ignore[no-any-return]


def _call_shipped(action: bytes, trigger: Entry, payload: tuple[Any, bytes] | None) -> tuple[bool, Any]:
    fn = _ACTIONS.get(action)
    if fn is None:
        if len(_ACTIONS) >= _WORKER_CACHE:
            _ACTIONS.clear()
        fn = _ACTIONS[action] = pickle.loads(action)
    return perform(fn, trigger, _view(payload))


def _adopt(source: bytes) -> None:
    _HOSTED.append(pickle.loads(source))


def _call_hosted(trigger: Entry, payload: tuple[Any, bytes] | None) -> tuple[bool, Any]:
    return perform(_HOSTED[0]._fn, trigger, _view(payload))


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
        if value in ("process", "ray"):
            if value not in owned:
                owned[value] = ProcessExecutor() if value == "process" else _ray_executor()
            return owned[value]
        raise ConfigurationError(where, f"must be 'loop', 'process', 'ray' or an Executor "
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


def _ray_executor() -> Executor:
    from ._ray import RayExecutor

    return RayExecutor()
