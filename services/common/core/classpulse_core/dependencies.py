"""What a stage raises when a dependency it needs is down: the stage loop (`classpulse_stream.stage`) retries the
batch, and the Redis attempt ledger (`classpulse_store.attempts`) raises it too, so it lives below both."""

from __future__ import annotations


class DependencyUnavailable(Exception):
    """A dependency the stage needs is down or too slow; the batch will be retried later, not dead-lettered."""

    def __init__(self, dependency: str, detail: str, state: str = "unavailable") -> None:
        super().__init__(f"{dependency} {state}: {detail}")
        self.dependency = dependency
