"""The model adapter layer: chat models, structured output, usage, budgets, and the
OpenAI-compatible adapter against a real local HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from blackboard import Blackboard, BlackboardError, ValidationError
from controller import Controller
from knowledge_sources import knowledge_source, post
from knowledge_sources.models import (
    Budget,
    BudgetExceededError,
    CallableModel,
    ChatModel,
    FakeModel,
    MeteredModel,
    ModelCallError,
    ModelOutputError,
    ModelReply,
    ModelTimeoutError,
    OpenAIChatModel,
    Usage,
    estimate_tokens,
    model_source,
    parse_structured,
    stop_when_exhausted,
)

MESSAGES = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "Classify: my card was charged twice"}]
SCHEMA = {
    "type": "object",
    "required": ["category", "confidence"],
    "properties": {
        "category": {"type": "string", "enum": ["billing", "technical"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
    },
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ------------------------------------------------------------------ models
@pytest.mark.anyio
async def test_callable_model_takes_sync_and_async_callables_returning_text_or_json() -> None:
    """Any callable is a chat model: text is kept, dicts become JSON, tokens are estimated."""
    seen: list[list[dict[str, Any]]] = []

    def sync(messages: list[dict[str, Any]]) -> dict[str, Any]:
        seen.append(messages)
        return {"category": "billing", "confidence": 0.9}

    async def asynchronous(messages: list[dict[str, Any]]) -> str:
        return 'Here you go: {"category": "technical", "confidence": 0.4}'

    reply = await CallableModel(sync).complete(MESSAGES)
    assert reply.data == {"category": "billing", "confidence": 0.9} and json.loads(reply.text) == reply.data
    assert reply.prompt_tokens == estimate_tokens(MESSAGES) > 0 and reply.completion_tokens == estimate_tokens(reply.text)
    assert reply.estimated and reply.model == "sync" and seen == [MESSAGES]
    reply = await CallableModel(asynchronous, name="m").complete(MESSAGES)
    assert reply.data == {"category": "technical", "confidence": 0.4} and reply.model == "m"
    fixed = ModelReply("ok", None, 7, 3)
    assert (await CallableModel(lambda m: fixed).complete(MESSAGES)).total_tokens == 10
    threaded = await CallableModel(sync, threaded=True).complete(MESSAGES)
    assert threaded.data["category"] == "billing"
    with pytest.raises(ModelOutputError, match="must return text, a dict or list"):
        await CallableModel(lambda m: 42).complete(MESSAGES)
    with pytest.raises(ValidationError, match="role"):
        await CallableModel(sync).complete([{"role": "robot", "content": "hi"}])
    with pytest.raises(ValidationError, match="messages"):
        await CallableModel(sync).complete("hello")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_fake_model_is_deterministic_and_can_fail_on_demand() -> None:
    """Rules match the last user message in order; answers may be text, JSON, callables or errors."""
    fake = FakeModel([
        (r"charged", {"category": "billing", "confidence": 0.8}),
        (r"crash", lambda messages: "technical, I think"),
        (r"timeout", ModelCallError("HTTP 503 from fake")),
    ], default="no idea", prompt_tokens=100, completion_tokens=20, name="f")
    first = await fake.complete(MESSAGES)
    again = await fake.complete(MESSAGES)
    assert first == again and first.data == {"category": "billing", "confidence": 0.8}
    assert (first.prompt_tokens, first.completion_tokens, first.estimated) == (100, 20, False)
    assert (await fake.complete([{"role": "user", "content": "app crash"}])).text == "technical, I think"
    assert (await fake.complete([{"role": "user", "content": "hello"}])).text == "no idea"
    with pytest.raises(ModelCallError, match="503"):
        await fake.complete([{"role": "user", "content": "timeout"}])
    assert len(fake.calls) == 5 and fake.calls[0] == MESSAGES
    with pytest.raises(ModelCallError, match="no rule matches"):
        await FakeModel({"x": "y"}).complete([{"role": "user", "content": "z"}])
    assert isinstance(fake, ChatModel)


# ------------------------------------------------------- structured output
def test_parse_structured_accepts_json_bare_or_fenced() -> None:
    """Valid output is returned as data, from bare JSON, a ```json fence, or prose around an object."""
    good = {"category": "billing", "confidence": 0.5, "tags": [{"name": "refund"}]}
    assert parse_structured(json.dumps(good), SCHEMA) == good
    assert parse_structured("```json\n" + json.dumps(good) + "\n```", SCHEMA) == good
    assert parse_structured("Sure. " + json.dumps(good) + " Hope it helps.", SCHEMA) == good
    assert parse_structured(ModelReply(json.dumps(good)), SCHEMA) == good
    assert parse_structured(good, SCHEMA) == good


@pytest.mark.parametrize(("output", "path", "problem"), [
    ("Sure! The category is billing.", None, "not JSON"),
    ('{"category": "refunds", "confidence": 0.5}', "$.category", '"refunds" is not one of ["billing", "technical"]'),
    ('{"category": "billing"}', None, "missing required key(s) 'confidence'"),
    ('{"category": "billing", "confidence": "high"}', "$.confidence", "must be number, not string"),
    ('{"category": "billing", "confidence": 1.5}', "$.confidence", "above the maximum 1"),
    ('{"category": "billing", "confidence": 0.5, "tags": [{"name": "a"}, {}]}', "$.tags[1]", "missing required key(s) 'name'"),
    ('["billing"]', None, "must be object, not array"),
])
def test_malformed_output_is_a_clear_model_output_error(output: str, path: str | None, problem: str) -> None:
    """Each way of breaking the schema names where and what, and shows the reply."""
    with pytest.raises(ModelOutputError) as caught:
        parse_structured(output, SCHEMA, source="classifier")
    error = caught.value
    assert isinstance(error, BlackboardError) and isinstance(error, ValueError)
    assert problem in error.problem and error.source == "classifier"
    assert error.path == path or (path is None and error.path in (None, "$"))
    assert "from 'classifier'" in str(error) and output[:20] in str(error)


def test_unsupported_schema_keywords_are_refused() -> None:
    """A constraint outside the subset is an error, never silently ignored."""
    with pytest.raises(ValidationError, match="unsupported keyword.*pattern"):
        parse_structured('{"a": "x"}', {"type": "object", "properties": {"a": {"type": "string", "pattern": "^x$"}}})
    with pytest.raises(ValidationError, match="unknown type 'text'"):
        parse_structured('"x"', {"type": "text"})


# ------------------------------------------------------ usage and budgets
@pytest.mark.anyio
async def test_metered_model_counts_tokens_and_cost_per_source_and_run() -> None:
    """Every call is in the ledger: per source, per run, in total; cost at the model's prices."""
    fake = FakeModel(lambda m: {"category": "billing", "confidence": 0.9}, prompt_tokens=1000, completion_tokens=500,
                     price_per_1k_prompt=0.5, price_per_1k_completion=2.0)
    meter = MeteredModel(fake)
    run_a, run_b = meter.for_run("a"), meter.for_run("b")
    logged: list[Any] = []
    run_c = meter.for_run("c", listener=logged.append)
    await run_a.complete(MESSAGES, source="classifier")
    await run_a.complete(MESSAGES, source="decider")
    reply = await run_b.complete(MESSAGES, source="classifier", schema=SCHEMA)
    assert reply.data == {"category": "billing", "confidence": 0.9}
    await run_c.complete(MESSAGES, source="classifier")
    usage = meter.usage
    assert usage.total.calls == 4 and usage.total.total_tokens == 6000
    assert usage.total.cost == pytest.approx(4 * (0.5 + 1.0))
    assert {k: v.calls for k, v in usage.by_source().items()} == {"classifier": 3, "decider": 1}
    assert {k: v.total_tokens for k, v in usage.by_run().items()} == {"a": 3000, "b": 1500, "c": 1500}
    assert run_a.figures.calls == 2 and run_b.figures.cost == pytest.approx(1.5)
    assert [c.source for c in logged] == ["classifier"] and logged[0].run == "c" and logged[0].outcome == "ok"
    assert [c.seq for c in usage.calls] == [1, 2, 3, 4]
    assert usage.to_dict()["by_source"]["decider"]["total_tokens"] == 1500


@pytest.mark.anyio
async def test_budget_refuses_calls_once_reached_without_calling_the_model() -> None:
    """The call that reaches the budget completes; the next ones are refused before anything is sent."""
    fake = FakeModel(lambda m: "{}", prompt_tokens=100, completion_tokens=20)
    meter = MeteredModel(fake, budget=Budget(max_tokens=300))
    fired: list[BudgetExceededError] = []
    meter.usage.on_exhausted(fired.append)
    for _ in range(3):
        await meter.complete(MESSAGES, source="s")  # 120, 240, 360 tokens
    assert len(fake.calls) == 3 and meter.exhausted is not None and len(fired) == 1
    with pytest.raises(BudgetExceededError) as caught:
        await meter.complete(MESSAGES, source="s")
    assert caught.value.limit == "tokens" and caught.value.used == 360 and caught.value.maximum == 300
    assert "360 tokens used of max_tokens=300" in str(caught.value)
    assert len(fake.calls) == 3  # not sent
    assert meter.usage.total.refused == 1 and meter.usage.total.calls == 3 and len(fired) == 1

    by_cost = MeteredModel(FakeModel(lambda m: "{}", prompt_tokens=1000, completion_tokens=0, price_per_1k_prompt=0.01),
                           budget=Budget(max_cost=0.025))
    for _ in range(3):
        await by_cost.complete(MESSAGES)
    with pytest.raises(BudgetExceededError, match="cost"):
        await by_cost.complete(MESSAGES)
    by_calls = MeteredModel(FakeModel(lambda m: "{}"), budget=Budget(max_calls=2))
    await by_calls.complete(MESSAGES)
    await by_calls.complete(MESSAGES)
    with pytest.raises(BudgetExceededError, match="calls"):
        await by_calls.complete(MESSAGES)
    with pytest.raises(ValidationError, match="max_tokens"):
        Budget(max_tokens=-1)


@pytest.mark.anyio
async def test_invalid_and_failed_calls_are_counted() -> None:
    """A reply that breaks the schema is an invalid call (tokens counted); an error is counted too."""
    meter = MeteredModel(FakeModel({"bad": "not json at all", "boom": ModelCallError("down")}, prompt_tokens=10, completion_tokens=5))
    with pytest.raises(ModelOutputError, match="not JSON"):
        await meter.complete([{"role": "user", "content": "bad"}], source="a", schema=SCHEMA)
    with pytest.raises(ModelCallError):
        await meter.complete([{"role": "user", "content": "boom"}], source="a")
    figures = meter.usage.for_source("a")
    assert (figures.calls, figures.invalid, figures.errors, figures.total_tokens) == (2, 1, 1, 15)


# --------------------------------------------- model-backed knowledge sources
def _label_sources(meter: MeteredModel) -> list[Any]:
    def prompt(entry: Any, view: Any) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"Classify: {entry.value}"}]

    def contribute(entry: Any, view: Any, data: Any) -> Any:
        return post("label", data["category"], key=f"t{entry.id}", confidence=data["confidence"])

    labeller = model_source(meter, name="labeller", watches="ticket", writes="label", prompt=prompt,
                            schema=SCHEMA, contribute=contribute)

    @knowledge_source(watches="ticket", writes="seen")
    def counter(entry):  # type: ignore[no-untyped-def]
        return post("seen", entry.value)

    return [labeller, counter]


def test_malformed_output_fails_the_activation_and_the_run_goes_on() -> None:
    """The model's bad answer is a failed activation with the error logged; other work is done."""
    fake = FakeModel([(r"printer", "Sure! It is a technical problem."),
                      (r"refund", {"category": "refunds", "confidence": 0.5})],
                     default={"category": "billing", "confidence": 0.8})
    meter = MeteredModel(fake)
    bb = Blackboard()
    for text in ("printer jammed", "refund please", "charged twice"):
        bb.post("ticket", text)
    result = Controller(bb, _label_sources(meter)).run()
    assert result.outcome == "quiescent" and result.failed == 2 and result.sources["labeller"].failed == 2
    assert [e.value for e in bb.entries("label")] == ["billing"] and len(bb.entries("seen")) == 3
    errors = [e.details["error"] for e in bb.events("activation_failed")]
    assert any("ModelOutputError" in e and "the reply is not JSON" in e for e in errors)
    assert any('$.category: "refunds" is not one of' in e for e in errors)
    rows = bb.sql("SELECT state, count(*) AS n FROM activations WHERE source = 'labeller' GROUP BY state ORDER BY state").to_pylist()
    assert rows == [{"state": "done", "n": 1}, {"state": "failed", "n": 2}]
    assert meter.usage.total.invalid == 2 and meter.usage.total.calls == 3
    bb.close()


def test_budget_stops_model_sources_and_drops_their_waiting_activations() -> None:
    """Once the budget is reached the model source is unregistered: no call is refused, none fails."""
    fake = FakeModel(lambda m: {"category": "billing", "confidence": 0.8}, prompt_tokens=50, completion_tokens=10)
    meter = MeteredModel(fake, budget=Budget(max_calls=3))
    bb = Blackboard()
    for i in range(10):
        bb.post("ticket", f"ticket {i}")
    sources = _label_sources(meter)
    controller = Controller(bb, sources, concurrency=1)
    stopped: list[list[str]] = []
    cancel = stop_when_exhausted(controller, meter, ["labeller"], on_stop=lambda error, names: stopped.append(names))
    result = controller.run()
    cancel()
    assert len(fake.calls) == 3 and meter.usage.total.calls == 3 and meter.usage.total.refused == 0
    assert result.sources["labeller"].activations == 3 and result.sources["labeller"].failed == 0
    assert result.sources["labeller"].obviated == 7 and result.sources["counter"].activations == 10
    assert stopped == [["labeller"]] and "labeller" not in controller.sources
    reasons = [e.details["reason"] for e in bb.events("obviated") if e.source == "labeller"]
    assert reasons == ["its source was unregistered"] * 7
    # a controller made after the budget is reached never runs the model source
    bb2 = Blackboard()
    bb2.post("ticket", "late")
    later = Controller(bb2, _label_sources(meter))
    stop_when_exhausted(later, meter.usage, ["labeller"])
    assert "labeller" not in later.sources and later.run().sources["counter"].activations == 1
    assert len(fake.calls) == 3
    bb.close()
    bb2.close()


# ------------------------------------------- the OpenAI-compatible adapter
class _Server:
    """A chat-completions server on 127.0.0.1 (ephemeral port), in a thread.

    ``respond(body, headers) -> (status, payload)`` answers each request;
    ``requests`` keeps what came in. ``release`` ends slow handlers.
    """

    def __init__(self, respond: Callable[[dict[str, Any], dict[str, str]], tuple[int, Any]]) -> None:
        self.respond = respond
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append((self.path, headers, body))
                status, payload = outer.respond(body, headers)
                if status == "slow":
                    outer.release.wait(5.0)
                    status, payload = 200, _completion("late")
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _completion(content: str | None, prompt_tokens: int | None = 42, completion_tokens: int | None = 7) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "tiny-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }
    if prompt_tokens is not None:
        body["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                         "total_tokens": prompt_tokens + (completion_tokens or 0)}
    return body


@pytest.fixture
def server() -> Iterator[Callable[..., _Server]]:
    started: list[_Server] = []

    def start(respond: Callable[[dict[str, Any], dict[str, str]], tuple[Any, Any]]) -> _Server:
        s = _Server(respond)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


@pytest.mark.anyio
async def test_openai_adapter_speaks_chat_completions_and_counts_usage(server: Callable[..., _Server]) -> None:
    """POST {base}/chat/completions with the standard body; content, usage and cost are read back."""
    srv = server(lambda body, headers: (200, _completion('{"category": "billing", "confidence": 0.9}', 1200, 300)))
    model = OpenAIChatModel(srv.url, "tiny-1", api_key="sk-test", json_mode=True, timeout=5,
                            price_per_1k_prompt=0.5, price_per_1k_completion=1.5)
    meter = MeteredModel(model, budget=Budget(max_tokens=10_000))
    reply = await meter.complete(MESSAGES, source="classifier", schema=SCHEMA)
    assert reply.data == {"category": "billing", "confidence": 0.9} and reply.model == "tiny-1"
    assert (reply.prompt_tokens, reply.completion_tokens, reply.estimated, reply.finish_reason) == (1200, 300, False, "stop")
    ((path, headers, body),) = srv.requests
    assert path == "/v1/chat/completions" and headers["authorization"] == "Bearer sk-test"
    assert headers["content-type"] == "application/json"
    assert body == {"model": "tiny-1", "messages": MESSAGES, "temperature": 0.0, "response_format": {"type": "json_object"}}
    figures = meter.usage.for_source("classifier")
    assert (figures.calls, figures.prompt_tokens, figures.completion_tokens) == (1, 1200, 300)
    assert figures.cost == pytest.approx(1.2 * 0.5 + 0.3 * 1.5)
    assert "sk-test" not in repr(model)


@pytest.mark.anyio
async def test_openai_adapter_estimates_tokens_when_usage_is_missing(server: Callable[..., _Server]) -> None:
    """A server without ``usage``: tokens are estimated and marked so; content parts are joined."""
    parts = [{"type": "text", "text": '{"category": '}, {"type": "text", "text": '"technical", "confidence": 0.6}'}]
    srv = server(lambda body, headers: (200, _completion(parts, None)))  # type: ignore[arg-type]
    reply = await OpenAIChatModel(srv.url + "/", "tiny-1").complete(MESSAGES)
    assert reply.estimated and reply.prompt_tokens == estimate_tokens(MESSAGES) and reply.data["category"] == "technical"
    assert "authorization" not in srv.requests[0][1]


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "payload", "error", "message"), [
    (500, {"error": {"message": "the model is overloaded", "type": "server_error"}}, ModelCallError, "HTTP 500 from http://127.0.0.1:.*/v1/chat/completions: the model is overloaded"),
    (401, {"error": {"message": "invalid api key"}}, ModelCallError, "HTTP 401 .*invalid api key"),
    (404, b"<html>not here</html>", ModelCallError, "HTTP 404 .*not here"),
    (200, b"this is not json", ModelCallError, "malformed chat-completions response .*not JSON"),
    (200, {"choices": []}, ModelCallError, "malformed chat-completions response .*no choices"),
    (200, _completion(None), ModelOutputError, "no content"),
])
async def test_openai_adapter_errors_are_clear(server: Callable[..., _Server], status: int, payload: Any,
                                               error: type[Exception], message: str) -> None:
    """HTTP errors carry the status and the server's message; a broken envelope says what is missing."""
    srv = server(lambda body, headers: (status, payload))
    with pytest.raises(error, match=message) as caught:
        await OpenAIChatModel(srv.url, "tiny-1", timeout=5).complete(MESSAGES)
    if isinstance(caught.value, ModelCallError):
        assert caught.value.status == status and caught.value.url == srv.url + "/chat/completions"
        assert isinstance(caught.value, OSError) and isinstance(caught.value, BlackboardError)


@pytest.mark.anyio
async def test_openai_adapter_times_out_and_reports_unreachable_servers(server: Callable[..., _Server]) -> None:
    """A server that does not answer in time is a ModelTimeoutError; a closed port a ModelCallError."""
    srv = server(lambda body, headers: ("slow", None))
    started = time.perf_counter()
    with pytest.raises(ModelTimeoutError, match=r"no answer from .* within 0.3 s") as caught:
        await OpenAIChatModel(srv.url, "tiny-1", timeout=0.3).complete(MESSAGES)
    assert time.perf_counter() - started < 2.0 and isinstance(caught.value, TimeoutError)
    srv.release.set()
    closed = _Server(lambda body, headers: (200, _completion("x")))
    url = closed.url
    closed.close()
    with pytest.raises(ModelCallError, match="cannot reach|connection"):
        await OpenAIChatModel(url, "tiny-1", timeout=2).complete(MESSAGES)
    with pytest.raises(ValidationError, match="base_url"):
        OpenAIChatModel("file:///etc/passwd", "m")


def test_triage_over_http_counts_the_servers_usage(server: Callable[..., _Server], tmp_path: Path) -> None:
    """A whole triage run against the local server: decisions as with the fake, tokens as the server reports."""
    from knowledge_sources import triage

    def respond(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        answer = triage._fake_brain(body["messages"])
        return 200, _completion(json.dumps(answer), 100 + len(body["messages"]), 25)

    srv = server(respond)
    model = OpenAIChatModel(srv.url, "tiny-1", timeout=5, price_per_1k_prompt=1.0, price_per_1k_completion=2.0)
    path = tmp_path / "http.duckdb"
    result = triage.solve("T-1005", path=path, model=model)  # needs judgement: classifier and decider ask
    offline = triage.solve("T-1005")
    assert (result.status, result.decision, result.category) == (offline.status, offline.decision, offline.category)
    assert len(srv.requests) == 2 and result.tokens == 2 * (102 + 25)
    assert result.cost == pytest.approx(2 * (0.102 + 0.05))
    assert result.usage["model_decider"]["prompt_tokens"] == 102
    with Blackboard(path, run=result.run_id) as bb:
        rows = bb.sql(triage.USAGE_SQL).to_pylist()
    assert [(r["source"], r["calls"], r["tokens"]) for r in rows] == [("model_classifier", 1, 127), ("model_decider", 1, 127)]


def test_triage_carries_on_with_rules_when_the_endpoint_fails(server: Callable[..., _Server]) -> None:
    """HTTP 503 on every call: each model activation fails (after its retry), the rules decide."""
    from knowledge_sources import triage

    srv = server(lambda body, headers: (503, {"error": {"message": "maintenance"}}))
    result = triage.solve("T-1001", model=OpenAIChatModel(srv.url, "tiny-1", timeout=5))
    assert result.status == "decided" and result.decision == "refund" and result.category == "billing"
    assert result.failed == 1 and "HTTP 503" in result.errors[0] and "maintenance" in result.errors[0]
    assert len(srv.requests) == 2  # the call and its one retry
    assert result.usage["model_classifier"]["errors"] == 2 and result.tokens == 0


def test_usage_is_a_ledger_with_a_budget() -> None:
    """Usage validates its budget and explains what it holds."""
    usage = Usage(Budget(max_calls=1))
    assert usage.exhausted is None and "0 calls" in repr(usage)
    with pytest.raises(ValidationError, match="budget"):
        Usage("lots")  # type: ignore[arg-type]
