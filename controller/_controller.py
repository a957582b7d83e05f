"""The controller: match, schedule, run, apply, resolve, repeat.

One cycle::

    select  the best activations from the agenda (up to ``concurrency``),
            dropping or revalidating those whose trigger went stale
    run     sync actions inline, the others (async, with a timeout or with
            retries) concurrently in an anyio task group
    apply   each activation's contributions, in agenda order, atomically
            per activation, after the policy check (a source writes only
            the spaces it declares)
    resolve conflicts on every slot touched this cycle
    match   the new events against the trigger index; queue activations
    check   goal, quiescence and budgets; flush as durability asks

Why sync actions run inline: spawning an anyio task costs about 18 us,
more than the whole per-activation budget; a task is only worth it when the
action waits. Why apply at the end of the cycle, in agenda order: the
blackboard then does not depend on which concurrent action finished first,
and a cancelled cycle applies nothing, so the blackboard stays consistent.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
import time
import traceback
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import anyio

from blackboard import (
    UNSET,
    Blackboard,
    Entry,
    EntryNotFoundError,
    StaleEntryError,
    Status,
    ValidationError,
    entry_facts,
)

ACTIVE = Status.ACTIVE.value
from knowledge_sources import (
    Alternative,
    DuplicateSourceError,
    FailContext,
    Fork,
    KnowledgeSource,
    Post,
    PromoteContext,
    ReadView,
    Retract,
    Revise,
    compile_rule,
)
from knowledge_sources._fastrule import fast_matcher
from knowledge_sources._rules import RULE_ERRORS

from ._agenda import DONE, FAILED, OBVIATED, Activation, Agenda
from ._breaker import CircuitBreaker
from ._conflict import ConflictStrategy, HighestConfidence, Resolution, strategy_named
from ._errors import ConfigurationError, ContributionError, blackboard_of
from ._escalation import Escalation
from ._executor import Executor, routing
from ._explain import Explanation
from ._instruments import CycleReport, Instrument, Instruments, check_instruments
from ._policy import Policy, contribution_facts
from ._result import RunResult, SourceStats

log = logging.getLogger("controller")

DURABILITY_MODES = ("cycle", "interval", "end")
MAX_REQUEUES = 16
_ENTRY_KINDS_ACTIVE = frozenset({"posted", "revised", "reinstated"})
_REVIEW_KINDS = frozenset({"review_approved", "review_rejected"})
_Goal = str | Callable[[ReadView], Any] | None
_RuleErrors = RULE_ERRORS
_GeneratorType = types.GeneratorType


class Controller:
    """Runs knowledge sources over a blackboard until a goal, quiescence or a budget.

    Parameters
    ----------
    blackboard: the :class:`~blackboard.Blackboard` to work on.
    sources: knowledge sources (more can be added with :meth:`register`).
    concurrency: how many activations run per cycle (async ones at once).
    conflict: the conflict strategy for every space, or a mapping from space
        name to strategy (``"*"`` for the rest); strategies are
        :class:`HighestConfidence` (default), :class:`NoisyOr`,
        :class:`WeightedVote`, :class:`UserRule`, or their names.
    rating: how an activation is rated, a rule-engine expression over the
        trigger's facts plus ``priority``, or ``fn(source, triggers) -> float``.
        Default: ``priority + confidence``.
    durability: when the working set is written to the file: ``"cycle"``,
        ``"interval"`` (every ``flush_interval`` seconds, the default) or
        ``"end"``. An in-memory blackboard is written when first queried.
    contexts: which hypothetical worlds to work on first: ``"depth_first"``
        (deeper contexts first), ``"fewest_alternatives"`` (deeper first, then
        contexts opened among fewer alternatives) or ``"most_confident"``
        (deeper first, then the more confident alternative). Default: no preference.
    policies: :class:`Policy` rules every contribution must satisfy.
    escalations: :class:`Escalation` rules: what to hold for a person.
    on_review: ``"continue"`` (other work goes on while items wait for a
        person) or ``"pause"`` (the run stops as soon as something is held).
    seed: seeds the jitter of retry back-off, for reproducible runs.
    clock: the clock of circuit-breaker cool-downs (``time.monotonic``).
    instruments: :class:`Instrument` observers called at the start and end
        of every run and after every cycle (progress bars, tracing).
    executor: where actions run: ``"loop"`` (default: this event loop),
        ``"process"`` (worker processes), ``"ray"`` (Ray tasks; stateful
        sources as actors), an :class:`Executor` such as
        ``ProcessExecutor(workers=4)`` or ``RayExecutor(address)``, or a
        mapping from source name to one of these (``"*"`` for the rest).
        The blackboard stays here; the result does not depend on it.
    """

    def __init__(
        self,
        blackboard: Blackboard,
        sources: Iterable[KnowledgeSource] = (),
        *,
        concurrency: int = 16,
        conflict: ConflictStrategy | str | Mapping[str, ConflictStrategy | str] | None = None,
        rating: str | Callable[[KnowledgeSource, tuple[Entry, ...]], float] | None = None,
        durability: str = "interval",
        flush_interval: float = 1.0,
        contexts: str | None = None,
        policies: Iterable[Policy] = (),
        escalations: Iterable[Escalation] = (),
        on_review: str = "continue",
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        instruments: Iterable[Instrument] = (),
        executor: str | Executor | Mapping[str, str | Executor] = "loop",
    ) -> None:
        blackboard_of(blackboard)
        if blackboard.read_only:
            raise ConfigurationError("blackboard", f"{blackboard.path} was opened read-only; a controller must write to it")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError("concurrency", f"must be a positive int, not {concurrency!r}")
        if durability not in DURABILITY_MODES:
            raise ConfigurationError("durability", f"must be one of {DURABILITY_MODES}, not {durability!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, type(None))):
            raise ConfigurationError("seed", f"must be an int or None, not {seed!r}")
        if not callable(clock):
            raise ConfigurationError("clock", f"must be a function returning seconds, not {clock!r}")
        if isinstance(sources, (str, bytes)) or not isinstance(sources, Iterable):
            raise ConfigurationError("sources", f"must be knowledge sources, not {sources!r}")
        if (isinstance(flush_interval, bool) or not isinstance(flush_interval, (int, float))
                or not _finite(flush_interval) or flush_interval <= 0):
            raise ConfigurationError("flush_interval", f"must be a positive number of seconds, not {flush_interval!r}")
        self.blackboard = blackboard
        self.concurrency = concurrency
        self.durability = durability
        self.flush_interval = float(flush_interval)
        self._strategies, self._default_strategy = _strategies(conflict)
        self._rating = _rating(rating)
        self._random = random.Random(seed)
        self.policies = list(policies)
        for policy in self.policies:
            if not isinstance(policy, Policy):
                raise ConfigurationError("policies", f"{policy!r} is not a Policy")
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self.escalations = list(escalations)
        for escalation in self.escalations:
            if not isinstance(escalation, Escalation):
                raise ConfigurationError("escalations", f"{escalation!r} is not an Escalation")
        if on_review not in ("continue", "pause"):
            raise ConfigurationError("on_review", f"must be 'continue' or 'pause', not {on_review!r}")
        self.on_review = on_review
        if contexts not in (None, "depth_first", "fewest_alternatives", "most_confident"):
            raise ConfigurationError("contexts", f"must be None, 'depth_first', 'fewest_alternatives' or 'most_confident', not {contexts!r}")
        self.context_order = contexts
        self._entry_escalations = [e for e in self.escalations if e.rule is not None]
        self._held = 0
        self._sources: dict[str, KnowledgeSource] = {}
        self._reliability: dict[str, float] = {}
        self._index: Any = None
        self.agenda = Agenda()
        self._view = ReadView(blackboard)
        self._cursor = 0
        self._next_activation = 1
        self._caught_up = False
        self._reacted_until = 0  # review decisions up to here were acted on by an earlier controller
        self._retriggers: dict[int, list[KnowledgeSource]] = {}
        self.stats: dict[str, SourceStats] = {}
        self.instruments = check_instruments(instruments)
        self._agenda_lengths: list[int] = []
        self._instruments = Instruments(())
        self._wall_offset = 0.0
        self.executor = executor
        self._remote = routing(executor, self)  # None: every action runs in this loop
        self.register(*sources)

    # ------------------------------------------------------------ sources
    @property
    def sources(self) -> Mapping[str, KnowledgeSource]:
        return dict(self._sources)

    def register(self, *sources: KnowledgeSource, replace: bool = False) -> None:
        """Add sources. A second source with a taken name is refused, unless ``replace``.

        A source defined at the same place as the one it would replace (same
        module and qualified name: a notebook cell run again) replaces it
        without ``replace``; its pending activations run the new action.
        """
        from ._matcher import TriggerIndex

        staged = dict(self._sources)
        replaced: set[str] = set()
        for source in sources:
            if not isinstance(source, KnowledgeSource):
                raise ConfigurationError("sources", f"{source!r} is not a KnowledgeSource")
            current = staged.get(source.name)
            if current is not None and current is not source:
                if not (replace or (source.name in self._sources and _redefines(source, current))):
                    raise DuplicateSourceError(source.name)
                log.info("source %r replaced by a new definition", source.name)
                replaced.add(source.name)
            source.check(self.blackboard.spaces)
            staged[source.name] = source
        for source in staged.values():
            if source.fallback is not None and source.fallback not in staged:
                raise ConfigurationError("sources", f"{source.name!r} names fallback {source.fallback!r}, which is not registered")
        self._sources = staged
        self._index = TriggerIndex(staged.values())
        if replaced:  # what waits for the old definition runs the new one
            for _, _, activation in self.agenda._heap:
                if activation.source.name in replaced:
                    activation.source = staged[activation.source.name]
            for waiting in self._retriggers.values():
                waiting[:] = [staged[s.name] if s.name in replaced else s for s in waiting]
        for source in staged.values():  # kept after unregister: their claims still count
            self._reliability[source.name] = source.reliability
        for source in staged.values():
            if source.breaker_threshold is not None and source.name not in self._breakers:
                self._breakers[source.name] = CircuitBreaker(source.breaker_threshold, source.breaker_cooldown, self._clock)
        for name in staged:
            self.stats.setdefault(name, SourceStats())

    def unregister(self, name: str) -> None:
        """Remove a source by name (its queued activations are dropped when selected)."""
        from ._matcher import TriggerIndex

        self._sources.pop(name, None)
        self._index = TriggerIndex(self._sources.values())

    def explain(self, entry: int | Entry) -> Explanation:
        """Why ``entry`` is on the blackboard and why it won or lost (see :func:`controller.explain`)."""
        from ._explain import explain

        return explain(self.blackboard, entry)

    def strategy(self, space: str) -> ConflictStrategy:
        return self._strategies.get(space, self._default_strategy)

    # ---------------------------------------------------------------- run
    def run(self, goal: _Goal = None, *, max_cycles: int | None = None,
            max_activations: int | None = None, max_seconds: float | None = None,
            progress: bool | Instrument = False) -> RunResult:
        """Run to a goal, quiescence or a budget; works in scripts and in Jupyter.

        Inside a running event loop (a notebook cell) the run happens on a
        worker thread with its own loop, so the call still just returns the
        result. In async code, prefer ``await controller.arun(...)``.
        ``progress=True`` shows a :class:`ProgressBar` (a notebook widget in
        Jupyter, a text bar on a terminal) for this run; pass a
        ``ProgressBar(...)`` to choose what it watches.
        """
        return run_sync(partial(self.arun, goal, max_cycles=max_cycles,
                                max_activations=max_activations, max_seconds=max_seconds,
                                progress=progress))

    async def arun(self, goal: _Goal = None, *, max_cycles: int | None = None,
                   max_activations: int | None = None, max_seconds: float | None = None,
                   progress: bool | Instrument = False) -> RunResult:
        """The async form of :meth:`run`."""
        for name, limit in (("max_cycles", max_cycles), ("max_activations", max_activations), ("max_seconds", max_seconds)):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float))
                                      or limit != limit or limit < 0 or (isinstance(limit, int) and limit > 2**62)):
                raise ConfigurationError(name, f"must be a non-negative number, not {limit!r}")
        goal_check = _goal(goal)
        if isinstance(self.executor, Mapping):  # a misspelt source name would silently run in the loop
            unknown = sorted(set(self.executor) - {"*"} - set(self._sources))
            if unknown:
                raise ConfigurationError("executor", f"names sources that are not registered: {', '.join(unknown)} "
                                                     f"(registered: {', '.join(sorted(self._sources)) or 'none'})")
        instruments = Instruments(self.instruments + _progress(progress))
        bb = self.blackboard
        bb._live()
        self._instruments = instruments
        if instruments:
            instruments.call("run_started", self, goal, {
                "max_cycles": max_cycles, "max_activations": max_activations, "max_seconds": max_seconds})
        clock = time.perf_counter
        started = clock()
        self._wall_offset = time.time() - started  # activations record Unix start times
        debug = log.isEnabledFor(logging.DEBUG)
        lengths: list[int] = []
        self._agenda_lengths = lengths
        last_flush = started
        deadline = math.inf if max_seconds is None else started + max_seconds
        cycle_limit = math.inf if max_cycles is None else max_cycles
        activation_limit = math.inf if max_activations is None else max_activations
        counts = {"activations": 0, "failed": 0, "obviated": 0, "contributions": 0}
        action_seconds = [0.0]
        goal_hits: list[Entry] = []
        cycles = 0
        self._held = 0
        outcome, budget = "quiescent", None
        # An in-memory blackboard has nothing to make durable: its DuckDB
        # tables are written when first queried (or closed), not during runs.
        durable = not bb.in_memory
        if durable and self.durability == "cycle":
            bb.flush(state="running")
        if not self._caught_up:
            self._catch_up()
        self._match_new(goal_check, goal_hits)
        heap = self.agenda._heap
        timed = max_seconds is not None
        in_flight: list[Activation] = []
        try:
            while True:
                if goal_check is not None and self._goal_met(goal_check, goal_hits):
                    outcome = "goal"
                    break
                if not heap:
                    if self.escalations and self.blackboard.reviews():
                        outcome = "review"
                    break
                if self._held and self.on_review == "pause":
                    outcome = "review"
                    break
                if cycles >= cycle_limit:
                    outcome, budget = "budget", "cycles"
                    break
                limit = self.concurrency
                if activation_limit is not math.inf:
                    if counts["activations"] >= activation_limit:
                        outcome, budget = "budget", "activations"
                        break
                    limit = int(min(limit, activation_limit - counts["activations"]))
                if timed and clock() >= deadline:
                    outcome, budget = "budget", "seconds"
                    break
                batch = self._select(limit, counts)
                if not batch:
                    continue
                cycles += 1
                bb.cycle += 1
                bb.cycles = bb.cycle
                in_flight = batch
                if instruments:
                    cycle_started = time.time()
                waiting = self._run_inline(batch, action_seconds)
                if waiting:
                    await self._run_waiting(waiting, action_seconds)
                self._apply(batch, counts)
                in_flight = []
                bb.activations += len(batch)
                self._match_new(goal_check, goal_hits)
                lengths.append(len(heap))
                if debug:
                    log.debug("cycle %d: %d ran (%s), %d waiting", bb.cycle, len(batch),
                              ", ".join(f"{a.source.name}:{a.state}" for a in batch[:8]), len(heap))
                if instruments:
                    instruments.call("cycle_finished", self, CycleReport(
                        bb.cycle, cycle_started, time.time() - cycle_started, tuple(batch), len(heap)))
                if durable and (self.durability == "cycle" or (
                    self.durability == "interval" and clock() - last_flush >= self.flush_interval
                )):
                    bb.flush()
                    last_flush = clock()
        except BaseException:
            outcome = "cancelled"
            # the cycle being run applied nothing: its activations wait again
            for activation in in_flight:
                activation.result = None
                activation.worlds = []
                self.agenda.requeue(activation)
            with anyio.CancelScope(shield=True):
                self._finish(outcome, None, goal_hits, counts, cycles, started, action_seconds[0])
            raise
        return self._finish(outcome, budget, goal_hits, counts, cycles, started, action_seconds[0])

    def _catch_up(self) -> None:
        """Take over a run with history: what ran stays done, the rest is queued again.

        The whole event log is matched again, but activations the run already
        decided (ran, failed or obviated, as recorded with their effects in
        the same commit) are skipped. This is how a run killed mid-cycle
        resumes from its last commit without running an action twice, and
        how a notebook can make a new controller for a blackboard.
        """
        bb = self.blackboard
        self._caught_up = True
        self._reacted_until = bb.matched
        if not bb.events():
            return
        decided = bb.decided_activations()
        self.agenda._seen.update(decided)
        self._next_activation = max(self._next_activation, bb.last_activation_id() + 1)
        for name, triggers in decided:
            source = self._sources.get(name)
            if source is not None and source.retrigger_on_revision:
                for trigger in triggers:
                    self._retriggers.setdefault(trigger, []).append(source)

    def _finish(self, outcome: str, budget: str | None, goal_hits: list[Entry], counts: dict[str, int],
                cycles: int, started: float, action_seconds: float) -> RunResult:
        bb = self.blackboard
        for activation in self.agenda:
            bb.record_activation(activation)
        entries = [bb.get(e.id) for e in goal_hits]
        goal_entries = tuple(e for e in entries if e.status == Status.ACTIVE)
        result = RunResult(
            outcome=outcome, goal_entries=goal_entries, run_id=bb.run_id, path=bb.path,
            cycles=cycles, activations=counts["activations"], failed=counts["failed"],
            obviated=counts["obviated"], contributions=counts["contributions"],
            seconds=time.perf_counter() - started, action_seconds=action_seconds,
            budget=budget, sources={k: SourceStats(**vars(v)) for k, v in self.stats.items()},
            agenda_lengths=tuple(self._agenda_lengths),
        )
        bb.log("run_finished", source="controller", details={"outcome": outcome, "budget": budget})
        summary = result.to_dict()
        summary.pop("goal_entries")
        summary["goal_entries"] = [e.id for e in goal_entries]
        state = {"cancelled": "cancelled", "review": "waiting"}.get(outcome, "finished")
        bb.mark(state=state, outcome=outcome, result=summary)
        if not bb.in_memory:
            bb.flush()
        log.info("run %s: %s", bb.run_id, result)
        if self._instruments:
            self._instruments.call("run_finished", self, result)
        return result

    # -------------------------------------------------------------- select
    def _select(self, limit: int, counts: dict[str, int]) -> list[Activation]:
        """Pop the best ``limit`` activations whose triggers are unchanged.

        A trigger is unchanged when the store still holds the very same
        entry object (status changes replace it), so the check is one
        identity test. The others are revalidated or obviated.
        """
        agenda, entries, sources = self.agenda, self.blackboard._entries, self._sources
        breakers = self._breakers
        best = agenda.pop
        batch: list[Activation] = []
        while agenda and len(batch) < limit:
            activation = best()
            fresh = activation.source.name in sources
            if fresh:
                for trigger in activation.triggers:
                    if entries.get(trigger.id) is not trigger:
                        fresh = False
                        break
            if not (fresh or self._revalidate(activation)):
                counts["obviated"] += 1
            elif breakers and activation.source.name in breakers and not breakers[activation.source.name].allows():
                self._skip_open_circuit(activation)
                counts["obviated"] += 1
            else:
                batch.append(activation)
        return batch

    def _skip_open_circuit(self, activation: Activation) -> None:
        self._obviate(activation, "its source's circuit is open", kind="circuit_open")
        if activation.source.fallback is not None:
            self._fall_back(activation)

    def _revalidate(self, activation: Activation) -> bool:
        bb = self.blackboard
        source = activation.source
        if source.name not in self._sources:
            self._obviate(activation, "its source was unregistered")
            return False
        if source.on_stale == "obviate":
            self._obviate(activation, "a trigger entry changed before it ran")
            return False
        latest = []
        for trigger in activation.triggers:
            current = bb.get(trigger.id)
            while current.id in bb._revised_by:
                current = bb.get(bb._revised_by[current.id])
            if current.status != trigger.status or (
                not source.matches(current)
            ):
                self._obviate(activation, "revalidation failed: the precondition no longer holds")
                return False
            latest.append(current)
        ids = tuple(e.id for e in latest)
        old_ids = tuple(t.id for t in activation.triggers)
        if ids != old_ids and self.agenda.seen(source.name, ids):
            self._obviate(activation, "revalidated onto a trigger that already has an activation")
            return False
        activation.triggers = tuple(latest)
        bb.log("revalidated", source=source.name, activation=activation.id,
               details={"triggers": list(ids), "was": list(old_ids)})
        return True

    def _obviate(self, activation: Activation, reason: str, kind: str = "obviated") -> None:
        activation.state = OBVIATED
        self.stats[activation.source.name].obviated += 1
        self.blackboard.log(kind, source=activation.source.name, activation=activation.id,
                            details={"reason": reason, "triggers": [t.id for t in activation.triggers]})
        self.blackboard.record_activation(activation)

    # ------------------------------------------------------------- execute
    def _run_inline(self, batch: list[Activation], action_seconds: list[float]) -> list[Activation]:
        """Run the sync actions now, in agenda order; return those that must wait."""
        waiting = []
        view = self._view
        clock = time.perf_counter
        cycle = self.blackboard.cycle
        offset = self._wall_offset
        spent = 0.0
        remote = self._remote
        for activation in batch:
            activation.cycle = cycle
            source = activation.source
            if source.needs_task or (remote is not None and source.name in remote):
                waiting.append(activation)
                continue
            activation.attempts += 1
            started = clock()
            activation.started = started + offset
            try:
                out = source._fn(activation.triggers[0], view) if source.wants_view else source._fn(activation.triggers[0])
                if type(out) is _GeneratorType:
                    out = list(out)
                activation.result = out
            except Exception as exc:
                activation.state = FAILED
                activation.error = _describe(exc)
            elapsed = clock() - started
            activation.seconds = elapsed
            spent += elapsed
        action_seconds[0] += spent
        return waiting

    async def _run_waiting(self, waiting: list[Activation], action_seconds: list[float]) -> None:
        """Run async actions (and sync ones with a timeout or retries) concurrently."""
        async with anyio.create_task_group() as tg:
            for activation in waiting:
                tg.start_soon(self._call_waiting, activation, action_seconds)

    async def _call_waiting(self, activation: Activation, action_seconds: list[float]) -> None:
        source = activation.source
        started = time.perf_counter()
        activation.started = started + self._wall_offset
        attempt = 0
        while True:
            attempt += 1
            activation.attempts += 1
            try:
                if source.timeout is not None:
                    with anyio.fail_after(source.timeout), self._view.time_limit(source.timeout):
                        activation.result = await self._invoke(source, activation)
                else:
                    activation.result = await self._invoke(source, activation)
                activation.state = DONE
                break
            except TimeoutError:
                error: BaseException = TimeoutError(f"timed out after {source.timeout} s")
            except Exception as exc:
                error = exc
            if attempt > source.retries or not isinstance(error, source.retry_on):
                activation.state = FAILED
                activation.error = _describe(error)
                break
            self.stats[source.name].retries += 1
            delay = source.backoff * (2 ** (attempt - 1))
            await anyio.sleep(delay * (0.5 + self._random.random()))
        elapsed = time.perf_counter() - started
        activation.seconds = elapsed
        action_seconds[0] += elapsed

    async def _invoke(self, source: KnowledgeSource, activation: Activation) -> Any:
        trigger = activation.triggers[0]
        executor = self._remote.executor_for(source.name) if self._remote is not None else None
        if executor is not None:
            return await executor.call(source, trigger, self._view if source.wants_view else None)
        fn = source._fn
        args = (trigger, self._view) if source.wants_view else (trigger,)
        if inspect.isasyncgenfunction(fn):
            return [item async for item in fn(*args)]
        if inspect.iscoroutinefunction(fn):
            return await fn(*args)
        out = await anyio.to_thread.run_sync(partial(_call_sync, fn, args), abandon_on_cancel=True)
        return out

    # --------------------------------------------------------------- apply
    def _apply(self, batch: list[Activation], counts: dict[str, int]) -> None:
        bb = self.blackboard
        touched: set[tuple[int, str, str]] = set()
        for activation in batch:
            source = activation.source
            stats = self.stats[source.name]
            stats.activations += 1
            stats.seconds += activation.seconds or 0.0
            counts["activations"] += 1
            if activation.state != FAILED:
                try:
                    ops = self._ops(activation)
                    triggers = activation.triggers
                    # the controller builds well-formed ops itself: the unchecked path
                    written = bb._transact(
                        ops, source.name, activation.id,
                        (triggers[0].id,) if len(triggers) == 1 else tuple(t.id for t in triggers),
                        triggers[0].context,
                    ) if ops else []
                    if activation.worlds:
                        written = list(written) + self._apply_worlds(activation)
                    activation.state = DONE
                    activation.produced = tuple(e.id for e in written)
                    counts["contributions"] += len(written)
                    stats.contributions += len(written)
                    for entry in written:
                        if entry.key is not None:
                            touched.add((entry.context, entry.space, entry.key))
                    if self._entry_escalations:
                        self._escalate_entries(written, activation)
                except StaleEntryError as exc:
                    if self._requeue(activation, exc):
                        continue
                    activation.state = FAILED
                    activation.error = _describe(exc)
                except (ContributionError, ValidationError, EntryNotFoundError) as exc:
                    activation.state = FAILED
                    activation.error = _describe(exc)
                    activation.worlds = []
            activation.result = None
            breaker = self._breakers.get(source.name) if self._breakers else None
            if breaker is not None:
                change = breaker.record(activation.state != FAILED)
                if change is not None:
                    bb.log("circuit", source=source.name, activation=activation.id,
                           details={"state": change, "failures": breaker.failures})
            if activation.state == FAILED:
                counts["failed"] += 1
                stats.failed += 1
                bb.log("activation_failed", source=source.name, activation=activation.id,
                       details={"error": activation.error, "attempts": activation.attempts,
                                "triggers": [t.id for t in activation.triggers]})
                log.warning("activation %s of %s failed: %s", activation.id, source.name,
                            (activation.error or "").splitlines()[0])
                if source.fallback is not None:
                    self._fall_back(activation)
                else:
                    self._escalate_failure(activation)
            bb.record_activation(activation)
        for slot in sorted(touched):
            self._resolve(slot)

    def _escalate_entries(self, written: Sequence[Entry], activation: Activation) -> None:
        bb = self.blackboard
        for entry in written:
            if bb.get(entry.id).status != ACTIVE:
                continue
            for escalation in self._entry_escalations:
                if escalation.holds_entry(entry):
                    bb.hold(kind="entry", rule=escalation.name, entry=entry.id, activation=activation.id,
                            reason=f"{entry.space} entry matches {escalation.expression}")
                    self._held += 1
                    break

    def _escalate_failure(self, activation: Activation) -> None:
        for escalation in self.escalations:
            if escalation.holds_failure(activation.source.name):
                error = (activation.error or "").splitlines()[0] if activation.error else "failed"
                self.blackboard.hold(kind="failure", rule=escalation.name, activation=activation.id,
                                     reason=f"{activation.source.name} failed with no fallback: {error}",
                                     details={"source": activation.source.name,
                                              "triggers": [t.id for t in activation.triggers]})
                self._held += 1
                return

    def _requeue(self, activation: Activation, exc: StaleEntryError) -> bool:
        """Run an activation again when what it revised was revised by another one this cycle.

        Actions of one cycle read the same state; the first revision of an
        entry wins and the others are re-run on the new version (optimistic
        concurrency), up to ``MAX_REQUEUES`` times.
        """
        activation.result = None
        if activation.attempts > MAX_REQUEUES:
            return False
        self.agenda.requeue(activation)
        self.blackboard.log("requeued", source=activation.source.name, activation=activation.id,
                            details={"entry": exc.entry_id, "latest": exc.latest})
        return True

    def _fall_back(self, failed: Activation) -> None:
        """Queue the failed activation's fallback source on the same triggers, ahead of the rest."""
        fallback = self._sources.get(failed.source.fallback or "")
        if fallback is None:
            return
        best = max((a.rating for a in self.agenda), default=failed.rating)
        activation = Activation(self._next_activation, fallback, failed.triggers,
                                max(best, failed.rating) + 1.0, self.blackboard.cycle)
        if self.agenda.add(activation):
            self._next_activation += 1
            self.blackboard.log("fallback", source=fallback.name, activation=activation.id,
                                details={"failed": failed.id, "failed_source": failed.source.name})

    def _ops(self, activation: Activation) -> list[tuple[Any, ...]]:
        out = activation.result
        source = activation.source
        if out is None:
            return []
        if isinstance(out, (Post, Revise, Retract, Fork, FailContext, PromoteContext)):
            items: Sequence[Any] = (out,)
        elif isinstance(out, (list, tuple)):
            items = out
        else:
            raise ContributionError(
                source.name,
                f"expected post(...), revise(...), retract(...), a list of them or None; got {type(out).__name__}: {out!r:.200}",
            )
        writes = source.writes or ()
        ops: list[tuple[Any, ...]] = []
        bb = self.blackboard
        for item in items:
            tp = type(item)
            if tp is Fork or tp is FailContext or tp is PromoteContext:
                activation.worlds.append(self._check_world_op(activation, item, writes))
                continue
            if tp is Post:
                space = item.space
                op: tuple[Any, ...] = ("post", space, item.value, item.key, item.confidence, item.supports, item.context)
            elif tp is Revise or tp is Retract:
                try:
                    space = bb.get(item.entry).space
                except (EntryNotFoundError, TypeError):
                    raise ContributionError(source.name, f"{item!r:.200} names no entry of this run") from None
                op = ("revise", item.entry, item.value, item.confidence, item.supports) if tp is Revise else ("retract", item.entry, item.reason)
            else:
                raise ContributionError(source.name, f"{item!r:.200} is not a contribution (use post, revise or retract)")
            if space is not None and space not in writes:
                self._deny(activation, "writes", f"{source.name!r} may write {list(writes)}, not {space!r}", item)
                continue
            if self.policies:
                denial = self._check_policies(item, space, activation)
                if denial is not None:
                    self._deny(activation, denial[0], denial[1], item)
                    continue
            ops.append(op)
        return ops

    def _check_world_op(self, activation: Activation, item: Any, writes: Sequence[str]) -> Any:
        """Check a context contribution before anything of the activation is applied."""
        if type(item) is Fork:
            if not item.alternatives:
                raise ContributionError(activation.source.name, "fork() needs at least one alternative")
            for alt in item.alternatives:
                if not isinstance(alt, Alternative):
                    raise ContributionError(activation.source.name, f"{alt!r} is not an alternative(...)")
                for p in alt.posts:
                    if type(p) is not Post:
                        raise ContributionError(activation.source.name, f"an alternative holds only post(...) contributions, not {p!r}")
                    if p.space not in writes:
                        raise ContributionError(activation.source.name, f"may write {list(writes)}, not {p.space!r} (in alternative {alt.label!r})")
        return item

    def _apply_worlds(self, activation: Activation) -> list[Entry]:
        """Open, fail or promote contexts as the activation asked; returns what was posted."""
        bb = self.blackboard
        source = activation.source.name
        trigger = activation.triggers[0]
        supports = tuple(t.id for t in activation.triggers)
        written: list[Entry] = []
        for item in activation.worlds:
            if type(item) is Fork:
                count = len(item.alternatives)
                for alt in item.alternatives:
                    ctx = bb.open_context(trigger.context, alt.label, alternatives=count,
                                          confidence=alt.confidence, source=source, activation=activation.id)
                    ops = [("post", p.space, p.value, p.key, p.confidence, p.supports, None) for p in alt.posts]
                    written += bb.transact(ops, source=source, activation=activation.id,
                                           default_supports=supports, default_context=ctx.id)
            elif type(item) is FailContext:
                target = trigger.context if item.context is None else item.context
                if bb.context(target).status == "open":
                    bb.fail_context(target, reason=item.reason, source=source, activation=activation.id)
            else:
                bb.promote_context(trigger.context if item.context is None else item.context,
                                   source=source, activation=activation.id)
        activation.worlds = []
        return written

    def _check_policies(self, item: Any, space: str | None, activation: Activation) -> tuple[str, str] | None:
        bb = self.blackboard
        if type(item) is Post:
            kind, key, value, confidence = "post", item.key, item.value, item.confidence
            supports = len(item.supports) if item.supports is not None else len(activation.triggers)
        else:
            target = bb.get(item.entry) if item.entry in bb else None
            kind = "revise" if type(item) is Revise else "retract"
            key = target.key if target is not None else None
            value = target.value if target is None or type(item) is Retract or item.value is UNSET else item.value
            confidence = (target.confidence if target is not None else None) if type(item) is Retract or item.confidence is UNSET else item.confidence
            supports = len(target.supports) if target is not None else 0
        facts = contribution_facts(kind, space or "", key, value, confidence, supports, activation.source)
        for policy in self.policies:
            reason = policy.check(facts)
            if reason is not None:
                return policy.name, reason
        return None

    def _deny(self, activation: Activation, policy: str, reason: str, item: Any) -> None:
        self.stats[activation.source.name].denied += 1
        self.blackboard.log("denied", source=activation.source.name, activation=activation.id,
                            details={"policy": policy, "reason": reason, "contribution": repr(item)[:500]})

    # ------------------------------------------------------------- resolve
    def _resolve(self, slot: tuple[int, str, str]) -> Resolution | None:
        bb = self.blackboard
        context, space, key = slot
        claims = [
            e for e in bb.slot(space, key, context)
            if e.status == Status.ACTIVE
            or (e.status == Status.SUPERSEDED and bb.revised_by(e.id) is None)
        ]
        if not claims:
            return None
        reliability = self._reliability
        strategy = self.strategy(space)
        try:
            resolution = strategy.resolve(claims, reliability)
        except ConfigurationError as exc:  # a user rule failed: log it, leave the slot as it is
            bb.log("conflict_rule_failed", source="controller", details={"slot": [context, space, key], "error": str(exc)})
            return None
        details = {
            "strategy": resolution.strategy,
            "scores": dict(resolution.scores),
            "margin": None if not math.isfinite(resolution.margin) else resolution.margin,
        }
        best = resolution.winners[0] if resolution.winners else None
        for eid in resolution.winners:
            if bb.get(eid).status != Status.ACTIVE:
                bb.reinstate(eid, reason="won conflict resolution on new evidence", details=details)
        for eid in resolution.losers:
            if bb.get(eid).status == Status.ACTIVE:
                bb.supersede(eid, reason=f"lost conflict resolution ({resolution.strategy})", by=best, details=details)
        if resolution.contested and self.escalations:
            for escalation in self.escalations:
                if escalation.holds_conflict(space, resolution.margin):
                    for eid in resolution.winners:
                        bb.hold(kind="conflict", rule=escalation.name, entry=eid,
                                reason=f"won on {space}/{key} by a margin of {resolution.margin:.3g}, below {escalation.margin_below}",
                                details={**details, "losers": list(resolution.losers)})
                        self._held += 1
                    break
        return resolution

    # --------------------------------------------------------------- match
    def _match_new(self, goal: Any, goal_hits: list[Entry]) -> None:
        bb = self.blackboard
        events = bb._events
        entries = bb._entries
        buckets = self._index._buckets
        agenda = self.agenda
        seen = agenda._seen
        rating = self._rating
        goal_rule = goal if isinstance(goal, _GoalRule) else None
        cycle = bb.cycle
        end = len(events)
        i = self._cursor
        while i < end:
            event = events[i]
            i += 1
            eid = event.entry
            kind = event.kind
            if kind in _REVIEW_KINDS and i > self._reacted_until:
                self._after_review(event)
            if eid is None:
                continue
            if kind == "approved":
                kind = "posted"  # an approved entry reaches the sources as if just posted
            entry = entries.get(eid)
            if entry is None:
                continue
            if kind in _ENTRY_KINDS_ACTIVE and entry.status != ACTIVE:
                continue
            bucket = buckets.get((entry.space, kind))
            if bucket is not None:
                for source in bucket.match(entry):
                    key = (source.name, (eid,))
                    if key in seen:
                        continue
                    self._queue(source, entry, rating, cycle, agenda)
            if kind == "revised" and self._retriggers:
                for source in self._retriggers.get(entry.revises, ()):  # type: ignore[arg-type]
                    if source.name in self._sources and source.matches(entry):
                        self._queue(source, entry, rating, cycle, agenda)
            if goal_rule is not None and kind in _ENTRY_KINDS_ACTIVE:
                if goal_rule.matches(entry):
                    goal_hits.append(entry)
        self._cursor = end
        bb.matched = end

    def _after_review(self, event: Any) -> None:
        """React to a person's decision: retry an approved failure, re-resolve a rejected winner."""
        details = event.details or {}
        bb = self.blackboard
        if event.kind == "review_approved" and details.get("kind") == "failure" and event.activation is not None:
            record = bb.activation(event.activation)
            source = self._sources.get(record["source"]) if record else None
            if source is not None:
                triggers = tuple(bb.get(t) for t in record["triggers"])  # type: ignore[index]
                retry = Activation(self._next_activation, source, triggers, source.priority + 1.0, bb.cycle)
                self._next_activation += 1
                self.agenda.requeue(retry)
        elif event.kind == "review_rejected" and details.get("kind") == "conflict" and event.entry is not None:
            rejected = bb.get(event.entry)
            if rejected.key is not None:
                self._resolve((rejected.context, rejected.space, rejected.key))

    def _queue(self, source: KnowledgeSource, entry: Entry, rating: Any, cycle: int, agenda: Agenda) -> None:
        triggers = (entry,)
        value = source.priority + entry.confidence if rating is None else rating(source, triggers)
        if entry.context and self.context_order is not None:
            value += self._context_bonus(entry.context)
        activation = Activation(self._next_activation, source, triggers, value, cycle)
        if agenda.add(activation):
            self._next_activation += 1
            if source.retrigger_on_revision:
                self._retriggers.setdefault(entry.id, []).append(source)

    def _context_bonus(self, context: int) -> float:
        ctx = self.blackboard.context(context)
        bonus = 1000.0 * ctx.depth
        if self.context_order == "fewest_alternatives":
            bonus -= 10.0 * ctx.alternatives
        elif self.context_order == "most_confident":
            bonus += 10.0 * ctx.confidence
        return bonus

    def _goal_met(self, goal: Any, goal_hits: list[Entry]) -> bool:
        if isinstance(goal, _GoalRule):
            entries = self.blackboard._entries
            return any(entries[e.id].status == Status.ACTIVE for e in goal_hits)
        outcome = goal(self._view)
        if isinstance(outcome, Entry):
            outcome = [outcome]
        if isinstance(outcome, (list, tuple)):
            goal_hits[:] = list(outcome)
            return bool(outcome)
        return bool(outcome)


def _redefines(new: KnowledgeSource, old: KnowledgeSource) -> bool:
    """Is ``new`` the same definition as ``old``, run again (a notebook cell)?

    Lambdas and functions or classes made inside a function (a factory) have
    no name that tells two apart, so they never redefine; nor does a second
    instance of the very same class (two sources, not a redefinition).
    """
    qualname = new.definition[1]
    if new.definition != old.definition or "<lambda>" in qualname or "<locals>" in qualname:
        return False
    return type(new) is not type(old) or new.definition[1] != type(new).__qualname__


def _progress(progress: bool | Instrument) -> list[Instrument]:
    if isinstance(progress, Instrument):
        return [progress]
    if progress is True:
        from ._progress import ProgressBar

        return [ProgressBar()]
    if progress is False or progress is None:
        return []
    raise ConfigurationError("progress", f"must be True, False or a ProgressBar, not {progress!r}")


def _call_sync(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    out = fn(*args)
    if inspect.isgenerator(out):
        out = list(out)
    return out


def run_sync(call: Callable[[], Any]) -> Any:
    """Run an async function to completion from sync code: the one sync bridge.

    In a script it is ``anyio.run``; inside a running event loop (a Jupyter
    cell) the call runs on a worker thread with its own loop, so the caller
    still just gets the result.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(call)
    with ThreadPoolExecutor(1, thread_name_prefix="blackboard-run") as pool:
        return pool.submit(anyio.run, call).result()


class _GoalRule:
    """A goal written as a rule: met when an active entry satisfies it."""

    __slots__ = ("matches", "rule")

    def __init__(self, expression: str) -> None:
        self.rule = compile_rule("goal", expression)
        self.matches = fast_matcher(self.rule)


def _describe(exc: BaseException) -> str:
    """The error and its traceback as storable text, whatever the exception does."""
    try:
        message = str(exc)
    except Exception:
        message = f"<{type(exc).__name__} whose message cannot be shown>"
    try:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8))
    except Exception:
        tb = ""
    text = f"{type(exc).__name__}: {message}\n{tb}"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _goal(goal: _Goal) -> Any:
    if goal is None:
        return None
    if isinstance(goal, str):
        return _GoalRule(goal)
    if callable(goal):
        return goal
    raise ConfigurationError("goal", f"must be a rule expression or a callable, not {goal!r}")


def _strategies(conflict: Any) -> tuple[dict[str, ConflictStrategy], ConflictStrategy]:
    def one(value: Any, where: str) -> ConflictStrategy:
        if isinstance(value, ConflictStrategy):
            return value
        if isinstance(value, str):
            try:
                return strategy_named(value)
            except KeyError:
                raise ConfigurationError(where, f"unknown strategy {value!r}; use highest_confidence, noisy_or, weighted_vote or a UserRule") from None
        raise ConfigurationError(where, f"expected a ConflictStrategy or its name, not {value!r}")

    if conflict is None:
        return {}, HighestConfidence()
    if isinstance(conflict, Mapping):
        per_space = {space: one(s, f"conflict[{space!r}]") for space, s in conflict.items()}
        default = per_space.pop("*", HighestConfidence())
        return per_space, default
    return {}, one(conflict, "conflict")


def _rating(rating: Any) -> Any:
    if rating is None:
        return None
    if callable(rating):
        return lambda source, triggers: float(rating(source, triggers))
    if isinstance(rating, str):
        rule = compile_rule("rating", rating)

        def rate(source: KnowledgeSource, triggers: tuple[Entry, ...]) -> float:
            facts = entry_facts(triggers[0])
            facts["priority"] = source.priority
            try:
                return float(rule.evaluate(facts))
            except _RuleErrors:
                return source.priority
        return rate
    raise ConfigurationError("rating", f"must be a rule expression or a callable, not {rating!r}")
