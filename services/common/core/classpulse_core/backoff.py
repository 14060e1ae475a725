"""Exponential backoff, the one way every retry loop waits: Kafka clients at start, the stage loop, ingest's
reconnections, the classifier waiting for its model."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Waits of `initial_s`, doubling after each failure up to `max_s`, each scaled by a random factor within
    +-`jitter` (so that clients that failed together do not all retry at the same instant)."""

    initial_s: float
    max_s: float
    jitter: float = 0.0

    def delay_s(self, attempt: int) -> float:
        """The wait before retry number `attempt` (1 for the first)."""
        delay = min(self.max_s, self.initial_s * 2.0 ** min(attempt - 1, 64))  # a stage may retry for days
        return delay * random.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else delay  # noqa: S311 - jitter


class Retries:
    """The failures in a row of one retry loop, and the wait each calls for: `failed()` after a failure, `reset()`
    after a success."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.attempt = 0

    def failed(self) -> float:
        """Counts a failure; the seconds to wait before the next try."""
        self.attempt += 1
        return self.backoff.delay_s(self.attempt)

    def reset(self) -> None:
        self.attempt = 0
