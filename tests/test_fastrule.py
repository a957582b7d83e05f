"""The fast path for rules agrees with rule-engine on every entry."""

from __future__ import annotations

import rule_engine
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from blackboard import Entry
from knowledge_sources import PreconditionError
from knowledge_sources._fastrule import fast_matcher, fast_value
from knowledge_sources._rules import compile_rule, discriminator, index_key

FIELDS = ("a", "b", "value")
numbers = st.one_of(
    st.integers(-50, 50),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.1, 0.5, -0.0, 2.5, 1e-7]),
)
scalars = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=3), st.lists(st.integers(), max_size=2))
literals = st.one_of(
    st.integers(-20, 20).map(str),
    st.sampled_from(["0.5", "2.5", "0.1", "1e3", "-3"]),
    st.sampled_from(['"x"', '"a"', '""']),
)
symbols = st.sampled_from(FIELDS + ("confidence", "cycle", "id", "key", "space", "missing"))


@st.composite
def numeric(draw: st.DrawFn, depth: int = 0) -> str:
    if depth < 2 and draw(st.booleans()):
        op = draw(st.sampled_from(["+", "-", "*", "%"]))
        return f"({draw(numeric(depth + 1))} {op} {draw(literals.filter(lambda s: not s.startswith(chr(34))))})"
    return draw(symbols)


@st.composite
def rule_texts(draw: st.DrawFn, depth: int = 0) -> str:
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        op = draw(st.sampled_from(["and", "or"]))
        return f"({draw(rule_texts(depth + 1))} {op} {draw(rule_texts(depth + 1))})"
    if depth < 2 and draw(st.integers(0, 5)) == 0:
        return f"not ({draw(rule_texts(depth + 1))})"
    left = draw(numeric())
    op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
    return f"{left} {op} {draw(literals)}"


def entry_with(value: object, confidence: float = 0.5, key: str | None = "k") -> Entry:
    return Entry(7, "s", key, value, confidence, "active", "src", 3, 0, (), None, 1)


values = st.one_of(
    scalars,
    st.dictionaries(st.sampled_from(FIELDS), scalars, max_size=3),
)


def reference(rule: rule_engine.Rule, entry: Entry) -> bool:
    try:
        return bool(rule.statement.evaluate(entry))
    except (rule_engine.EngineError, TypeError, ValueError, ArithmeticError):
        rule.context._tls.reset()
        return False


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_texts(), values, st.sampled_from([0.0, 0.25, 1.0]), st.sampled_from([None, "k", "x"]))
def test_fast_matcher_agrees_with_rule_engine(expression: str, value: object, confidence: float, key: str | None) -> None:
    """For generated rules and values, the fast path's verdict is rule-engine's."""
    try:
        rule = compile_rule("t", expression)
    except PreconditionError:
        assume(False)  # rule-engine refuses some type mismatches when parsing
    entry = entry_with(value, confidence, key)
    assert fast_matcher(rule)(entry) == reference(rule, entry), expression


@settings(max_examples=200, deadline=None)
@given(st.integers(-1000, 1000), st.integers(1, 30), st.integers(-30, 30))
def test_index_lookup_never_misses_a_match(n: int, divisor: int, remainder: int) -> None:
    """The discriminator's value, normalised, finds every rule rule-engine says matches."""
    rule = compile_rule("t", f"value % {divisor} == {remainder}")
    node, _, literal = discriminator(rule)  # type: ignore[misc]
    entry = entry_with(n)
    fast = fast_value(node)
    assert fast is not None
    if reference(rule, entry):
        assert index_key(fast(entry)) == literal
        assert hash(index_key(fast(entry))) == hash(literal)


def test_decimal_remainder_beyond_precision_is_no_match() -> None:
    """A remainder Decimal cannot compute (1e28 % 1) is no match on both paths, not an exception."""
    rule = compile_rule("t", "value % 1 == 0")
    entry = entry_with(1e28)
    assert fast_matcher(rule)(entry) is reference(rule, entry) is False


def test_unsupported_shapes_use_rule_engine() -> None:
    """A rule outside the fast subset (functions, attributes, regex) still evaluates as rule-engine does."""
    for expression, value, expected in [
        ("name =~ 'ab.*'", {"name": "abc"}, True),
        ("value.length == 2", [1, 2], True),
        ("'x' in tags", {"tags": ["x"]}, True),
        ("a / 2 == 1.5", {"a": 3}, True),
    ]:
        rule = compile_rule("t", expression)
        assert fast_matcher(rule)(entry_with(value)) is expected
