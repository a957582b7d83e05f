"""OpenTelemetry tracing of runs: a span per run, per cycle, per activation.

An :class:`Instrument`, so tracing costs nothing in runs that don't ask for
it and nothing per activation in runs that do: activation spans are made
after their cycle, from the start time and duration the controller records
anyway, with explicit timestamps. Spans nest run > cycle > activation, and
carry the figures people filter on (``blackboard.source``,
``blackboard.state``, ``blackboard.rating``, ``blackboard.outcome``...). A
failed activation's span has status ERROR and its error text.

Needs the ``otel`` extra (``opentelemetry-api``; an SDK and exporter of
your choice, e.g. ``opentelemetry-sdk``, to send the spans somewhere).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from blackboard import MissingExtraError

from ._instruments import Controller, CycleReport, Instrument

if TYPE_CHECKING:
    from ._result import RunResult


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class OpenTelemetryInstrument(Instrument):
    """Sends runs to OpenTelemetry; ``tracer`` defaults to the global provider's."""

    def __init__(self, tracer: Any = None, *, name: str = "duckdb-blackboard") -> None:
        try:
            from opentelemetry import trace
        except ImportError:
            raise MissingExtraError("opentelemetry-api", "OpenTelemetryInstrument", "otel") from None
        self._trace = trace
        self.tracer = tracer if tracer is not None else trace.get_tracer(name)
        self._run: Any = None
        self._run_context: Any = None

    def run_started(self, controller: Controller, goal: Any, limits: dict[str, Any]) -> None:
        bb = controller.blackboard
        attributes = {"blackboard.path": bb.path, "blackboard.run": bb.run_id,
                      "blackboard.sources": len(controller.sources)}
        attributes |= {f"blackboard.{k}": v for k, v in limits.items() if v is not None}
        if isinstance(goal, str):
            attributes["blackboard.goal"] = goal
        self._run = self.tracer.start_span("blackboard.run", attributes=attributes, start_time=_ns(time.time()))
        self._run_context = self._trace.set_span_in_context(self._run)

    def cycle_finished(self, controller: Controller, report: CycleReport) -> None:
        if self._run is None:
            return
        cycle = self.tracer.start_span(
            "blackboard.cycle", context=self._run_context, start_time=_ns(report.started),
            attributes={"blackboard.cycle": report.cycle, "blackboard.activations": len(report.activations),
                        "blackboard.agenda": report.agenda},
        )
        inside = self._trace.set_span_in_context(cycle)
        status = self._trace.Status
        code = self._trace.StatusCode
        for activation in report.activations:
            started = activation.started if activation.started is not None else report.started
            span = self.tracer.start_span(
                f"blackboard.activation {activation.source.name}", context=inside, start_time=_ns(started),
                attributes={
                    "blackboard.activation": activation.id, "blackboard.source": activation.source.name,
                    "blackboard.state": activation.state, "blackboard.rating": float(activation.rating),
                    "blackboard.attempts": activation.attempts,
                    "blackboard.triggers": [t.id for t in activation.triggers],
                    "blackboard.produced": list(activation.produced),
                },
            )
            if activation.state == "failed":
                first = (activation.error or "failed").splitlines()[0]
                span.set_status(status(code.ERROR, first))
                span.set_attribute("blackboard.error", activation.error or "")
            span.end(end_time=_ns(started + (activation.seconds or 0.0)))
        cycle.end(end_time=_ns(report.started + report.seconds))

    def run_abandoned(self, controller: Controller, error: BaseException) -> None:
        span, self._run = self._run, None
        if span is not None:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"not started: {error}"))
            span.end(end_time=_ns(time.time()))

    def run_finished(self, controller: Controller, result: RunResult) -> None:
        span, self._run = self._run, None
        if span is None:
            return
        span.set_attributes({
            "blackboard.outcome": result.outcome, "blackboard.cycles": result.cycles,
            "blackboard.activations": result.activations, "blackboard.failed": result.failed,
            "blackboard.action_seconds": result.action_seconds,
            "blackboard.controller_seconds": result.controller_seconds,
            "blackboard.agenda_peak": result.agenda_peak,
        })
        if result.budget:
            span.set_attribute("blackboard.budget", result.budget)
        if result.outcome == "cancelled":
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, "cancelled"))
        span.end(end_time=_ns(time.time()))
