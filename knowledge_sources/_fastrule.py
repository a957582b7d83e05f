"""A fast path for the common shapes of rule, with rule-engine's exact meaning.

rule-engine evaluates ``value < 2000`` in 4 to 12 us, most of it turning
every number into a ``Decimal`` and checking types; the whole per-activation
budget of the controller is about 20 us. Most preconditions are
comparisons of numeric or string fields with literals, joined by ``and``,
``or`` and ``not``. :func:`fast_matcher` compiles those shapes into nested
Python closures (about 0.3 us) and hands anything else to rule-engine:

* whole rules it does not understand (other operators, functions,
  attributes, ...) are not compiled at all;
* at evaluation, a value of a kind the closures do not handle exactly (a
  string where a number is compared, a bool, None, a list, a NaN...) makes
  that one evaluation fall back to rule-engine.

Numbers follow rule-engine: an ``int`` compares exactly with the literal, a
``float`` is turned into ``Decimal(repr(x))`` as rule-engine does, ``%``
keeps the sign of the dividend (Decimal's rule, not Python's), and a
missing symbol or a division by zero means "no match", as rule-engine's
error would. A hypothesis test checks that both paths agree.
"""

from __future__ import annotations

import decimal
import math
import operator
from collections.abc import Callable
from typing import Any

import rule_engine
import rule_engine.ast as rast

from blackboard import METADATA_FIELDS, Entry

from ._rules import RULE_ERRORS

_Decimal = decimal.Decimal
_LIMIT = 10**18


class _Fallback(Exception):
    """This evaluation needs rule-engine itself."""


class _NoMatch(Exception):
    """rule-engine would raise here (unknown symbol, division by zero): no match."""


_FALLBACK = _Fallback()
_NOMATCH = _NoMatch()
_Value = Callable[[Entry], Any]
_Test = Callable[[Entry], bool]
_COMPARE = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
    "le": operator.le, "gt": operator.gt, "ge": operator.ge,
}
_FIELD_INDEX = {name: Entry._fields.index(name) for name in METADATA_FIELDS}


class _Unsupported(Exception):
    pass


def fast_matcher(rule: rule_engine.Rule) -> Callable[[Entry], bool]:
    """A function ``entry -> bool`` equal to ``bool(rule.matches(entry))``.

    rule-engine errors count as False (as in the controller's matching).
    """
    statement = rule.statement

    def slow(entry: Entry) -> bool:
        try:
            return bool(statement.evaluate(entry))
        except RULE_ERRORS:
            rule.context._tls.reset()
            return False

    try:
        test = _test(statement.expression)
    except _Unsupported:
        return slow

    def fast(entry: Entry) -> bool:
        try:
            return test(entry)
        except _NoMatch:
            return False
        except _Fallback:
            return slow(entry)

    return fast


def fast_value(node: Any) -> Callable[[Entry], Any] | None:
    """A function computing a numeric expression node, or None if unsupported.

    It returns an ``int`` or a ``Decimal`` (rule-engine's value), and raises
    ``LookupError`` where rule-engine itself would be needed or would fail.
    """
    try:
        value = _number(node)
    except _Unsupported:
        return None

    def compute(entry: Entry) -> Any:
        try:
            return value(entry)
        except (_Fallback, _NoMatch):
            raise LookupError from None

    return compute


# ----------------------------------------------------------------- tests
def _test(node: Any) -> _Test:
    if isinstance(node, rast.LogicExpression):
        left, right = _test(node.left), _test(node.right)
        if node.type == "and":
            return lambda e: left(e) and right(e)
        if node.type == "or":
            return lambda e: left(e) or right(e)
        raise _Unsupported
    if isinstance(node, rast.UnaryExpression) and node.type == "not":
        inner = _test(node.right)
        return lambda e: not inner(e)
    if isinstance(node, rast.BooleanExpression):
        constant = bool(node.value)
        return lambda e: constant
    if isinstance(node, (rast.ComparisonExpression, rast.ArithmeticComparisonExpression)):
        compare = _COMPARE.get(node.type)
        if compare is None:
            raise _Unsupported
        if isinstance(node.right, rast.StringExpression) or isinstance(node.left, rast.StringExpression):
            return _string_test(node, compare)
        left, right = _number(node.left), _number(node.right)
        return lambda e: compare(left(e), right(e))
    raise _Unsupported


def _string_test(node: Any, compare: Callable[[Any, Any], bool]) -> _Test:
    if node.type not in ("eq", "ne"):
        raise _Unsupported
    if isinstance(node.right, rast.StringExpression) and isinstance(node.left, rast.SymbolExpression):
        symbol, literal = node.left, node.right.value
    elif isinstance(node.left, rast.StringExpression) and isinstance(node.right, rast.SymbolExpression):
        symbol, literal = node.right, node.left.value
    else:
        raise _Unsupported
    get = _symbol(symbol)

    def test(e: Entry) -> bool:
        v = get(e)
        if type(v) is not str:
            raise _FALLBACK
        return compare(v, literal)

    return test


# ---------------------------------------------------------------- values
def _number(node: Any) -> _Value:
    if isinstance(node, rast.FloatExpression):
        literal = node.value
        if not literal.is_finite():
            raise _Unsupported
        constant = int(literal) if literal == literal.to_integral_value() and abs(literal) < _LIMIT else literal
        return lambda e: constant
    if isinstance(node, rast.SymbolExpression):
        get = _symbol(node)

        def number(e: Entry) -> Any:
            v = get(e)
            tp = type(v)
            if tp is int:
                if -_LIMIT < v < _LIMIT:
                    return v
                raise _FALLBACK
            if tp is float and math.isfinite(v):
                return _Decimal(repr(v))
            raise _FALLBACK

        return number
    if isinstance(node, (rast.ArithmeticExpression, rast.AddExpression, rast.SubtractExpression)):
        left, right = _number(node.left), _number(node.right)
        kind = node.type
        if kind == "add":
            return lambda e: _checked(left(e) + right(e))
        if kind == "sub":
            return lambda e: _checked(left(e) - right(e))
        if kind == "mul":
            return lambda e: _checked(left(e) * right(e))
        if kind == "mod":
            return lambda e: _mod(left(e), right(e))
    raise _Unsupported


def _checked(result: Any) -> Any:
    if type(result) is int and not -_LIMIT < result < _LIMIT:
        raise _FALLBACK
    return result


def _mod(a: Any, b: Any) -> Any:
    if not b:
        raise _NOMATCH
    if type(a) is int and type(b) is int:
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    try:
        return _Decimal(a) % _Decimal(b)
    except decimal.InvalidOperation:  # the quotient needs more digits than Decimal keeps
        raise _NOMATCH from None  # rule-engine raises its ArithmeticError: no match


def _symbol(node: Any) -> _Value:
    if node.scope is not None:
        raise _Unsupported
    name = node.name
    if name in _FIELD_INDEX:
        return operator.itemgetter(_FIELD_INDEX[name])
    if name == "value":
        def whole(e: Entry) -> Any:
            v = e[3]
            if type(v) is dict and "value" in v:
                return v["value"]
            return v
        return whole

    def field(e: Entry) -> Any:
        v = e[3]
        if type(v) is dict:
            try:
                return v[name]
            except KeyError:
                pass
        raise _NOMATCH

    return field
