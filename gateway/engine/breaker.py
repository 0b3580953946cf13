"""Circuit breaker per destination: closed → open after N consecutive failures → after
``reset_after`` seconds half-open (one trial attempt) → closed on success, open on failure."""

from __future__ import annotations

import time
from enum import StrEnum

from gateway.config import BreakerPolicy


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at: float | None = None
        self.trial_in_flight = False

    def restore(self, state: str, failures: int, opened_at: float | None) -> None:
        self.state = BreakerState(state)
        self.failures = failures
        self.opened_at = opened_at
        if self.state is BreakerState.HALF_OPEN:  # a trial cut short by a restart
            self.state = BreakerState.OPEN

    def capacity(self, wanted: int, now: float | None = None) -> int:
        """How many attempts may start now (0 while open; 1 trial when half-open)."""
        now = time.time() if now is None else now
        if self.state is BreakerState.OPEN:
            # an open breaker without its opening time (a bad restore) is treated as just opened
            opened_at = self.opened_at if self.opened_at is not None else now
            self.opened_at = opened_at
            if now - opened_at < self.policy.reset_after:
                return 0
            self.state = BreakerState.HALF_OPEN
            self.trial_in_flight = False
        if self.state is BreakerState.HALF_OPEN:
            if self.trial_in_flight:
                return 0
            return min(wanted, 1)
        return wanted

    def started(self, count: int) -> None:
        if self.state is BreakerState.HALF_OPEN and count:
            self.trial_in_flight = True

    def retry_in(self, now: float | None = None) -> float:
        """Seconds until an open breaker lets a trial through."""
        if self.state is not BreakerState.OPEN or self.opened_at is None:
            return 0.0
        now = time.time() if now is None else now
        return max(0.0, self.policy.reset_after - (now - self.opened_at))

    def success(self) -> bool:
        """Record a success; True when the state changed."""
        changed = self.state is not BreakerState.CLOSED
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = None
        self.trial_in_flight = False
        return changed

    def failure(self, now: float | None = None) -> bool:
        """Record a transport-level failure; True when the state changed."""
        now = time.time() if now is None else now
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.failures >= self.policy.failures
        ):
            self.state = BreakerState.OPEN
            self.opened_at = now
            self.trial_in_flight = False
            return True
        return False
