"""Seeing a run: displays, metrics, instruments, progress, tracing, logging, re-registration."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import as_format_1

from blackboard import Blackboard, MissingExtraError, SpaceView, UnknownSpaceError
from controller import (
    ConfigurationError,
    Controller,
    CycleReport,
    Instrument,
    ProgressBar,
    RunResult,
    explain,
)
from controller._cli import main
from knowledge_sources import (
    DuplicateSourceError,
    KnowledgeSource,
    knowledge_source,
    post,
)


def _board() -> Blackboard:
    bb = Blackboard(spaces=["raw", "guess", "answer"])
    for n in range(6):
        bb.post("raw", {"n": n}, confidence=1.0, source="user")
    return bb


@knowledge_source(watches="raw", writes="guess")
def guesser(entry: Any) -> Any:
    """Guesses a class for each raw entry; guesses on one key compete."""
    n = entry.value["n"]
    return post("guess", {"class": n % 2, "n": n}, key="g", confidence=0.2 + 0.1 * n, supports=[entry.id])


@knowledge_source(watches="guess", writes="answer", when="confidence > 0.45")
def answerer(entry: Any) -> Any:
    """Answers from a confident guess; fails on n == 5."""
    if entry.value["n"] == 5:
        raise ValueError("no answer for five")
    return post("answer", entry.value, key="a", confidence=entry.confidence, supports=[entry.id])


def _run(bb: Blackboard, **options: Any) -> tuple[Controller, RunResult]:
    controller = Controller(bb, [guesser, answerer], **options)
    return controller, controller.run()


class Recorder(Instrument):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def run_started(self, controller: Controller, goal: Any, limits: dict[str, Any]) -> None:
        self.calls.append(("start", limits))

    def cycle_finished(self, controller: Controller, report: CycleReport) -> None:
        self.calls.append(("cycle", report))

    def run_finished(self, controller: Controller, result: RunResult) -> None:
        self.calls.append(("finish", result))


# --------------------------------------------------------------------- display
def test_blackboard_html_and_text_show_spaces_counts_and_best() -> None:
    """A blackboard displays as a table of its spaces with counts and the best entry, in HTML and text."""
    bb = _board()
    _run(bb)
    html, text = bb._repr_html_(), str(bb)
    for name in ("raw", "guess", "answer"):
        assert f"<b>{name}</b>" in html and name in text
    best = bb.space("guess").best
    assert best is not None and f"{best.confidence:.3g}" in text and "superseded" in html
    assert f"cycle {bb.cycle}" in text and "run 1" in html


def test_space_view_orders_best_first_and_counts_statuses() -> None:
    """bb.space(name) lists active entries most confident first, then the rest, with counts by status."""
    bb = _board()
    _run(bb)
    view = bb.space("guess")
    assert isinstance(view, SpaceView)
    assert [e.confidence for e in view.entries] == sorted((e.confidence for e in view.entries), reverse=True)
    assert view.counts()["active"] == len(view) and sum(view.counts().values()) == len(view.all) == 6
    assert "space 'guess'" in str(view) and "superseded" in view._repr_html_()
    with pytest.raises(UnknownSpaceError, match="nowhere"):
        bb.space("nowhere")


def test_display_escapes_values() -> None:
    """Values that look like HTML are escaped in every display, never injected."""
    bb = Blackboard(spaces=["s"])
    entry = bb.post("s", {"x": "<script>alert(1)</script>"}, key="<b>k</b>", source="user")
    for html in (entry._repr_html_(), bb.space("s")._repr_html_(), bb._repr_html_()):
        assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>k</b>" not in bb.space("s")._repr_html_()


def test_entry_and_agenda_display() -> None:
    """An entry shows its fields and confidence bar; the agenda lists waiting activations best first."""
    bb = _board()
    controller = Controller(bb, [guesser, answerer])
    controller.run(max_cycles=0)
    assert len(controller.agenda) == 6
    text, html = str(controller.agenda), controller.agenda._repr_html_()
    assert "6 activations waiting" in text and text.count("guesser") == 6 and "guesser" in html
    entry = bb.get(1)
    assert "entry 1" in entry._repr_html_() and "raw" in entry._repr_html_()
    printed: list[str] = []

    class Printer:
        def text(self, s: str) -> None:
            printed.append(s)

    entry._repr_pretty_(Printer(), False)
    assert printed[0].startswith("entry 1 raw") and "by user" in printed[0]


# --------------------------------------------------------------------- metrics
def test_run_result_metrics_table_matches_the_counts() -> None:
    """RunResult.metrics() has a row per source whose figures add up to the run's, also in to_dict()."""
    bb = _board()
    _, result = _run(bb)
    table = result.metrics()
    rows = {r["source"]: r for r in table.to_pylist()}
    assert set(rows) == {"guesser", "answerer"}
    assert sum(r["activations"] for r in rows.values()) == result.activations
    assert rows["answerer"]["failed"] == result.failed == 1
    assert abs(sum(r["action_seconds"] for r in rows.values()) - result.action_seconds) < 1e-6
    assert abs(sum(r["share_of_action_time"] for r in rows.values()) - 1.0) < 1e-6
    summary = result.to_dict()
    assert summary["sources"]["guesser"]["activations"] == rows["guesser"]["activations"] == 6
    assert len(result.agenda_lengths) == result.cycles and result.agenda_lengths[-1] == 0
    assert summary["agenda_peak"] == result.agenda_peak == max(result.agenda_lengths)
    assert "guesser" in result.to_text() and "in the controller" in result.to_text()
    assert "run result" in result._repr_html_() and "answerer" in result._repr_html_()


def test_source_stats_of_a_result_are_a_snapshot() -> None:
    """A second run does not change the figures of the first run's result."""
    bb = _board()
    controller, first = _run(bb)
    before = first.sources["guesser"].activations
    bb.post("raw", {"n": 7}, confidence=1.0, source="user")
    controller.run()
    assert first.sources["guesser"].activations == before
    assert controller.stats["guesser"].activations == before + 1


def test_activations_record_start_times(tmp_path: Path) -> None:
    """Every activation that ran has a Unix start time stored with it, in run order."""
    with Blackboard(tmp_path / "t.duckdb", spaces=["raw", "guess", "answer"]) as bb:
        for n in range(6):
            bb.post("raw", {"n": n}, confidence=1.0, source="user")
        _run(bb)
        rows = bb.sql("SELECT id, cycle, started, seconds FROM activations WHERE cycle IS NOT NULL ORDER BY id").to_pylist()
    assert rows and all(r["started"] is not None and r["started"] > 1.7e9 for r in rows)
    by_cycle = sorted(rows, key=lambda r: (r["cycle"], r["id"]))
    assert [r["started"] for r in by_cycle] == sorted(r["started"] for r in by_cycle)


def test_version_1_file_is_upgraded_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file written in format version 1 (no start times) is shown as it is, then opens upgraded to 2 with its data."""
    path = tmp_path / "old.duckdb"
    with Blackboard(path, spaces=["raw", "guess", "answer"]) as bb:
        bb.post("raw", {"n": 2}, confidence=1.0, source="user")
        _run(bb)
        run = bb.run_id
    as_format_1(path)
    assert main(["show", str(path), "--run", str(run), "--agenda", "--json"]) == 0  # read as it is
    assert json.loads(capsys.readouterr().out)["activations"][0]["source"] == "guesser"
    with Blackboard(path, run=run) as bb:
        assert bb.get(1).value == {"n": 2}
        assert bb.sql("SELECT count(*) AS n FROM activations").to_pylist()[0]["n"] == 1
        assert bb.sql("SELECT value FROM bb_meta WHERE name = 'version'").to_pylist()[0]["value"] == "2"


# ----------------------------------------------------------------- instruments
def test_instruments_see_every_cycle_and_activation() -> None:
    """An instrument gets run_started, one report per cycle covering every activation, and run_finished."""
    bb = _board()
    recorder = Recorder()
    _, result = _run(bb, instruments=[recorder])
    kinds = [k for k, _ in recorder.calls]
    assert kinds[0] == "start" and kinds[-1] == "finish" and kinds.count("cycle") == result.cycles
    reports = [r for k, r in recorder.calls if k == "cycle"]
    assert [r.cycle for r in reports] == list(range(1, result.cycles + 1))
    assert sum(len(r.activations) for r in reports) == result.activations
    assert [r.agenda for r in reports] == list(result.agenda_lengths)
    assert all(a.started is not None and a.state in ("done", "failed") for r in reports for a in r.activations)
    assert recorder.calls[-1][1] is result


def test_a_raising_instrument_is_switched_off_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """An instrument that raises is logged and dropped; the run's outcome and entries are as without it."""

    class Broken(Instrument):
        def cycle_finished(self, controller: Controller, report: CycleReport) -> None:
            raise RuntimeError("observer bug")

    plain_bb, broken_bb = _board(), _board()
    _, plain = _run(plain_bb)
    with caplog.at_level(logging.ERROR, logger="controller"):
        _, broken = _run(broken_bb, instruments=[Broken()])
    assert (broken.outcome, broken.activations, broken.failed) == (plain.outcome, plain.activations, plain.failed)
    assert [e.value for e in broken_bb.entries()] == [e.value for e in plain_bb.entries()]
    assert sum("observer bug" in r.getMessage() or "switched off" in r.getMessage() for r in caplog.records) == 1


def test_instruments_are_checked() -> None:
    """Anything but Instrument objects as instruments is refused, naming the setting."""
    with pytest.raises(ConfigurationError, match="instruments"):
        Controller(Blackboard(), instruments=[object()])
    with pytest.raises(ConfigurationError, match="instruments"):
        Controller(Blackboard(), instruments="progress")


# -------------------------------------------------------------------- progress
def test_progress_bar_reports_cycles_activations_and_best_confidence() -> None:
    """ProgressBar writes cycles, activations, agenda and the best confidence of its space, then closes."""
    bb = _board()
    out = io.StringIO()
    controller = Controller(bb, [guesser, answerer])
    result = controller.run(progress=ProgressBar("guess", file=out, min_interval=0))
    text = out.getvalue()
    assert f"{result.cycles}cycle" in text.replace(" ", "")
    assert f"activations={result.activations}" in text and "outcome=quiescent" in text
    best = max(e.confidence for e in bb.space("guess").all)
    assert f"best guess={best:.3g}" in text


def test_progress_refuses_an_unknown_space_before_running() -> None:
    """A ProgressBar on an undeclared space raises ConfigurationError and nothing runs."""
    bb = _board()
    controller = Controller(bb, [guesser])
    with pytest.raises(ConfigurationError, match="nowhere"):
        controller.run(progress=ProgressBar("nowhere", file=io.StringIO()))
    assert len(bb.space("guess").all) == 0
    assert controller.run().activations == 6


def test_progress_without_tqdm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without tqdm, progress=True raises MissingExtraError with the pip command that installs it."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.raises(MissingExtraError, match=r"duckdb-blackboard\[notebook\]"):
        Controller(_board(), [guesser]).run(progress=True)


def test_progress_must_be_a_bool_or_instrument() -> None:
    """progress='yes' is refused with ConfigurationError."""
    with pytest.raises(ConfigurationError, match="progress"):
        Controller(_board(), [guesser]).run(progress="yes")  # type: ignore[arg-type]


# ---------------------------------------------------------------- opentelemetry
def test_opentelemetry_spans_per_run_cycle_and_activation() -> None:
    """One run span, a span per cycle under it and per activation under its cycle; failures are ERROR."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )
    from opentelemetry.trace import StatusCode

    from controller import OpenTelemetryInstrument

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    bb = _board()
    _, result = _run(bb, instruments=[OpenTelemetryInstrument(provider.get_tracer("test"))])
    spans = exporter.get_finished_spans()
    runs = [s for s in spans if s.name == "blackboard.run"]
    cycles = [s for s in spans if s.name == "blackboard.cycle"]
    acts = [s for s in spans if s.name.startswith("blackboard.activation")]
    assert len(runs) == 1 and len(cycles) == result.cycles and len(acts) == result.activations
    run_id = runs[0].context.span_id
    assert all(c.parent is not None and c.parent.span_id == run_id for c in cycles)
    cycle_ids = {c.context.span_id for c in cycles}
    assert all(a.parent is not None and a.parent.span_id in cycle_ids for a in acts)
    assert runs[0].attributes["blackboard.outcome"] == "quiescent"
    failed = [a for a in acts if a.status.status_code == StatusCode.ERROR]
    assert len(failed) == 1 and failed[0].attributes["blackboard.source"] == "answerer"
    assert "no answer for five" in failed[0].status.description
    assert all(a.end_time >= a.start_time for a in acts)


# --------------------------------------------------------------------- logging
def test_logging_levels(caplog: pytest.LogCaptureFixture) -> None:
    """A run logs its summary at INFO, a failed activation at WARNING, each cycle at DEBUG."""
    with caplog.at_level(logging.DEBUG, logger="controller"):
        _, result = _run(_board())
    by_level: dict[int, list[str]] = {}
    for record in caplog.records:
        by_level.setdefault(record.levelno, []).append(record.getMessage())
    assert any("quiescent" in m for m in by_level[logging.INFO])
    assert any("no answer for five" in m for m in by_level[logging.WARNING])
    assert sum(m.startswith("cycle ") for m in by_level[logging.DEBUG]) == result.cycles


# ------------------------------------------------------------------ explanation
def test_explanation_says_why_an_entry_won_or_lost() -> None:
    """explain() gives a verdict: the winner beat its competitors by a strategy; a loser names its winner."""
    bb = _board()
    _run(bb)
    winner = bb.find("guess", "g")[0]
    story = explain(bb, winner)
    assert story.beat and story.verdict.startswith("won against") and "highest_confidence" in story.verdict
    assert story.to_dict()["verdict"] == story.verdict and story.lost_to is None
    loser = explain(bb, story.beat[0]["entry"])
    assert loser.lost_to is not None and loser.lost_to["entry"] == winner.id
    assert loser.verdict.startswith(f"lost to entry {winner.id}")
    assert "won against" in story._repr_html_() and "beat entry" in story._repr_html_()
    assert Controller(bb).explain(winner.id).to_dict() == story.to_dict()


# -------------------------------------------------------------- re-registration
_CELL = '''
from knowledge_sources import knowledge_source, post

@knowledge_source(watches="raw", writes="guess", name="cell_source")
def cell_source(entry):
    return post("guess", {"version": VERSION}, key=str(entry.id))
'''


def _run_cell(version: int) -> KnowledgeSource:
    namespace: dict[str, Any] = {"__name__": "__main__", "VERSION": version}
    exec(compile(_CELL, "<cell>", "exec"), namespace)  # noqa: S102 - a notebook cell, run again
    return namespace["cell_source"]  # type: ignore[no-any-return]


def test_rerunning_a_cell_replaces_its_source_without_errors() -> None:
    """Registering a source again from a re-run cell (same definition) replaces it; waiting work runs the new one."""
    bb = _board()
    controller = Controller(bb, [_run_cell(1)])
    controller.run(max_cycles=0)  # six activations wait for version 1
    controller.register(_run_cell(2))  # the cell, edited and run again
    controller.run()
    assert {e.value["version"] for e in bb.entries("guess")} == {2}
    again = Controller(bb, [_run_cell(3)])  # re-creating the controller just works too
    assert again.run().activations == 0


def test_two_different_definitions_with_one_name_still_clash() -> None:
    """A different function under a taken name is refused; so are two lambdas."""
    controller = Controller(_board(), [_run_cell(1)])

    @knowledge_source(watches="raw", name="cell_source")
    def other(entry: Any) -> None:
        """A different source that happens to take the same name."""

    with pytest.raises(DuplicateSourceError, match="cell_source"):
        controller.register(other)
    first = knowledge_source(lambda e: None, name="anon", watches="raw")
    controller.register(first)
    with pytest.raises(DuplicateSourceError, match="anon"):
        controller.register(knowledge_source(lambda e: None, name="anon", watches="raw"))
