"""Resume a run of a known problem domain from its file.

A run records its problem (``{"domain": "sudoku", ...}``); the domain's
module knows its sources and how to read the answer, so ``blackboard resume
PATH`` needs nothing but the file. For a run of your own sources, reopen it
and give a new controller the same sources: it skips what already ran
(see ``Controller._catch_up``)::

    bb = Blackboard(path, run=run_id)
    Controller(bb, my_sources).run()
"""

from __future__ import annotations

import os
from typing import Any

from blackboard import BlackboardFileError, read_runs

from ._domains import DOMAINS, domain_module
from ._errors import ControllerError


class NothingToResumeError(ControllerError, LookupError):
    """The file holds no unfinished run of a known domain."""


def resume(path: str | os.PathLike[str], run: int | None = None, **options: Any) -> Any:
    """Continue an interrupted run of a known domain; returns the domain's result."""
    runs = read_runs(path)
    if run is None:
        candidates = [r for r in runs if r["state"] != "finished" and _domain(r) in DOMAINS]
        if not candidates:
            raise NothingToResumeError(f"{os.fspath(path)} holds no unfinished run of a known domain ({', '.join(DOMAINS)})")
        chosen = candidates[-1]
    else:
        found = [r for r in runs if r["id"] == run]
        if not found:
            raise BlackboardFileError(os.fspath(path), f"it has no run {run}")
        chosen = found[0]
    domain = _domain(chosen)
    if domain not in DOMAINS:
        raise NothingToResumeError(
            f"run {chosen['id']} is not of a known domain (problem: {chosen['problem']!r}); "
            "reopen it with Blackboard(path, run=...) and run a Controller with its sources"
        )
    return domain_module(domain).resume(path, int(chosen["id"]), **options)


def _domain(run: dict[str, Any]) -> str | None:
    problem = run.get("problem")
    return problem.get("domain") if isinstance(problem, dict) else None
