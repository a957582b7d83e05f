"""Rule expressions (rule-engine) over entries: parsing, checking, indexing.

A rule is parsed once, when it is declared, so syntax errors surface then.
When the spaces a rule reads declare their fields, unknown symbols are
refused too, with rule-engine's own suggestion of the nearest name.

Indexing: matching a new entry against every registered rule one by one
costs a rule evaluation (3 to 10 us) per rule. :func:`discriminator` finds,
in a rule's top-level conjunction, an equality between an expression and a
literal (``value % 200 == 7``, ``kind == "cell"``); the controller groups the
rules that test the same expression, evaluates that expression once per
entry, and looks the literal up in a dict. Only rules whose literal matches
are then evaluated in full, so the index can only skip rules that could not
match.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable, Mapping
from typing import Any

import rule_engine
import rule_engine.ast as rast
import rule_engine.types as rtypes

from blackboard import METADATA_FIELDS, Entry, Space

from ._errors import PreconditionError

_LITERALS = (rast.FloatExpression, rast.StringExpression, rast.BooleanExpression, rast.NullExpression)


def _data_type(tp: type) -> Any:
    try:
        return rtypes.DataType.from_type(tp)
    except (TypeError, ValueError):
        return rtypes.DataType.UNDEFINED


def symbol_types(spaces: Iterable[Space | None]) -> dict[str, Any] | None:
    """Types of the symbols a rule over these spaces may use; None: unknown."""
    types: dict[str, Any] = {}
    for space in spaces:
        if space is None or space.fields is None:
            return None
        for name, tp in space.fields.items():
            types[name] = _data_type(tp)
    if "value" not in types:
        types["value"] = rtypes.DataType.UNDEFINED
    for name, tp in METADATA_FIELDS.items():
        types[name] = _data_type(tp)
    types["key"] = rtypes.DataType.UNDEFINED  # may be null
    return types


_META = frozenset(METADATA_FIELDS)
_Resolution = rule_engine.SymbolResolutionError

#: What evaluating a rule on an entry can raise: all mean "no match" (or no score).
RULE_ERRORS = (rule_engine.EngineError, TypeError, ValueError, ArithmeticError, LookupError, RecursionError)

# A group with a quantifier inside, itself quantified: catastrophic backtracking
# (the quick test, for when the pattern cannot be parsed below).
_NESTED_QUANTIFIER = re.compile(r"\([^()]*[+*}][^()]*\)\s*[+*{]")


def _check_patterns(owner: str, expression: str, rule: rule_engine.Rule) -> None:
    """Refuse a regex comparison whose pattern, as rule-engine parsed it, could backtrack for ever.

    The pattern is read off the parsed rule (escapes resolved, constant
    concatenations folded), not the rule's text.
    """
    import rule_engine.ast as rast

    stack: list[Any] = [rule.statement]
    seen = 0
    while stack and seen < 100_000:
        node = stack.pop()
        seen += 1
        if isinstance(node, rast.FuzzyComparisonExpression) and isinstance(node.right, rast.StringExpression):
            pattern = node.right.value
            if isinstance(pattern, str) and _backtracks(pattern):
                raise PreconditionError(owner, expression, f"the regular expression {pattern!r} repeats a part "
                                        "that can match in several ways (a nested quantifier, or alternatives "
                                        "starting alike) and could take for ever to match; simplify it",
                                        max(0, expression.find(pattern)))
        for value in _attributes(node):
            if isinstance(value, rast.ASTNodeBase):
                stack.append(value)
            elif isinstance(value, (list, tuple)):
                stack.extend(v for v in value if isinstance(v, rast.ASTNodeBase))


def _attributes(node: Any) -> list[Any]:
    """Every attribute value of an AST node, in slots and in its dict."""
    names = {n for cls in type(node).__mro__ for n in getattr(cls, "__slots__", ())}
    values = [getattr(node, n, None) for n in names]
    return values + list(getattr(node, "__dict__", {}).values())


def _backtracks(pattern: str) -> bool:
    """Can matching ``pattern`` take exponential time?

    Parsed with Python's own regex parser: a repeated part may not hold a
    variable repeat (``(a+)+``, ``((a+))+``) nor alternatives that can begin
    with the same character (``(a|aa)+``, ``(a|a)*``); ``(foo|bar)+`` and
    ``(ab{2})+`` are fine. Patterns Python cannot parse are left to rule-engine.
    """
    try:
        from re import _parser as sre  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - older or other Pythons
        return bool(_NESTED_QUANTIFIER.search(pattern))
    try:
        parsed = sre.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return _risky(parsed, sre, False)


def _risky(items: Any, sre: Any, repeated: bool) -> bool:
    c = sre._constants if hasattr(sre, "_constants") else sre
    for op, av in items:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT) or op is getattr(c, "POSSESSIVE_REPEAT", None):
            low, high, body = av
            if repeated and low != high:
                return True
            if _risky(body, sre, repeated or high > 1):
                return True
        elif op is c.BRANCH:
            branches = av[1]
            if repeated and not _disjoint_starts(branches, c):
                return True
            if any(_risky(branch, sre, repeated) for branch in branches):
                return True
        elif op is c.SUBPATTERN:
            if _risky(av[-1], sre, repeated):
                return True
        elif op in (c.ASSERT, c.ASSERT_NOT):
            if _risky(av[1], sre, repeated):
                return True
    return False


def _disjoint_starts(branches: Any, c: Any) -> bool:
    """Do the alternatives begin with literal characters no two share?"""
    seen: set[int] = set()
    for branch in branches:
        items = list(branch)
        if not items or items[0][0] is not c.LITERAL:
            return False
        char = items[0][1]
        if char in seen:
            return False
        seen.add(char)
    return True


def resolve_symbol(thing: Any, name: str) -> Any:
    """Resolve a rule symbol on an :class:`~blackboard.Entry` without building a dict.

    The same meaning as :func:`blackboard.entry_facts`: metadata names are
    metadata; then the top-level keys of a dict value; then ``value``, the
    whole value. Plain mappings (a dict of facts) are looked up directly.
    """
    if type(thing) is dict:
        try:
            return thing[name]
        except KeyError:
            raise _Resolution(name, thing=thing) from None
    if type(thing) is not Entry:
        raise _Resolution(name, thing=thing)
    if name in _META:
        return getattr(thing, name)
    value = thing[3]
    if type(value) is dict:
        try:
            return value[name]
        except KeyError:
            pass
    if name == "value":
        return value
    raise _Resolution(name, thing=thing)


MAX_RULE_LENGTH = 10_000
MAX_NESTING = 64


def compile_rule(
    owner: str, expression: str, symbols: Mapping[str, Any] | None = None
) -> rule_engine.Rule:
    """Parse ``expression``; with ``symbols``, refuse names it does not know.

    The rule returned evaluates on an :class:`~blackboard.Entry` (or a dict
    of facts) through :func:`resolve_symbol`. With ``symbols`` the rule is
    first parsed typed, which reports unknown names and type errors now; the
    rule returned is untyped. The untyped rule skips rule-engine's per-symbol type check at
    evaluation (about half its cost); a value of the wrong type still fails
    the comparison it is used in, so the rule still does not match.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise PreconditionError(owner, repr(expression), "a rule must be a non-empty string")
    if len(expression) > MAX_RULE_LENGTH:
        raise PreconditionError(owner, expression[:80] + "...", f"a rule of {len(expression)} characters is longer than {MAX_RULE_LENGTH}")
    if expression.count("(") > MAX_NESTING or expression.count("[") > MAX_NESTING:
        raise PreconditionError(owner, expression[:80] + "...", f"a rule may nest at most {MAX_NESTING} brackets")
    # value.foo on a mapping is deprecated in rule-engine (value['foo'] is the way): opt out now
    runtime = rule_engine.Context(resolver=resolve_symbol, mapping_attribute_lookup=False)
    try:
        if symbols is not None:
            typed = rule_engine.Context(type_resolver=rule_engine.type_resolver_from_dict(dict(symbols)),
                                        mapping_attribute_lookup=False)
            rule_engine.Rule(expression, context=typed)
        rule = rule_engine.Rule(expression, context=runtime)
        _check_patterns(owner, expression, rule)
        return rule
    except rule_engine.SymbolResolutionError as exc:
        hint = f" (did you mean {exc.suggestion!r}?)" if exc.suggestion else ""
        known = ", ".join(sorted(symbols or ()))
        raise PreconditionError(
            owner, expression,
            f"unknown field {exc.symbol_name!r}{hint}; known fields: {known}",
            _find_symbol(expression, exc.symbol_name),
        ) from None
    except rule_engine.RuleSyntaxError as exc:
        token = getattr(exc, "token", None)
        position = getattr(token, "lexpos", None) if token is not None else len(expression)
        raise PreconditionError(owner, expression, f"syntax error: {exc.message}", position) from None
    except rule_engine.EngineError as exc:
        raise PreconditionError(owner, expression, f"invalid rule: {exc.message}") from None
    except RecursionError:
        raise PreconditionError(owner, expression[:200], "the rule is nested too deeply") from None


def _find_symbol(expression: str, name: str) -> int | None:
    match = re.search(rf"\b{re.escape(name)}\b", expression)
    return match.start() if match else None


def ast_key(node: Any) -> Any:
    """A hashable structural key of a rule-engine AST node."""
    if isinstance(node, rast.SymbolExpression):
        return ("sym", node.name, node.scope)
    if isinstance(node, _LITERALS):
        return ("lit", type(node).__name__, node.value)
    parts: list[Any] = [type(node).__name__]
    for name in sorted(vars(node)):
        if name.startswith("_") or name == "context":
            continue
        value = vars(node)[name]
        if isinstance(value, rast.ExpressionBase):
            parts.append((name, ast_key(value)))
        elif isinstance(value, (list, tuple)):
            parts.append((name, tuple(ast_key(v) if isinstance(v, rast.ExpressionBase) else repr(v) for v in value)))
        elif not callable(value):
            parts.append((name, repr(value)))
    return tuple(parts)


def discriminator(rule: rule_engine.Rule) -> tuple[Any, Any, Any] | None:
    """``(expression node, its key, literal)`` of an indexable equality, if any."""
    stack = [rule.statement.expression]
    while stack:
        node = stack.pop()
        if isinstance(node, rast.LogicExpression) and node.type == "and":
            stack.append(node.right)
            stack.append(node.left)
            continue
        if isinstance(node, rast.ComparisonExpression) and node.type == "eq":
            left, right = node.left, node.right
            if isinstance(right, _LITERALS) and not isinstance(left, _LITERALS):
                return left, ast_key(left), index_key(right.value)
            if isinstance(left, _LITERALS) and not isinstance(right, _LITERALS):
                return right, ast_key(right), index_key(left.value)
    return None


_Decimal = decimal.Decimal


def index_key(value: Any) -> Any:
    """Normalise a value so that values rule-engine calls equal share a key.

    Numbers become ``int`` when integral (cheap to hash), else the
    ``Decimal`` rule-engine would make of them; equal numbers of either
    type hash alike in Python, so the keys only need to agree in value.
    """
    tp = type(value)
    if tp is int or tp is str or value is None or tp is bool:
        return value
    if tp is _Decimal:
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return value
    if tp is float:
        if value.is_integer():
            return int(value)
        return _Decimal(repr(value))
    return _UNHASHABLE


_UNHASHABLE = object()
