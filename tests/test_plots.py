"""Pictures of a run: timeline, confidence over cycles, provenance graph."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.collections import PolyCollection
from matplotlib.text import Annotation

from blackboard import Blackboard, MissingExtraError
from controller import (
    ConfigurationError,
    Controller,
    confidence_data,
    plot_confidence,
    plot_provenance,
    plot_timeline,
    provenance_data,
    timeline_data,
)
from knowledge_sources import knowledge_source, post


@knowledge_source(watches="raw", writes="guess")
def guesser(entry: Any) -> Any:
    """Guesses on one shared key, so guesses compete; revises nothing."""
    n = entry.value["n"]
    return post("guess", {"n": n}, key="g", confidence=0.2 + 0.1 * n, supports=[entry.id])


@knowledge_source(watches="guess", writes="answer", when="confidence > 0.45", priority=1.0)
def answerer(entry: Any) -> Any:
    """Answers a confident guess; fails on n == 5."""
    if entry.value["n"] == 5:
        raise ValueError("five")
    return post("answer", entry.value, key="a", confidence=entry.confidence, supports=[entry.id])


@pytest.fixture
def ran() -> Any:
    """A finished run with competition, a failure and a chain of derivations."""
    bb = Blackboard(spaces=["raw", "guess", "answer"])
    for n in range(6):
        bb.post("raw", {"n": n}, confidence=1.0, source="user")
    result = Controller(bb, [guesser, answerer], concurrency=1).run()
    yield bb, result
    plt.close("all")
    bb.close()


def _bars(ax: Any) -> int:
    return sum(len(c.get_paths()) for c in ax.collections if isinstance(c, PolyCollection))


def _crosses(ax: Any) -> int:
    return sum(len(line.get_xdata()) for line in ax.get_lines() if line.get_marker() == "x")


def test_timeline_draws_a_bar_per_activation_and_marks_failures(ran: Any, tmp_path: Path) -> None:
    """plot_timeline has a lane per source, one bar per activation that ran, and a cross per failure."""
    bb, result = ran
    rows = timeline_data(bb)
    assert len(rows) == result.activations and rows[0]["start"] == 0.0
    ax = plot_timeline(bb)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["answerer", "guesser"]
    assert _bars(ax) == result.activations
    assert _crosses(ax) == result.failed == 1
    ax.figure.savefig(tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").stat().st_size > 5000
    by_cycle = plot_timeline(bb, by="cycle")
    assert by_cycle.get_xlabel() == "cycle"
    with pytest.raises(ConfigurationError, match="by"):
        plot_timeline(bb, by="colour")


def test_confidence_plot_has_a_line_per_leading_hypothesis(ran: Any) -> None:
    """plot_confidence draws the top hypotheses; losers end in a cross, the winner in a dot."""
    bb, _ = ran
    data = confidence_data(bb, "guess", top=3)
    assert [h["best"] for h in data] == sorted((h["best"] for h in data), reverse=True)
    assert data[0]["fate"] == "active" and all(h["fate"] == "superseded" for h in data[1:])
    ax = plot_confidence(bb, "guess", top=3)
    steps = [line for line in ax.get_lines() if line.get_marker() in ("None", None, "")]
    assert len(steps) == 3
    markers = sorted(line.get_marker() for line in ax.get_lines() if line.get_marker() in ("o", "x"))
    assert markers == ["o", "x", "x"]
    assert len(ax.get_legend().get_texts()) == 3
    default = confidence_data(bb)  # the last declared space
    assert default and default[0]["space"] == "answer"


def test_provenance_graph_shows_derivation_and_what_it_beat(ran: Any) -> None:
    """plot_provenance draws the entry, what it was derived from (to the left) and what it beat (red)."""
    bb, _ = ran
    answer = bb.find("answer", "a")[0]
    data = provenance_data(bb, answer)
    guess = answer.supports[0]
    raw = bb.get(guess).supports[0]
    assert data["level"][answer.id] == 0 and data["level"][guess] == 1 and data["level"][raw] == 2
    assert (guess, answer.id, "derived") in data["edges"]
    winner = bb.find("guess", "g")[0]
    graph = provenance_data(bb, winner)
    beaten = [src for src, dst, kind in graph["edges"] if kind == "beat"]
    assert beaten and all(dst == winner.id for _, dst, kind in graph["edges"] if kind == "beat")
    ax = plot_provenance(bb, winner)
    texts = [t.get_text() for t in ax.texts if not isinstance(t, Annotation)]
    assert len(texts) == len(graph["nodes"]) and any(t.startswith(f"{winner.id} guess[g]") for t in texts)
    arrows = [t for t in ax.texts if isinstance(t, Annotation)]
    assert len(arrows) == len(graph["edges"])


def test_plots_without_matplotlib_name_the_extra(ran: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without matplotlib, a plot call raises MissingExtraError with the pip command."""
    bb, _ = ran
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MissingExtraError, match=r"duckdb-blackboard\[notebook\]"):
        plot_timeline(bb)


def test_plots_refuse_what_is_not_a_blackboard() -> None:
    """Passing something else than a Blackboard is a ConfigurationError naming the type."""
    with pytest.raises(ConfigurationError, match="dict"):
        plot_timeline({})  # type: ignore[arg-type]
