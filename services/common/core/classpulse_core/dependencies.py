"""What a stage raises when a dependency it needs is down: the stage loop (`classpulse_stream.stage`) retries the
batch, and the Redis attempt ledger (`classpulse_store.attempts`) raises it too, so it lives below both."""

from __future__ import annotations

import re

REDIS_REFUSES_WRITES = re.compile(r"\b(MISCONF|MASTERDOWN|NOREPLICAS)\b")
"""Redis refusing every write for a while, with these codes in a plain error reply: its disk failing (MISCONF), a
replica whose primary is away (MASTERDOWN), a primary no replica follows (NOREPLICAS, min-replicas-to-write). An
outage to wait out, not a bad message or request."""


class DependencyUnavailable(Exception):
    """A dependency the stage needs is down or too slow; the batch will be retried later, not dead-lettered."""

    def __init__(self, dependency: str, detail: str, state: str = "unavailable") -> None:
        super().__init__(f"{dependency} {state}: {detail}")
        self.dependency = dependency
