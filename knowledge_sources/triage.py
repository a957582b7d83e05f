"""Case triage: specialised agents, some model-backed, deciding support cases.

An incoming case (a support ticket or an incident report) is posted on a
blackboard; agents that never call each other work on it::

    case        key T-1001: {"id", "channel", "created", "customer", "product",
                "amount", "currency", "subject", "text"}
    reference   background knowledge, imported (triggers nothing): tiers
                (SLA hours, refund limit), customers, products; keys like
                "customer:C-1001", "tier:gold", "product:P-CAM"
    category    key T-1001: {"category"}; two classifiers compete on it
    entities    key T-1001: order and invoice ids, amounts, e-mails, urgency
    account     key T-1001: what the reference says about the customer and product
    policy      key T-1001: the company rules applied: flags, the recommended
                action, priority, SLA, and whether judgement is needed
    decision    key T-1001: {"action"}; two deciders compete on it

The agents::

    model_classifier    model-backed: the category, with a confidence
    keyword_classifier  rules: keyword hits; competes with the model on `category`
    entity_extractor    rules: regular expressions
    reference_lookup    SQL over the imported reference rows (view.sql)
    policy_checker      rules: joins category, entities and account (acts once
                        all three are there; on a later change it revises)
    rule_decider        rules: the policy's recommended action
    model_decider       model-backed, only where the policy needs judgement
                        (precondition ``needs_judgement``): may deviate

Conflicts are resolved by a weighted vote (reliability x confidence) on
``category`` and on ``decision``; a decision won by less than
:data:`REVIEW_MARGIN` is held for a person (an :class:`~controller.Escalation`),
who approves, rejects or edits it (``bb.approve / reject / edit`` or
``blackboard review``); :func:`resume` then finishes the run.

Every model call goes through a :class:`~knowledge_sources.models.MeteredModel`:
it is logged on the run's blackboard (event ``model_call``, with tokens,
cost and outcome) and counted per source and per run; with a budget, the
model-backed agents are unregistered once it is reached, and the rules carry
on. What a run cost, in SQL::

    SELECT source, count(*) AS calls,
           CAST(sum(CAST(details->>'total_tokens' AS BIGINT)) AS BIGINT) AS tokens,
           sum(CAST(details->>'cost' AS DOUBLE)) AS cost
    FROM events WHERE kind = 'model_call' GROUP BY source ORDER BY source

In use::

    from knowledge_sources import triage
    from knowledge_sources.models import Budget, OpenAIChatModel

    r = triage.solve("T-1005", path="triage.duckdb")    # r.status == "review"
    for item in triage.review_queue("triage.duckdb"):   # a person decides ...
        with Blackboard("triage.duckdb", run=item["run"]) as bb:
            bb.edit(item["review"], value={"action": "refund"}, by="alice")
    triage.resume("triage.duckdb", r.run_id)            # ... and the run finishes

    model = OpenAIChatModel("http://localhost:8000/v1", "some-model", timeout=30)
    b = triage.batch("cases.jsonl", workers=8, path="batch.duckdb", model=model,
                     budget=Budget(max_tokens=200_000))
    print(b)                                            # shares, accuracy, tokens, cost

The default model is :func:`default_model`, a deterministic
:class:`~knowledge_sources.models.FakeModel` standing in for a chat model,
so everything runs offline; pass ``model=OpenAIChatModel(...)`` (or any
callable) to use a real one. The shipped data set
(``data/triage_cases.jsonl``, read by :func:`load_cases`) carries the
expected category and action of each case, which no agent sees.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from blackboard import Blackboard, BlackboardError, Entry, Space

from ._contributions import Contribution, post, retract, revise
from ._source import KnowledgeSource, knowledge_source
from ._view import ReadView
from .models import (
    Budget,
    FakeModel,
    MeteredModel,
    ModelCall,
    ModelCallError,
    model_source,
    stop_when_exhausted,
)

__all__ = [
    "ACTIONS",
    "CASES_FILE",
    "CATEGORIES",
    "MODEL_SOURCES",
    "REFERENCE_FILE",
    "REVIEW_MARGIN",
    "STATUSES",
    "USAGE_SQL",
    "BatchResult",
    "TriageError",
    "TriageResult",
    "abatch",
    "aresume",
    "asolve",
    "batch",
    "check_case",
    "default_model",
    "load",
    "load_cases",
    "load_reference",
    "resume",
    "review_queue",
    "solve",
    "sources",
    "spaces",
]

DATA = Path(__file__).parent / "data"
CASES_FILE = DATA / "triage_cases.jsonl"
REFERENCE_FILE = DATA / "triage_reference.csv"

CATEGORIES = ("account", "billing", "security", "shipping", "technical")
ACTIONS = (
    "refund", "reship", "reply_self_service", "request_info", "route_account_team",
    "route_billing", "route_engineering", "route_logistics", "route_security",
)
CHANNELS = ("email", "chat", "web", "phone")
STATUSES = ("decided", "review", "failed")
MODEL_SOURCES = ("model_classifier", "model_decider")

# Weights of the votes: reliability x confidence. Given to the strategies
# explicitly (not only on the sources), so they hold for sources that were
# unregistered mid-run (a budget reached) too.
CATEGORY_WEIGHTS = {"model_classifier": 0.85, "keyword_classifier": 0.6}
DECISION_WEIGHTS = {"rule_decider": 0.9, "model_decider": 0.8}
REVIEW_MARGIN = 0.1
_JUDGEMENT_FLAGS = frozenset({"over_limit", "no_order", "fraud_watch", "suspended", "unknown_customer"})
_RUN_OPTIONS = ("max_cycles", "max_activations", "max_seconds")


USAGE_SQL = """
SELECT source, count(*) AS calls,
       CAST(sum(CAST(details->>'total_tokens' AS BIGINT)) AS BIGINT) AS tokens,
       sum(CAST(details->>'cost' AS DOUBLE)) AS cost
FROM events WHERE kind = 'model_call' GROUP BY source ORDER BY source
"""


class TriageError(BlackboardError, ValueError):
    """A case (or the case file, or the reference table) is malformed.

    ``problem`` says what is wrong; ``where`` is ``file:line`` when the case
    came from a file.
    """

    def __init__(self, problem: str, where: str | None = None) -> None:
        self.problem = problem
        self.where = where
        super().__init__(f"invalid triage case{' at ' + where if where else ''}: {problem}")


# ------------------------------------------------------------------- data
_CASE_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,), "channel": (str,), "created": (str, type(None)), "customer": (str, type(None)),
    "product": (str, type(None)), "amount": (int, float, type(None)), "currency": (str, type(None)),
    "subject": (str,), "text": (str,),
}


def check_case(case: Any, where: str | None = None) -> dict[str, Any]:
    """A validated copy of ``case`` (missing optional fields filled with None).

    Required: ``id``, ``text``; optional: ``channel`` (email, chat, web,
    phone; default web), ``subject``, ``created``, ``customer``, ``product``,
    ``amount`` (>= 0), ``currency``, ``expected`` ({"category", "action"}).
    Raises :class:`TriageError` naming the field.
    """
    if not isinstance(case, Mapping):
        raise TriageError(f"a case is a JSON object, not {type(case).__name__}", where)
    unknown = set(case) - set(_CASE_FIELDS) - {"expected"}
    if unknown:
        raise TriageError(f"unknown field(s) {sorted(unknown)}; known: {sorted(_CASE_FIELDS) + ['expected']}", where)
    out: dict[str, Any] = {"channel": "web", "subject": "", "created": None, "customer": None,
                           "product": None, "amount": None, "currency": "EUR"}
    for name in ("id", "text"):
        if not isinstance(case.get(name), str) or not case[name].strip():
            raise TriageError(f"{name!r} must be a non-empty string, not {case.get(name)!r}", where)
    for name, types in _CASE_FIELDS.items():
        if name in case:
            value = case[name]
            if isinstance(value, bool) or not isinstance(value, types):
                raise TriageError(f"{name!r} is {value!r}; expected {' or '.join(t.__name__ for t in types)}", where)
            out[name] = value
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", out["id"]):
        raise TriageError(f"'id' {out['id']!r} must be 1-64 letters, digits, '_', '.', ':' or '-'", where)
    if out["channel"] not in CHANNELS:
        raise TriageError(f"'channel' is {out['channel']!r}; use one of {list(CHANNELS)}", where)
    amount = out["amount"]
    if amount is not None and (not math.isfinite(amount) or amount < 0):
        raise TriageError(f"'amount' is {amount!r}; it must be a non-negative number", where)
    if "expected" in case and case["expected"] is not None:
        expected = case["expected"]
        if not isinstance(expected, Mapping):
            raise TriageError(f"'expected' must be an object {{category, action}}, not {expected!r}", where)
        if expected.get("category") is not None and expected["category"] not in CATEGORIES:
            raise TriageError(f"'expected.category' is {expected['category']!r}; use one of {list(CATEGORIES)}", where)
        if expected.get("action") is not None and expected["action"] not in ACTIONS:
            raise TriageError(f"'expected.action' is {expected['action']!r}; use one of {list(ACTIONS)}", where)
        out["expected"] = {"category": expected.get("category"), "action": expected.get("action")}
    return out


def load_cases(path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The cases of a JSONL file (one JSON object a line; default: the shipped set).

    Blank lines and lines starting with ``#`` are skipped. Every case is
    checked (:func:`check_case`) and ids must be unique; an error names the
    file and line.
    """
    target = Path(path) if path is not None else CASES_FILE
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise TriageError(f"cannot read the case file: {exc.strerror or exc}", str(target)) from None
    cases: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{target}:{number}"
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise TriageError(f"not JSON ({exc})", where) from None
        case = check_case(raw, where)
        if case["id"] in seen:
            raise TriageError(f"duplicate id {case['id']!r} (first on line {seen[case['id']]})", where)
        seen[case["id"]] = number
        cases.append(case)
    return cases


_REFERENCE_TYPES = {
    "fraud_watch": "bool", "shippable": "bool", "sla_hours": "int", "refund_window_days": "int",
    "refund_limit": "float", "price": "float",
}


def load_reference(path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The reference rows (tiers, customers, products) of a CSV file (default: the shipped one).

    Columns ``kind`` and ``key`` are required; empty cells are left out;
    ``fraud_watch``/``shippable`` are booleans, ``sla_hours`` and
    ``refund_window_days`` ints, ``refund_limit`` and ``price`` numbers.
    """
    target = Path(path) if path is not None else REFERENCE_FILE
    try:
        with target.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise TriageError(f"cannot read the reference table: {exc.strerror or exc}", str(target)) from None
    out = []
    for number, row in enumerate(rows, 2):
        where = f"{target}:{number}"
        if not row.get("kind") or not row.get("key"):
            raise TriageError("a reference row needs 'kind' and 'key'", where)
        item: dict[str, Any] = {}
        for name, text in row.items():
            if name is None or text is None or text == "":
                continue
            kind = _REFERENCE_TYPES.get(name)
            try:
                if kind == "bool":
                    if text.lower() not in ("true", "false"):
                        raise ValueError(text)
                    item[name] = text.lower() == "true"
                elif kind == "int":
                    item[name] = int(text)
                elif kind == "float":
                    item[name] = float(text)
                else:
                    item[name] = text
            except ValueError:
                raise TriageError(f"{name!r} is {text!r}, not a {kind}", where) from None
        out.append(item)
    return out


# ----------------------------------------------------------------- spaces
def spaces() -> list[Space]:
    """The spaces of a triage blackboard, with their fields declared."""
    return [
        Space("case", {"id": str, "channel": str, "created": str, "customer": str, "product": str,
                       "amount": float, "currency": str, "subject": str, "text": str},
              "an incoming case (key: its id)"),
        Space("reference", None, "background knowledge: tiers, customers, products (imported)"),
        Space("category", {"category": str}, "the category of a case; classifiers compete"),
        Space("entities", {"order_ids": list, "invoice_ids": list, "amounts": list, "emails": list,
                           "urgent": bool}, "what the text names"),
        Space("account", {"customer": str, "known": bool, "name": str, "tier": str, "region": str,
                          "status": str, "fraud_watch": bool, "sla_hours": int, "refund_limit": float,
                          "product": str, "product_kind": str, "shippable": bool, "price": float},
              "the reference facts on the case's customer and product"),
        Space("policy", {"category": str, "recommended": str, "flags": list, "priority": str,
                         "sla_hours": int, "needs_judgement": bool, "amount": float, "refund_limit": float},
              "the company rules applied to the case"),
        Space("decision", {"action": str}, "the action decided for a case; deciders compete"),
    ]


# ---------------------------------------------------------------- sources
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "account": (r"password", r"log ?in", r"sign ?in", r"e-?mail", r"username", r"account"),
    "billing": (r"refund\w*", r"charge\w*", r"invoice\w*", r"billing", r"billed", r"payment", r"price", r"money back"),
    "security": (r"hacked", r"fraud\w*", r"phishing", r"stolen", r"suspicious"),
    "shipping": (r"package", r"parcel", r"deliver\w*", r"shipping", r"tracking", r"courier", r"arrived"),
    "technical": (r"crash\w*", r"error\w*", r"bug", r"broken", r"not working", r"api", r"slow"),
}
_KEYWORD_RES = {c: [re.compile(rf"\b{p}\b", re.I) for p in ps] for c, ps in _KEYWORDS.items()}


def keyword_category(text: str) -> tuple[str, float] | None:
    """The category with the most keyword hits and a confidence (None: no hit).

    Crude on purpose: the first-listed category wins a tie, at a lower confidence.
    """
    hits = {c: sum(1 for r in res if r.search(text)) for c, res in _KEYWORD_RES.items()}
    best = max(hits.values())
    if best == 0:
        return None
    tied = [c for c in CATEGORIES if hits[c] == best]
    confidence = min(0.9, 0.45 + 0.15 * best) - (0.1 if len(tied) > 1 else 0.0)
    return tied[0], round(confidence, 3)


def _case_text(case: Mapping[str, Any]) -> str:
    return f"{case.get('subject') or ''}\n{case['text']}".strip()


def keyword_classifier(entry: Entry) -> Contribution | None:
    """Classify by keyword hits (rules)."""
    found = keyword_category(_case_text(entry.value))
    if found is None:
        return None
    category, confidence = found
    return post("category", {"category": category}, key=entry.key, confidence=confidence)


_ORDER = re.compile(r"\bORD-\d{5}\b")
_INVOICE = re.compile(r"\bINV-\d{4,}\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_AMOUNT = re.compile(
    r"(?:(?:EUR|USD|€|\$)\s?(\d+(?:[.,]\d{1,2})?))|(?:(\d+(?:[.,]\d{1,2})?)\s?(?:EUR|USD|€|euros?|dollars?)\b)",
    re.I,
)
_URGENT = re.compile(r"\b(urgent|asap|immediately|production is down|no internet|outage)\b", re.I)


def extract_entities(text: str) -> dict[str, Any]:
    """Order and invoice ids, money amounts, e-mail addresses and urgency in a text."""
    amounts = sorted({float((a or b).replace(",", ".")) for a, b in _AMOUNT.findall(text)})
    return {
        "order_ids": sorted(set(_ORDER.findall(text))),
        "invoice_ids": sorted(set(_INVOICE.findall(text))),
        "amounts": amounts,
        "emails": sorted(set(_EMAIL.findall(text))),
        "urgent": bool(_URGENT.search(text)),
    }


def entity_extractor(entry: Entry) -> Contribution:
    """Extract entities with regular expressions (rules)."""
    return post("entities", extract_entities(_case_text(entry.value)), key=entry.key, confidence=0.95)


_LOOKUP = """
WITH reference AS (SELECT key, value FROM entries WHERE space = 'reference')
SELECT
  (SELECT value FROM reference WHERE key = $customer) AS customer,
  (SELECT t.value FROM reference c JOIN reference t ON t.key = 'tier:' || (c.value ->> 'tier')
    WHERE c.key = $customer) AS tier,
  (SELECT value FROM reference WHERE key = $product) AS product,
  (SELECT value FROM reference WHERE key = 'tier:free') AS fallback
"""


def reference_lookup(entry: Entry, view: ReadView) -> Contribution:
    """Look the customer, their tier and the product up in the reference rows (SQL)."""
    case = entry.value
    row = view.sql(_LOOKUP, {"customer": f"customer:{case.get('customer')}",
                             "product": f"product:{case.get('product')}"}).to_pylist()[0]
    customer = json.loads(row["customer"]) if row["customer"] else None
    tier = json.loads(row["tier"] or row["fallback"] or "{}")
    product = json.loads(row["product"]) if row["product"] else None
    value: dict[str, Any] = {
        "customer": case.get("customer"), "known": customer is not None,
        "name": customer.get("name") if customer else None,
        "tier": customer.get("tier") if customer else None,
        "region": customer.get("region") if customer else None,
        "status": customer.get("status", "active") if customer else "unknown",
        "fraud_watch": bool(customer.get("fraud_watch")) if customer else False,
        "sla_hours": int(tier.get("sla_hours", 72)),
        "refund_limit": float(tier.get("refund_limit", 0.0)) if customer else 0.0,
        "product": case.get("product") if product else None,
        "product_kind": product.get("product_kind") if product else None,
        "shippable": product.get("shippable") if product else None,
        "price": product.get("price") if product else None,
    }
    return post("account", value, key=entry.key, confidence=1.0 if customer else 0.9)


def apply_policy(case: Mapping[str, Any], category: str, entities: Mapping[str, Any],
                 account: Mapping[str, Any]) -> dict[str, Any]:
    """The company rules: flags, the recommended action, priority and SLA."""
    flags: list[str] = []
    if not account.get("known"):
        flags.append("unknown_customer")
    if account.get("status") == "suspended":
        flags.append("suspended")
    if account.get("fraud_watch"):
        flags.append("fraud_watch")
    amount = case.get("amount")
    if amount is None and entities.get("amounts"):
        amount = max(entities["amounts"])
    limit = float(account.get("refund_limit") or 0.0)
    if category in ("billing", "shipping") and amount is not None and amount > limit:
        flags.append("over_limit")
    if category == "shipping" and not entities.get("order_ids"):
        flags.append("no_order")
    if category == "shipping" and account.get("shippable") is False:
        flags.append("not_shippable")
    if entities.get("urgent"):
        flags.append("urgent")
    f = set(flags)
    if category == "security":
        action = "route_security"
    elif "unknown_customer" in f:
        action = "request_info"
    elif category == "account":
        action = "route_account_team" if "suspended" in f else "reply_self_service"
    elif category == "technical":
        action = "route_engineering"
    elif category == "billing":
        blocked = f & {"fraud_watch", "suspended", "over_limit"} or amount is None
        action = "route_billing" if blocked else "refund"
    else:  # shipping
        if "no_order" in f:
            action = "request_info"
        elif f & {"over_limit", "fraud_watch", "suspended", "not_shippable"}:
            action = "route_logistics"
        else:
            action = "reship"
    tier = account.get("tier")
    if category == "security" or ("urgent" in f and tier == "gold"):
        priority = "P1"
    elif "urgent" in f or tier == "gold":
        priority = "P2"
    elif tier in ("silver", "bronze"):
        priority = "P3"
    else:
        priority = "P4"
    return {
        "category": category, "recommended": action, "flags": flags, "priority": priority,
        "sla_hours": int(account.get("sla_hours") or 72),
        "needs_judgement": category != "security" and bool(f & _JUDGEMENT_FLAGS),
        "amount": amount, "refund_limit": limit,
    }


def _find(view: ReadView | Blackboard, space: str, key: str, status: str | None = "active") -> list[Entry]:
    """``view.find(space, key)`` for the spaces the sources write (root context, oldest first).

    Read from the in-memory working set: once a run has imported rows (the
    reference table), ``find`` queries DuckDB for imported rows of *every*
    space on every call (a flush and a query, milliseconds each), which
    would dominate a triage run; no imported row is in these spaces.
    """
    return [e for e in view.entries(space, status=status) if e.key == key and e.context == 0]


def policy_checker(entry: Entry, view: ReadView) -> Contribution | None:
    """Apply the company rules once category, entities and account are known (rules).

    Triggered by each of the three; the activation whose trigger is the
    newest of them acts, the others leave it to that one, so the policy is
    computed once. A later change (a new category winner) revises it.
    """
    key = entry.key
    categories = _find(view, "category", key)
    entities = _find(view, "entities", key)
    accounts = _find(view, "account", key)
    cases = _find(view, "case", key)
    if not (categories and entities and accounts and cases):
        return None
    inputs = [*categories, entities[-1], accounts[-1]]
    if entry.id != max(e.id for e in inputs):
        return None
    value = apply_policy(cases[-1].value, categories[-1].value["category"], entities[-1].value, accounts[-1].value)
    confidence = max(c.confidence for c in categories)
    supports = [*(c.id for c in categories), entities[-1].id, accounts[-1].id, cases[-1].id]
    existing = _find(view, "policy", key)
    if existing:
        if existing[-1].value == value:
            return None
        return revise(existing[-1], value=value, confidence=confidence, supports=tuple(supports))
    return post("policy", value, key=key, confidence=confidence, supports=supports)


def _decide(view: ReadView, source: str, key: str, action: str, confidence: float) -> list[Contribution]:
    """Post this decider's decision, replacing its earlier one for the case (if any)."""
    own = [e for e in _find(view, "decision", key, status=None)
           if e.source == source and e.status in ("active", "superseded") and view.latest(e).id == e.id]
    value = {"action": action}
    if not own:
        return [post("decision", value, key=key, confidence=confidence)]
    last = own[-1]
    if last.value == value and last.confidence == confidence:
        return []
    if last.status == "active":
        return [revise(last, value=value, confidence=confidence)]
    return [retract(last, "the policy changed"), post("decision", value, key=key, confidence=confidence)]


def rule_decider(entry: Entry, view: ReadView) -> list[Contribution]:
    """Decide the policy's recommended action (rules); less sure where judgement is needed."""
    policy = entry.value
    confidence = 0.7 if policy["needs_judgement"] else 0.85
    return _decide(view, "rule_decider", entry.key, policy["recommended"], confidence)


# ---------------------------------------------------------- model agents
CLASSIFY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["category", "confidence"],
    "properties": {
        "category": {"type": "string", "enum": list(CATEGORIES)},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "rationale": {"type": "string"},
    },
}
DECIDE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["action", "confidence"],
    "properties": {
        "action": {"type": "string", "enum": list(ACTIONS)},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "rationale": {"type": "string"},
    },
}
_CLASSIFY_SYSTEM = (
    "You triage customer support cases for a company selling subscriptions (Basic, Pro, Team) and "
    "hardware (router, camera, security key). Classify the case into exactly one category: "
    + ", ".join(CATEGORIES) + ". Reply with one JSON object and nothing else: "
    '{"category": "...", "confidence": <0..1>, "rationale": "<one sentence>"}.'
)
_DECIDE_SYSTEM = (
    "You decide the next action on a triaged support case. Allowed actions: " + ", ".join(ACTIONS) + ". "
    "The company policy recommends an action and lists flags; follow it unless the case clearly calls for "
    "another action, and say why. Reply with one JSON object and nothing else: "
    '{"action": "...", "confidence": <0..1>, "rationale": "<one sentence>"}.'
)


def classify_prompt(entry: Entry, view: ReadView) -> list[dict[str, str]]:
    """Ask the model for the case's category."""
    case = entry.value
    shown = {"channel": case.get("channel"), "subject": case.get("subject"), "text": case["text"]}
    return [
        {"role": "system", "content": _CLASSIFY_SYSTEM},
        {"role": "user", "content": "Classify this case.\n" + json.dumps(shown, ensure_ascii=False, sort_keys=True)},
    ]


def classify_contribute(entry: Entry, view: ReadView, data: Mapping[str, Any]) -> Contribution:
    return post("category", {"category": data["category"]}, key=entry.key,
                confidence=round(float(data["confidence"]), 4))


def decide_prompt(entry: Entry, view: ReadView) -> list[dict[str, str]] | None:
    """Ask the model for the action, given the case, the account and the policy."""
    key = entry.key
    cases, accounts = _find(view, "case", key), _find(view, "account", key)
    if not cases or not accounts:
        return None
    case, account, policy = cases[-1].value, accounts[-1].value, entry.value
    shown = {
        "case": {"channel": case.get("channel"), "subject": case.get("subject"), "text": case["text"],
                 "amount": case.get("amount"), "currency": case.get("currency")},
        "category": policy["category"],
        "customer": {k: account.get(k) for k in ("known", "tier", "status", "fraud_watch", "refund_limit")},
        "policy": {k: policy.get(k) for k in ("recommended", "flags", "priority", "amount")},
    }
    return [
        {"role": "system", "content": _DECIDE_SYSTEM},
        {"role": "user", "content": "Decide the action for this case.\n" + json.dumps(shown, ensure_ascii=False, sort_keys=True)},
    ]


def decide_contribute(entry: Entry, view: ReadView, data: Mapping[str, Any]) -> list[Contribution]:
    return _decide(view, "model_decider", entry.key, data["action"], round(float(data["confidence"]), 4))


# The stand-in for a chat model: phrase weights a model would have learnt,
# and the judgement of a lenient human agent. Deterministic.
_PHRASES: dict[str, tuple[tuple[str, float], ...]] = {
    "account": (("password", 2), ("reset", 1.5), ("log ?in", 1.5), ("sign ?in", 1.5), ("email address", 2),
                ("username", 2), ("delete my account", 3), ("two-factor", 1.5), ("locked out", 2.5),
                ("reactivat", 2.5), ("my account", 1), ("add .{0,20}users", 2.5), ("admin rights", 2)),
    "billing": (("refund", 2.5), ("charged twice", 3), ("double charge", 3), ("invoice", 2), ("overcharg", 3),
                ("billing", 2), ("billed", 2), ("charge", 1), ("payment", 1.5), ("receipt", 1.5), ("vat", 1.5),
                ("price", 1), ("renewal", 2)),
    "security": (("hack", 3), ("unauthori[sz]ed", 3), ("didn't make", 2), ("fraud", 3), ("phishing", 3),
                 ("pretending to be", 2), ("someone else", 3), ("suspicious", 2), ("compromised", 3),
                 ("stolen", 2.5), ("leaked", 3), ("revoke", 2), ("nobody on our team", 2)),
    "shipping": (("package", 2), ("parcel", 2), ("deliver", 2), ("tracking", 2), ("courier", 2.5),
                 ("arrived", 1.5), ("never arrived", 3), ("wrong item", 3), ("damaged", 2), ("shipping", 2),
                 ("in transit", 2.5), ("received a", 1.5)),
    "technical": (("crash", 3), ("error", 2), ("error \\d{3}", 3), ("bug", 2), ("not working", 2),
                  ("doesn't work", 2), ("freez", 2), ("sync", 2), ("firmware", 2), ("disconnect", 2),
                  ("\\bapi\\b", 2), ("slow", 1.5), ("offline", 2), ("takes over a minute", 2),
                  ("crashes whenever", 2), ("http 500", 3)),
}
_PHRASE_RES = {c: [(re.compile(p, re.I), w) for p, w in ps] for c, ps in _PHRASES.items()}


def _fake_classify(case: Mapping[str, Any]) -> dict[str, Any]:
    text = f"{case.get('subject') or ''}\n{case.get('text') or ''}"
    scores = {c: sum(w for r, w in res if r.search(text)) for c, res in _PHRASE_RES.items()}
    ranked = sorted(CATEGORIES, key=lambda c: (-scores[c], c))
    top, second = scores[ranked[0]], scores[ranked[1]]
    if top == 0:
        return {"category": "account", "confidence": 0.3, "rationale": "nothing specific; a general account question"}
    confidence = max(0.35, min(0.95, 0.5 + 0.45 * (top - second) / (top + 1)))
    return {"category": ranked[0], "confidence": round(confidence, 3),
            "rationale": f"mostly about {ranked[0]} (score {top:g} against {second:g})"}


def _fake_decide(context: Mapping[str, Any]) -> dict[str, Any]:
    policy, customer = context["policy"], context["customer"]
    flags = set(policy.get("flags") or ())
    recommended = policy["recommended"]
    category = context["category"]
    amount, limit = policy.get("amount"), float(customer.get("refund_limit") or 0.0)
    clean = not (flags & {"fraud_watch", "suspended", "unknown_customer"})
    if "over_limit" in flags and clean and amount is not None and amount <= 1.5 * limit:
        action = "refund" if category == "billing" else "reship"
        return {"action": action, "confidence": 0.72,
                "rationale": f"{amount:g} is only a little over the limit of {limit:g}; worth the goodwill"}
    if "no_order" in flags and clean and customer.get("tier") in ("gold", "silver"):
        return {"action": "reship", "confidence": 0.7,
                "rationale": "a good customer; replace first, find the order later"}
    if "fraud_watch" in flags and category == "billing":
        return {"action": "route_security", "confidence": 0.7,
                "rationale": "the customer is on the fraud watch list"}
    return {"action": recommended, "confidence": 0.8, "rationale": "the policy fits this case"}


def _fake_brain(messages: list[dict[str, Any]]) -> dict[str, Any]:
    user = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
    task, _, payload = str(user).partition("\n")
    data = json.loads(payload)
    if task.startswith("Classify"):
        return _fake_classify(data)
    if task.startswith("Decide"):
        return _fake_decide(data)
    raise ModelCallError(f"the triage fake model does not know the task {task!r}")


def default_model() -> FakeModel:
    """The deterministic stand-in for a chat model, priced at 0.0005 per 1k prompt
    tokens and 0.0015 per 1k completion tokens (tokens estimated from the text)."""
    return FakeModel(_fake_brain, name="triage-fake-1", price_per_1k_prompt=0.0005, price_per_1k_completion=0.0015)


_RULE_SOURCES: dict[str, tuple[Any, dict[str, Any]]] = {
    "keyword_classifier": (keyword_classifier, {
        "watches": "case", "writes": "category", "priority": 10.0,
        "reliability": CATEGORY_WEIGHTS["keyword_classifier"], "tags": ("rules",),
    }),
    "entity_extractor": (entity_extractor, {
        "watches": "case", "writes": "entities", "priority": 10.0, "tags": ("rules",),
    }),
    "reference_lookup": (reference_lookup, {
        "watches": "case", "writes": "account", "priority": 10.0, "tags": ("sql",),
    }),
    "policy_checker": (policy_checker, {
        "watches": ("category", "entities", "account"), "writes": "policy",
        "events": ("posted", "reinstated"), "priority": 5.0, "tags": ("rules",),
    }),
    "rule_decider": (rule_decider, {
        "watches": "policy", "writes": "decision", "events": ("posted", "revised"), "priority": 1.0,
        "reliability": DECISION_WEIGHTS["rule_decider"], "tags": ("rules",),
    }),
}


def sources(model: Any = None, *, models: bool = True, timeout: float = 60.0) -> list[KnowledgeSource]:
    """Fresh triage sources (new objects each call).

    ``model``: a :class:`~knowledge_sources.models.MeteredModel` (its ledger
    counts the calls), any chat model or callable (metered with a ledger of
    its own), or None for :func:`default_model`. ``models=False`` leaves the
    model-backed agents out. ``timeout`` bounds each model-backed action.
    """
    out = [knowledge_source(fn, name=name, **options) for name, (fn, options) in _RULE_SOURCES.items()]
    if not models:
        return out
    meter = model if isinstance(model, MeteredModel) else MeteredModel(default_model() if model is None else model)
    model_options = {"timeout": timeout, "retries": 1, "retry_on": (ModelCallError,), "backoff": 0.05}
    out.append(model_source(
        meter, name="model_classifier", watches="case", writes="category", prompt=classify_prompt,
        schema=CLASSIFY_SCHEMA, contribute=classify_contribute, priority=10.0,
        reliability=CATEGORY_WEIGHTS["model_classifier"], **model_options,
    ))
    out.append(model_source(
        meter, name="model_decider", watches="policy", writes="decision", when="needs_judgement",
        events=("posted", "revised"), prompt=decide_prompt, schema=DECIDE_SCHEMA,
        contribute=decide_contribute, priority=1.0, reliability=DECISION_WEIGHTS["model_decider"],
        **model_options,
    ))
    return out


# ------------------------------------------------------------------ board
def load(bb: Blackboard, case: Mapping[str, Any], reference: str | os.PathLike[str] | None = None) -> Entry:
    """Post ``case`` on ``bb`` (and import the reference rows, once); returns the case entry.

    The triage spaces are declared on ``bb`` if they are not yet. The case's
    ``expected`` labels are not posted. Raises :class:`TriageError` for a
    malformed case or when ``bb`` already holds that case.
    """
    record = check_case(case)
    record.pop("expected", None)
    declared = bb.spaces
    missing = [s for s in spaces() if s.name not in declared]
    if missing:
        bb.declare(*missing)
    if _find(bb, "case", record["id"], status=None):
        raise TriageError(f"this blackboard already holds case {record['id']!r}")
    if not bb.find("reference", "tier:free"):
        rows = load_reference(reference)
        bb.import_arrow({
            "space": ["reference"] * len(rows),
            "key": [f"{r['kind']}:{r['key']}" for r in rows],
            "value": [json.dumps({k: v for k, v in r.items() if k not in ("kind", "key")}, sort_keys=True) for r in rows],
        }, source="reference")
    return bb.post("case", record, key=record["id"], source="intake")


@dataclass(frozen=True)
class TriageResult:
    """What :func:`solve` (or :func:`resume`) made of one case.

    ``status``: ``decided`` (``decision`` stands), ``review`` (a person must
    confirm; ``decision`` is the held proposal), or ``failed`` (no decision
    could be made; ``errors`` says why). ``confidence`` is the decision's,
    ``margin`` the weighted-vote margin over the runner-up (None when no
    agent disagreed). ``reviews`` counts the items waiting for a person.
    ``tokens``/``cost`` are this run's model use (from its ``model_call``
    events); ``usage`` the same per source. ``expected`` is the label of the
    data set, if any (``correct`` compares).
    """

    case: str
    status: str
    decision: str | None
    category: str | None
    confidence: float | None
    margin: float | None
    reviews: int
    tokens: int
    cost: float
    seconds: float
    activations: int
    run_id: int | None
    db: str
    expected: str | None = None
    expected_category: str | None = None
    priority: str | None = None
    failed: int = 0
    errors: tuple[str, ...] = ()
    usage: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    outcome: str | None = None

    @property
    def correct(self) -> bool | None:
        """Whether the decision is the expected action (None without a label)."""
        return None if self.expected is None else self.decision == self.expected

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``--json`` prints)."""
        return {
            "case": self.case, "status": self.status, "decision": self.decision, "category": self.category,
            "confidence": self.confidence, "margin": None if self.margin is None else round(self.margin, 6),
            "reviews": self.reviews, "tokens": self.tokens, "cost": round(self.cost, 10),
            "seconds": round(self.seconds, 6), "activations": self.activations, "run_id": self.run_id,
            "db": self.db, "expected": self.expected, "correct": self.correct, "priority": self.priority,
            "failed": self.failed, "errors": list(self.errors), "usage": {k: dict(v) for k, v in self.usage.items()},
            "expected_category": self.expected_category, "outcome": self.outcome,
        }

    def __str__(self) -> str:
        decided = f"{self.decision} ({self.category}, confidence {self.confidence})" if self.decision else "no decision"
        margin = "" if self.margin is None else f", margin {self.margin:.3f}"
        return (f"{self.case}: {self.status}: {decided}{margin}; {self.reviews} review(s), "
                f"{self.tokens} tokens, cost {self.cost:.6f}, {self.activations} activations in "
                f"{self.seconds:.3f} s (run {self.run_id} in {self.db})")


def _meter(model: Any, budget: Budget | None) -> MeteredModel:
    if isinstance(model, MeteredModel):
        if budget is not None:
            raise TriageError("give the budget to the MeteredModel, not to solve(), when passing one")
        return model
    return MeteredModel(default_model() if model is None else model, budget=budget)


def _split_case(case: Any, cases: str | os.PathLike[str] | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    if isinstance(case, str):
        text = case.strip()
        if text.startswith("{"):
            try:
                case = json.loads(text)
            except ValueError as exc:
                raise TriageError(f"the case is not valid JSON ({exc})") from None
        else:
            found = [c for c in load_cases(cases) if c["id"] == text]
            if not found:
                raise TriageError(f"no case with id {text!r} in {cases or CASES_FILE}")
            case = found[0]
    record = check_case(case)
    expected = record.pop("expected", None)
    return record, expected


def _case_record(case: Any, cases: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """A checked case record, its ``expected`` labels kept."""
    record, expected = _split_case(case, cases)
    if expected is not None:
        record["expected"] = expected
    return record


async def asolve(case: Any, path: str | os.PathLike[str] | None = None, model: Any = None, *,
                 escalate: bool = True, budget: Budget | None = None,
                 cases: str | os.PathLike[str] | None = None,
                 reference: str | os.PathLike[str] | None = None, on_close: Any = None,
                 **controller_options: Any) -> TriageResult:
    """The async form of :func:`solve`."""
    started = time.perf_counter()
    record, expected = _split_case(case, cases)
    meter = _meter(model, budget)
    run_options = {k: controller_options.pop(k) for k in _RUN_OPTIONS if k in controller_options}
    bb = Blackboard(path, spaces=spaces(), problem={
        "domain": "triage", "case": record, "expected": expected, "escalate": bool(escalate),
        "model": meter.model.name,
    })
    try:
        load(bb, record, reference)
        result = await _run(bb, record, expected, meter, escalate, controller_options, run_options, started)
        if on_close is not None:
            on_close(bb)
        return result
    finally:
        bb.close()


def solve(case: Any, path: str | os.PathLike[str] | None = None, model: Any = None, *,
          escalate: bool = True, budget: Budget | None = None,
          cases: str | os.PathLike[str] | None = None,
          reference: str | os.PathLike[str] | None = None, on_close: Any = None,
          **controller_options: Any) -> TriageResult:
    """Triage one case on a blackboard in memory or in ``path`` (a new run per call).

    ``case``: a case dict, a JSON object as text, or the id of a case in
    ``cases`` (a JSONL file; default: the shipped set). ``model``: a chat
    model, a callable, or a :class:`~knowledge_sources.models.MeteredModel`
    (share one to count, and budget, calls across cases); None: the
    deterministic :func:`default_model`. ``budget`` limits this call's model
    use. ``escalate=False`` lets the weighted vote decide close calls too.
    ``controller_options`` go to :class:`~controller.Controller`, except
    ``max_cycles``, ``max_activations`` and ``max_seconds`` (to its run).
    Raises :class:`TriageError` for a malformed case.
    """
    call = partial(asolve, case, path, model, escalate=escalate, budget=budget, cases=cases,
                   reference=reference, on_close=on_close, **controller_options)
    return _run_sync(call)


def _run_sync(call: Any) -> Any:
    from controller import run_sync  # here: controller imports this package

    return run_sync(call)


def _controller(bb: Blackboard, meter: MeteredModel, escalate: bool, options: dict[str, Any],
                with_models: bool = True) -> Any:
    from controller import Controller, Escalation, HighestConfidence, WeightedVote

    options = dict(options)
    options.setdefault("conflict", {
        "category": WeightedVote(CATEGORY_WEIGHTS),
        "decision": WeightedVote(DECISION_WEIGHTS),
        "*": HighestConfidence(),
    })
    if escalate:
        options.setdefault("escalations", [Escalation("close-call", margin_below=REVIEW_MARGIN, spaces=["decision"])])
    timeout = options.pop("model_timeout", 60.0)
    return Controller(bb, sources(meter, models=with_models, timeout=timeout), **options)


async def _run(bb: Blackboard, record: Mapping[str, Any], expected: Mapping[str, Any] | None,
               meter: MeteredModel, escalate: bool, controller_options: dict[str, Any],
               run_options: dict[str, Any], started: float) -> TriageResult:
    alive = [True]

    def log_call(call: ModelCall) -> None:
        if alive[0]:
            bb.log("model_call", source=call.source, details=call.to_dict())

    scope = meter.for_run(f"{record['id']}@{bb.path}#{bb.run_id}", listener=log_call)
    controller = _controller(bb, scope, escalate, controller_options)

    def stopped(error: Exception, names: list[str]) -> None:
        if alive[0]:
            bb.log("model_budget_reached", source="triage", details={"reason": str(error), "stopped": names})

    cancel = stop_when_exhausted(controller, scope, MODEL_SOURCES, on_stop=stopped)
    try:
        run = await controller.arun(**run_options)
    finally:
        cancel()
        alive[0] = False
    return _outcome(bb, record, expected, run.outcome, started)


def _usage_of(bb: Blackboard) -> tuple[dict[str, dict[str, Any]], int, float]:
    per: dict[str, dict[str, Any]] = {}
    for event in bb.events("model_call"):
        d = event.details or {}
        s = per.setdefault(event.source or "?", {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                                 "total_tokens": 0, "cost": 0.0, "invalid": 0, "errors": 0,
                                                 "refused": 0})
        outcome = d.get("outcome")
        if outcome == "refused":
            s["refused"] += 1
            continue
        s["calls"] += 1
        s["prompt_tokens"] += int(d.get("prompt_tokens") or 0)
        s["completion_tokens"] += int(d.get("completion_tokens") or 0)
        s["total_tokens"] += int(d.get("total_tokens") or 0)
        s["cost"] += float(d.get("cost") or 0.0)
        s["invalid"] += outcome == "invalid"
        s["errors"] += outcome == "error"
    tokens = sum(s["total_tokens"] for s in per.values())
    cost = math.fsum(s["cost"] for s in per.values())
    return dict(sorted(per.items())), tokens, cost


def _margin(bb: Blackboard, slot_ids: set[int]) -> float | None:
    margin = None
    for event in bb.events():
        if event.entry in slot_ids and event.details and "margin" in event.details:
            if event.kind in ("superseded", "reinstated", "review_requested"):
                margin = event.details["margin"]
    return margin


def _outcome(bb: Blackboard, record: Mapping[str, Any], expected: Mapping[str, Any] | None,
             outcome: str | None, started: float) -> TriageResult:
    key = record["id"]
    pending = bb.reviews()
    held = _find(bb, "decision", key, status="pending_review")
    decided = _find(bb, "decision", key)
    categories = _find(bb, "category", key)
    policies = _find(bb, "policy", key)
    if held or pending:
        status = "review"
        chosen = held or decided
    elif decided:
        status, chosen = "decided", decided
    else:
        status, chosen = "failed", []
    decision = chosen[-1].value["action"] if chosen else None
    confidence = max(e.confidence for e in chosen if e.value == chosen[-1].value) if chosen else None
    slot = {e.id for e in _find(bb, "decision", key, status=None)}
    failures = [e for e in bb.events("activation_failed") if e.details]
    errors = tuple(f"{e.source}: {(e.details['error'] or '').splitlines()[0]}" for e in failures)
    if status == "failed" and not errors:
        missing = next((space for space in ("category", "entities", "account", "policy", "decision")
                        if not _find(bb, space, key)), "decision")
        stops = bb.events("model_budget_reached")
        why = f" (model-backed agents stopped: {stops[-1].details['reason']})" if stops and stops[-1].details else ""
        errors = (f"no {missing} was reached for the case{why}",)
    usage, tokens, cost = _usage_of(bb)
    result = TriageResult(
        case=key, status=status, decision=decision,
        category=categories[-1].value["category"] if categories else None,
        confidence=confidence, margin=_margin(bb, slot), reviews=len(pending), tokens=tokens, cost=cost,
        seconds=time.perf_counter() - started, activations=bb.activations, run_id=bb.run_id, db=bb.path,
        expected=(expected or {}).get("action"), expected_category=(expected or {}).get("category"),
        priority=policies[-1].value["priority"] if policies else None,
        failed=len(failures), errors=errors, usage=usage, outcome=outcome,
    )
    if not bb.events("triage_result") or bb.events("triage_result")[-1].details != result.to_json():
        bb.log("triage_result", source="triage", details=result.to_json())  # a finished run resumed: once
    return result


# ----------------------------------------------------------------- resume
def _triage_run(path: str | os.PathLike[str], run: int | None) -> int:
    from blackboard import read_runs

    if run is not None:
        return run
    runs = [r for r in read_runs(path)
            if isinstance(r["problem"], dict) and r["problem"].get("domain") == "triage"]
    unfinished = [r for r in runs if r["state"] != "finished"]
    waiting = [r for r in runs if r["outcome"] == "review"]
    chosen = unfinished or waiting or runs  # else the newest finished run: its result is read back
    if not chosen:
        raise TriageError(f"{os.fspath(path)} holds no triage run to resume")
    return int(chosen[-1]["id"])


async def aresume(path: str | os.PathLike[str], run: int | None = None, model: Any = None, *,
                  budget: Budget | None = None, reference: str | os.PathLike[str] | None = None,
                  **controller_options: Any) -> TriageResult:
    """The async form of :func:`resume`."""
    started = time.perf_counter()
    meter = _meter(model, budget)
    run_options = {k: controller_options.pop(k) for k in _RUN_OPTIONS if k in controller_options}
    bb = Blackboard(path, run=_triage_run(path, run))
    try:
        problem = bb.problem
        if not isinstance(problem, dict) or problem.get("domain") != "triage":
            raise TriageError(f"run {bb.run_id} of {bb.path} is not a triage run (problem: {problem!r})")
        record, expected = check_case(problem["case"]), problem.get("expected")
        from controller import RunResult  # here: controller imports this package

        ended = RunResult.recorded(bb)
        if ended is not None:  # a run that ran to its end: read back, not run again
            return _outcome(bb, record, expected, ended.outcome, started)
        if not _find(bb, "case", record["id"], status=None):  # killed before the case was first committed
            load(bb, record, reference)
        escalate = bool(problem.get("escalate", True))
        return await _run(bb, record, expected, meter, escalate, controller_options, run_options, started)
    finally:
        bb.close()


def resume(path: str | os.PathLike[str], run: int | None = None, model: Any = None, *,
           budget: Budget | None = None, reference: str | os.PathLike[str] | None = None,
           **controller_options: Any) -> TriageResult:
    """Continue a triage run from its file: after a crash, or after a person's review.

    ``run`` picks the run (default: the newest triage run not finished, else
    the newest that stopped for review). Nothing done is done again; review
    decisions made since (``bb.approve / reject / edit``, ``blackboard
    review``) are acted on. Returns what :func:`solve` would.
    """
    call = partial(aresume, path, run, model, budget=budget, reference=reference, **controller_options)
    return _run_sync(call)


def review_queue(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every item waiting for a person in the triage runs of a file, oldest run first.

    Each is a dict: ``run``, ``case``, ``review`` (the id to give
    ``bb.approve / reject / edit`` on ``Blackboard(path, run=run)``, or to
    ``blackboard review PATH approve ID --run RUN``), ``proposal`` (the
    held action), ``alternatives`` (the other claims, action -> score),
    ``margin`` and ``reason``. Then :func:`resume` the run.
    """
    from blackboard import read_runs

    out: list[dict[str, Any]] = []
    for run in read_runs(path):
        problem = run["problem"]
        if not isinstance(problem, dict) or problem.get("domain") != "triage" or run["outcome"] != "review":
            continue
        with Blackboard(path, run=int(run["id"])) as bb:
            for review in bb.reviews():
                held = bb.get(review.entry) if review.entry is not None else None
                scores = dict(review.details.get("scores") or {})
                proposal = held.value.get("action") if held is not None and isinstance(held.value, dict) else None
                alternatives = {json.loads(k).get("action", k): v for k, v in scores.items()
                                if json.loads(k).get("action") != proposal}
                out.append({
                    "run": int(run["id"]), "case": problem["case"]["id"], "review": review.id,
                    "kind": review.kind, "proposal": proposal, "alternatives": alternatives,
                    "margin": None if review.details.get("margin") is None else round(review.details["margin"], 6),
                    "reason": review.reason,
                })
    return out


# ------------------------------------------------------------------ batch
@dataclass(frozen=True)
class BatchResult:
    """The results of :func:`batch`, in the order of the cases, with totals."""

    results: tuple[TriageResult, ...]
    seconds: float
    workers: int
    db: str
    usage: Mapping[str, Any] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def decided(self) -> int:
        return self.count("decided")

    @property
    def review(self) -> int:
        return self.count("review")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def labelled(self) -> int:
        return sum(1 for r in self.results if r.expected is not None)

    @property
    def correct(self) -> int:
        return sum(1 for r in self.results if r.correct)

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.results)

    @property
    def cost(self) -> float:
        return math.fsum(r.cost for r in self.results)

    def summary(self) -> dict[str, Any]:
        n = len(self.results) or 1
        labelled = self.labelled or 1
        return {
            "cases": len(self.results), "decided": self.decided, "review": self.review, "failed": self.failed,
            "decided_share": round(self.decided / n, 4), "review_share": round(self.review / n, 4),
            "failed_share": round(self.failed / n, 4), "labelled": self.labelled, "correct": self.correct,
            "accuracy": round(self.correct / labelled, 4) if self.labelled else None,
            "category_accuracy": round(sum(1 for r in self.results if r.expected_category is not None
                                           and r.category == r.expected_category) / labelled, 4) if self.labelled else None,
            "tokens": self.tokens, "cost": round(self.cost, 10), "seconds": round(self.seconds, 6),
            "workers": self.workers, "db": self.db,
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the summary, the usage, and every result."""
        return {"summary": self.summary(), "usage": dict(self.usage), "results": [r.to_json() for r in self.results]}

    def __str__(self) -> str:
        s = self.summary()
        acc = "" if s["accuracy"] is None else f", {s['correct']}/{s['labelled']} as expected"
        return (f"{s['cases']} cases: {s['decided']} decided, {s['review']} to review, {s['failed']} failed"
                f"{acc}; {s['tokens']} tokens, cost {s['cost']:.6f}; {s['seconds']:.3f} s with {self.workers} worker(s)")


async def abatch(cases: str | os.PathLike[str] | Iterable[Any] | None = None, *, workers: int = 4,
                 path: str | os.PathLike[str] | None = None, model: Any = None, budget: Budget | None = None,
                 escalate: bool = True, reference: str | os.PathLike[str] | None = None,
                 **controller_options: Any) -> BatchResult:
    """The async form of :func:`batch`."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise TriageError(f"workers must be a positive int, not {workers!r}")
    started = time.perf_counter()
    if cases is None or isinstance(cases, (str, os.PathLike)):
        items: list[Any] = load_cases(cases)
    else:
        items = [_case_record(c) for c in cases]
    meter = _meter(model, budget)
    results: list[TriageResult | None] = [None] * len(items)
    limiter = anyio.CapacityLimiter(workers)
    keep = _keep_open(path)

    async def one(i: int, case: dict[str, Any]) -> None:
        async with limiter:
            t0 = time.perf_counter()
            try:
                results[i] = await asolve(case, path, meter, escalate=escalate, reference=reference,
                                          **dict(controller_options))
            except BlackboardError as exc:
                results[i] = TriageResult(
                    case=str(case.get("id")), status="failed", decision=None, category=None, confidence=None,
                    margin=None, reviews=0, tokens=0, cost=0.0, seconds=time.perf_counter() - t0,
                    activations=0, run_id=None, db=":memory:" if path is None else os.fspath(path),
                    expected=(case.get("expected") or {}).get("action"), errors=(f"{type(exc).__name__}: {exc}",),
                )

    try:
        async with anyio.create_task_group() as tg:
            for i, case in enumerate(items):
                tg.start_soon(one, i, case)
    finally:
        if keep is not None:
            keep.close()
    done = tuple(r for r in results if r is not None)
    return BatchResult(done, time.perf_counter() - started, workers,
                       ":memory:" if path is None else os.fspath(path), meter.usage.to_dict())


def _keep_open(path: str | os.PathLike[str] | None) -> Any:
    """A plain connection to the batch's file, held for the whole batch.

    Runs open and close their own handles; while this one is open DuckDB
    keeps the database instance, so a run's handle does not open the file
    again (and close does not checkpoint it) every time: about half the
    time of a batch. Nothing is read or written through it. None when there
    is no file, or it cannot be opened (the run's own handle then reports why).
    """
    if path is None:
        return None
    import duckdb

    target = Path(path)
    if not target.parent.is_dir() or (target.exists() and not target.is_file()):
        return None
    try:
        return duckdb.connect(os.fspath(target))
    except duckdb.Error:
        return None


def batch(cases: str | os.PathLike[str] | Iterable[Any] | None = None, *, workers: int = 4,
          path: str | os.PathLike[str] | None = None, model: Any = None, budget: Budget | None = None,
          escalate: bool = True, reference: str | os.PathLike[str] | None = None,
          **controller_options: Any) -> BatchResult:
    """Triage many cases, ``workers`` at a time, a run per case (all in ``path`` if given).

    ``cases``: a JSONL file (default: the shipped set) or an iterable of
    case dicts or ids. One metered model serves the batch, so ``budget``
    limits the whole batch: once it is reached the model-backed agents of
    every run stop, and the rules decide the rest. The runs share one event
    loop: model calls of different cases overlap, blackboard writes do not.
    """
    call = partial(abatch, cases, workers=workers, path=path, model=model, budget=budget,
                   escalate=escalate, reference=reference, **controller_options)
    return _run_sync(call)  # type: ignore[no-any-return]



# ------------------------------------------------- the batch command's hooks
def batch_problems(path: str | os.PathLike[str]) -> list[tuple[str, dict[str, Any]]]:
    """The cases of a JSONL file as (id, case), for ``blackboard batch triage FILE``."""
    return [(str(case["id"]), case) for case in load_cases(path)]


def batch_failure(label: str, status: str, error: str) -> dict[str, Any]:
    """The batch line of a case that could not be triaged."""
    return {"case": label, "status": status, "decision": None, "seconds": 0.0, "activations": 0, "error": error}


def batch_status(result: TriageResult) -> str:
    """A batch line's status: decided, review (waiting for a person) or failed."""
    return result.status if result.status in ("decided", "review") else "failed"
