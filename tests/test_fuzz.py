"""Fuzz tests: untrusted rules, values, settings, files and actions.

Users hand the system rule texts, values, controller settings, database files
and knowledge-source code; none of it is trusted. Each input either works or
fails with one of the project's own errors (rooted at ``BlackboardError``),
and a failure leaves what is stored unchanged: nothing crashes the process,
and no other exception type leaks out of the public API.

How known bugs are kept: each has a deterministic test (or a hypothesis test
with an ``@example`` that triggers it) marked ``xfail(strict=True, reason=
"BUG: ...")``. The broad fuzz tests leave out exactly the inputs those bugs
need (each exclusion names the xfail test that covers it), so they keep
guarding everything else today. When a bug is fixed its xfail test XPASSes
(and fails, being strict): remove the marker and the matching exclusion.
Tests commented "Was a bug" pin bugs this file found that are fixed now.

The example counts keep the file near 40 s on 2 cores; FUZZ_SCALE=10 (an
environment variable) multiplies them for a longer search.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from blackboard import (
    UNSET,
    Blackboard,
    BlackboardError,
    Entry,
    QueryError,
    Space,
    ValidationError,
    read_runs,
    verify,
)
from controller import (
    ConfigurationError,
    Controller,
    HighestConfidence,
    NoisyOr,
    RunResult,
    UserRule,
    WeightedVote,
)
from knowledge_sources import (
    PreconditionError,
    ReadView,
    Revise,
    SourceDefinitionError,
    knowledge_source,
    post,
    retract,
    revise,
)

# Every DuckDB connection costs ~40 ms and every opened blackboard ~90 ms, so the example counts are
# set for the whole file to run in about 40 s on 2 cores. FUZZ_SCALE=10 runs ten times as many.
_SCALE = float(os.environ.get("FUZZ_SCALE", "1"))


def examples(n: int) -> settings:
    return settings(
        max_examples=max(1, int(n * _SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


FUZZ = examples(55)
FEW = examples(30)

ENTRY_EVENTS = frozenset({"posted", "revised", "retracted", "superseded", "reinstated", "imported"})
_fresh = itertools.count(1)


def fresh(prefix: str = "fz") -> str:
    """A name never used before in this process (sources, keys)."""
    return f"{prefix}{next(_fresh)}"


# ===================================================================== helpers
def _safe(exc: BaseException) -> str:
    try:
        return str(exc)[:300]
    except Exception:
        return f"<{type(exc).__name__} with an unprintable message>"


def outcome(call: Callable[[], Any]) -> tuple[bool, Any]:
    """``(True, result)``, or ``(False, error)`` for a project error.

    Any other exception is turned into an AssertionError naming it (the
    original is chained), so a leak reads as a test failure, not a crash.
    """
    try:
        return True, call()
    except BlackboardError as exc:
        return False, exc
    except Exception as exc:
        raise AssertionError(
            f"{type(exc).__name__} leaked instead of a BlackboardError: {_safe(exc)}"
        ) from exc


def refused(call: Callable[[], Any]) -> BlackboardError:
    """The project error ``call`` raises; fails if it succeeds or leaks another type."""
    ok, result = outcome(call)
    if ok:
        _closing(result)
    assert not ok, f"accepted, returned {result!r:.200}"
    return result  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Snapshot:
    """What a failed call must leave as it was: memory, event log and tables."""

    entries: tuple[Any, ...]
    size: int
    events: int
    rows: tuple[Any, ...]
    counts: tuple[int, ...]


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def snapshot(board: Blackboard) -> Snapshot:
    """Entries (id, space, key, value, confidence, status), len, event count, and the SQL view of them."""
    entries = tuple(sorted(
        (e.id, e.space, e.key, _canon(e.value), e.confidence, str(e.status)) for e in board.entries(status=None)
    ))
    # one query (each costs milliseconds): the run's entry rows, each with the row counts
    table = board.sql(
        "SELECT id, space, key, value, confidence, status, (SELECT count(*) FROM events) AS events,"
        " (SELECT count(*) FROM bb_entry) AS all_entries, (SELECT count(*) FROM bb_event) AS all_events"
        " FROM entries ORDER BY id"
    ).to_pylist()
    if table:
        counts = (len(table), table[0]["events"], table[0]["all_entries"], table[0]["all_events"])
    else:
        counts = tuple(board.sql(
            "SELECT 0, (SELECT count(*) FROM events), (SELECT count(*) FROM bb_entry), (SELECT count(*) FROM bb_event)"
        ).to_pylist()[0].values())
    rows = tuple(tuple(r.values())[:6] for r in table)
    return Snapshot(entries, len(board), len(board.events()), rows, counts)


def assert_only_bookkeeping(board: Blackboard, before: Snapshot) -> None:
    """Entries unchanged (memory and SQL); new events are the controller's, none touches an entry."""
    after = snapshot(board)
    assert after.entries == before.entries
    assert after.rows == before.rows
    assert after.size == before.size
    new = board.events()[before.events:]
    assert not [e for e in new if e.kind in ENTRY_EVENTS], [e.kind for e in new]
    # the tables hold exactly the log kept in memory
    assert after.counts[1] == after.events and after.counts[0] == len(after.rows)


def _closing(board: Any) -> None:
    if isinstance(board, Blackboard):
        try:
            board.close()
        except Exception:
            pass


# =================================================================== rule text
SYMBOLS = ["value", "x", "row", "col", "digit", "key", "confidence", "id", "space", "status", "source",
           "cycle", "context", "run", "priority", "nested", "zork"]
NUMBERS = ["0", "1", "-1", "2.5", "1e308", "0x1f", "0b101", "0o7", "1_000", "99999999999999999999999",
           "1e-400", ".5", "7"]
# No quantified regular expressions: some catastrophic ones still hang (test_catastrophic_regex_...).
STRINGS = ["'a'", '"b"', "''", "'aaa'", "'(a'", "'[z-a]'", "'\\x'", "'\\u'", "'k'", "'hyp'", "'a|b'"]
OPERATORS = ["==", "!=", "<", "<=", ">", ">=", "=~", "=~~", "!~", "!~~", "+", "-", "*", "/", "//", "%", "**",
             "&", "|", "^", "<<", ">>", "and", "or", "not", "in", "?", ":", ",", "[", "]", "{", "}", "(", ")",
             "::", "=>", "#", "@", "$now", "$abs", "$e", "true", "false", "null", "if", "for"]

token_soup = st.lists(st.sampled_from(SYMBOLS + NUMBERS + STRINGS + OPERATORS), min_size=1, max_size=25).map(" ".join)
printable_rules = st.text(st.characters(codec="utf-8"), max_size=40)
_atoms = st.sampled_from(SYMBOLS + NUMBERS + STRINGS + ["true", "false", "null", "$now", "$e"])
_FUNCTIONS = ["$abs", "$split", "$parse_float", "$parse_datetime", "$parse_timedelta", "$any", "$all", "$sum",
              "$min", "$max", "$random", "$ceiling"]  # not $range: $range(10**12) exhausts memory


def _grow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(st.sampled_from(["not ", "-", "~"]), children).map("".join),
        st.tuples(children, st.sampled_from(OPERATORS[:21]), children).map(" ".join),
        children.map(lambda c: f"({c})"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}:]"),
        st.tuples(st.sampled_from(_FUNCTIONS), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(children, children, children).map(lambda t: f"{t[0]} ? {t[1]} : {t[2]}"),
        st.lists(children, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.tuples(children, children).map(lambda t: "{" + f"{t[0]}: {t[1]}" + "}"),
        st.tuples(children, children).map(lambda t: f"[v for v in {t[0]} if {t[1]}]"),
    )


grammar_rules = st.recursive(_atoms, _grow, max_leaves=8)
"""Mostly well-formed rule-engine expressions (no attribute access)."""

# Depths far from the interpreter's recursion limit on either side: a rule
# nested just below the limit has its own test_rule_nested_just_below_the_limit_...
_DEPTHS = st.sampled_from([1, 2, 10, 50, 100, 1000, 1500])


def _nest(shape: str, depth: int, inner: str) -> str:
    if shape == "paren":
        return "(" * depth + inner + ")" * depth
    if shape == "not":
        return "not " * depth + inner
    if shape == "neg":
        return "-" * depth + inner
    if shape == "list":
        return "[" * depth + inner + "]" * depth
    if shape == "abs":
        return "$abs(" * depth + inner + ")" * depth
    return "true ? " * depth + inner + " : false" * depth


nested_rules = st.builds(_nest, st.sampled_from(["paren", "not", "neg", "list", "abs", "ternary"]), _DEPTHS,
                         grammar_rules)
long_rules = st.builds(lambda sep, n, part: sep.join([part] * n), st.sampled_from([" and ", " or ", " + ", ", "]),
                       st.sampled_from([2, 30, 300]), grammar_rules)
# (20 000-term rules take a second to parse: they are explicit examples below)
attribute_rules = st.builds(
    lambda sym, dot, attr, tail: f"{sym}{dot}{attr}{tail}",
    st.sampled_from(["value", "key", "source", "space", "status", "nested", "row"]),
    st.sampled_from([".", "&."]),
    st.sampled_from(["foo", "x", "length", "is_empty", "to_str", "as_lower", "keys", "decode", "to_ary", "is_nan"]),
    st.sampled_from(["", " == 1", " == 'a'", " > 0", ".length == 3"]),
)
rule_texts = st.one_of(printable_rules, token_soup, grammar_rules, grammar_rules, nested_rules, long_rules,
                       attribute_rules)
"""Rule texts: random text, token soup, grammar, deep nesting, long chains, attribute access."""

HYP_VALUES: list[Any] = [1, "aaa", {"x": 1, "row": 2}, [1, 2], None, 2.5, True, {"value": "z"}, 10**30, -7, "",
                         {"nested": {"a": [1]}}, "ab"]


def _noop(entry: Entry) -> None:
    return None


def _rule_board() -> Blackboard:
    board = Blackboard(spaces=[
        Space("hyp"), Space("cell", fields={"row": int, "col": int, "digit": int}), Space("claim"),
    ])
    for v in HYP_VALUES:
        board.post("hyp", v, key="k", confidence=0.5)
    for r in range(3):
        board.post("cell", {"row": r, "col": r + 1, "digit": 7 - r}, key=f"c{r}", confidence=0.9)
    old = board.post("hyp", "old", key="r")
    board.revise(old, value="new")
    board.retract(board.post("hyp", 0, key="gone"))
    return board


@pytest.fixture(scope="module")
def rule_board() -> Iterator[Blackboard]:
    """A memory blackboard holding active, superseded and retracted entries of every JSON kind."""
    board = _rule_board()
    yield board
    _closing(board)


def _controller_for(board: Blackboard, mode: str, rule: str, space: str) -> Controller:
    """A controller that uses ``rule`` as a precondition, a rating or (later) a goal; actions do nothing."""
    if mode == "when":
        return Controller(board, [knowledge_source(_noop, name=fresh(), watches=space, when=rule)])
    if mode == "rating":
        return Controller(board, [knowledge_source(_noop, name=fresh(), watches=space)], rating=rule)
    return Controller(board, [knowledge_source(_noop, name=fresh(), watches=space)])


def check_rule(board: Blackboard, mode: str, rule: str, space: str) -> None:
    """Declare and run with ``rule``; every failure is a project error; entries never change."""
    before = snapshot(board)
    declared, controller = outcome(lambda: _controller_for(board, mode, rule, space))
    if not declared:
        assert snapshot(board) == before
        return
    goal = rule if mode == "goal" else None
    ran, result = outcome(lambda: controller.run(goal=goal, max_cycles=5))
    if ran:
        assert isinstance(result, RunResult) and result.outcome in ("goal", "quiescent", "budget")
        assert all(e.active for e in result.goal_entries)
    elif mode == "goal":
        assert isinstance(result, PreconditionError)
        assert snapshot(board) == before
    assert_only_bookkeeping(board, before)


# ------------------------------------------------------------------- 1. rules
@FUZZ
@given(rule=rule_texts, space=st.sampled_from(["hyp", "cell"]))
@example(rule="(" * 1000 + "value == 1" + ")" * 1000, space="hyp")
@example(rule="not " * 5000 + "true", space="hyp")
@example(rule=" + ".join(["1"] * 20000) + " == value", space="cell")
def test_rule_as_precondition_works_or_raises_project_error(rule_board: Blackboard, rule: str, space: str) -> None:
    """A generated when= rule is refused with a project error or runs; no entry changes."""
    check_rule(rule_board, "when", rule, space)


@FUZZ
@given(rule=rule_texts)
@example(rule="(" * 1000 + "value" + ")" * 1000)
@example(rule="value in [1, 2] or zork")
def test_rule_as_goal_works_or_raises_project_error(rule_board: Blackboard, rule: str) -> None:
    """A generated goal rule given to Controller.run is refused with a project error or runs; no entry changes."""
    check_rule(rule_board, "goal", rule, "hyp")


@FUZZ
@given(rule=rule_texts, space=st.sampled_from(["hyp", "cell"]))
@example(rule="value / 0", space="hyp")
@example(rule="'not a number'", space="hyp")
def test_rule_as_rating_works_or_raises_project_error(rule_board: Blackboard, rule: str, space: str) -> None:
    """A generated rating= rule is refused with a project error or rates activations; no entry changes."""
    check_rule(rule_board, "rating", rule, space)


@examples(40)
@given(rule=st.one_of(rule_texts, attribute_rules), per_space=st.booleans())
def test_conflict_rule_declaration_works_or_raises_project_error(
    rule_board: Blackboard, rule: str, per_space: bool
) -> None:
    """UserRule(text) and a controller using it are built, or refused with a project error; nothing changes."""
    before = snapshot(rule_board)
    ok, strategy = outcome(lambda: UserRule(rule))
    if ok:
        conflict = {"claim": strategy} if per_space else strategy
        outcome(lambda: Controller(rule_board, conflict=conflict))
    assert snapshot(rule_board) == before


# Was a bug: value.foo leaked IndexError/KeyError, then rule-engine's MappingAttributeLookupDeprecation.
@pytest.mark.parametrize("mode", ["when", "goal", "rating"])
@examples(15)
@given(rule=attribute_rules)
@example(rule="value.foo")
def test_attribute_access_in_rules_never_leaks(rule_board: Blackboard, mode: str, rule: str) -> None:
    """A rule reading an attribute of a plain value (value.foo) either matches or not; run() never leaks."""
    check_rule(rule_board, mode, rule, "hyp")


def _claimer(key: str) -> Any:
    @knowledge_source(name=fresh(), watches="hyp", writes="claim")
    def claim(entry: Entry) -> Any:
        return post("claim", entry.id % 3, key=key, confidence=0.25 + (entry.id % 4) / 8)

    return claim


# Was a bug: UserRule.score let rule-engine errors out of run().
@FEW
@given(rule=st.one_of(rule_texts, attribute_rules))
@example(rule="nosuchfield")
def test_conflict_rule_errors_stay_inside_the_run(rule_board: Blackboard, rule: str) -> None:
    """A UserRule that cannot score a claim never makes run() raise; entries from before are unchanged."""
    ok, strategy = outcome(lambda: UserRule(rule))
    if not ok:
        return
    before = {e.id: e for e in rule_board.entries(status=None)}
    controller = Controller(rule_board, [_claimer(fresh("slot"))], conflict=strategy)
    ran, result = outcome(lambda: controller.run(max_cycles=5))
    assert ran, f"run() raised {result!r}"
    assert {i: rule_board.get(i) for i in before} == before


_DEEP = {
    "not": lambda n: "not " * n + "value == 1",
    "abs": lambda n: "$abs(" * n + "value" + ")" * n + " == 1",
}


def _deep_case(mode: str, board: Blackboard, rule: str) -> Callable[[], Any]:
    """Declare with ``rule`` now (may raise); the returned call runs the controller."""
    if mode == "conflict":
        controller = Controller(board, [_claimer(fresh("slot"))], conflict=UserRule(rule))
    else:
        controller = _controller_for(board, mode, rule, "hyp")
    return lambda: controller.run(max_cycles=3)


# Was a bug: a rule accepted at declaration could raise RecursionError inside run().
@pytest.mark.parametrize("shape", sorted(_DEEP))
@pytest.mark.parametrize("mode", ["when", "rating", "conflict"])
def test_rule_nested_just_below_the_limit_never_raises_recursion_error(mode: str, shape: str) -> None:
    """The deepest rules declaration accepts are evaluated in run() without a RecursionError."""
    board = _rule_board()
    try:
        def accepted(n: int) -> bool:
            return outcome(lambda: _deep_case(mode, board, _DEEP[shape](n)))[0]

        lo, hi = 1, 5000
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if accepted(mid) else (lo, mid - 1)
        for depth in range(lo, max(lo - 24, 0), -4):
            ok, run = outcome(lambda: _deep_case(mode, board, _DEEP[shape](depth)))
            if ok:
                outcome(run)
    finally:
        _closing(board)


# Was a bug: UserRule(5) raised TypeError.
@pytest.mark.parametrize("rule", [5, None, b"confidence", ["confidence"]], ids=["int", "none", "bytes", "list"])
def test_user_rule_of_wrong_type_raises_project_error(rule: Any) -> None:
    """UserRule(5) is refused with a project error, as Controller(rating=5) is."""
    refused(lambda: UserRule(rule))


_REDOS_CHILD = """
import sys
from blackboard import Blackboard, BlackboardError
from controller import Controller
from knowledge_sources import knowledge_source

board = Blackboard()
board.post("s", "a" * 40 + "b")
try:
    source = knowledge_source(lambda entry: None, name="slow", watches="s", when=sys.argv[1])
    Controller(board, [source]).run(max_seconds=1)
except BlackboardError:
    pass
print("done")
"""


# Was a bug for nested quantifiers too: value =~ '(a+)+$' hung run() for ever; then for alternations.
@pytest.mark.parametrize("pattern", [
    "(a+)+$",
    "(a|aa)+$", "(a|a)*$", "((a+))+$", "(x+x+)+y", "([a-z]+ ?)*$",
], ids=["nested-quantifier", "alternation", "same-alternatives", "double-group", "two-pluses", "words"])
def test_catastrophic_regex_rule_is_bounded(pattern: str) -> None:
    """A catastrophic regex rule is refused at declaration, or a run using it ends within seconds."""
    rule = f"value =~ '{pattern}'"
    if not outcome(lambda: knowledge_source(_noop, name="slow", watches="s", when=rule))[0]:
        return  # refused: nothing can hang
    # Accepted: run it where a hang can be killed (a regex match holds the GIL and cannot be interrupted).
    root = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run([sys.executable, "-c", _REDOS_CHILD, rule], cwd=root,
                              capture_output=True, text=True, timeout=3)
    except subprocess.TimeoutExpired:
        raise AssertionError("the run did not finish within 3 s") from None
    assert done.returncode == 0 and "done" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("pattern", ["(foo|bar)+", "(ab{2})+$", "[0-9]+([.][0-9]+)?$", "^(a|b)*c$", "[a-z]+@[a-z]+[.]com",
                                     "(?:ab|cd)*x"])
def test_safe_regex_rules_are_accepted(pattern: str) -> None:
    """Repeats of disjoint alternatives, fixed counts and optional groups are not mistaken for catastrophic ones."""
    source = knowledge_source(_noop, name="fine", watches="s", when=f"value =~ '{pattern}'")
    assert source.rule is not None or source.when


# ====================================================================== values
class Opaque:
    """An object JSON cannot encode."""

    def __repr__(self) -> str:
        return "<opaque>"


class Mood(IntEnum):
    OK = 1


class Pair(NamedTuple):
    a: int
    b: int


class Text(str):
    pass


def deep_list(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def deep_dict(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = {"d": value}
    return value


def circular() -> Any:
    items: list[Any] = [1]
    items.append(items)
    return items


class Case(NamedTuple):
    """A generated argument and whether the API must accept it (True), refuse it (False) or may do either (None)."""

    value: Any
    valid: bool | None


def valid(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Case]:
    return strategy.map(lambda v: Case(v, True))


def invalid(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Case]:
    return strategy.map(lambda v: Case(v, False))


def either(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Case]:
    return strategy.map(lambda v: Case(v, None))


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12), st.just(10**4000),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=10,
)
SURROGATE = "bad \ud800 text"
values = st.one_of(
    valid(json_values),
    valid(st.builds(deep_list, st.integers(1, 200))),
    invalid(st.one_of(
        st.sets(st.integers(), max_size=3), st.frozensets(st.integers(), max_size=2),
        st.binary(max_size=4), st.builds(bytearray, st.binary(max_size=4)),
        st.complex_numbers(allow_nan=False, allow_infinity=False),
        st.sampled_from([math.nan, math.inf, -math.inf, [1, math.nan], {"x": {"y": -math.inf}}]),
        st.builds(Opaque), st.just(Decimal("1.5")), st.just(Fraction(1, 3)), st.just(Opaque),
        st.just(len), st.just(range(3)), st.builds(lambda: (i for i in range(2))),
        st.dictionaries(st.tuples(st.integers(), st.integers()), st.integers(), min_size=1, max_size=2),
        st.builds(circular),
        st.builds(deep_list, st.sampled_from([10_000, 100_000])),
        st.builds(deep_dict, st.sampled_from([10_000])),
        st.sampled_from(["x" * 2_000_000, ["y" * 1_100_000]]),
        st.sampled_from([SURROGATE, [SURROGATE], {"k": SURROGATE}, {SURROGATE: 1}, "\udfff"]),
        st.just(10**5000), st.builds(lambda n: [n], st.just(10**5000)),
    )),
    either(st.one_of(
        st.dictionaries(st.one_of(st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False)),
                        json_scalars, min_size=1, max_size=3),
        st.builds(lambda: (1, (2, 3))), st.builds(Pair, st.integers(), st.integers()), st.just(Mood.OK),
        st.builds(lambda: OrderedDict(b=1, a=[2])), st.builds(Text, st.text(max_size=5)),
        st.builds(lambda: {"a": 1, 1: "b", "1": "c"}),
    )),
)
"""Values: JSON ones (accepted), non-JSON ones (refused) and odd ones (either)."""

keys = st.one_of(
    valid(st.one_of(st.none(), st.text(max_size=20), st.just("k" * 10_000))),
    invalid(st.one_of(st.integers(), st.floats(), st.booleans(), st.binary(min_size=1, max_size=3),
                      st.tuples(st.text(max_size=2)), st.builds(Opaque), st.just(["k"]), st.just(SURROGATE))),
)
confidences = st.one_of(
    valid(st.one_of(st.floats(0.0, 1.0), st.sampled_from([0, 1]))),
    invalid(st.one_of(
        st.floats(max_value=-1e-300), st.floats(min_value=1.0, exclude_min=True),
        st.sampled_from([math.nan, math.inf, -math.inf, True, False, "0.5", None, [0.5], Decimal("0.5"),
                         Fraction(1, 2), 2, -1, 10**30]),
        st.builds(Opaque), st.complex_numbers(min_magnitude=0.1, allow_nan=False, allow_infinity=False),
        st.sampled_from([10**400, -(10**400)]),
    )),
)
sources = st.one_of(
    valid(st.text(min_size=1, max_size=20)),
    invalid(st.sampled_from(["", None, 5, b"user", ["user"], SURROGATE])),
)
spaces_free = st.one_of(
    valid(st.text(min_size=1, max_size=20)),
    invalid(st.sampled_from(["", None, 5, b"s", ["s"], SURROGATE, Opaque()])),
)
contexts = st.one_of(
    valid(st.just(0)),  # the root; other contexts exist only once opened
    invalid(st.sampled_from([1, -5, 2**31 - 1, -(2**31), 2**40, -(2**63), "0", None, 1.0, True, [0], Opaque()])),
)


def supports_for(board: Blackboard) -> st.SearchStrategy[Case]:
    ids = [e.id for e in board.entries(status=None)][:5]
    known = st.sampled_from(ids)
    return st.one_of(
        valid(st.one_of(st.just(()), st.lists(known, max_size=3), st.lists(known, max_size=2).map(tuple),
                        known.map(lambda i: [board.get(i)]))),
        invalid(st.one_of(st.sampled_from([[10**9], ["1"], 1, None, "12", [True], [1.0], b"\x01", [None]]),
                          st.lists(st.integers(min_value=10**6), min_size=1, max_size=2))),
    )


@pytest.fixture(scope="module")
def value_board() -> Iterator[Blackboard]:
    """A memory blackboard with a few entries to support, revise and retract."""
    board = Blackboard()
    for i in range(6):
        board.post("s", {"i": i}, key=f"k{i % 3}")
    yield board
    _closing(board)


def _must_accept(*cases: Case) -> bool | None:
    """False if any case must be refused, True if all must be accepted, else None."""
    if any(c.valid is False for c in cases):
        return False
    if all(c.valid for c in cases):
        return True
    return None


def check_written(board: Blackboard, before: Snapshot, entry: Entry) -> None:
    """A written entry is stored as the JSON round trip of its value, and everything still flushes."""
    assert board.get(entry.id) == entry
    after = snapshot(board)
    (row,) = [r for r in after.rows if r[0] == entry.id]
    assert json.loads(row[3]) == entry.value
    assert json.dumps(entry.value, allow_nan=False) is not None
    assert after.events > before.events and after.counts[1] == after.events


# ------------------------------------------------------------------ 2. values
@examples(55)
@given(data=st.data(), value=values, key=keys, confidence=confidences, source=sources, space=spaces_free,
       context=contexts)
def test_post_of_generated_values_works_or_changes_nothing(
    value_board: Blackboard, data: st.DataObject, value: Case, key: Case, confidence: Case, source: Case,
    space: Case, context: Case,
) -> None:
    """post() accepts JSON values and valid fields; anything else raises a project error and changes nothing."""
    supports = data.draw(supports_for(value_board))
    before = snapshot(value_board)
    ok, result = outcome(lambda: value_board.post(
        space.value, value.value, key=key.value, confidence=confidence.value, source=source.value,
        supports=supports.value, context=context.value,
    ))
    expected = _must_accept(value, key, confidence, source, space, context, supports)
    if ok:
        assert expected is not False, f"accepted an invalid argument: {result!r:.300}"
        check_written(value_board, before, result)
    else:
        assert expected is not True, f"refused valid arguments: {result}"
        assert isinstance(result, ValidationError)
        assert snapshot(value_board) == before


def pick(draw: st.DrawFn, items: list[Any]) -> Any:
    """One of ``items`` (which depend on the board's state) drawn by index, so draws stay reproducible."""
    index = draw(st.integers(0, 2**16))
    return items[index % len(items)] if items else None


_MISSING_REFS = [10**9, -1, 0, "1", None, 1.5, Opaque(), b"1", [1], {1: 1}]


@st.composite
def entry_refs(draw: st.DrawFn, board: Blackboard) -> Case:
    """An active entry (by id or as an Entry), an inactive one, or a reference to nothing."""
    kind = draw(st.sampled_from(["active", "active-entry", "inactive", "missing"]))
    active = pick(draw, [e.id for e in board.entries()])
    inactive = pick(draw, [e.id for e in board.entries(status=None) if not e.active])
    missing = draw(st.sampled_from(_MISSING_REFS))
    if kind == "active" and active is not None:
        return Case(active, True)
    if kind == "active-entry" and active is not None:
        return Case(board.get(active), True)
    if kind == "inactive" and inactive is not None:
        return Case(inactive, False)
    return Case(missing, False)


@examples(30)
@given(data=st.data(), value=st.one_of(values, valid(st.just(UNSET))),
       confidence=st.one_of(confidences, valid(st.just(UNSET))), source=sources)
def test_revise_of_generated_values_works_or_changes_nothing(
    value_board: Blackboard, data: st.DataObject, value: Case, confidence: Case, source: Case,
) -> None:
    """revise() of an active entry with valid fields works; anything else raises a project error and changes nothing."""
    ref = data.draw(entry_refs(value_board))
    supports = data.draw(st.one_of(valid(st.none()), supports_for(value_board)))
    before = snapshot(value_board)
    ok, result = outcome(lambda: value_board.revise(
        ref.value, value=value.value, confidence=confidence.value, source=source.value, supports=supports.value,
    ))
    expected = _must_accept(ref, value, confidence, source, supports)
    if ok:
        assert expected is not False, f"accepted an invalid argument: {result!r:.300}"
        old = ref.value.id if isinstance(ref.value, Entry) else ref.value
        assert result.revises == old and value_board.get(old).status == "superseded"
        check_written(value_board, before, result)
    else:
        assert expected is not True, f"refused valid arguments: {result}"
        assert snapshot(value_board) == before


@examples(30)
@given(data=st.data(), reason=st.one_of(st.text(max_size=10), st.just(SURROGATE), st.just("r" * 100_000)),
       source=sources)
def test_retract_of_generated_references_works_or_changes_nothing(
    value_board: Blackboard, data: st.DataObject, reason: str, source: Case,
) -> None:
    """retract() of an entry works; a reference to no entry or a bad source raises and changes nothing."""
    ref = data.draw(entry_refs(value_board))
    if ref.valid is False and isinstance(ref.value, int) and ref.value in value_board:
        ref = Case(ref.value, None)  # retracting an inactive entry is allowed
    before = snapshot(value_board)
    retracted = ref.valid is None and value_board.get(ref.value).status == "retracted"
    ok, result = outcome(lambda: value_board.retract(ref.value, reason=reason, source=source.value))
    expected = None if retracted else _must_accept(ref, source)  # retracting twice writes nothing
    if ok:
        assert expected is not False, f"accepted an invalid argument: {result!r:.300}"
        assert value_board.get(result.id).status == "retracted"
        snapshot(value_board)
    else:
        assert expected is not True, f"refused valid arguments: {result}"
        assert snapshot(value_board) == before


@pytest.fixture(scope="module")
def transact_board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Blackboard]:
    """A file blackboard: transactions are flushed to DuckDB between examples."""
    board = Blackboard(tmp_path_factory.mktemp("transact") / "board.duckdb", spaces=["s", "t"])
    for i in range(8):
        board.post("s", i, key=f"k{i}")
    yield board
    _closing(board)


def _changes_an_entry(op: Any) -> bool:
    """A well-formed revise or retract op."""
    return isinstance(op, tuple) and (op[:1], len(op)) in ((("revise",), 5), (("retract",), 3))


@st.composite
def transactions(draw: st.DrawFn, board: Blackboard) -> tuple[list[tuple[Any, ...]], bool]:
    """A list of ops, each valid or invalid by construction, and whether all are valid."""
    free = [e.id for e in board.entries()]  # active entries no op of this batch touches yet
    inactive = [e.id for e in board.entries(status=None) if not e.active] + [10**9]
    ops: list[tuple[Any, ...]] = []
    all_valid = True
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["post", "post", "revise", "retract", "bad-post", "bad-revise",
                                     "bad-retract", "unknown", "reuse", "malformed"]))
        target = pick(draw, free)
        if target is not None:
            free.remove(target)
        if kind in ("revise", "retract") and target is None:
            kind = "post"
        if kind == "post":
            v = draw(json_values)
            ops.append(("post", draw(st.sampled_from(["s", "t"])), v, draw(st.none() | st.text(max_size=3)),
                        draw(st.floats(0, 1)), None, None))
        elif kind == "revise":
            ops.append(("revise", target, draw(json_values | st.just(UNSET)), draw(st.floats(0, 1) | st.just(UNSET)),
                        None))
        elif kind == "retract":
            ops.append(("retract", target, draw(st.text(max_size=5))))
        else:
            all_valid = False
            if kind == "bad-post":
                field = draw(st.sampled_from(["space", "value", "key", "confidence", "supports", "context"]))
                bad = {"space": "nope", "value": {1}, "key": 5, "confidence": 7.0, "supports": [10**9],
                       "context": "root"}[field]
                op = {"space": "s", "value": 1, "key": None, "confidence": 0.5, "supports": None, "context": None}
                op[field] = bad
                ops.append(("post", op["space"], op["value"], op["key"], op["confidence"], op["supports"],
                            op["context"]))
            elif kind == "bad-revise":
                ops.append(("revise", pick(draw, inactive), 1, UNSET, None))
            elif kind == "bad-retract":
                ops.append(("retract", 10**9, ""))
            elif kind == "unknown":
                ops.append(("explode", 1))
            elif kind == "malformed":
                ops.append(draw(st.sampled_from([("post",), (), ("revise", 1), ("retract",), ["retract", 1, ""],
                                                 ("post", "s", 1, None, 1.0, None, None, "extra"), 5, None])))
            elif ops and _changes_an_entry(ops[-1]):
                ops.append(("retract", ops[-1][1], "again"))  # the same entry twice in one batch
            else:
                ops.append(("post", "s", math.nan, None, 0.5, None, None))
    ops = draw(st.permutations(ops))
    return list(ops), all_valid


@examples(35)
@given(data=st.data())
def test_transact_of_mixed_ops_is_all_or_nothing(transact_board: Blackboard, data: st.DataObject) -> None:
    """transact() applies every op when all are valid; with any invalid op it raises and changes nothing."""
    ops, all_valid = data.draw(transactions(transact_board))
    before = snapshot(transact_board)
    ok, result = outcome(lambda: transact_board.transact(ops, source="fuzz"))
    if all_valid:
        assert ok, f"refused a valid transaction: {result}"
        assert len(result) == len(ops)
        for op, entry in zip(ops, result):
            if op[0] == "revise":
                assert entry.revises == op[1] and transact_board.get(op[1]).status == "superseded"
            elif op[0] == "retract":
                assert transact_board.get(op[1]).status == "retracted"
        after = snapshot(transact_board)
        assert after.size == before.size + sum(op[0] != "retract" for op in ops)
    else:
        assert not ok, f"accepted a transaction with an invalid op: {ops!r:.300}"
        assert snapshot(transact_board) == before


# ------------------------------------------------------------------ import
_BAD_JSON_TEXT = ["{", "[1", "'a'", "tru", "", "\x00", "{\"a\" 1}", "[1 2]", "undefined", "{a: 1}"]
value_texts = st.one_of(
    valid(json_values.map(lambda v: json.dumps(v, allow_nan=False))),
    invalid(st.sampled_from(_BAD_JSON_TEXT)),
    invalid(st.text(alphabet="abc xyz'\\{", min_size=1, max_size=8)),
)
# Not generated: JSON text DuckDB calls valid but Python cannot read ('[1,]', 'nan', 'inf', NaN floats,
# 5000-deep nesting): test_imported_json_that_python_cannot_read_is_refused.


@st.composite
def import_tables(draw: st.DrawFn) -> tuple[Any, bool | None]:
    """A table (or dict of columns, or garbage) to import, and whether it must be accepted."""
    n = draw(st.integers(0, 5))
    verdicts: list[bool | None] = []

    def column(options: list[tuple[st.SearchStrategy[Any], bool | None]]) -> list[Any]:
        strategy, verdict = draw(st.sampled_from(options))
        verdicts.append(verdict if n else True)
        return draw(st.lists(strategy, min_size=n, max_size=n))

    columns: dict[str, Any] = {}
    texts = [draw(value_texts) for _ in range(n)]
    kind = draw(st.sampled_from(["text", "int", "float", "list", "struct", "bool", "null", "binary"]))
    if kind == "text":
        columns["value"] = [c.value for c in texts]
        verdicts.append(_must_accept(*texts) if n else True)
    else:
        strategy, verdict = {
            "int": (st.integers(-(2**63), 2**63 - 1), True),
            "float": (st.floats(allow_nan=False, allow_infinity=False), True),
            "list": (st.lists(st.integers(0, 9), max_size=3), True),
            "struct": (st.fixed_dictionaries({"a": st.integers(0, 9), "b": st.text(max_size=3)}), True),
            "bool": (st.booleans(), True),
            "null": (st.none(), False),
            "binary": (st.binary(max_size=3), None),
        }[kind]
        columns["value"] = draw(st.lists(strategy, min_size=n, max_size=n))
        verdicts.append(verdict if n else True)
    columns["space"] = column([(st.sampled_from(["fact", "s"]), True), (st.just("nope"), False),
                               (st.just(""), False), (st.none(), False), (st.integers(0, 3), False)])
    if draw(st.booleans()):
        columns["key"] = column([(st.none() | st.text(max_size=4), True), (st.integers(0, 9), True),
                                 (st.fixed_dictionaries({"a": st.integers(0, 1)}), False)])
    if draw(st.booleans()):
        columns["confidence"] = column([(st.floats(0, 1), True), (st.sampled_from([1.5, -0.5, math.nan]), False),
                                        (st.just("0.5"), None), (st.booleans(), False)])
        if n > 1 and draw(st.booleans()):  # some rows without a confidence (all: test_import_with_all_null_...)
            columns["confidence"] = [0.5] + [None] * (n - 1)
            verdicts.append(False)
    shape = draw(st.sampled_from(["table", "dict", "extra-column", "missing-value", "missing-space",
                                  "ragged", "garbage"]))
    if shape == "extra-column":
        columns["colour"] = ["red"] * n
        verdicts.append(False)
    elif shape == "missing-value":
        del columns["value"]
        verdicts.append(False)
    elif shape == "missing-space":
        del columns["space"]
        verdicts.append(False)
    elif shape == "ragged":
        columns["space"] = columns["space"] + ["fact"]
        verdicts.append(False)
    elif shape == "garbage":
        return draw(st.sampled_from([5, None, "space,value", [("space", "fact")], {"space": 5}])), False
    verdict = False if False in verdicts else (None if None in verdicts else True)
    if shape == "table":
        try:
            return pa.table(columns), verdict
        except (pa.ArrowException, TypeError, ValueError):
            return columns, None
    return columns, verdict


@pytest.fixture(scope="module")
def import_board() -> Iterator[Blackboard]:
    """A memory blackboard with declared spaces, for imports."""
    board = Blackboard(spaces=["fact", "s"])
    board.post("s", 1, key="a")
    yield board
    _closing(board)


@examples(35)
@given(case=import_tables(), source=sources)
def test_import_arrow_of_generated_tables_works_or_changes_nothing(
    import_board: Blackboard, case: tuple[Any, bool | None], source: Case,
) -> None:
    """import_arrow() loads valid rows, all readable back; any invalid row or column raises and imports nothing."""
    table, verdict = case
    expected = _must_accept(Case(table, verdict), source)
    before = snapshot(import_board)
    ok, result = outcome(lambda: import_board.import_arrow(table, source=source.value))
    if ok:
        assert expected is not False, f"imported an invalid table: {table!r:.300}"
        after = snapshot(import_board)
        assert after.size == before.size + result
        if result:
            info = import_board.events("imported")[-1].details
            for i in range(info["first"], info["last"] + 1):
                entry = import_board.get(i)
                json.dumps(entry.value, allow_nan=False)
            assert len(import_board.replay()) == after.counts[0] == len(import_board)
    else:
        assert expected is not True, f"refused a valid table: {result}"
        assert snapshot(import_board) == before


# ----------------------------------------------------------- value bugs
# Was a bug: an all-null float confidence column raised TypeError (None + int).
def test_import_with_all_null_confidence_raises_validation_error() -> None:
    """Importing rows none of which has a confidence raises ValidationError and imports nothing."""
    board = Blackboard()
    try:
        board.post("s", 1)
        before = snapshot(board)
        table = pa.table({"space": ["s", "s"], "value": ["1", "2"], "confidence": pa.array([None, None], pa.float64())})
        refused(lambda: board.import_arrow(table))
        assert snapshot(board) == before
    finally:
        _closing(board)


@pytest.mark.parametrize("call", ["post", "revise", "transact"])
def test_huge_int_value_refused(call: str) -> None:
    """A top-level int too long to convert to text is refused with ValidationError and changes nothing."""
    board = Blackboard()
    try:
        entry = board.post("s", 1)
        before = snapshot(board)
        huge = 10**5000
        refused({
            "post": lambda: board.post("s", huge),
            "revise": lambda: board.revise(entry, value=huge),
            "transact": lambda: board.transact([("post", "s", huge, None, 1.0, None, None)], source="x"),
        }[call])
        assert snapshot(board) == before
    finally:
        _closing(board)


# Was a bug: float(10**400) raised OverflowError.
@pytest.mark.parametrize("confidence", [10**400, -(10**400)], ids=["huge", "-huge"])
def test_confidence_beyond_float_range_refused(confidence: int) -> None:
    """A confidence too large for a float is refused with ValidationError."""
    board = Blackboard()
    try:
        entry = board.post("s", 1)
        refused(lambda: board.post("s", 1, confidence=confidence))
        refused(lambda: board.revise(entry, confidence=confidence))
    finally:
        _closing(board)


# Was a bug: context=2**40 was accepted and broke every flush.
@pytest.mark.parametrize("context", [2**31, 2**40, -(2**31) - 1], ids=["2**31", "2**40", "-2**31-1"])
def test_context_outside_the_storable_range_refused(context: int) -> None:
    """post(context=...) outside the stored column's range is refused, or flushes; it never poisons flush()."""
    board = Blackboard()
    try:
        outcome(lambda: board.post("s", 1, context=context))
        outcome(board.flush)
        outcome(lambda: snapshot(board))
    finally:
        _closing(board)


# Was a bug: retract() never checked source= and a bad one broke every flush.
@pytest.mark.parametrize("source", [5, None, "", SURROGATE], ids=["int", "none", "empty", "surrogate"])
def test_retract_validates_its_source(source: Any) -> None:
    """retract() with a source that post() would refuse raises ValidationError and changes nothing."""
    board = Blackboard()
    try:
        entry = board.post("s", 1)
        before = snapshot(board)
        refused(lambda: board.retract(entry, source=source))
        assert snapshot(board) == before
    finally:
        _closing(board)


# Was a bug: activation='x' was accepted and broke every flush.
@pytest.mark.parametrize("activation", ["x", 2**70, [1]], ids=["str", "2**70", "list"])
def test_activation_id_is_validated(activation: Any) -> None:
    """An activation id that is not an int64 is refused, or flushes; it never poisons flush()."""
    board = Blackboard()
    try:
        entry = board.post("s", 1)
        outcome(lambda: board.post("s", 2, activation=activation))
        outcome(lambda: board.retract(entry, activation=activation))
        outcome(lambda: board.log("note", activation=activation))
        outcome(board.flush)
    finally:
        _closing(board)


# Was a bug: get([1]), find(["s"]), latest([1])... raised TypeError.
@pytest.mark.parametrize("call", ["get", "find-space", "find-key", "revise", "retract", "latest"])
def test_unhashable_entry_references_raise_project_error(call: str) -> None:
    """get/find/revise/retract/latest with a list for an id, space or key raise a project error."""
    board = Blackboard()
    try:
        board.post("s", 1, key="k")
        before = snapshot(board)
        refused({
            "get": lambda: board.get([1]),  # type: ignore[arg-type]
            "find-space": lambda: board.find(["s"]),  # type: ignore[arg-type]
            "find-key": lambda: board.find("s", ["k"]),  # type: ignore[arg-type]
            "revise": lambda: board.revise([1], value=2),  # type: ignore[arg-type]
            "retract": lambda: board.retract({1: 1}),  # type: ignore[arg-type]
            "latest": lambda: board.latest([1]),  # type: ignore[arg-type]
        }[call])
        assert snapshot(board) == before
    finally:
        _closing(board)


# Was a bug: malformed ops raised ValueError/IndexError.
@pytest.mark.parametrize("ops", [
    [("post",)], [()], [("revise", 1)], [("retract",)], None, [5], [("post", "s", 1, None, 1.0, None, None, "x")],
], ids=["short-post", "empty", "short-revise", "short-retract", "none", "int-op", "long-post"])
def test_malformed_transact_ops_raise_validation_error(ops: Any) -> None:
    """A transaction whose ops are not well-formed tuples raises a project error and changes nothing."""
    board = Blackboard()
    try:
        board.post("s", 1)
        before = snapshot(board)
        refused(lambda: board.transact(ops, source="x"))
        assert snapshot(board) == before
    finally:
        _closing(board)


# Was a bug: surrogates in space, source, run names and log kinds broke every flush.
@pytest.mark.parametrize("where", ["declared-space", "declare", "source-name", "run-name", "log-kind"])
def test_lone_surrogates_in_names_are_refused(where: str) -> None:
    """A name with a lone surrogate is refused with a project error, or stored; flush() never breaks."""
    bad = "n\ud800"
    board = None
    try:
        if where == "declared-space":
            ok, board = outcome(lambda: Blackboard(spaces=[bad]))
            if ok:
                outcome(lambda: board.post(bad, 1))
        elif where == "run-name":
            ok, board = outcome(lambda: Blackboard(run=bad))
        else:
            board = Blackboard()
            board.post("s", 1)
            if where == "declare":
                outcome(lambda: board.declare(bad))
                outcome(lambda: board.post(bad, 1))
            elif where == "source-name":
                ok, source = outcome(lambda: knowledge_source(_noop, name=bad, watches="s"))
                if ok:
                    outcome(lambda: Controller(board, [source]).run())
            else:
                outcome(lambda: board.log(bad))
        if isinstance(board, Blackboard):
            outcome(board.flush)
    finally:
        _closing(board)


# Was a bug: spaces=[5] raised TypeError.
@pytest.mark.parametrize("spaces", [[5], [None], 5, [Space("a", fields=None), ""]], ids=["int", "none", "not-iterable",
                                                                                          "empty-name"])
def test_bad_space_declarations_raise_project_error(spaces: Any) -> None:
    """Blackboard(spaces=...) with names that are not strings raises a project error."""
    refused(lambda: Blackboard(spaces=spaces))


# Was a bug: import_arrow accepted JSON text DuckDB reads but Python's json does not.
@pytest.mark.parametrize("value", [
    ["[1,]"], ["nan"], ["inf"], ["NaN"], ["Infinity"], ["1e999"], ["[" * 5000 + "]" * 5000], [math.nan], [math.inf],
], ids=["trailing-comma", "nan", "inf", "NaN", "Infinity", "1e999", "deep", "nan-float", "inf-float"])
def test_imported_json_that_python_cannot_read_is_refused(value: list[Any]) -> None:
    """An imported value is refused, or reads back (get, replay) as strict JSON like any posted value."""
    board = Blackboard()
    try:
        ok, _ = outcome(lambda: board.import_arrow({"space": ["s"] * len(value), "value": value}))
        if ok:
            ok, entry = outcome(lambda: board.get(1))
            assert ok
            json.dumps(entry.value, allow_nan=False)
            outcome(board.replay)
    finally:
        _closing(board)


def test_imported_json_that_only_looks_suspicious_is_accepted() -> None:
    """Values mentioning 'nan' or 'inf' in strings, big exponents in strings, or modest nesting import fine."""
    board = Blackboard()
    try:
        values = ['"information"', '{"nano": "Infinity war"}', '"1e999 is a string"', "[" * 70 + "]" * 70, "1e308"]
        assert board.import_arrow({"space": ["s"] * len(values), "value": values}) == len(values)
        assert [e.value for e in board.query("SELECT * FROM entries ORDER BY id")][:2] == [
            "information", {"nano": "Infinity war"}]
        assert board.import_arrow({"space": ["s"], "value": [[1.5, 2.5]]}) == 1
        refused(lambda: board.import_arrow({"space": ["s"], "value": [[1.5, math.nan]]}))
    finally:
        _closing(board)


# Was a bug: import_arrow did not apply the 1 MB limit post() enforces.
@pytest.mark.parametrize("value", [['"' + "x" * 2_000_000 + '"'], [["y" * 1_100_000]]], ids=["text", "list"])
def test_imported_value_over_the_size_limit_is_refused(value: list[Any]) -> None:
    """import_arrow() refuses a value whose JSON is over the limit post() enforces, and imports nothing."""
    board = Blackboard()
    try:
        board.post("s", 1)
        before = snapshot(board)
        refused(lambda: board.import_arrow({"space": ["s"], "value": value}))
        assert snapshot(board) == before
    finally:
        _closing(board)


# Was a bug: the 1 MB limit counted characters, not bytes.
def test_value_size_limit_counts_bytes() -> None:
    """A value whose JSON is more than 1 MB of UTF-8 is refused, whatever its character count."""
    board = Blackboard()
    try:
        refused(lambda: board.post("s", "\U0001F600" * 300_000))
    finally:
        _closing(board)


# ==================================================================== SQL
SQL_TOKENS = ["SELECT", "FROM", "WHERE", "entries", "events", "activations", "bb_entry", "bb_run", "count(*)", "*",
              "1", "'a'", "NULL", "GROUP BY", "ORDER BY", "LIMIT", "(", ")", ",", "=", "+", "id", "value",
              "json_extract(value, '$.i')", "::INT", "CAST(", "AS", "VARCHAR", "AND", "OR", "NOT", "IS", "?",
              "$1", ";", "--", "/*", "UNION", "WITH", "x", "t", "error('x')", "1/0", "'\\'"]
sql_texts = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(SQL_TOKENS), min_size=1, max_size=12).map(" ".join),
    st.just("SELECT * FROM entries"),
)


@pytest.fixture(scope="module")
def sql_board() -> Iterator[Blackboard]:
    """A small memory blackboard (six entries), so that generated cross joins stay small."""
    board = Blackboard()
    for i in range(6):
        board.post("s", {"i": i}, key=f"k{i % 3}")
    yield board
    _closing(board)


@examples(40)
@given(query=sql_texts, params=st.one_of(st.none(), st.lists(st.one_of(st.integers(-5, 5), st.text(max_size=3)),
                                                           max_size=2)),
       via=st.sampled_from(["sql", "query", "view"]))
def test_generated_sql_works_or_raises_query_error(
    sql_board: Blackboard, query: str, params: Any, via: str,
) -> None:
    """Generated SQL text via sql(), query() or a source's view works or raises QueryError; nothing changes."""
    before = snapshot(sql_board)
    call = {
        "sql": lambda: sql_board.sql(query, params),
        "query": lambda: sql_board.query(query, params),
        "view": lambda: ReadView(sql_board).sql(query, params),
    }[via]
    ok, result = outcome(call)
    if not ok:
        assert isinstance(result, QueryError)
    assert snapshot(sql_board) == before


# Was a bug: sql('SELECT ?', 5) raised TypeError.
@pytest.mark.parametrize("params", [5, 1.5, True], ids=["int", "float", "bool"])
def test_sql_params_of_wrong_type_raise_query_error(params: Any) -> None:
    """sql(query, params) with params that are neither a sequence nor a mapping raises QueryError."""
    board = Blackboard()
    try:
        refused(lambda: board.sql("SELECT ?", params))
    finally:
        _closing(board)


# ============================================================ 3. controller
@knowledge_source(watches="hyp", name="configured")
def _configured(entry: Entry) -> None:
    return None


class Setting(NamedTuple):
    """A controller or run() argument and the errors it must raise: () when valid, None when either is fine."""

    name: str
    value: Any
    errors: tuple[type[BaseException], ...] | None


def setting(name: str, good: list[Any], bad: list[Any], rule_bad: list[Any] = (),  # type: ignore[assignment]
            sources_bad: list[Any] = (), either: list[Any] = ()) -> st.SearchStrategy[Setting]:  # type: ignore[assignment]
    options = [Setting(name, v, ()) for v in good] + [Setting(name, v, (ConfigurationError,)) for v in bad]
    options += [Setting(name, v, (PreconditionError,)) for v in rule_bad]
    options += [Setting(name, v, (SourceDefinitionError,)) for v in sources_bad]
    options += [Setting(name, v, None) for v in either]
    return st.sampled_from(options)


def _verdict(settings_: dict[str, Setting]) -> tuple[tuple[type[BaseException], ...], bool]:
    """The errors some setting must raise, and whether some setting may go either way."""
    errors = tuple(e for s in settings_.values() for e in (s.errors or ()))
    return errors, any(s.errors is None for s in settings_.values())


_other = knowledge_source(_noop, name="configured", watches="hyp")
_ghost = knowledge_source(_noop, name="ghost", watches="nowhere")
_fallback = knowledge_source(_noop, name="falls", watches="hyp", fallback="missing")
controller_settings = st.fixed_dictionaries({
    "sources": setting("sources", [[], [_configured], (_configured,)],
                       [[5], ["configured"], [None], [_configured, _fallback], None, 5, "configured"],
                       sources_bad=[[_configured, _other], [_ghost]]),
    "concurrency": setting("concurrency", [1, 2, 16, 10**30], [0, -1, True, 1.5, "4", None, math.nan, [1]]),
    "durability": setting("durability", ["cycle", "interval", "end"], ["", "CYCLE", None, 1, [], {}, "always"]),
    "flush_interval": setting("flush_interval", [0.001, 1, 2.5], [0, -1, True, "1", None, [], -math.inf, math.nan,
                                                                10**400], either=[math.inf]),
    "conflict": setting("conflict", [None, "noisy_or", "weighted_vote", "highest_confidence", NoisyOr(),
                                     WeightedVote({"x": 2.0}), UserRule("confidence"), {"hyp": "noisy_or"},
                                     {"*": HighestConfidence(), "claim": "weighted_vote"}],
                        ["nope", 5, [], Opaque(), {"hyp": "nope"}, {"hyp": 5}, {"*": None}, HighestConfidence]),
    "rating": setting("rating", [None, "confidence * 2", "priority + value", lambda source, triggers: 1.0],
                      [5, [], b"x", Opaque()], rule_bad=["", "((", "value ==", "not"]),
    "seed": setting("seed", [None, 0, 42], [[1], Opaque(), {}], either=["seed", 1.5, b"x"]),
})
run_settings = st.fixed_dictionaries({
    "goal": setting("goal", [None, "value == 1", "zork", lambda view: False], [5, [], b"value", Opaque()],
                    rule_bad=["", "((", "1 +"]),
    "max_cycles": setting("max_cycles", [None, 0, 3, math.inf], [-1, "3", True, [], Opaque(), math.nan],
                          either=[10**30]),
    "max_activations": setting("max_activations", [None, 0, 5, 2.5], [-1, "5", False, {}, math.nan]),
    "max_seconds": setting("max_seconds", [None, 0, 0.5, 10], [-0.1, "1", True, -math.inf, math.nan]),
})


@examples(50)
@given(config=controller_settings, run=run_settings)
def test_controller_settings_work_or_raise_configuration_error(
    rule_board: Blackboard, config: dict[str, Setting], run: dict[str, Setting],
) -> None:
    """Any invalid controller or run() setting raises ConfigurationError (or the rule's error); valid ones run."""
    before = snapshot(rule_board)
    ok, controller = outcome(lambda: Controller(rule_board, **{k: s.value for k, s in config.items()}))
    expected, maybe = _verdict(config)
    if not ok:
        assert expected or maybe, f"refused valid settings: {controller}"
        allowed = expected + ((ConfigurationError,) if maybe else ())
        assert isinstance(controller, allowed), f"{type(controller).__name__}: {controller}"
        assert snapshot(rule_board) == before
        return
    assert not expected, f"accepted invalid settings: {[s for s in config.values() if s.errors]}"
    ran, result = outcome(lambda: controller.run(**{k: s.value for k, s in run.items()}))
    expected, maybe = _verdict(run)
    if ran:
        assert not expected, f"accepted invalid run() arguments: {[s for s in run.values() if s.errors]}"
        assert isinstance(result, RunResult)
        assert_only_bookkeeping(rule_board, before)
    else:
        assert expected or maybe, f"refused valid run() arguments: {result}"
        allowed = expected + ((ConfigurationError,) if maybe else ())
        assert isinstance(result, allowed), f"{type(result).__name__}: {result}"
        assert snapshot(rule_board) == before


# Was a bug: TypeError or OverflowError, or NaN accepted.
@pytest.mark.parametrize("case", [
    "seed-list", "seed-object", "sources-none", "sources-int", "flush-nan", "flush-huge", "max_seconds-nan", "max_cycles-nan", "max_activations-nan", "weighted-vote-int", "weighted-vote-str-weight",
])
def test_controller_settings_of_the_wrong_type_raise_configuration_error(case: str) -> None:
    """Each wrong setting raises ConfigurationError (a project error), never TypeError or OverflowError."""
    board = Blackboard()
    try:
        for i in range(3):
            board.post("in", i)
        calls: dict[str, Callable[[], Any]] = {
            "seed-list": lambda: Controller(board, seed=[1]),
            "seed-object": lambda: Controller(board, seed=Opaque()),
            "sources-none": lambda: Controller(board, None),  # type: ignore[arg-type]
            "sources-int": lambda: Controller(board, 5),  # type: ignore[arg-type]
            "flush-nan": lambda: Controller(board, flush_interval=math.nan),
            "flush-huge": lambda: Controller(board, flush_interval=10**400),
            "max_seconds-nan": lambda: Controller(board).run(max_seconds=math.nan),
            "max_cycles-nan": lambda: Controller(board).run(max_cycles=math.nan),
            "max_activations-nan": lambda: Controller(board).run(max_activations=math.nan),
            "weighted-vote-int": lambda: Controller(board, conflict=WeightedVote(5)),  # type: ignore[arg-type]
            "weighted-vote-str-weight": lambda: Controller(
                board, [_claim_source("in")],
                conflict=WeightedVote({"claims": "heavy"}),  # type: ignore[dict-item]
            ).run(),
        }
        error = refused(calls[case])
        assert isinstance(error, ConfigurationError), type(error)
    finally:
        _closing(board)


def _claim_source(watches: str) -> Any:
    @knowledge_source(name="claims", watches=watches, writes="claim")
    def claims(entry: Entry) -> Any:
        return post("claim", entry.id % 2, key="k", confidence=0.5)

    return claims


# Was a bug: NaN/inf numbers and non-exception retry_on were accepted (backoff=inf hung run()).
@pytest.mark.parametrize("options", [
    {"priority": math.nan}, {"reliability": math.nan}, {"timeout": math.nan}, {"backoff": math.inf},
    {"backoff": -1.0}, {"backoff": math.nan}, {"retry_on": 5}, {"retry_on": (ValueError, "x")},
], ids=["priority-nan", "reliability-nan", "timeout-nan", "backoff-inf", "backoff-negative", "backoff-nan",
        "retry_on-int", "retry_on-str"])
def test_knowledge_source_options_of_the_wrong_value_are_refused(options: dict[str, Any]) -> None:
    """Non-finite numbers and non-exception retry_on are refused with SourceDefinitionError at declaration."""
    error = refused(lambda: knowledge_source(_noop, name="opt", watches="s", retries=1, **options))
    assert isinstance(error, SourceDefinitionError)


# =============================================================== 4. files
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_file_refused(path: Path, *, runs: tuple[Any, ...] = (None, 1, "x"), verifying: bool = True) -> None:
    """Every way of opening ``path`` raises a project error; the folder and the file's bytes are untouched."""
    folder = path.parent
    listing = sorted(p.name for p in folder.iterdir())
    digest = _digest(path) if path.is_file() else None
    for run in runs:
        refused(lambda: Blackboard(path, run=run))
    refused(lambda: read_runs(path))
    if verifying:
        refused(lambda: verify(path))
    assert sorted(p.name for p in folder.iterdir()) == listing
    if digest is not None:
        assert _digest(path) == digest


@pytest.fixture(scope="module")
def board_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a real blackboard file: two runs, entries, events and activations."""
    path = tmp_path_factory.mktemp("real") / "real.duckdb"
    with Blackboard(path, spaces=["s"]) as board:
        for i in range(300):
            board.post("s", {"i": i, "pad": "x" * 50}, key=f"k{i % 7}")
        Controller(board, [knowledge_source(_noop, name="n", watches="s")]).run(max_cycles=2)
    with Blackboard(path, run="second") as board:
        board.post("t", [1, 2, 3])
    return path.read_bytes()


@examples(30)
@given(content=st.one_of(st.binary(max_size=65_536),
                         st.binary(max_size=300_000).map(lambda b: b"\0" * 8 + b"DUCK" + b)),
       name=st.sampled_from(["x.duckdb", "x.db", "x", "x.bb", "x.json", "x.csv", "x.parquet"]))
@example(content=b"", name="x.duckdb")
def test_random_bytes_file_refused_untouched(content: bytes, name: str) -> None:
    """A file of random bytes (even behind a DuckDB magic number) is refused with a project error, unchanged."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        check_file_refused(path, runs=(None, 1), verifying=False)


@examples(10)
@given(content=st.binary(min_size=16, max_size=300_000))
def test_real_header_with_random_body_refused_untouched(board_bytes: bytes, content: bytes) -> None:
    """A real blackboard header followed by random bytes is refused with a project error, unchanged."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.duckdb"
        path.write_bytes(board_bytes[:12288] + content)
        check_file_refused(path, runs=(None, 1), verifying=False)


@examples(8)
@given(fraction=st.floats(0.0, 0.5, exclude_max=True))
@example(fraction=0.0)
def test_truncated_blackboard_file_refused_untouched(board_bytes: bytes, fraction: float) -> None:
    """A real blackboard file cut in its first half is refused by every opener, unchanged."""
    # Cut in its last block, a file still opens: test_blackboard_file_cut_near_its_end_is_refused.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cut.duckdb"
        path.write_bytes(board_bytes[: int(len(board_bytes) * fraction)])
        check_file_refused(path, runs=(None, 1), verifying=False)


# Was a bug: a file cut in its last block opened, and a new run was started in it.
@pytest.mark.parametrize("cut", [1, 2048, 131_072], ids=["1-byte", "2KiB", "128KiB"])
def test_blackboard_file_cut_near_its_end_is_refused(board_bytes: bytes, tmp_path: Path, cut: int) -> None:
    """A blackboard file missing its last bytes is refused by every opener and left unchanged."""
    path = tmp_path / "cut.duckdb"
    path.write_bytes(board_bytes[:-cut])
    check_file_refused(path)


# Was a bug: damaged rows leaked JSONDecodeError, KeyError...
@pytest.mark.parametrize("damage", [
    "UPDATE bb_entry SET value = '{not json'",
    "UPDATE bb_event SET details = '{not json' WHERE details IS NOT NULL",
    "UPDATE bb_run SET config = '[1]'",
    "UPDATE bb_run SET problem = 'nope'",
    "UPDATE bb_entry SET supports = 'x'",
    "ALTER TABLE bb_entry DROP COLUMN revises",
], ids=["entry-value", "event-details", "run-config", "run-problem", "entry-supports", "entry-column"])
def test_damaged_run_data_raises_file_error(board_bytes: bytes, tmp_path: Path, damage: str) -> None:
    """Reopening a run whose stored rows are damaged raises a project error, never a parser or DuckDB error."""
    path = tmp_path / "damaged.duckdb"
    path.write_bytes(board_bytes)
    con = duckdb.connect(str(path))
    con.execute(damage)
    con.close()
    open_every_way(path)


def open_every_way(path: Path) -> None:
    """Open each run, replay it, list the runs, verify: each works or raises a project error."""
    for run in (None, 1, "second"):
        ok, board = outcome(lambda: Blackboard(path, run=run))
        if ok:
            try:
                outcome(board.replay)
            finally:
                _closing(board)
    outcome(lambda: read_runs(path))
    outcome(lambda: verify(path))


# Was a bug: a checksum failure leaked duckdb.Error.
def test_corrupted_blocks_raise_file_error(board_bytes: bytes, tmp_path: Path) -> None:
    """A file with one flipped byte in any block is opened, or refused with a project error, by every opener."""
    block = 262_144
    for start in range(12_288, len(board_bytes), block):
        data = bytearray(board_bytes)
        data[start + block // 2] ^= 0xFF
        path = tmp_path / f"flip{start}.duckdb"
        path.write_bytes(bytes(data))
        open_every_way(path)


_OBJECTS = {
    "table": 'CREATE TABLE "{n}" (id INTEGER, name VARCHAR); INSERT INTO "{n}" VALUES (1, \'a\'), (2, NULL)',
    "schema-table": 'CREATE SCHEMA IF NOT EXISTS app; CREATE TABLE app."{n}" (x DOUBLE)',
    "view": 'CREATE VIEW "v_{n}" AS SELECT 42 AS answer',
    "sequence": 'CREATE SEQUENCE "s_{n}" START 5',
    "macro": 'CREATE MACRO "m_{n}"(a) AS a + 1',
    "type": 'CREATE TYPE "t_{n}" AS ENUM (\'a\', \'b\')',
}
identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True) | st.sampled_from(
    ["bb_entry", "bb_run", "bb_event", "bb_meta", "entries", "select", "customers"])


@examples(6)
@given(objects=st.lists(st.tuples(st.sampled_from(sorted(_OBJECTS)), identifiers), min_size=1, max_size=4))
def test_duckdb_file_of_another_program_refused_untouched(objects: list[tuple[str, str]]) -> None:
    """A DuckDB database holding another program's tables, views, macros... is refused, unchanged."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "theirs.duckdb"
        con = duckdb.connect(str(path))
        statements = [_OBJECTS[kind].format(n=name) for kind, name in objects]
        for statement in statements:
            try:
                con.execute(statement)
            except duckdb.CatalogException:
                pass  # a name generated twice
        con.close()
        check_file_refused(path, runs=(None, 1), verifying=False)


# Was a bug: a DuckDB file with only views, macros... was adopted and written to.
@pytest.mark.parametrize("kind", ["view", "sequence", "macro", "type", "schema"])
def test_duckdb_file_without_tables_from_another_program_refused(tmp_path: Path, kind: str) -> None:
    """A DuckDB database of another program holding no table, only a view, macro... is refused, unchanged."""
    path = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA app" if kind == "schema" else _OBJECTS[kind].format(n="x"))
    con.close()
    check_file_refused(path, runs=(None,))


def _special_path(tmp_path: Path, kind: str) -> Any:
    """A path to a file (or folder) that is not a blackboard."""
    if kind == "empty-file":
        (tmp_path / "empty.duckdb").write_bytes(b"")
        return tmp_path / "empty.duckdb"
    if kind == "directory":
        (tmp_path / "folder.duckdb").mkdir()
        return tmp_path / "folder.duckdb"
    if kind == "missing-folder":
        return tmp_path / "missing" / "board.duckdb"
    if kind == "png":  # (not SQLite: DuckDB would try to download its sqlite extension)
        (tmp_path / "image.duckdb").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(3000))
        return tmp_path / "image.duckdb"
    if kind == "wal-only":
        (tmp_path / "w.duckdb.wal").write_bytes(os.urandom(1000))
        (tmp_path / "w.duckdb").write_bytes(os.urandom(1000))
        return tmp_path / "w.duckdb"
    if kind == "parquet":
        pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "data.parquet")
        return tmp_path / "data.parquet"
    if kind == "csv":
        (tmp_path / "data.csv").write_text("a,b\n1,2\n")
        return tmp_path / "data.csv"
    if kind == "json-random":
        (tmp_path / "noise.json").write_bytes(os.urandom(5000))
        return tmp_path / "noise.json"
    if kind == "nul-in-path":
        return str(tmp_path / "a\0b.duckdb")
    if kind == "surrogate-path":
        return str(tmp_path / "a\ud800.duckdb")
    if kind == "bytes-path":
        return os.fsencode(tmp_path / "b.duckdb")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    "empty-file", "directory", "missing-folder", "png", "wal-only",
    # were bugs: DuckDB opened these three as an in-memory database, so every write was lost
    "parquet", "csv", "json-random",
    # were bugs: a NUL wrote another file, a surrogate raised RuntimeError, bytes TypeError
    "nul-in-path", "surrogate-path", "bytes-path",
])
def test_files_that_are_not_blackboards_are_refused_untouched(tmp_path: Path, kind: str) -> None:
    """Empty files, folders, SQLite/Parquet/CSV files and unusable paths are refused; nothing is written."""
    target = _special_path(tmp_path, kind)
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    digest = _digest(Path(target)) if isinstance(target, Path) and target.is_file() else None
    for run in (None, 1):
        refused(lambda: Blackboard(target, run=run))
    assert sorted(p.name for p in tmp_path.rglob("*")) == listing
    if digest is not None:
        assert _digest(target) == digest


# ============================================================= 5. actions
class Weird(Exception):
    """An exception with odd arguments."""


class Unprintable(Exception):
    """An exception whose message cannot be made."""

    def __str__(self) -> str:
        raise RuntimeError("no message")


class SurrogateMessage(Exception):
    """An exception whose message cannot be encoded as UTF-8."""

    def __str__(self) -> str:
        return "bad \ud800 message"


BAD_EXCEPTIONS: list[Callable[[], BaseException]] = [
    ValueError, TypeError, lambda: KeyError("k"), IndexError, ZeroDivisionError, RuntimeError, RecursionError,
    MemoryError, AssertionError, NotImplementedError, lambda: OSError(2, "gone"), StopIteration,
    lambda: UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), lambda: Weird(None, Opaque(), b"\x00", 10**100),
    lambda: Weird("m" * 100_000), lambda: ExceptionGroup("many", [ValueError(1), KeyError(2)]),
    lambda: ValidationError("value", "made up"), lambda: QueryError("SELECT", "no"), lambda: Exception(),
    Unprintable, SurrogateMessage,
]
GARBAGE: list[Any] = [5, "post", b"x", {"a": 1}, 1.5, True, [5], [post("out", 1), 5], {"post": post("out", 1)},
                      range(3), Opaque(), ("post", "out", 1), [[post("out", 1)]], Entry]
INVALID_CONTRIBUTIONS: list[Any] = [
    post("out", {1}), post("out", math.nan), post("out", 1, confidence=2.0), post("out", 1, key=5),
    post("out", deep_list(10_000)), post("out", "x" * 2_000_000), post("out", 1, supports=[10**9]),
    post("out", 1, context="root"), [post("out", 1), post("out", {2})], post("out", SURROGATE),
    post("out", 10**5000), revise(10**9, value=1), retract("1"), Revise([1], 2),  # type: ignore[arg-type]
    post("out", 1, confidence=10**400), post("out", 1, context=2**40),  # type: ignore[arg-type]
]


class Behaviour(NamedTuple):
    """What an action does on one trigger, and what the controller must make of it."""

    kind: str  # "raise", "garbage", "invalid", "ok", "denied", "nothing"
    payload: Any

    @property
    def fails(self) -> bool:
        return self.kind in ("raise", "garbage", "invalid")

    @property
    def posts(self) -> int:
        if self.kind != "ok":
            return 0
        return len(self.payload) if isinstance(self.payload, list) else 1


behaviours = st.one_of(
    st.sampled_from(BAD_EXCEPTIONS).map(lambda e: Behaviour("raise", e)),
    st.sampled_from(GARBAGE).map(lambda g: Behaviour("garbage", g)),
    st.sampled_from(INVALID_CONTRIBUTIONS).map(lambda c: Behaviour("invalid", c)),
    st.one_of(json_values.map(lambda v: post("out", v)),
              st.lists(json_values.map(lambda v: post("out", v, confidence=0.5)), min_size=1, max_size=3)
              ).map(lambda c: Behaviour("ok", c)),
    st.sampled_from(["post-in", "revise-trigger", "retract-trigger", "post-space-int"]).map(
        lambda d: Behaviour("denied", d)),
    st.sampled_from([None, [], ()]).map(lambda n: Behaviour("nothing", n)),
)


def _perform(behaviour: Behaviour, entry: Entry) -> Any:
    kind, payload = behaviour
    if kind == "raise":
        raise payload()
    if kind == "denied":
        return {"post-in": lambda: post("in", 1), "revise-trigger": lambda: revise(entry, value=99),
                "retract-trigger": lambda: retract(entry), "post-space-int": lambda: post(5, 1)}[payload]()
    return payload


def _misbehaving_source(plan: dict[int, Behaviour], style: str) -> Any:
    """A source watching 'in' that behaves on each trigger as ``plan`` says (sync, async, generator, threaded)."""
    options: dict[str, Any] = {"name": fresh("act"), "watches": "in", "writes": "out"}
    if style == "retried":
        options |= {"retries": 1, "backoff": 0.0}
    elif style == "threaded":
        options["timeout"] = 30.0
    if style == "async":
        async def act(entry: Entry, view: Any) -> Any:
            return _perform(plan[entry.id], entry)
    elif style == "generator":
        def act(entry: Entry, view: Any) -> Any:  # type: ignore[misc]
            out = _perform(plan[entry.id], entry)
            if isinstance(out, (list, tuple)):
                yield from out
            elif out is not None:
                yield out
    else:
        def act(entry: Entry, view: Any) -> Any:  # type: ignore[misc]
            return _perform(plan[entry.id], entry)
    return knowledge_source(act, **options)


@pytest.fixture(scope="module")
def action_board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Blackboard]:
    """A file blackboard with four triggers in 'in'; outputs go to 'out'."""
    board = Blackboard(tmp_path_factory.mktemp("actions") / "board.duckdb", spaces=["in", "out"])
    for v in [1, "two", {"three": 3}, [4]]:
        board.post("in", v, key="k")
    yield board
    _closing(board)


@examples(25)
@given(plan=st.lists(behaviours, min_size=4, max_size=4),
       style=st.sampled_from(["inline", "async", "generator", "retried", "threaded"]),
       durability=st.sampled_from(["cycle", "end"]))
def test_misbehaving_actions_never_stop_the_run(
    action_board: Blackboard, plan: list[Behaviour], style: str, durability: str,
) -> None:
    """Actions raising or returning garbage are counted as failed; run() returns; triggers stay as they were."""
    triggers = [e for e in action_board.entries("in")]
    by_id = {e.id: b for e, b in zip(triggers, plan)}
    before = snapshot(action_board)
    outputs = len(action_board.entries("out"))
    source = _misbehaving_source(by_id, style)
    ok, result = outcome(lambda: Controller(action_board, [source], durability=durability).run(max_cycles=10))
    assert ok, f"run() raised {result!r}"
    assert result.activations == len(triggers)
    assert result.failed == sum(b.fails for b in plan), [(b.kind, b.payload) for b in plan]
    assert result.sources[source.name].failed == result.failed
    assert len(action_board.entries("out")) == outputs + sum(b.posts for b in plan)
    assert [action_board.get(e.id) for e in triggers] == triggers
    after = snapshot(action_board)
    assert {r for r in after.rows if r[1] == "in"} == {r for r in before.rows if r[1] == "in"}
    replayed = action_board.replay()
    assert {i: e.status for i, e in replayed.items()} == {e.id: e.status for e in action_board.entries(status=None)}


def _mutate(entry: Entry) -> None:
    value = entry.value
    if isinstance(value, dict):
        value["three"] = "changed"
    elif isinstance(value, list):
        value.append("changed")


KNOWN_MISBEHAVIOURS: dict[str, Callable[[Entry], Any]] = {
    # were bugs: f"{exc}" in _describe escaped run(); a surrogate in the error text broke every flush
    "unprintable-exception": lambda e: (_ for _ in ()).throw(Unprintable()),
    "surrogate-message": lambda e: (_ for _ in ()).throw(SurrogateMessage()),
    "mutates-trigger": _mutate,
}
_MUTATION_BUG = pytest.mark.xfail(strict=True, reason=(
    "BUG: actions receive the stored Entry and its very value object (controller/_controller.py _run_inline "
    "passes activation.triggers[0]): mutating entry.value in place changes the blackboard's entry with no "
    "event, out of step with its table row and replay(). Hand actions a copy (copy.deepcopy, or "
    "json.loads of the stored text), or store values frozen (tuples, MappingProxyType)"))


@pytest.mark.parametrize("case", [
    pytest.param(name, marks=[_MUTATION_BUG] if name == "mutates-trigger" else [])
    for name in KNOWN_MISBEHAVIOURS
])
def test_known_misbehaving_actions_never_stop_the_run(tmp_path: Path, case: str) -> None:
    """Each misbehaving action is a failed activation; run() returns, flushes, and the triggers are unchanged."""
    board = Blackboard(tmp_path / "board.duckdb", spaces=["in", "out"])
    try:
        for v in [1, {"three": 3}, [4]]:
            board.post("in", v, key="k")
        triggers = board.entries("in")
        frozen = [_canon(e.value) for e in triggers]
        action = KNOWN_MISBEHAVIOURS[case]
        source = knowledge_source(lambda entry: action(entry), name="bad", watches="in", writes="out")
        ok, result = outcome(lambda: Controller(board, [source], durability="cycle").run(max_cycles=5))
        assert ok, f"run() raised {result!r}"
        assert result.activations == len(triggers)
        outcome(board.flush)
        assert [_canon(board.get(e.id).value) for e in triggers] == frozen
    finally:
        _closing(board)
