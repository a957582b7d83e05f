"""Ray: actions as Ray tasks, stateful sources as actors, batch problems over a cluster.

Ray is an optional extra (``pip install 'duckdb-blackboard[ray]'``); nothing
here imports it before it is asked for, and asking without it installed
raises a :class:`~blackboard.MissingExtraError` that says how to install it.

Where Ray runs is Ray's own business: if this process already called
``ray.init`` (a notebook, a test session, a job submitted to a cluster), that
session is used as it is. Otherwise ``ray.init(address)`` is called with
Ray's own meaning of the address: ``"local"`` starts a Ray instance here
(with the batch's ``workers`` as its CPUs), ``"auto"`` joins the cluster
started on this machine by ``ray start``, ``"ray://head:10001"`` connects
through Ray Client, and None follows ``RAY_ADDRESS`` or starts Ray here.

Batch problems become Ray tasks of :func:`~controller._batch.solve_one`
(:func:`controller._batch.solve_on_ray`, which calls :func:`connect`); the
parent, the DuckDB file's single writer, stores each result as the local
batch does. A task whose worker dies is re-run by Ray on another worker (up
to ``MAX_RETRIES`` times); each problem is stored once, by its item number.
"""

from __future__ import annotations

from functools import partial
from types import ModuleType
from typing import Any

from blackboard import Entry, MissingExtraError
from knowledge_sources import KnowledgeSource, ReadView

from ._errors import ConfigurationError, ExecutorError
from ._executor import (
    Executor,
    action_of,
    is_stateful,
    perform,
    register_executor,
    unwrap,
    wait,
)
from ._snapshot import ViewSnapshot

MAX_RETRIES = 3


def require_ray(setting: str) -> ModuleType:
    """The ``ray`` module, or a :class:`~blackboard.MissingExtraError` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", setting, "ray") from None
    return ray


def connect(address: str | None, *, num_cpus: int | None = None, setting: str = "ray") -> ModuleType:
    """Ray, ready: the running session, else ``ray.init(address)`` (``"local"`` with ``num_cpus``)."""
    ray = require_ray(setting)
    if not ray.is_initialized():
        options: dict[str, Any] = {}
        if address == "local":
            options.update(num_cpus=num_cpus, include_dashboard=False)
        try:
            ray.init(address=address, **options)
        except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, ValueError, RuntimeError... by cause
            raise ConfigurationError(setting, f"cannot start or reach Ray at {address!r}: {exc}") from None
    return ray


class RayExecutor(Executor):
    """Actions run as Ray tasks; class-declared sources live as Ray actors.

    ``address``: where Ray runs (see the module docstring; default: the
    session already started in this process, else ``RAY_ADDRESS``, else a
    local Ray). ``stateful``: one actor per class-declared source, so its
    state persists across activations (else it runs as a task on a fresh
    copy). ``num_cpus``: the CPUs Ray reserves for each action task.

    A timed-out task is cancelled by ending its worker process (Ray starts
    another); an actor's running call cannot be interrupted, so the actor
    finishes it before its next call.
    A worker or an actor that dies fails its activation with an
    :class:`ExecutorError` (the source's ``retries`` and ``fallback`` apply;
    Ray does not retry actions on its own); the next activation starts a new
    actor from the local copy of the source. Actors live until
    :meth:`close`: one per source object given to this executor.
    """

    kind = "ray"

    def __init__(self, address: str | None = None, *, stateful: bool = True, num_cpus: float = 1.0) -> None:
        super().__init__()
        require_ray("executor")
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float)) or not num_cpus >= 0:
            raise ConfigurationError("executor", f"RayExecutor num_cpus must be a non-negative number, not {num_cpus!r}")
        self.address = address
        if not isinstance(stateful, bool):
            raise ConfigurationError("executor", f"RayExecutor stateful must be True or False, not {stateful!r}")
        self.stateful = stateful
        self.num_cpus = float(num_cpus)
        self._actors: dict[int, tuple[KnowledgeSource, Any]] = {}
        self._actions: dict[int, tuple[KnowledgeSource, Any]] = {}
        self._task: Any = None

    async def call(self, source: KnowledgeSource, trigger: Entry, view: ReadView | None) -> Any:
        ray = connect(self.address, setting="executor")
        payload = self.snapshot(view)
        try:
            if self.stateful and is_stateful(source):
                ref = self._actor(ray, source).call.remote(trigger, payload)
                cancel = partial(ray.cancel, ref)  # a running actor call cannot be stopped, a queued one can
            else:
                ref = self._remote(ray).remote(self._action(ray, source), trigger, payload)
                cancel = partial(ray.cancel, ref, force=True)  # ends its worker: a plain cancel waits for the action
            outcome = await wait(ref.future(), cancel)
        except ray.exceptions.RayActorError as exc:
            self._actors.pop(id(source), None)
            raise ExecutorError(f"the Ray actor holding {source.name!r} died: {_first_line(exc)}") from None
        except ray.exceptions.RayError as exc:
            raise ExecutorError(f"Ray could not run {source.name!r}: {exc}") from None
        except (TypeError, ValueError) as exc:  # the action, the source or the trigger would not serialize
            raise ExecutorError(f"cannot send {source.name!r} to Ray: {type(exc).__name__}: {exc}") from None
        return unwrap(outcome)

    def _pack(self, serial: int, snapshot: ViewSnapshot) -> Any:
        import ray

        return ray.put(snapshot)  # once per cycle; every task of the cycle gets the reference

    def _remote(self, ray: ModuleType) -> Any:
        if self._task is None:
            # no retries by Ray: the source's own retries decide, as for every action
            self._task = ray.remote(num_cpus=self.num_cpus, max_retries=0)(perform)
        return self._task

    def _action(self, ray: ModuleType, source: KnowledgeSource) -> Any:
        held = self._actions.get(id(source))
        if held is None or held[0] is not source:
            held = (source, action_of(source))  # inline: a small argument saves a fetch from the object store
            self._actions[id(source)] = held
        return held[1]

    def _actor(self, ray: ModuleType, source: KnowledgeSource) -> Any:
        held = self._actors.get(id(source))
        if held is None or held[0] is not source:
            held = (source, ray.remote(_Host).remote(source))
            self._actors[id(source)] = held
        return held[1]

    def close(self) -> None:
        actors = [held[1] for held in self._actors.values()]
        self._actors, self._actions, self._task = {}, {}, None
        self._forget_snapshot()
        if actors:
            import ray

            if ray.is_initialized():
                for actor in actors:
                    ray.kill(actor)

    def __repr__(self) -> str:
        return f"<RayExecutor address={self.address!r} stateful={self.stateful} num_cpus={self.num_cpus}>"


class _Host:
    """The Ray actor of one stateful source: the source's state lives as long as the actor."""

    def __init__(self, source: KnowledgeSource) -> None:
        self.source = source

    def call(self, trigger: Entry, view: ViewSnapshot | None) -> tuple[bool, Any]:
        return perform(self.source._fn, trigger, view)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


register_executor("ray", RayExecutor)
