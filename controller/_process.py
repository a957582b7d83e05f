"""The process executor: actions in spawned worker processes on this machine.

Function sources share one pool; each class-declared source lives in a
process of its own (a pool of one, whose initializer unpickles the source),
so its state persists across activations. A snapshot travels pickled once
per cycle and each worker keeps the last one, so the activations of a cycle
do not unpickle it again; actions are cached the same way.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
from collections.abc import Callable
from typing import Any

from blackboard import Entry
from knowledge_sources import KnowledgeSource, ReadView

from ._errors import ConfigurationError, ExecutorError
from ._executor import (
    Executor,
    action_of,
    dumps,
    is_stateful,
    perform,
    register_executor,
    unwrap,
    wait,
)
from ._snapshot import ViewSnapshot

_WORKER_CACHE = 64  # unpickled actions a worker process keeps


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
        if not isinstance(stateful, bool):
            raise ConfigurationError("executor", f"ProcessExecutor stateful must be True or False, not {stateful!r}")
        self.stateful = stateful
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._hosts: dict[int, tuple[KnowledgeSource, concurrent.futures.ProcessPoolExecutor]] = {}
        self._actions: dict[int, tuple[KnowledgeSource, bytes]] = {}

    async def call(self, source: KnowledgeSource, trigger: Entry, view: ReadView | None) -> Any:
        payload = self.snapshot(view)
        if self.stateful and is_stateful(source):
            pool = self._host(source)
            future = pool.submit(_call_hosted, trigger, payload)
        else:
            pool = self._shared()
            future = pool.submit(_call_shipped, self._action(source), trigger, payload)
        try:
            return unwrap(await wait(future, future.cancel))
        except concurrent.futures.process.BrokenProcessPool as exc:
            self._forget(pool)
            raise ExecutorError(f"the worker process running {source.name!r} died ({exc})") from None

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
        try:
            fn = _ACTIONS[action] = pickle.loads(action)
        except Exception as exc:  # noqa: BLE001 - e.g. its module cannot be imported in the worker
            raise ExecutorError(f"the worker process cannot load the action: {type(exc).__name__}: {exc}") from None
    return perform(fn, trigger, _view(payload))


def _adopt(source: bytes) -> None:
    _HOSTED.append(pickle.loads(source))


def _call_hosted(trigger: Entry, payload: tuple[Any, bytes] | None) -> tuple[bool, Any]:
    return perform(_HOSTED[0]._fn, trigger, _view(payload))


register_executor("process", ProcessExecutor)
