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
    """The file holds no run of a known domain (``blackboard resume`` exits 3)."""


def resume(path: str | os.PathLike[str], run: int | None = None, **options: Any) -> Any:
    """Continue an interrupted run of a known domain; returns the domain's result.

    ``run`` picks the run; by default the newest unfinished run of a known
    domain, else the newest finished one, whose result is read back without
    running anything: resuming is idempotent. A file with no such run raises
    :class:`NothingToResumeError`.
    """
    runs = read_runs(path)
    if run is None:
        known = [r for r in runs if _domain(r) in DOMAINS]
        if not known:
            held = f"holds {len(runs)} run(s), none of a known domain ({', '.join(DOMAINS)})" if runs else "holds no run"
            raise NothingToResumeError(f"{os.fspath(path)} {held}: nothing to resume")
        chosen = ([r for r in known if r["state"] != "finished"] or known)[-1]
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
