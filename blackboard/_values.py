"""Validation of what goes onto the blackboard.

Everything is checked before anything is written, so an invalid request
leaves the blackboard as it was. Values are stored as JSON; the in-memory
value is the JSON round trip of what was given, so what a source reads back
is exactly what SQL, Parquet and replay see (tuples become lists, and so on).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from ._errors import ValidationError

MAX_VALUE_BYTES = 1_000_000

_dumps = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode


def encode_value(value: Any, max_bytes: int = MAX_VALUE_BYTES) -> str:
    """The JSON text of ``value``, or a :class:`ValidationError` naming the problem."""
    try:
        text = _dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError("value", f"not JSON-serialisable: {exc}", value) from None
    except RecursionError:
        raise ValidationError("value", "nested too deeply to store as JSON") from None
    size = len(text)
    if not text.isascii():
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ValidationError("value", f"a string in it is not valid Unicode ({exc.reason})", value) from None
    if size > max_bytes:
        raise ValidationError(
            "value", f"{size} bytes of JSON, more than the limit of {max_bytes}"
        )
    return text


def check_confidence(confidence: Any) -> float:
    if type(confidence) is float and 0.0 <= confidence <= 1.0:
        return confidence
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
        raise ValidationError(
            "confidence", f"must be a number between 0 and 1, not {confidence!r}", confidence
        )
    try:
        c = float(confidence)
    except OverflowError:
        raise ValidationError("confidence", f"must be between 0 and 1, not {confidence!r}", confidence) from None
    if math.isnan(c) or not 0.0 <= c <= 1.0:
        raise ValidationError(
            "confidence", f"must be between 0 and 1, not {confidence!r}", confidence
        )
    return c


def check_text(field: str, text: str) -> str:
    """``text`` if it can be stored (UTF-8); lone surrogates cannot."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError(field, f"not valid Unicode ({exc.reason})", text) from None
    return text


def check_activation(activation: Any) -> int | None:
    if activation is None or (type(activation) is int and 0 <= activation < 2**63):
        return activation
    raise ValidationError("activation", f"must be an activation id (int) or None, not {activation!r}", activation)


def check_name(field: str, name: Any) -> str:
    """A non-empty name that can be stored (spaces, runs, event kinds...)."""
    if type(name) is not str or not name:
        raise ValidationError(field, f"must be a non-empty string, not {name!r}", name)
    return check_text(field, name)


def check_key(key: Any) -> str | None:
    if key is None:
        return key
    if type(key) is str:
        return check_text("key", key)
    raise ValidationError("key", f"must be a string or None, not {key!r}", key)


def check_source(source: Any) -> str:
    if type(source) is str and source:
        return check_text("source", source)
    raise ValidationError("source", f"must be a non-empty string, not {source!r}", source)


def check_supports(supports: Iterable[Any], known: Any) -> tuple[int, ...]:
    """Ids this entry was derived from; each must be an entry of this run."""
    if type(supports) is tuple and not supports:
        return supports
    if isinstance(supports, (str, bytes)) or not isinstance(supports, Iterable):
        raise ValidationError("supports", f"must be entry ids, not {supports!r}", supports)
    ids = []
    for s in supports:
        sid = getattr(s, "id", s)
        if isinstance(sid, bool) or not isinstance(sid, int):
            raise ValidationError("supports", f"{s!r} is not an entry id", supports)
        if sid not in known:
            raise ValidationError("supports", f"no entry with id {sid} in this run", supports)
        ids.append(sid)
    return tuple(ids)
