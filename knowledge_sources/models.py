"""Model-backed knowledge sources: chat models, structured output, usage and budgets.

A *chat model* is anything with ``async complete(messages) -> ModelReply``
(:class:`ChatModel`). Three come with the library, none needs a vendor SDK::

    CallableModel(fn)          any sync or async callable taking the messages
                               and returning text, a JSON-ready dict/list, or
                               a ModelReply
    OpenAIChatModel(url, m)    an OpenAI-compatible chat-completions endpoint
                               (POST {url}/chat/completions; standard library
                               HTTP in a worker thread)
    FakeModel(rules | fn)      deterministic replies for tests and offline runs

Around a model, :class:`MeteredModel` does the accounting: every call is a
:class:`ModelCall` in a :class:`Usage` ledger (tokens, cost, seconds, outcome),
summed per source, per run and in total, and checked against a
:class:`Budget` (tokens, cost and/or calls). Once the budget is reached every
further call raises :class:`BudgetExceededError` *before* anything is sent;
the call that crosses the limit has already been paid for, so it completes
and is counted (with N calls in flight at once, the overshoot is at most
those N).

Structured output: :func:`parse_structured` reads JSON out of a reply (bare,
or in a Markdown code fence) and validates it against a small JSON-Schema
subset (``type``, ``required``, ``properties``, ``additionalProperties``,
``enum``, ``minimum``/``maximum``, ``minLength``/``maxLength``,
``items``/``minItems``/``maxItems``); anything wrong is a
:class:`ModelOutputError` naming the path (``$.confidence``) and the problem.

:func:`model_source` declares a knowledge source whose action builds the
messages from its trigger, asks the model through the meter, validates the
reply and turns it into contributions. A malformed reply makes that one
activation fail (the controller logs it, the run goes on).

How a budget stops model-backed sources: :func:`stop_when_exhausted`
unregisters them from the controller the moment the ledger's budget is
reached (or at once, if it already is). ``Controller.unregister`` is public:
they are matched against no new entry, and their activations still waiting
on the agenda are dropped (obviated, with the reason in the event log).
Nothing is counted as failed for a budget; the rule-based sources carry on.

Errors::

    BlackboardError
    └── ModelError
        ├── ModelCallError (OSError)        the call failed: HTTP status, network,
        │   └── ModelTimeoutError (TimeoutError)   or a malformed response envelope
        ├── ModelOutputError (ValueError)   the model's answer is not what was asked
        └── BudgetExceededError (RuntimeError)     no more calls: the budget is reached
"""

from __future__ import annotations

import http.client
import inspect
import json
import math
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any

import anyio
import anyio.to_thread

from blackboard import BlackboardError, ValidationError

from ._source import KnowledgeSource, knowledge_source

__all__ = [
    "Budget",
    "BudgetExceededError",
    "CallableModel",
    "ChatModel",
    "FakeModel",
    "MeteredModel",
    "ModelCall",
    "ModelCallError",
    "ModelError",
    "ModelOutputError",
    "ModelReply",
    "ModelTimeoutError",
    "OpenAIChatModel",
    "Usage",
    "UsageFigures",
    "as_model",
    "estimate_tokens",
    "extract_json",
    "model_source",
    "parse_structured",
    "stop_when_exhausted",
    "check_schema",
    "validate",
]

Message = Mapping[str, Any]
_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})


# ------------------------------------------------------------------ errors
class ModelError(BlackboardError):
    """Base of the errors of model-backed sources."""


class ModelCallError(ModelError, OSError):
    """A model call failed: an HTTP error status, the network, or a response
    that does not follow the protocol. ``status`` is the HTTP status (None
    when there was no response), ``url`` where the request went."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None,
                 body: str | None = None) -> None:
        self.url = url
        self.status = status
        self.body = body
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class ModelTimeoutError(ModelCallError, TimeoutError):
    """The model did not answer within the timeout."""


class ModelOutputError(ModelError, ValueError):
    """The model answered, but not with what was asked (not JSON, or not the schema).

    ``problem`` says what is wrong, ``path`` where (``$.category``; None for
    the whole reply), ``text`` is (the start of) the reply, ``source`` the
    knowledge source that asked, when known.
    """

    def __init__(self, problem: str, *, path: str | None = None, text: str | None = None,
                 source: str | None = None) -> None:
        self.problem = problem
        self.path = path
        self.text = text
        self.source = source
        super().__init__(self._message())

    def _message(self) -> str:
        who = f" from {self.source!r}" if self.source else ""
        where = f"{self.path}: " if self.path and self.path != "$" else ""
        shown = f" (reply: {_excerpt(self.text)!r})" if self.text is not None else ""
        return f"invalid model output{who}: {where}{self.problem}{shown}"

    def __str__(self) -> str:
        return self._message()

    def with_source(self, source: str) -> ModelOutputError:
        return ModelOutputError(self.problem, path=self.path, text=self.text, source=source)


class BudgetExceededError(ModelError, RuntimeError):
    """The model budget is reached: no more calls are made.

    ``limit`` is ``"tokens"``, ``"cost"`` or ``"calls"``; ``used`` and
    ``maximum`` the figures.
    """

    def __init__(self, limit: str, used: float, maximum: float, source: str | None = None) -> None:
        self.limit = limit
        self.used = used
        self.maximum = maximum
        self.source = source
        who = f" ({source!r} was refused)" if source else ""
        super().__init__(
            f"model budget reached: {_figure(used)} {limit} used of max_{limit}={_figure(maximum)}; "
            f"no more model calls{who}"
        )


def _figure(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}"


def _excerpt(text: str | None, limit: int = 200) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[:limit] + "..."


# ------------------------------------------------------------------ replies
def estimate_tokens(content: str | Sequence[Message] | None) -> int:
    """A rough token count: 1 per 4 characters (rounded up), plus 4 per message.

    Used when a model does not report its usage (callables, fakes, servers
    without ``usage``); replies made from estimates say so (``estimated``).
    """
    if content is None:
        return 0
    if isinstance(content, str):
        return (len(content) + 3) // 4
    return sum(4 + estimate_tokens(_content_text(m.get("content"))) for m in content)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI "content parts"
        return "".join(p.get("text", "") if isinstance(p, Mapping) else str(p) for p in content)
    return str(content)


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)
_NO_JSON = object()


def extract_json(text: str) -> Any:
    """The JSON value in a reply: the whole text, a fenced ```json block, or the
    outermost ``{...}``/``[...]``. Raises :class:`ModelOutputError` if there is none."""
    found = _find_json(text)
    if found is _NO_JSON:
        raise ModelOutputError("the reply is not JSON", text=text)
    return found


def _find_json(text: str) -> Any:
    if not isinstance(text, str):
        return _NO_JSON
    stripped = text.strip()
    candidates = [stripped]
    fence = _FENCE.search(stripped)
    if fence:
        candidates.append(fence.group(1).strip())
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = stripped.find(opener), stripped.rfind(closer)
        if 0 <= start < end:
            candidates.append(stripped[start:end + 1])
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return _NO_JSON


@dataclass(frozen=True)
class ModelReply:
    """One answer of a chat model.

    ``text`` is what the model said; ``data`` the JSON in it (None if there
    is none, or after :func:`parse_structured`: the validated value);
    ``prompt_tokens``/``completion_tokens`` as the model reported them, or
    estimated (``estimated`` True); ``model`` the model's name;
    ``finish_reason`` when the protocol gives one.
    """

    text: str
    data: Any = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    estimated: bool = False
    finish_reason: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_output(cls, output: Any, messages: Sequence[Message], *, model: str = "",
                    prompt_tokens: int | None = None, completion_tokens: int | None = None) -> ModelReply:
        """A reply from what a callable returned: text, a JSON-ready value, or a ModelReply."""
        if isinstance(output, ModelReply):
            return output if output.model or not model else replace(output, model=model)
        if isinstance(output, str):
            text, data = output, _find_json(output)
            data = None if data is _NO_JSON else data
        elif isinstance(output, (dict, list)):
            try:
                text = json.dumps(output, ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise ModelOutputError(f"the callable returned a value that is not JSON-serialisable ({exc})") from None
            data = json.loads(text)
        else:
            raise ModelOutputError(
                f"a model callable must return text, a dict or list, or a ModelReply, not {type(output).__name__}",
                text=repr(output),
            )
        estimated = prompt_tokens is None or completion_tokens is None
        return cls(
            text, data,
            estimate_tokens(messages) if prompt_tokens is None else int(prompt_tokens),
            estimate_tokens(text) if completion_tokens is None else int(completion_tokens),
            model, estimated,
        )


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise ValidationError("messages", f"must be a list of {{'role', 'content'}} dicts, not {type(messages).__name__}")
    if not messages:
        raise ValidationError("messages", "must not be empty")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise ValidationError("messages", f"message {i} is a {type(m).__name__}, not a dict")
        role = m.get("role")
        if role not in _ROLES:
            raise ValidationError("messages", f"message {i} has role {role!r}; use one of {sorted(_ROLES)}")
        if "content" not in m:
            raise ValidationError("messages", f"message {i} has no 'content'")
        out.append(dict(m))
    return out


# ------------------------------------------------------------------ models
class ChatModel(ABC):
    """A chat model: ``await complete(messages)`` returns a :class:`ModelReply`.

    ``name`` names it in usage records; ``price_per_1k_prompt`` and
    ``price_per_1k_completion`` (any currency unit) give the cost of a reply.
    """

    name: str = "model"
    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0

    @abstractmethod
    async def complete(self, messages: Sequence[Message]) -> ModelReply:
        """Answer the conversation ``messages`` (``[{"role": ..., "content": ...}]``)."""

    def cost(self, reply: ModelReply) -> float:
        """What ``reply`` cost at this model's prices."""
        return (reply.prompt_tokens * self.price_per_1k_prompt
                + reply.completion_tokens * self.price_per_1k_completion) / 1000.0

    def _set_prices(self, prompt: float, completion: float) -> None:
        for what, price in (("price_per_1k_prompt", prompt), ("price_per_1k_completion", completion)):
            if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or price < 0:
                raise ValidationError(what, f"must be a non-negative number, not {price!r}", price)
        self.price_per_1k_prompt = float(prompt)
        self.price_per_1k_completion = float(completion)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class CallableModel(ChatModel):
    """Any callable as a chat model: ``fn(messages)``, sync or async, returns
    text, a JSON-ready dict/list, or a :class:`ModelReply`.

    Token counts are estimated (:func:`estimate_tokens`) unless the callable
    returns a ModelReply with its own. A sync callable runs in the event
    loop; give ``threaded=True`` for one that blocks (a local model).
    """

    def __init__(self, fn: Callable[[list[dict[str, Any]]], Any], *, name: str | None = None,
                 threaded: bool = False, price_per_1k_prompt: float = 0.0,
                 price_per_1k_completion: float = 0.0) -> None:
        if not callable(fn):
            raise ValidationError("fn", f"must be callable, not {fn!r}", fn)
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        self.threaded = threaded
        self._set_prices(price_per_1k_prompt, price_per_1k_completion)

    async def complete(self, messages: Sequence[Message]) -> ModelReply:
        msgs = _check_messages(messages)
        if self.threaded and not inspect.iscoroutinefunction(self.fn):
            out = await anyio.to_thread.run_sync(self.fn, msgs)
        else:
            out = self.fn(msgs)
        if inspect.isawaitable(out):
            out = await out
        return ModelReply.from_output(out, msgs, model=self.name)


_Rule = tuple[str, Any]


class FakeModel(ChatModel):
    """A deterministic model for tests and offline runs.

    ``FakeModel(fn)``: ``fn(messages)`` (sync or async) gives the answer.
    ``FakeModel(rules)``: ``rules`` maps regular expressions to answers (a
    mapping, or ``(pattern, answer)`` pairs, tried in order); the first
    pattern found in the last user message wins, else ``default``. An answer
    is text, a dict/list (sent as JSON), a callable ``answer(messages)``, or
    an exception instance, which is raised (to simulate failures).

    ``prompt_tokens``/``completion_tokens`` fix the usage of every reply
    (default: estimated); ``delay`` seconds are awaited before answering.
    ``calls`` keeps the messages of every call.
    """

    def __init__(self, rules: Mapping[str, Any] | Iterable[_Rule] | Callable[..., Any] | None = None, *,
                 default: Any = None, name: str = "fake", prompt_tokens: int | None = None,
                 completion_tokens: int | None = None, delay: float = 0.0,
                 price_per_1k_prompt: float = 0.0, price_per_1k_completion: float = 0.0) -> None:
        self.name = name
        self.fn: Callable[..., Any] | None = None
        self.rules: list[tuple[re.Pattern[str], Any]] = []
        if callable(rules) and not isinstance(rules, Mapping):
            self.fn = rules
        elif rules is not None:
            pairs = rules.items() if isinstance(rules, Mapping) else rules
            for item in pairs:
                try:
                    pattern, answer = item
                    self.rules.append((re.compile(pattern, re.S), answer))
                except (TypeError, ValueError, re.error) as exc:
                    raise ValidationError("rules", f"{item!r} is not a (regular expression, answer) pair: {exc}") from None
        self.default = default
        for what, n in (("prompt_tokens", prompt_tokens), ("completion_tokens", completion_tokens)):
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
                raise ValidationError(what, f"must be a non-negative int or None, not {n!r}", n)
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.delay = delay
        self._set_prices(price_per_1k_prompt, price_per_1k_completion)
        self.calls: list[list[dict[str, Any]]] = []

    def _answer(self, msgs: list[dict[str, Any]]) -> Any:
        if self.fn is not None:
            return self.fn(msgs)
        last = next((_content_text(m.get("content")) for m in reversed(msgs) if m.get("role") == "user"), "")
        for pattern, answer in self.rules:
            if pattern.search(last):
                return answer
        if self.default is None:
            raise ModelCallError(f"fake model {self.name!r}: no rule matches the last user message {_excerpt(last, 80)!r} and there is no default")
        return self.default

    async def complete(self, messages: Sequence[Message]) -> ModelReply:
        msgs = _check_messages(messages)
        self.calls.append(msgs)
        if self.delay:
            await anyio.sleep(self.delay)
        answer = self._answer(msgs)
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer) and not isinstance(answer, (str, dict, list)):
            answer = answer(msgs)
        if inspect.isawaitable(answer):
            answer = await answer
        return ModelReply.from_output(answer, msgs, model=self.name, prompt_tokens=self.prompt_tokens,
                                      completion_tokens=self.completion_tokens)


class OpenAIChatModel(ChatModel):
    """An OpenAI-compatible chat-completions endpoint, over the standard library.

    Sends ``POST {base_url}/chat/completions`` with ``{"model", "messages",
    "temperature"}`` (plus ``max_tokens``, ``response_format`` for
    ``json_mode=True``, and ``extra_body``), with ``Authorization: Bearer
    {api_key}`` when a key is given; reads ``choices[0].message.content`` and
    ``usage.prompt_tokens``/``completion_tokens`` (estimated when absent).
    The request runs in a worker thread; ``timeout`` seconds bound the whole
    call. Errors: :class:`ModelTimeoutError`, and :class:`ModelCallError`
    with the HTTP status and the server's message.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, timeout: float = 60.0,
                 temperature: float | None = 0.0, max_tokens: int | None = None, json_mode: bool = False,
                 headers: Mapping[str, str] | None = None, extra_body: Mapping[str, Any] | None = None,
                 price_per_1k_prompt: float = 0.0, price_per_1k_completion: float = 0.0,
                 name: str | None = None) -> None:
        if not isinstance(base_url, str) or not re.match(r"https?://", base_url):
            raise ValidationError("base_url", f"must be an http:// or https:// URL, not {base_url!r}", base_url)
        if not isinstance(model, str) or not model:
            raise ValidationError("model", f"must be a non-empty model name, not {model!r}", model)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValidationError("timeout", f"must be a positive number of seconds, not {timeout!r}", timeout)
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.name = name or model
        self.api_key = api_key
        self.timeout = float(timeout)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.json_mode = json_mode
        self.headers = dict(headers or {})
        self.extra_body = dict(extra_body or {})
        self._set_prices(price_per_1k_prompt, price_per_1k_completion)

    def __repr__(self) -> str:  # never shows the key
        return f"<OpenAIChatModel {self.model!r} at {self.base_url}>"

    def request_body(self, messages: Sequence[Message]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        body.update(self.extra_body)
        return body

    async def complete(self, messages: Sequence[Message]) -> ModelReply:
        msgs = _check_messages(messages)
        payload = json.dumps(self.request_body(msgs)).encode("utf-8")
        try:
            with anyio.fail_after(self.timeout):
                status, raw = await anyio.to_thread.run_sync(partial(self._post, payload), abandon_on_cancel=True)
        except TimeoutError:
            raise ModelTimeoutError(f"no answer from {self.url} within {self.timeout:g} s", url=self.url) from None
        return self._reply(status, raw, msgs)

    def _post(self, payload: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self.headers}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (http(s) only, checked)
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read().decode("utf-8", "replace")
            except OSError:
                body = ""
            finally:
                exc.close()
            raise ModelCallError(
                f"HTTP {exc.code} from {self.url}: {_server_message(body) or exc.reason}",
                url=self.url, status=exc.code, body=_excerpt(body, 1000),
            ) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise ModelTimeoutError(f"no answer from {self.url} within {self.timeout:g} s", url=self.url) from None
            raise ModelCallError(f"cannot reach {self.url}: {exc.reason}", url=self.url) from None
        except TimeoutError:
            raise ModelTimeoutError(f"no answer from {self.url} within {self.timeout:g} s", url=self.url) from None
        except (OSError, http.client.HTTPException) as exc:
            raise ModelCallError(f"connection to {self.url} failed: {type(exc).__name__}: {exc}", url=self.url) from None

    def _reply(self, status: int, raw: bytes, messages: list[dict[str, Any]]) -> ModelReply:
        text = raw.decode("utf-8", "replace")

        def bad(problem: str) -> ModelCallError:
            return ModelCallError(f"malformed chat-completions response from {self.url}: {problem}",
                                  url=self.url, status=status, body=_excerpt(text, 1000))

        try:
            body = json.loads(text)
        except ValueError:
            raise bad(f"not JSON ({_excerpt(text, 80)!r})") from None
        if not isinstance(body, dict):
            raise bad("not a JSON object")
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise bad("no choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise bad("choices[0] has no message")
        content = message.get("content")
        finish = choices[0].get("finish_reason")
        if content is None:
            refusal = message.get("refusal")
            raise ModelOutputError(
                f"the model gave no content (finish_reason={finish!r}{', refusal: ' + str(refusal) if refusal else ''})"
            )
        content = _content_text(content)
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        estimated = not (isinstance(prompt, int) and isinstance(completion, int))
        if estimated:
            prompt, completion = estimate_tokens(messages), estimate_tokens(content)
        data = _find_json(content)
        return ModelReply(content, None if data is _NO_JSON else data, int(prompt), int(completion),
                          str(body.get("model") or self.model), estimated,
                          finish if isinstance(finish, str) else None)


def _server_message(body: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return _excerpt(body.strip(), 200)
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if parsed.get("message"):
            return str(parsed["message"])
    return _excerpt(body.strip(), 200)


def as_model(model: Any) -> ChatModel:
    """A :class:`ChatModel` from a model, a :class:`MeteredModel`'s model, or a callable."""
    if isinstance(model, MeteredModel):
        return model.model
    if isinstance(model, ChatModel):
        return model
    if callable(getattr(model, "complete", None)):
        return _DuckModel(model)
    if callable(model):
        return CallableModel(model)
    raise ValidationError("model", f"expected a ChatModel or a callable taking messages, not {model!r}", model)


class _DuckModel(ChatModel):
    """An object with its own ``async complete(messages)`` (the protocol, without the base class)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = str(getattr(inner, "name", type(inner).__name__))
        self._set_prices(float(getattr(inner, "price_per_1k_prompt", 0.0)),
                         float(getattr(inner, "price_per_1k_completion", 0.0)))

    async def complete(self, messages: Sequence[Message]) -> ModelReply:
        out = self.inner.complete(_check_messages(messages))
        if inspect.isawaitable(out):
            out = await out
        return ModelReply.from_output(out, messages, model=self.name)


# ------------------------------------------------------ structured output
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_JSON_NAMES = {dict: "object", list: "array", str: "string", int: "integer", float: "number",
               bool: "boolean", type(None): "null"}
_KEYWORDS = frozenset({
    "type", "required", "properties", "additionalProperties", "enum", "minimum", "maximum",
    "minLength", "maxLength", "items", "minItems", "maxItems",
    "description", "title", "default", "$schema", "examples",
})


def _json_type(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def check_schema(schema: Any, path: str = "$") -> None:
    """Refuse a schema outside the supported subset (``ValidationError`` naming the path)."""
    if not isinstance(schema, Mapping):
        raise ValidationError("schema", f"a schema is a dict, not {schema!r} (at {path})")
    unknown = set(schema) - _KEYWORDS
    if unknown:
        raise ValidationError("schema", f"unsupported keyword(s) {sorted(unknown)} at {path}; supported: {sorted(_KEYWORDS)}")
    expected = schema.get("type")
    if expected is not None:
        for name in [expected] if isinstance(expected, str) else list(expected):
            if name not in _TYPES:
                raise ValidationError("schema", f"unknown type {name!r} at {path}; known: {sorted(_TYPES)}")
    if "enum" in schema and (isinstance(schema["enum"], (str, bytes)) or not isinstance(schema["enum"], Sequence)):
        raise ValidationError("schema", f"enum at {path} must be a list")
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping):
        raise ValidationError("schema", f"properties at {path} must be a dict")
    for key, sub in properties.items():
        check_schema(sub, f"{path}.{key}")
    if "items" in schema:
        check_schema(schema["items"], f"{path}[]")


def validate(data: Any, schema: Mapping[str, Any], path: str = "$") -> None:
    """Check ``data`` against a JSON-Schema subset; raise :class:`ModelOutputError` naming the path.

    A schema keyword outside the subset is refused (``ValidationError``), so
    no constraint is silently ignored.
    """
    if path == "$":
        check_schema(schema)
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_TYPES[name](data) for name in names):
            raise ModelOutputError(f"must be {' or '.join(names)}, not {_json_type(data)} ({_excerpt(json.dumps(data, default=str), 60)})", path=path)
    if "enum" in schema and data not in list(schema["enum"]):
        raise ModelOutputError(f"{json.dumps(data, default=str)} is not one of {json.dumps(list(schema['enum']))}", path=path)
    if _TYPES["number"](data):
        if "minimum" in schema and data < schema["minimum"]:
            raise ModelOutputError(f"{data} is below the minimum {schema['minimum']}", path=path)
        if "maximum" in schema and data > schema["maximum"]:
            raise ModelOutputError(f"{data} is above the maximum {schema['maximum']}", path=path)
        if isinstance(data, float) and not math.isfinite(data):
            raise ModelOutputError(f"{data} is not a finite number", path=path)
    if isinstance(data, str):
        if "minLength" in schema and len(data) < schema["minLength"]:
            raise ModelOutputError(f"is shorter than {schema['minLength']} characters", path=path)
        if "maxLength" in schema and len(data) > schema["maxLength"]:
            raise ModelOutputError(f"is longer than {schema['maxLength']} characters", path=path)
    if isinstance(data, dict):
        missing = [k for k in schema.get("required", ()) if k not in data]
        if missing:
            raise ModelOutputError(f"missing required key(s) {', '.join(repr(k) for k in missing)}; got {sorted(data)}", path=path)
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            extra = sorted(set(data) - set(properties))
            if extra:
                raise ModelOutputError(f"unexpected key(s) {', '.join(repr(k) for k in extra)}; allowed: {sorted(properties)}", path=path)
        for key, sub in properties.items():
            if key in data:
                validate(data[key], sub, f"{path}.{key}")
    if isinstance(data, list):
        if "minItems" in schema and len(data) < schema["minItems"]:
            raise ModelOutputError(f"has {len(data)} items, fewer than {schema['minItems']}", path=path)
        if "maxItems" in schema and len(data) > schema["maxItems"]:
            raise ModelOutputError(f"has {len(data)} items, more than {schema['maxItems']}", path=path)
        if "items" in schema:
            for i, item in enumerate(data):
                validate(item, schema["items"], f"{path}[{i}]")


def parse_structured(reply: ModelReply | str | Mapping[str, Any] | list[Any], schema: Mapping[str, Any],
                     *, source: str | None = None) -> Any:
    """The JSON value of ``reply``, validated against ``schema``; returns it.

    ``reply`` is a :class:`ModelReply`, its text, or an already parsed value.
    Raises :class:`ModelOutputError` (what is wrong, where, and the start of
    the reply) if the reply holds no JSON or the JSON breaks the schema.
    """
    text: str | None
    if isinstance(reply, ModelReply):
        text = reply.text
        data = reply.data if reply.data is not None else _find_json(reply.text)
    elif isinstance(reply, str):
        text, data = reply, _find_json(reply)
    else:
        text, data = None, reply
    if data is _NO_JSON:
        raise ModelOutputError("the reply is not JSON", text=text, source=source)
    try:
        validate(data, schema)
    except ModelOutputError as exc:
        raise ModelOutputError(exc.problem, path=exc.path, text=text, source=source) from None
    return data


# ------------------------------------------------------------- accounting
@dataclass(frozen=True)
class ModelCall:
    """One model call as the ledger keeps it.

    ``outcome``: ``ok``, ``invalid`` (answered, but not per the schema),
    ``error`` (the call failed) or ``refused`` (the budget was reached; not
    sent). Tokens and cost are zero for refused and failed calls.
    """

    seq: int
    source: str
    run: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    seconds: float
    outcome: str
    error: str | None = None
    estimated: bool = False
    scope: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("scope")
        d["total_tokens"] = self.total_tokens
        d["cost"] = round(self.cost, 10)
        d["seconds"] = round(self.seconds, 6)
        return d


@dataclass
class UsageFigures:
    """Sums over model calls: ``calls`` sent (ok, invalid or error), tokens,
    cost, and how many were ``invalid``, failed (``errors``) or ``refused``."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    seconds: float = 0.0
    invalid: int = 0
    errors: int = 0
    refused: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, call: ModelCall) -> None:
        if call.outcome == "refused":
            self.refused += 1
            return
        self.calls += 1
        self.prompt_tokens += call.prompt_tokens
        self.completion_tokens += call.completion_tokens
        self.cost += call.cost
        self.seconds += call.seconds
        if call.outcome == "invalid":
            self.invalid += 1
        elif call.outcome == "error":
            self.errors += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "total_tokens": self.total_tokens,
            "cost": round(self.cost, 10), "seconds": round(self.seconds, 6),
            "invalid": self.invalid, "errors": self.errors, "refused": self.refused,
        }

    @classmethod
    def of(cls, calls: Iterable[ModelCall]) -> UsageFigures:
        figures = cls()
        for call in calls:
            figures.add(call)
        return figures


class Budget:
    """Limits on model use: ``max_tokens`` (prompt + completion), ``max_cost``,
    ``max_calls``; None means no limit. Reached when any figure is at or
    above its limit."""

    __slots__ = ("max_tokens", "max_cost", "max_calls")

    def __init__(self, max_tokens: int | None = None, max_cost: float | None = None,
                 max_calls: int | None = None) -> None:
        for what, limit in (("max_tokens", max_tokens), ("max_cost", max_cost), ("max_calls", max_calls)):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float))
                                      or not math.isfinite(limit) or limit < 0):
                raise ValidationError(what, f"must be a non-negative number or None, not {limit!r}", limit)
        self.max_tokens = max_tokens
        self.max_cost = max_cost
        self.max_calls = max_calls

    def reached(self, figures: UsageFigures) -> tuple[str, float, float] | None:
        """(limit, used, maximum) of the first limit reached, or None."""
        if self.max_tokens is not None and figures.total_tokens >= self.max_tokens:
            return "tokens", figures.total_tokens, self.max_tokens
        if self.max_cost is not None and figures.cost >= self.max_cost:
            return "cost", figures.cost, self.max_cost
        if self.max_calls is not None and figures.calls >= self.max_calls:
            return "calls", figures.calls, self.max_calls
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "max_cost": self.max_cost, "max_calls": self.max_calls}

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.to_dict().items() if v is not None]
        return f"Budget({', '.join(parts)})"


class Usage:
    """The ledger of model calls, with an optional :class:`Budget`.

    ``total``, ``by_source()``, ``by_run()``, ``for_source(name)`` and
    ``for_run(run)`` sum the calls; ``exhausted`` is the reason the budget is
    reached (None while it is not). ``on_exhausted(callback)`` calls
    ``callback(error)`` once, when the budget is first reached;
    ``subscribe(listener)`` calls ``listener(call)`` for every call. Both
    return a function that unsubscribes. Thread-safe.
    """

    def __init__(self, budget: Budget | None = None) -> None:
        if budget is not None and not isinstance(budget, Budget):
            raise ValidationError("budget", f"expected a Budget, not {budget!r}", budget)
        self.budget = budget
        self._calls: list[ModelCall] = []
        self._total = UsageFigures()
        self._lock = threading.RLock()
        self._listeners: list[Callable[[ModelCall], Any]] = []
        self._exhausted_callbacks: list[Callable[[BudgetExceededError], Any]] = []
        self._fired = False
        self._scopes = 0

    # -- reading
    @property
    def calls(self) -> list[ModelCall]:
        with self._lock:
            return list(self._calls)

    @property
    def total(self) -> UsageFigures:
        with self._lock:
            return replace(self._total)

    def by_source(self) -> dict[str, UsageFigures]:
        return self._group(lambda c: c.source)

    def by_run(self) -> dict[str, UsageFigures]:
        return self._group(lambda c: c.run or "")

    def for_source(self, source: str) -> UsageFigures:
        return UsageFigures.of(c for c in self.calls if c.source == source)

    def for_run(self, run: str) -> UsageFigures:
        return UsageFigures.of(c for c in self.calls if c.run == run)

    def _group(self, key: Callable[[ModelCall], str]) -> dict[str, UsageFigures]:
        out: dict[str, UsageFigures] = {}
        for call in self.calls:
            out.setdefault(key(call), UsageFigures()).add(call)
        return dict(sorted(out.items()))

    @property
    def exhausted(self) -> BudgetExceededError | None:
        """The budget error further calls get, or None while the budget allows calls."""
        with self._lock:
            hit = self.budget.reached(self._total) if self.budget is not None else None
        return None if hit is None else BudgetExceededError(*hit)

    def to_dict(self) -> dict[str, Any]:
        exhausted = self.exhausted
        return {
            "total": self.total.to_dict(),
            "by_source": {k: v.to_dict() for k, v in self.by_source().items()},
            "budget": self.budget.to_dict() if self.budget is not None else None,
            "exhausted": str(exhausted) if exhausted else None,
        }

    # -- writing
    def check(self, source: str | None = None) -> None:
        """Raise :class:`BudgetExceededError` if the budget is reached."""
        error = self.exhausted
        if error is not None:
            raise BudgetExceededError(error.limit, error.used, error.maximum, source)

    def record(self, call: ModelCall) -> ModelCall:
        """Add a call (numbering it); tell the listeners; fire the exhaustion callbacks once."""
        with self._lock:
            call = replace(call, seq=len(self._calls) + 1)
            self._calls.append(call)
            self._total.add(call)
            listeners = list(self._listeners)
            fire: list[Callable[[BudgetExceededError], Any]] = []
            hit = self.budget.reached(self._total) if self.budget is not None else None
            if hit is not None and not self._fired:
                self._fired = True
                fire = list(self._exhausted_callbacks)
        for listener in listeners:
            listener(call)
        if fire:
            error = BudgetExceededError(*hit)  # type: ignore[misc]
            for callback in fire:
                callback(error)
        return call

    def subscribe(self, listener: Callable[[ModelCall], Any]) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)
        return partial(self._remove, self._listeners, listener)

    def on_exhausted(self, callback: Callable[[BudgetExceededError], Any]) -> Callable[[], None]:
        with self._lock:
            self._exhausted_callbacks.append(callback)
        return partial(self._remove, self._exhausted_callbacks, callback)

    def _remove(self, items: list[Any], item: Any) -> None:
        with self._lock:
            if item in items:
                items.remove(item)

    def _new_scope(self) -> int:
        with self._lock:
            self._scopes += 1
            return self._scopes

    def __repr__(self) -> str:
        t = self._total
        return f"<Usage {t.calls} calls, {t.total_tokens} tokens, cost {t.cost:.6g}; {self.budget!r}>"


class MeteredModel(ChatModel):
    """A model behind a ledger and a budget: every call is checked and counted.

    ``MeteredModel(model, budget=Budget(max_tokens=10_000))`` makes its own
    :class:`Usage`; give ``usage=`` to share one. ``for_run(run)`` returns a
    view of the same model and ledger whose calls are tagged with ``run``
    (its own figures in ``figures``), optionally telling ``listener(call)``
    about each call (e.g. to log it on that run's blackboard).
    """

    def __init__(self, model: Any, *, budget: Budget | None = None, usage: Usage | None = None,
                 run: str | None = None, listener: Callable[[ModelCall], Any] | None = None) -> None:
        self.model = as_model(model)
        if usage is None:
            usage = Usage(budget)
        elif budget is not None:
            if usage.budget is not None and usage.budget is not budget:
                raise ValidationError("budget", "the usage ledger given has a budget of its own")
            usage.budget = budget
        self.usage = usage
        self.run = run
        self.listener = listener
        self.name = self.model.name
        self.price_per_1k_prompt = self.model.price_per_1k_prompt
        self.price_per_1k_completion = self.model.price_per_1k_completion
        self._scope = usage._new_scope()

    def cost(self, reply: ModelReply) -> float:
        return self.model.cost(reply)

    def for_run(self, run: str, listener: Callable[[ModelCall], Any] | None = None) -> MeteredModel:
        return MeteredModel(self.model, usage=self.usage, run=run, listener=listener)

    @property
    def figures(self) -> UsageFigures:
        """The sums over the calls made through this very object (a run's share)."""
        return UsageFigures.of(c for c in self.usage.calls if c.scope == self._scope)

    def calls_by_source(self) -> dict[str, UsageFigures]:
        out: dict[str, UsageFigures] = {}
        for call in self.usage.calls:
            if call.scope == self._scope:
                out.setdefault(call.source, UsageFigures()).add(call)
        return dict(sorted(out.items()))

    @property
    def exhausted(self) -> BudgetExceededError | None:
        return self.usage.exhausted

    async def complete(self, messages: Sequence[Message], *, source: str = "model",
                       schema: Mapping[str, Any] | None = None) -> ModelReply:
        """Ask the model (unless the budget is reached); count the call.

        With ``schema`` the reply's ``data`` is the validated JSON, and a reply
        that breaks the schema is counted as ``invalid`` and raises
        :class:`ModelOutputError`.
        """
        try:
            self.usage.check(source)
        except BudgetExceededError as exc:
            self._record(source, None, 0.0, "refused", str(exc))
            raise
        started = time.perf_counter()
        try:
            reply = await self.model.complete(messages)
        except ModelOutputError as exc:
            self._record(source, None, time.perf_counter() - started, "invalid", str(exc))
            raise exc.with_source(source) from None
        except Exception as exc:
            self._record(source, None, time.perf_counter() - started, "error", f"{type(exc).__name__}: {exc}")
            raise
        seconds = time.perf_counter() - started
        if schema is None:
            self._record(source, reply, seconds, "ok", None)
            return reply
        try:
            data = parse_structured(reply, schema, source=source)
        except ModelOutputError as exc:
            self._record(source, reply, seconds, "invalid", exc.problem)
            raise
        self._record(source, reply, seconds, "ok", None)
        return replace(reply, data=data)

    def _record(self, source: str, reply: ModelReply | None, seconds: float, outcome: str,
                error: str | None) -> ModelCall:
        if reply is None:
            call = ModelCall(0, source, self.run, self.model.name, 0, 0, 0.0, seconds, outcome, error,
                             False, self._scope)
        else:
            call = ModelCall(0, source, self.run, reply.model or self.model.name, reply.prompt_tokens,
                             reply.completion_tokens, self.model.cost(reply), seconds, outcome, error,
                             reply.estimated, self._scope)
        call = self.usage.record(call)
        if self.listener is not None:
            self.listener(call)
        return call

    def __repr__(self) -> str:
        return f"<MeteredModel {self.model!r} run={self.run!r} {self.usage!r}>"


# --------------------------------------------------------------- sources
def model_source(
    model: Any,
    *,
    name: str,
    watches: str | Iterable[str],
    prompt: Callable[[Any, Any], Sequence[Message] | None],
    schema: Mapping[str, Any],
    contribute: Callable[[Any, Any, Any], Any],
    **options: Any,
) -> KnowledgeSource:
    """A knowledge source that asks a chat model.

    Its action: ``messages = prompt(entry, view)`` (None: nothing to ask, no
    call), the call through the meter (``model`` is a :class:`MeteredModel`;
    anything else is metered with a ledger of its own), the reply validated
    against ``schema``, and ``contribute(entry, view, data)`` returns the
    contributions. A reply that breaks the schema raises
    :class:`ModelOutputError`, a refused call :class:`BudgetExceededError`:
    the activation fails with that error, the run goes on. ``options`` are
    the :class:`KnowledgeSource` options (``writes``, ``when``, ``timeout``,
    ``retries``, ``reliability``...); the tag ``"model"`` is added.
    """
    meter = model if isinstance(model, MeteredModel) else MeteredModel(model)
    if not callable(prompt) or not callable(contribute):
        raise ValidationError("prompt", f"model source {name!r} needs callables prompt(entry, view) and contribute(entry, view, data)")
    check_schema(schema)

    async def action(entry: Any, view: Any) -> Any:
        messages = prompt(entry, view)
        if messages is None:
            return None
        reply = await meter.complete(messages, source=name, schema=schema)
        return contribute(entry, view, reply.data)

    tags = options.pop("tags", ())
    tags = (tags,) if isinstance(tags, str) else tuple(tags or ())
    options.setdefault("description", (inspect.getdoc(prompt) or f"asks {meter.model.name}").strip())
    source = knowledge_source(action, name=name, watches=watches, tags=(*tags, "model"), **options)
    source.meter = meter  # type: ignore[attr-defined]
    return source


def stop_when_exhausted(controller: Any, usage: Usage | MeteredModel, names: Iterable[str],
                        on_stop: Callable[[BudgetExceededError, list[str]], Any] | None = None) -> Callable[[], None]:
    """Unregister the sources ``names`` from ``controller`` once the budget of
    ``usage`` is reached (at once, if it already is).

    Unregistered sources are matched against no new entry and their waiting
    activations are dropped (obviated) by the controller. ``on_stop(error,
    stopped)`` is told which were stopped. Returns a function that cancels
    the watch (call it when the run is over).
    """
    ledger = usage.usage if isinstance(usage, MeteredModel) else usage
    wanted = list(names)

    def stop(error: BudgetExceededError) -> None:
        stopped = [n for n in wanted if n in controller.sources]
        for n in stopped:
            controller.unregister(n)
        if on_stop is not None:
            on_stop(error, stopped)

    already = ledger.exhausted
    if already is not None:
        stop(already)
        return lambda: None
    return ledger.on_exhausted(stop)

