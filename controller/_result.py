"""What a run returns: its outcome, its goal entries, and its figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from blackboard import Entry
from blackboard._display import (
    badge,
    card,
    confidence_bar,
    escape,
    html_table,
    short,
    text_table,
)

METRIC_COLUMNS = ("source", "activations", "failed", "obviated", "retries", "contributions", "denied",
                  "action_seconds", "mean_action_ms", "share_of_action_time")


ENDED = ("goal", "quiescent")  # outcomes of a run that has nothing left to do


@dataclass
class SourceStats:
    """Per-source figures of one run."""

    activations: int = 0
    failed: int = 0
    obviated: int = 0
    retries: int = 0
    contributions: int = 0
    denied: int = 0
    seconds: float = 0.0  # inside this source's actions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"seconds": round(self.seconds, 6)}


@dataclass(frozen=True)
class RunResult:
    """The result of :meth:`Controller.run`.

    ``outcome`` is ``"goal"`` (the goal holds), ``"quiescent"`` (nothing left
    to do), ``"budget"`` (a budget ran out; ``budget`` says which),
    or ``"cancelled"``. ``action_seconds`` is the time spent inside actions,
    ``controller_seconds`` the rest: the framework's own overhead.
    ``sources`` has each source's figures (:meth:`metrics` as a table) and
    ``agenda_lengths`` the activations waiting after each cycle.
    """

    outcome: str
    goal_entries: tuple[Entry, ...]
    run_id: int
    path: str
    cycles: int
    activations: int
    failed: int
    obviated: int
    contributions: int
    seconds: float
    action_seconds: float
    budget: str | None = None
    sources: Mapping[str, SourceStats] = field(default_factory=dict)
    agenda_lengths: tuple[int, ...] = ()

    @property
    def controller_seconds(self) -> float:
        return max(0.0, self.seconds - self.action_seconds)

    @property
    def agenda_peak(self) -> int:
        """The longest the agenda was after a cycle."""
        return max(self.agenda_lengths, default=0)

    @property
    def agenda_mean(self) -> float:
        lengths = self.agenda_lengths
        return sum(lengths) / len(lengths) if lengths else 0.0

    def metrics(self) -> pa.Table:
        """Per-source figures as a table (``.to_pandas()`` for a DataFrame), busiest first."""
        total = self.action_seconds or 0.0
        rows = sorted(self.sources.items(), key=lambda kv: (-kv[1].seconds, -kv[1].activations, kv[0]))
        columns: dict[str, list[Any]] = {c: [] for c in METRIC_COLUMNS}
        for name, st in rows:
            for column, value in zip(METRIC_COLUMNS, (
                name, st.activations, st.failed, st.obviated, st.retries, st.contributions, st.denied,
                st.seconds, 1000 * st.seconds / st.activations if st.activations else 0.0,
                st.seconds / total if total > 0 else 0.0,
            )):
                columns[column].append(value)
        return pa.table(columns)

    @property
    def solved(self) -> bool:
        return self.outcome == "goal"

    @classmethod
    def recorded(cls, bb: Any) -> RunResult | None:
        """The result the controller recorded in ``bb`` when its run ran to an end
        (goal or quiescent); None while the run can go on (never run, killed,
        stopped by a budget, waiting for review). Goal entries are read back;
        agenda lengths are not kept."""
        summary = bb.run_result
        if bb.run_state != "finished" or summary is None or summary.get("outcome") not in ENDED:
            return None
        goals = tuple(bb.get(int(e)) for e in summary.get("goal_entries", ()) if isinstance(e, int))
        return cls(
            outcome=summary["outcome"], goal_entries=goals, run_id=bb.run_id, path=bb.path,
            cycles=summary["cycles"], activations=summary["activations"], failed=summary["failed"],
            obviated=summary["obviated"], contributions=summary["contributions"],
            seconds=summary["seconds"], action_seconds=summary["action_seconds"], budget=summary.get("budget"),
            sources={name: SourceStats(**stats) for name, stats in summary.get("sources", {}).items()},
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what the command line prints with --json)."""
        return {
            "outcome": self.outcome,
            "budget": self.budget,
            "run_id": self.run_id,
            "path": self.path,
            "cycles": self.cycles,
            "activations": self.activations,
            "failed": self.failed,
            "obviated": self.obviated,
            "contributions": self.contributions,
            "seconds": round(self.seconds, 6),
            "action_seconds": round(self.action_seconds, 6),
            "controller_seconds": round(self.controller_seconds, 6),
            "agenda_peak": self.agenda_peak,
            "agenda_mean": round(self.agenda_mean, 3),
            "sources": {name: st.to_dict() for name, st in sorted(self.sources.items())},
            "goal_entries": [e._asdict() | {"status": str(e.status)} for e in self.goal_entries],
        }

    def __str__(self) -> str:
        budget = f" ({self.budget})" if self.budget else ""
        return (
            f"{self.outcome}{budget} after {self.cycles} cycles, {self.activations} activations "
            f"({self.failed} failed, {self.obviated} obviated) in {self.seconds:.3f} s; "
            f"{len(self.goal_entries)} goal entries; run {self.run_id} in {self.path}"
        )

    def to_text(self) -> str:
        """The result with its per-source table, for a terminal."""
        table = self.metrics().to_pylist()
        rows = [(r["source"], r["activations"], r["failed"], r["obviated"], r["retries"], r["contributions"],
                 r["denied"], r["action_seconds"], r["mean_action_ms"]) for r in table]
        return text_table(
            ("source", "activations", "failed", "obviated", "retries", "contributions", "denied",
             "action s", "mean ms"), rows, title=str(self),
            note=(f"time: {self.action_seconds:.3f} s in actions, {self.controller_seconds:.3f} s in the "
                  f"controller; agenda peak {self.agenda_peak}, mean {self.agenda_mean:.1f}"))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        seconds = self.seconds or 1e-12
        share = min(1.0, self.action_seconds / seconds)
        split = (
            f'<span style="display:inline-block;width:160px;height:9px;background:#90a4ae;vertical-align:middle">'
            f'<span style="display:block;height:9px;width:{share * 100:.1f}%;background:#1e88e5"></span></span> '
            f"{self.action_seconds:.3f} s in actions (blue), {self.controller_seconds:.3f} s controller"
        )
        goal = ", ".join(f"{e.space}[{e.key}]={short(e.value, 24)}" if e.key else f"entry {e.id}"
                         for e in self.goal_entries[:5])
        more = len(self.goal_entries) - 5
        pairs = [
            ("outcome", badge(self.outcome) + (f" ({escape(self.budget)})" if self.budget else "")),
            ("work", f"{self.cycles} cycles, {self.activations} activations, {self.failed} failed, "
                     f"{self.obviated} obviated, {self.contributions} contributions"),
            ("time", f"{self.seconds:.3f} s · " + split),
            ("agenda", f"peak {self.agenda_peak}, mean {self.agenda_mean:.1f} waiting after a cycle"),
            ("goal entries", escape(goal + (f" … {more} more" if more > 0 else "")) or "—"),
            ("stored", f"run {self.run_id} in <code>{escape(self.path)}</code>"),
        ]
        rows = [
            [escape(r["source"]), str(r["activations"]),
             f'<span style="color:{"#c62828" if r["failed"] else "inherit"}">{r["failed"]}</span>',
             str(r["obviated"]), str(r["retries"]), str(r["contributions"]), str(r["denied"]),
             f'{r["action_seconds"]:.4f}', confidence_bar(r["share_of_action_time"], 50)]
            for r in self.metrics().to_pylist()
        ]
        table = html_table(("source", "activations", "failed", "obviated", "retries", "contributions",
                            "denied", "action s", "share of action time"), rows)
        return card("run result", pairs) + table
