"""Errors of source declarations, under the project's one root error."""

from __future__ import annotations

from blackboard import BlackboardError


class SourceDefinitionError(BlackboardError, ValueError):
    """A knowledge source is declared wrongly (its name says which)."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"knowledge source {source!r}: {problem}")


class PreconditionError(SourceDefinitionError):
    """A rule expression does not parse, or names an unknown field.

    The message shows the expression with a caret under the problem.
    """

    def __init__(self, source: str, expression: str, problem: str, position: int | None = None) -> None:
        self.expression = expression
        pointer = ""
        if position is not None:
            pointer = "\n    " + " " * max(0, position) + "^"
        super().__init__(source, f"{problem}\n    {expression}{pointer}")


class DuplicateSourceError(SourceDefinitionError):
    """Two knowledge sources with the same name were registered together."""

    def __init__(self, source: str) -> None:
        super().__init__(source, "a source with this name is already registered; names must be unique")
