"""Retry schedule from a destination's tenacity policy, computed to be *stored*.

The engine does not sleep inside tenacity: it asks the policy's wait strategy how long the
n-th wait is and writes ``next_attempt_at`` to the store, so a restart resumes the schedule.
"""

from __future__ import annotations

import random

import tenacity

from gateway.config import RetryPolicy


class RetrySchedule:
    """Exponential backoff with jitter, a cap and a deadline."""

    def __init__(self, policy: RetryPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._wait = tenacity.wait_exponential_jitter(
            multiplier=policy.initial, max=policy.max, exp_base=policy.multiplier, jitter=0
        )
        self._rng = rng or random.Random()

    def wait_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        state = tenacity.RetryCallState(
            retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={}
        )
        state.attempt_number = attempt
        base = float(self._wait(state))
        return min(self.policy.max, base + self._rng.uniform(0, self.policy.jitter))

    def next_attempt_at(
        self, attempt: int, now: float, deadline_at: float, retry_after: float | None = None
    ) -> float | None:
        """When to try again, or None when the next try would fall past the deadline."""
        wait = self.wait_after(attempt)
        if retry_after is not None:  # the server knows best; the deadline still bounds it
            wait = max(wait, retry_after)
        at = now + wait
        return None if at > deadline_at else at
