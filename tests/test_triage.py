"""Case triage: agents (model-backed and rules) on a blackboard, end to end on the shipped cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from blackboard import Blackboard, BlackboardError, Status, read_runs
from knowledge_sources import triage
from knowledge_sources.models import Budget, FakeModel, MeteredModel, ModelOutputError


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> triage.BatchResult:
    """The whole shipped data set through the default (fake) model, once for the module."""
    return triage.batch(workers=4, path=tmp_path_factory.mktemp("shipped") / "shipped.duckdb")


def counted_model(**fixed: Any) -> FakeModel:
    """The triage stand-in model with fixed token counts per reply."""
    return FakeModel(triage._fake_brain, name="counted", **fixed)


def activations_of(path: Path, run: int) -> dict[str, int]:
    with Blackboard(path, run=run) as bb:
        rows = bb.sql("SELECT source, count(*) AS n FROM activations WHERE state <> 'obviated' GROUP BY source").to_pylist()
    return {r["source"]: r["n"] for r in rows}


# ------------------------------------------------------------------- data
def test_shipped_cases_and_reference_load() -> None:
    """54 labelled cases with unique ids; the reference table has tiers, customers and products."""
    cases = triage.load_cases()
    assert len(cases) == 54 and len({c["id"] for c in cases}) == 54
    assert all(c["expected"]["category"] in triage.CATEGORIES and c["expected"]["action"] in triage.ACTIONS for c in cases)
    assert {c["expected"]["category"] for c in cases} == set(triage.CATEGORIES)
    kinds = [r["kind"] for r in triage.load_reference()]
    assert kinds.count("tier") == 4 and kinds.count("customer") == 18 and kinds.count("product") == 6
    assert triage.CASES_FILE.is_file() and triage.REFERENCE_FILE.is_file()


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "X-1", "text": "hi", "channel": "fax"}', "'channel' is 'fax'"),
    ('{"id": "X-1"}', "'text' must be a non-empty string"),
    ('{"id": "X-1", "text": "hi", "amount": -3}', "'amount' is -3"),
    ('{"id": "X-1", "text": "hi", "priority": 1}', "unknown field(s) ['priority']"),
    ('{"id": "X-1", "text": "hi", "expected": {"action": "shrug"}}', "'expected.action' is 'shrug'"),
    ('{"id": "X-1", "text": "hi"', "not JSON"),
    ('{"id": "X 1", "text": "hi"}', "'id' 'X 1'"),
])
def test_bad_case_files_name_the_line_and_the_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('# comment\n{"id": "ok-1", "text": "fine"}\n\n' + line + "\n")
    with pytest.raises(triage.TriageError) as caught:
        triage.load_cases(path)
    assert message in str(caught.value) and f"{path}:4" in str(caught.value)
    assert isinstance(caught.value, BlackboardError) and isinstance(caught.value, ValueError)


def test_duplicate_ids_and_unknown_case_ids_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "A", "text": "x"}\n{"id": "A", "text": "y"}\n')
    with pytest.raises(triage.TriageError, match="duplicate id 'A' \\(first on line 1\\)"):
        triage.load_cases(path)
    with pytest.raises(triage.TriageError, match="no case with id 'T-9999'"):
        triage.solve("T-9999")
    with pytest.raises(triage.TriageError, match="not valid JSON"):
        triage.solve("{nope")


# -------------------------------------------------------------- end to end
def test_shipped_cases_end_to_end(shipped: triage.BatchResult) -> None:
    """Most cases are decided, the close calls go to a person, and most decisions are as expected."""
    s = shipped.summary()
    assert s["cases"] == 54 and s["failed"] == 0
    assert s["decided_share"] >= 0.75
    assert 0.05 <= s["review_share"] <= 0.25
    assert s["accuracy"] >= 0.8 and s["category_accuracy"] >= 0.9
    decided = [r for r in shipped.results if r.status == "decided"]
    assert sum(r.correct for r in decided) / len(decided) >= 0.95  # what is decided without a person is right
    for r in shipped.results:
        assert r.decision in triage.ACTIONS and r.category in triage.CATEGORIES
        if r.status == "review":
            assert r.reviews == 1 and r.margin is not None and r.margin < triage.REVIEW_MARGIN
    assert [r.case for r in shipped.results] == [c["id"] for c in triage.load_cases()]


def test_model_use_is_accounted_per_source_and_per_run(shipped: triage.BatchResult) -> None:
    """The batch's ledger and the runs' own figures agree; the decider is asked only where judgement is needed."""
    usage = shipped.usage
    assert usage["total"]["calls"] == 54 + sum(1 for r in shipped.results if "model_decider" in r.usage)
    assert usage["by_source"]["model_classifier"]["calls"] == 54
    assert 0 < usage["by_source"]["model_decider"]["calls"] < 54
    assert usage["total"]["total_tokens"] == shipped.tokens == sum(r.tokens for r in shipped.results)
    assert usage["total"]["cost"] == pytest.approx(shipped.cost) and shipped.cost > 0
    assert all(r.tokens == sum(u["total_tokens"] for u in r.usage.values()) for r in shipped.results)


def test_triage_is_deterministic(shipped: triage.BatchResult) -> None:
    """The same cases give the same decisions, whatever the number of workers."""
    again = triage.batch([c for c in triage.load_cases()[:12]], workers=1)
    first = {r.case: (r.status, r.decision, r.category, r.tokens) for r in shipped.results}
    assert all(first[r.case] == (r.status, r.decision, r.category, r.tokens) for r in again.results)


def test_one_case_on_a_file_can_be_read_back_with_sql(tmp_path: Path) -> None:
    """A run per case: the problem, the agents' entries, model calls and the result are all in the file."""
    path = tmp_path / "triage.duckdb"
    result = triage.solve("T-1001", path=path)
    assert (result.status, result.decision, result.category, result.correct) == ("decided", "refund", "billing", True)
    assert result.db == str(path) and result.activations >= 8 and result.tokens > 0 and result.margin is None
    assert json.loads(json.dumps(result.to_json()))["decision"] == "refund"
    (run,) = read_runs(path)
    assert run["problem"]["domain"] == "triage" and run["problem"]["case"]["id"] == "T-1001"
    assert "expected" not in run["problem"]["case"]  # the agents never see the label
    with Blackboard(path, run=result.run_id) as bb:
        spaces = {r["space"] for r in bb.sql("SELECT DISTINCT space FROM entries").to_pylist()}
        assert spaces == {"case", "reference", "category", "entities", "account", "policy", "decision"}
        (account,) = bb.find("account", "T-1001")
        assert account.value["tier"] == "silver" and account.value["refund_limit"] == 200.0
        (policy,) = bb.find("policy", "T-1001")
        assert policy.value["recommended"] == "refund" and policy.value["needs_judgement"] is False
        usage = bb.sql(triage.USAGE_SQL).to_pylist()
        assert usage == [{"source": "model_classifier", "calls": 1, "tokens": result.tokens, "cost": pytest.approx(result.cost)}]
        (logged,) = bb.events("triage_result")
        assert logged.details["decision"] == "refund"


def test_classifiers_compete_and_the_weighted_vote_decides(tmp_path: Path) -> None:
    """On a misleading text the keyword classifier loses to the model: both claims stay, one superseded."""
    path = tmp_path / "vote.duckdb"
    result = triage.solve("T-1044", path=path)  # 'Suspicious login': keywords say account
    assert result.category == "security" and result.decision == "route_security"
    with Blackboard(path, run=result.run_id) as bb:
        claims = {e.source: (e.value["category"], e.status) for e in bb.find("category", "T-1044", status=None)}
        assert claims == {"model_classifier": ("security", Status.ACTIVE), "keyword_classifier": ("account", Status.SUPERSEDED)}
        (superseded,) = [e for e in bb.events("superseded") if e.details and e.details.get("strategy") == "weighted_vote"]
        assert superseded.details["margin"] > 0


def test_a_case_as_a_dict_or_json_text() -> None:
    case = {"id": "NEW-1", "channel": "chat", "customer": "C-1005", "text": "The app crashes on start, error 500."}
    by_dict = triage.solve(case)
    by_text = triage.solve(json.dumps(case))
    assert by_dict.decision == by_text.decision == "route_engineering" and by_dict.expected is None
    assert by_dict.correct is None and by_dict.priority == "P2"


# ----------------------------------------------------------- human review
def test_person_edits_a_close_call_and_the_run_finishes(tmp_path: Path) -> None:
    """A low-margin decision waits for a person; their edit stands once the run is resumed."""
    path = tmp_path / "review.duckdb"
    held = triage.solve("T-1005", path=path)  # gold customer a little over the refund limit
    assert (held.status, held.decision, held.reviews) == ("review", "route_billing", 1)
    assert held.expected == "refund" and not held.correct
    with Blackboard(path, run=held.run_id) as bb:
        (review,) = bb.reviews()
        assert review.kind == "conflict" and review.rule == "close-call"
        assert bb.get(review.entry).status == Status.PENDING_REVIEW
        assert sorted(review.details["scores"].values()) == pytest.approx([0.576, 0.63])
        bb.edit(review.id, value={"action": "refund"}, by="alice", reason="cancelled in time")
    done = triage.resume(path)
    assert (done.status, done.decision, done.reviews, done.correct) == ("decided", "refund", 0, True)
    assert done.run_id == held.run_id and done.tokens == held.tokens  # nothing was asked again
    with Blackboard(path, run=held.run_id) as bb:
        (decision,) = bb.find("decision", "T-1005")
        assert decision.source == "review:alice"
        (decided,) = bb.reviews(pending=False)
        assert (decided.decision, decided.by) == ("edited", "alice")


@pytest.mark.parametrize(("decide", "expected"), [("approve", "route_billing"), ("reject", "refund")])
def test_person_approves_or_rejects(tmp_path: Path, decide: str, expected: str) -> None:
    """Approving keeps the proposal; rejecting it lets the runner-up (the model's action) stand."""
    path = tmp_path / "decide.duckdb"
    held = triage.solve("T-1004", path=path)
    assert held.status == "review"
    with Blackboard(path, run=held.run_id) as bb:
        (review,) = bb.reviews()
        getattr(bb, decide)(review.id, by="bob")
    done = triage.resume(path, held.run_id)
    assert (done.status, done.decision, done.reviews) == ("decided", expected, 0)


def test_without_escalation_the_vote_decides_close_calls() -> None:
    result = triage.solve("T-1005", escalate=False)
    assert (result.status, result.decision, result.reviews) == ("decided", "route_billing", 0)
    assert result.margin == pytest.approx(0.054)


def test_whole_batch_reviewed_by_a_person_reaches_every_label(shipped: triage.BatchResult, tmp_path: Path) -> None:
    """A person settles each held case with the expected label; then all those are right."""
    path = tmp_path / "batch.duckdb"
    held_cases = [c for c in triage.load_cases() if c["id"] in {r.case for r in shipped.results if r.status == "review"}]
    result = triage.batch(held_cases, workers=3, path=path)
    assert result.review == len(held_cases) > 0
    queue = triage.review_queue(path)
    assert [q["case"] for q in queue] == [r.case for r in result.results]
    expected = {r.case: r.expected for r in result.results}
    after = []
    for item in queue:
        assert item["kind"] == "conflict" and item["margin"] < triage.REVIEW_MARGIN and len(item["alternatives"]) == 1
        with Blackboard(path, run=item["run"]) as bb:
            if item["proposal"] == expected[item["case"]]:
                bb.approve(item["review"], by="lead")
            else:
                bb.edit(item["review"], value={"action": expected[item["case"]]}, by="lead")
        after.append(triage.resume(path, item["run"]))
    assert all(r.status == "decided" and r.correct for r in after)
    assert triage.review_queue(path) == []


# ------------------------------------------------ malformed model output
def test_malformed_model_output_is_a_failed_activation_and_the_run_goes_on(tmp_path: Path) -> None:
    """The classifier's prose answer fails its activation with a ModelOutputError; the keywords decide."""
    model = FakeModel([(r"^Classify", "Sure! This one is clearly about billing."),
                       (r"^Decide", lambda messages: triage._fake_brain(messages))])
    path = tmp_path / "bad.duckdb"
    result = triage.solve("T-1001", path=path, model=model)
    assert (result.status, result.decision, result.category) == ("decided", "refund", "billing")
    assert result.failed == 1 and result.errors[0].startswith("model_classifier: ModelOutputError")
    assert "the reply is not JSON" in result.errors[0]
    assert result.usage["model_classifier"]["invalid"] == 1
    with Blackboard(path, run=result.run_id) as bb:
        (row,) = bb.sql("SELECT state, error FROM activations WHERE source = 'model_classifier'").to_pylist()
        assert row["state"] == "failed" and "invalid model output from 'model_classifier'" in row["error"]
        assert [e.source for e in bb.find("category", "T-1001")] == ["keyword_classifier"]


def test_model_output_against_the_schema_names_the_field() -> None:
    model = FakeModel(lambda messages: {"category": "refunds", "confidence": 2})
    result = triage.solve("T-1001", model=model)
    assert result.status == "decided" and result.failed == 1
    assert '$.category: "refunds" is not one of' in result.errors[0]
    with pytest.raises(ModelOutputError, match=r"\$\.confidence: 2 is above the maximum 1"):
        from knowledge_sources.models import parse_structured
        parse_structured({"category": "billing", "confidence": 2}, triage.CLASSIFY_SCHEMA)


# ------------------------------------------------------------------ budget
def test_budget_reached_stops_model_backed_agents_across_a_batch(tmp_path: Path) -> None:
    """Once the batch's budget is spent no model-backed agent is activated; the rules decide the rest."""
    clear_cases = [c for c in triage.load_cases() if c["id"] in ("T-1001", "T-1002", "T-1003", "T-1007", "T-1011",
                                                                "T-1015", "T-1016", "T-1017")]
    meter = MeteredModel(counted_model(prompt_tokens=100, completion_tokens=20), budget=Budget(max_tokens=600))
    path = tmp_path / "budget.duckdb"
    result = triage.batch(clear_cases, workers=1, path=path, model=meter)
    assert meter.usage.total.calls == 5 and meter.usage.total.total_tokens == 600
    assert meter.usage.total.refused == 0 and result.usage["exhausted"].startswith("model budget reached: 600 tokens")
    assert all(r.status == "decided" and r.correct for r in result.results[:7])
    # T-1017 names no keyword the rules know: without the model it cannot be classified
    last = result.results[7]
    assert (last.case, last.status, last.decision) == ("T-1017", "failed", None)
    assert last.errors[0].startswith("no category was reached for the case (model-backed agents stopped: model budget reached")
    assert [r.tokens for r in result.results] == [120] * 5 + [0] * 3
    for r in result.results[:5]:
        assert activations_of(path, r.run_id)["model_classifier"] == 1
    for r in result.results[4:]:  # the fifth spent the last tokens: stopped at its end, the rest at their start
        assert "model_classifier" not in activations_of(path, r.run_id) or r is result.results[4]
        with Blackboard(path, run=r.run_id) as bb:
            (stop,) = bb.events("model_budget_reached")
            assert stop.details["stopped"] == ["model_classifier", "model_decider"]
            assert "600 tokens used of max_tokens=600" in stop.details["reason"]


def test_budget_reached_mid_run_stops_the_model_decider(tmp_path: Path) -> None:
    """The classifier's call spends the budget: the decider is never activated, the rule decides alone."""
    path = tmp_path / "mid.duckdb"
    result = triage.solve("T-1005", path=path, model=counted_model(), budget=Budget(max_calls=1))
    assert (result.status, result.decision, result.reviews) == ("decided", "route_billing", 0)
    counts = activations_of(path, result.run_id)
    assert counts["model_classifier"] == 1 and "model_decider" not in counts and counts["rule_decider"] == 1
    assert list(result.usage) == ["model_classifier"] and result.failed == 0


def test_resume_finishes_a_run_stopped_early(tmp_path: Path) -> None:
    """A run cut short (here by a cycle budget) is finished by resume without redoing anything."""
    path = tmp_path / "cut.duckdb"
    cut = triage.solve("T-1025", path=path, max_cycles=1)
    assert cut.status == "failed" and cut.outcome == "budget"
    done = triage.resume(path, cut.run_id)
    assert (done.status, done.decision, done.correct) == ("decided", "reship", True)
    assert done.tokens == cut.tokens  # the classifier ran in the first part, not again
    again = triage.resume(path)  # it ran to its end: its result, read back, nothing run
    assert (again.status, again.decision, again.tokens, again.activations) == (
        done.status, done.decision, done.tokens, done.activations)
    other = tmp_path / "other.duckdb"
    Blackboard(other, problem={"domain": "sudoku"}).close()
    with pytest.raises(triage.TriageError, match="holds no triage run"):
        triage.resume(other)


@pytest.mark.anyio
async def test_async_forms(tmp_path: Path) -> None:
    result = await triage.asolve("T-1020", tmp_path / "a.duckdb")
    assert result.decision == "route_engineering"
    many = await triage.abatch(triage.load_cases()[:3], workers=2)
    assert many.decided == 3 and str(many).startswith("3 cases: 3 decided")
