"""Stopping on SIGTERM/SIGINT: handlers only set a flag; loops check it and finish their current batch."""

from __future__ import annotations

import signal
import threading


class StopSignal:
    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> StopSignal:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._event.set())
        return self

    def set(self) -> None:
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on stop; True when stopping."""
        return self._event.wait(seconds)
