"""A free TCP port on 127.0.0.1 for a server a test starts, outside the kernel's ephemeral range.

A port the kernel hands out for `bind(0)` comes from the ephemeral range, the same range every outbound connection
takes its local port from: between the probe closing and the server binding, a Kafka or Redis client's connection
can take it ("address already in use": the ingest replicas' fixture lost three tests so on a full run). A port
below that range is never taken by an outbound connection, so only another server could take it; one is drawn at
random and checked free by binding it."""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10000


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default range starts here


def free_port() -> int:
    """A port on 127.0.0.1 that is free now, drawn from under the ephemeral range (or, where that leaves no room,
    the kernel's own pick)."""
    high = _ephemeral_low()
    for _ in range(100) if high > LOWEST + 1000 else ():
        port = random.randrange(LOWEST, high)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
