"""The problem domains the command line knows, by the name a run records."""

from __future__ import annotations

import importlib
from types import ModuleType

from ._errors import ControllerError

DOMAINS: dict[str, str] = {
    "sudoku": "knowledge_sources.sudoku",
    "tracking": "knowledge_sources.tracking",
    "triage": "knowledge_sources.triage",
}


class UnknownDomainError(ControllerError, LookupError):
    """No such problem domain (or its module is not installed)."""


def domain_module(name: str) -> ModuleType:
    if name not in DOMAINS:
        raise UnknownDomainError(f"unknown domain {name!r}; known: {', '.join(DOMAINS)}")
    try:
        return importlib.import_module(DOMAINS[name])
    except ModuleNotFoundError as exc:
        raise UnknownDomainError(f"the {name} domain is not available ({exc})") from None
