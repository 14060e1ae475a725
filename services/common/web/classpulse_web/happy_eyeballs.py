"""A TCP connection to a host that resolved to several checked addresses, made as RFC 8305 ("Happy Eyeballs") has a
client make one: attempts in the resolver's order with the address families alternating, each started a stagger after
the one before (at once when that one fails) and left running; the first to connect is kept, every other closed. An
address that does not answer (a firewall dropping packets, a dual-stack host whose IPv6 route is down) costs the next
a stagger, not a whole connect timeout. Every client of a checked destination connects so: ingest's RTSP opens and
egress proxy, the API's webhook and xAPI deliveries.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio

CONNECT_STAGGER_S = 0.25  # RFC 8305's "Connection Attempt Delay": the next address is tried if this one is silent

Connection = TypeVar("Connection")


def interleaved(addresses: Sequence[str]) -> list[str]:
    """The resolver's order, the families alternating from the first's (RFC 8305, section 4): a host whose IPv6
    addresses come first, all unreachable, has its IPv4 one tried second, not last."""
    first_family = [address for address in addresses if (":" in address) == (":" in addresses[0])]
    other_family = [address for address in addresses if (":" in address) != (":" in addresses[0])]
    return [address for pair in itertools.zip_longest(first_family, other_family) for address in pair if address]


async def first_connected(
    attempts: Sequence[Callable[[], Awaitable[Connection]]],
    timeout_s: float | None,
    close: Callable[[Connection], Awaitable[object]],
    failures: tuple[type[Exception], ...] = (OSError,),
) -> Connection:
    """The connection of the first of `attempts` (one an address, in `interleaved` order) to succeed, all within
    `timeout_s` (None: no limit). The rest are cancelled once one succeeds; one that succeeded as well is closed with
    `close`. None succeeding: the last attempt's failure (one of `failures`, what a single connection would raise), or
    TimeoutError if the time ran out first."""
    connected: list[Connection] = []
    failed: list[Exception] = []

    async def attempt(connect: Callable[[], Awaitable[Connection]], ended: anyio.Event) -> None:
        try:
            connected.append(await connect())
            race.cancel_scope.cancel()
        except failures as failure:
            failed.append(failure)
        finally:
            ended.set()

    handed_on = 0  # of `connected`, the first (the winner) once it is returned
    try:
        with anyio.move_on_after(timeout_s) as time_limit:
            async with anyio.create_task_group() as race:
                for connect in attempts:
                    ended = anyio.Event()
                    race.start_soon(attempt, connect, ended)
                    with anyio.move_on_after(CONNECT_STAGGER_S):
                        await ended.wait()
        if not connected:
            if time_limit.cancelled_caught or not failed:
                raise TimeoutError(f"no address took a connection within {timeout_s} s")
            raise failed[-1]
        handed_on = 1
        return connected[0]
    finally:
        # Shielded: a connection that is not handed on is closed even when the caller is cancelled meanwhile.
        with anyio.CancelScope(shield=True):
            for connection in connected[handed_on:]:
                await close(connection)
