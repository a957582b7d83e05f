"""The benchmark workloads of BENCHMARKS.md, run through the public API.

``python -m benchmarks [W1 W3 ...] [--quick] [--repeat N] [--profile]``
prints one JSON object per line on stdout; see README.md for the fields.

Each workload is a module with ``NAME``, ``run(options) -> list[dict]``
(the JSON lines) and ``profile(options)`` (our side alone, once, for
cProfile). Adding one (W5, W6) is a new module plus a line in
:data:`WORKLOADS`; the command line picks it up from there.
"""

from ._harness import Options as Options

#: Workload name -> module (imported only when the workload is run).
WORKLOADS: dict[str, str] = {
    "W1": "benchmarks.w1",
    "W2": "benchmarks.w2",
    "W3": "benchmarks.w3",
    "W4": "benchmarks.w4",
    "W5": "benchmarks.w5",
    "W6": "benchmarks.w6",
    "W7": "benchmarks.w7",
    "START": "benchmarks.start",
    "SQL": "benchmarks.sql",
}

__all__ = ["WORKLOADS", "Options"]
