"""The circuit breaker: stop activating a source that keeps failing.

After ``breaker_threshold`` failures in a row a source's circuit *opens*:
its activations are skipped (and handed to its fallback, if any) for
``breaker_cooldown`` seconds. Then one activation is let through
(*half-open*): a success closes the circuit, a failure opens it again. The
clock is the controller's, so tests can drive it.
"""

from __future__ import annotations

from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    __slots__ = ("threshold", "cooldown", "clock", "failures", "state", "opened_at")

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.failures = 0
        self.state = CLOSED
        self.opened_at = 0.0

    def allows(self) -> bool:
        """May the source run now? (Moves open to half-open once cooled down.)"""
        if self.state == OPEN and self.clock() - self.opened_at >= self.cooldown:
            self.state = HALF_OPEN
        return self.state != OPEN

    def record(self, ok: bool) -> str | None:
        """Count an outcome; returns the new state when it changes."""
        before = self.state
        if ok:
            self.failures = 0
            self.state = CLOSED
        else:
            self.failures += 1
            if self.state == HALF_OPEN or self.failures >= self.threshold:
                self.state = OPEN
                self.opened_at = self.clock()
        return self.state if self.state != before else None
