"""Governance and failover: policies, circuit breakers, reviews by a person, explain, tamper evidence."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blackboard import Blackboard, Status, ValidationError, verify
from controller import Controller, Escalation, Policy, explain
from controller._cli import main as cli
from knowledge_sources import knowledge_source, post

ConfigurationError = __import__("controller").ConfigurationError


def poster(space: str, value: object, confidence: float, n_supports: int, tags: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    @knowledge_source(watches="in", writes=[space], tags=tags, name=f"poster_{space}_{'_'.join(tags)}")
    def action(entry, view):  # type: ignore[no-untyped-def]
        return post(space, value, confidence=confidence, supports=[entry.id] * n_supports)
    return action


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 1), st.integers(0, 3), st.booleans())
def test_policies_decide_exactly_what_is_written(confidence: float, n_supports: int, reviewed: bool) -> None:
    """A contribution is written iff every policy holds; each denial is logged with the policy's name."""
    policies = [
        Policy("two-supports", "confidence <= 0.9 or supports >= 2"),
        Policy("reviewed-decisions", "space != 'decision' or 'reviewed' in tags"),
    ]
    bb = Blackboard()
    bb.post("in", 1)
    source = poster("decision", "yes", confidence, n_supports, ("reviewed",) if reviewed else ())
    Controller(bb, [source], policies=policies).run()
    allowed = (confidence <= 0.9 or n_supports >= 2) and reviewed
    assert len(bb.entries("decision")) == (1 if allowed else 0)
    denials = [e.details["policy"] for e in bb.events("denied")]
    assert len(denials) == (0 if allowed else 1)
    if not allowed:
        expected = "two-supports" if not (confidence <= 0.9 or n_supports >= 2) else "reviewed-decisions"
        assert denials == [expected]


def test_policy_that_cannot_be_evaluated_denies() -> None:
    """A policy naming a field the contribution lacks fails closed."""
    bb = Blackboard()
    bb.post("in", 1)
    Controller(bb, [poster("out", {"a": 1}, 1.0, 1)], policies=[Policy("needs-b", "b > 0")]).run()
    assert bb.entries("out") == []
    assert "could not be evaluated" in bb.events("denied")[0].details["reason"]


def test_bad_policy_and_escalation_settings_are_refused() -> None:
    """Malformed policies and escalations get the project's own errors."""
    with pytest.raises(Exception, match="policy p") as info:
        Policy("p", "confidence >")
    assert isinstance(info.value, ValueError)
    with pytest.raises(ConfigurationError):
        Escalation("nothing")
    with pytest.raises(ConfigurationError):
        Controller(Blackboard(), [], on_review="later")
    with pytest.raises(ConfigurationError):
        Controller(Blackboard(), [], policies=["confidence > 1"])  # type: ignore[list-item]


def test_circuit_breaker_opens_skips_and_closes_after_cool_down() -> None:
    """After N failures in a row the source is skipped; after the cool-down one try closes it again."""
    now = [0.0]
    calls: list[int] = []

    @knowledge_source(watches="job", writes="done", breaker_threshold=2, breaker_cooldown=10)
    def flaky(entry):  # type: ignore[no-untyped-def]
        calls.append(entry.value)
        if now[0] < 10:
            raise RuntimeError("service down")
        return post("done", entry.value)

    bb = Blackboard()
    for i in range(4):
        bb.post("job", i)
    controller = Controller(bb, [flaky], concurrency=1, clock=lambda: now[0])
    result = controller.run()
    assert calls == [0, 1]  # the third and fourth were skipped: circuit open
    assert result.failed == 2 and result.obviated == 2
    assert [e.details["state"] for e in bb.events("circuit")] == ["open"]
    assert len(bb.events("circuit_open")) == 2
    now[0] = 11.0
    bb.post("job", 9)
    controller.run()
    assert calls == [0, 1, 9]
    assert [e.value for e in bb.entries("done")] == [9]
    assert [e.details["state"] for e in bb.events("circuit")] == ["open", "closed"]


def test_entry_escalation_holds_until_a_person_decides() -> None:
    """Held entries trigger nothing; approve releases, edit replaces, reject drops; decisions record who and why."""
    @knowledge_source(watches="case", writes="decision")
    def decide(entry):  # type: ignore[no-untyped-def]
        return post("decision", "refund", key=entry.value, confidence=0.55)

    @knowledge_source(watches="decision", writes="done")
    def act(entry):  # type: ignore[no-untyped-def]
        return post("done", entry.value, key=entry.key)

    bb = Blackboard()
    for case in ("c1", "c2", "c3"):
        bb.post("case", case)
    controller = Controller(bb, [decide, act], escalations=[Escalation("low", entries="confidence < 0.6")])
    assert controller.run().outcome == "review"
    pending = bb.reviews()
    assert len(pending) == 3 and all(bb.get(r.entry).status == Status.PENDING_REVIEW for r in pending)
    assert bb.entries("done") == []
    bb.approve(pending[0].id, by="alice", reason="receipt checked")
    bb.edit(pending[1].id, value="no-refund", by="bob", reason="outside the window")
    bb.reject(pending[2].id, by="carol", reason="duplicate")
    assert controller.run().outcome == "quiescent"
    assert sorted((e.key, e.value) for e in bb.entries("done")) == [("c1", "refund"), ("c2", "no-refund")]
    decided = {r.id: r for r in bb.reviews(pending=False)}
    assert (decided[pending[0].id].decision, decided[pending[0].id].by, decided[pending[0].id].why) == ("approved", "alice", "receipt checked")
    assert decided[pending[2].id].decision == "rejected" and bb.get(pending[2].entry).status == Status.REJECTED
    with pytest.raises(ValidationError, match="already decided"):
        bb.approve(pending[0].id, by="dave")
    with pytest.raises(ValidationError, match="who made it"):
        bb.approve(pending[0].id, by="")


def test_pause_stops_at_the_first_hold_and_continue_goes_on() -> None:
    """on_review='pause' stops the run when something is held; 'continue' finishes the other work first."""
    def sources():  # type: ignore[no-untyped-def]
        @knowledge_source(watches="in", writes="out")
        def copy(entry):  # type: ignore[no-untyped-def]
            return post("out", entry.value, confidence=0.5 if entry.value == 0 else 1.0)
        return [copy]

    for mode, expected_outs in (("pause", 1), ("continue", 5)):
        bb = Blackboard()
        for i in range(5):
            bb.post("in", i)
        result = Controller(bb, sources(), concurrency=1, on_review=mode,
                            escalations=[Escalation("unsure", entries="confidence < 0.9")]).run()
        assert result.outcome == "review"
        assert len(bb.entries("out", status=None)) == expected_outs


def test_conflict_won_by_a_small_margin_is_held_and_rejection_reinstates_the_loser() -> None:
    """A narrow conflict win waits for a person; rejecting the winner lets the runner-up stand."""
    @knowledge_source(watches="obs", writes="label")
    def cat(entry):  # type: ignore[no-untyped-def]
        return post("label", "cat", key="x", confidence=0.60)

    @knowledge_source(watches="obs", writes="label")
    def dog(entry):  # type: ignore[no-untyped-def]
        return post("label", "dog", key="x", confidence=0.62)

    bb = Blackboard()
    bb.post("obs", "photo")
    controller = Controller(bb, [cat, dog], escalations=[Escalation("close-call", margin_below=0.05)])
    assert controller.run().outcome == "review"
    (review,) = bb.reviews()
    assert review.kind == "conflict" and bb.get(review.entry).value == "dog"
    assert review.details["margin"] == pytest.approx(0.02)
    bb.reject(review.id, by="vet", reason="it is a cat")
    controller.run()
    assert [e.value for e in bb.find("label", "x")] == ["cat"]


def test_failed_activation_without_fallback_is_retried_on_approval() -> None:
    """A failure held for review runs again when a person approves, and only once."""
    calls: list[int] = []

    @knowledge_source(watches="job", writes="result")
    def fetch(entry):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("timeout talking to the service")
        return post("result", "ok")

    bb = Blackboard()
    bb.post("job", 1)
    controller = Controller(bb, [fetch], escalations=[Escalation("failures", failures=True)])
    assert controller.run().outcome == "review"
    (review,) = bb.reviews()
    assert "timeout talking to the service" in review.reason
    bb.approve(review.id, by="ops", reason="service back")
    controller.run()
    Controller(bb, [fetch]).run()  # a new controller does not retry it again
    assert len(calls) == 2 and [e.value for e in bb.entries("result")] == ["ok"]


def test_review_command_lists_and_decides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`blackboard review PATH list/approve` works on a file from another process."""
    path = tmp_path / "r.duckdb"

    @knowledge_source(watches="in", writes="out")
    def copy(entry):  # type: ignore[no-untyped-def]
        return post("out", entry.value, confidence=0.3)

    with Blackboard(path) as bb:
        bb.post("in", 7)
        Controller(bb, [copy], escalations=[Escalation("unsure", entries="confidence < 0.5")]).run()
        run = bb.run_id
    assert cli(["review", str(path), "list", "--json"]) == 0
    (item,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert item["kind"] == "entry" and item["decision"] is None
    assert cli(["review", str(path), "approve", str(item["id"])]) == 2  # who decides is required
    capsys.readouterr()
    assert cli(["review", str(path), "approve", str(item["id"]), "--by", "alice", "--reason", "fine", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "approved"
    with Blackboard(path, run=run) as bb:
        assert bb.entries("out")[0].status == Status.ACTIVE
        assert bb.reviews() == []


def test_explain_names_source_triggers_and_what_it_beat() -> None:
    """explain() tells who posted an entry, from which trigger, and what it beat with which scores."""
    @knowledge_source(watches="obs", writes="label")
    def weak(entry):  # type: ignore[no-untyped-def]
        return post("label", "cat", key="x", confidence=0.6)

    @knowledge_source(watches="obs", writes="label")
    def strong(entry):  # type: ignore[no-untyped-def]
        return post("label", "dog", key="x", confidence=0.8)

    bb = Blackboard()
    obs = bb.post("obs", "photo")
    Controller(bb, [weak, strong]).run()
    (winner,) = bb.find("label", "x")
    why = explain(bb, winner)
    assert why.posted_by == "strong" and [t.id for t in why.triggers] == [obs.id]
    (beat,) = why.beat
    assert beat["value"] == "cat" and beat["strategy"] == "highest_confidence"
    assert beat["margin"] == pytest.approx(0.2)
    assert "beat entry" in why.text and "posted by 'strong'" in why.text
    loser = explain(bb, beat["entry"])
    assert any(h["kind"] == "superseded" for h in loser.history)
    assert json.dumps(why.to_dict())


@pytest.mark.parametrize("tamper, problem", [
    ("UPDATE bb_event SET details = '{\"x\":1}' WHERE seq = 2", "hash mismatch"),
    ("UPDATE bb_entry SET value = '99' WHERE id = 1", "hash mismatch"),
    ("DELETE FROM bb_event WHERE seq = 2", "missing"),
    ("INSERT INTO bb_event SELECT run, seq, cycle, kind, entry, source, activation, details, hash FROM bb_event WHERE seq = 2", "repeated"),
    ("DELETE FROM bb_event WHERE seq = (SELECT max(seq) FROM bb_event)", "head hash"),
])
def test_verify_names_the_first_broken_link(tmp_path: Path, tamper: str, problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An altered, removed or inserted event (or altered entry) breaks the chain; verify says where."""
    path = tmp_path / "v.duckdb"
    with Blackboard(path) as bb:
        first = bb.post("a", 1, key="k")
        bb.revise(first, value=2)
        bb.post("a", 3)
    assert verify(path).ok and cli(["verify", str(path)]) == 0
    con = duckdb.connect(str(path))
    con.execute(tamper)
    con.close()
    report = verify(path)
    assert not report.ok and problem in report.broken[0].problem
    capsys.readouterr()
    assert cli(["verify", str(path), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["first_broken"]["run"] == 1
