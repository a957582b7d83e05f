"""Errors of the controller, under the project's one root error."""

from __future__ import annotations

from typing import Any

from blackboard import Blackboard, BlackboardError


class ControllerError(BlackboardError):
    """The controller was configured or used wrongly."""


class ConfigurationError(ControllerError, ValueError):
    """A controller setting is invalid (the message names it)."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"invalid controller setting {setting}: {problem}")


class ContributionError(ControllerError, TypeError):
    """An action returned something that is not a contribution."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        super().__init__(f"knowledge source {source!r} returned a malformed contribution: {problem}")


class ExecutorError(ControllerError, RuntimeError):
    """An executor could not run an action: its worker died, or the action could not be sent there."""


def blackboard_of(value: Any) -> Blackboard:
    """``value`` if it is a :class:`~blackboard.Blackboard`, else a ConfigurationError naming its type."""
    if not isinstance(value, Blackboard):
        raise ConfigurationError("blackboard", f"expected a Blackboard, got {type(value).__name__}")
    return value
