"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from blackboard import Entry

# ------------------------------------------------------------------ values
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)

json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
"""Any value that survives a JSON round trip unchanged (str keys, finite floats)."""

confidences = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
"""Valid confidences."""

keys = st.none() | st.sampled_from(["a", "b", "c", "k"])
space_names = st.sampled_from(["hyp", "cell", "goal"])


class _Opaque:
    """An object JSON cannot encode."""

    def __repr__(self) -> str:
        return "<opaque>"


def _nested_nan() -> Any:
    return {"deep": [1, 2, {"x": math.nan}]}


invalid_values: st.SearchStrategy[Any] = st.one_of(
    st.sets(st.integers(), max_size=3),
    st.frozensets(st.integers(), max_size=3),
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.builds(_Opaque),
    st.binary(max_size=4),
    st.complex_numbers(allow_nan=False, allow_infinity=False),
    st.builds(_nested_nan),
    st.lists(st.just(math.nan), min_size=1, max_size=3),
    st.dictionaries(st.tuples(st.integers(), st.integers()), st.integers(), min_size=1, max_size=2),
    st.builds(lambda v: {"inner": {v}}, st.integers()),
)
"""Values that are not JSON: sets, NaN, infinities, objects, bytes, tuple keys..."""

invalid_confidences: st.SearchStrategy[Any] = st.one_of(
    st.floats(max_value=-math.ulp(0.0), allow_nan=False),
    st.floats(min_value=1.0, exclude_min=True, allow_nan=False),
    st.just(math.nan),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
    st.integers().filter(lambda i: i not in (0, 1)),
    st.builds(_Opaque),
    st.complex_numbers(allow_nan=False, allow_infinity=False, min_magnitude=0.1),
)
"""Confidences outside 0..1, NaN, booleans, strings, None, objects."""

invalid_keys: st.SearchStrategy[Any] = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.binary(min_size=1, max_size=3),
    st.tuples(st.text(max_size=2)), st.builds(_Opaque),
)
"""Keys that are neither a str nor None."""

# ------------------------------------------------------------------ claims
claim_values = st.sampled_from([0, 1, "one", "two", [1, 2], {"a": 1}, None, True, 2.5])
claim_sources = st.sampled_from(["alpha", "beta", "gamma", "delta"])


@st.composite
def claims(draw: st.DrawFn, min_size: int = 1, max_size: int = 8, values: Any = claim_values) -> list[Entry]:
    """Entries claiming one slot (same space and key), unique ids, various values."""
    n = draw(st.integers(min_value=min_size, max_value=max_size))
    ids = draw(st.lists(st.integers(min_value=1, max_value=10_000), min_size=n, max_size=n, unique=True))
    out = []
    for eid in ids:
        out.append(
            Entry(
                eid, "ans", "k", draw(values), draw(confidences), "active",
                draw(claim_sources), 0, 0, (), None, 1,
            )
        )
    return out


def claim(eid: int, value: Any, confidence: float, source: str = "alpha") -> Entry:
    """One claim on the slot ("ans", "k")."""
    return Entry(eid, "ans", "k", value, confidence, "active", source, 0, 0, (), None, 1)


reliabilities = st.dictionaries(
    claim_sources, st.floats(min_value=0.0, max_value=5.0, allow_nan=False), max_size=4
)
"""Per-source reliability weights."""
