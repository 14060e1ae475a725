"""A host's checked addresses raced as RFC 8305 has a client connect (classpulse_web.happy_eyeballs): in
the resolver's order with the families alternating, the first connection handed over, every other one closed, none
left for the garbage collector."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings

import httpcore
import pytest

from classpulse_ingest import egress
from classpulse_web import happy_eyeballs
from classpulse_web.happy_eyeballs import interleaved

pytestmark = pytest.mark.unit


def test_a_hosts_addresses_are_raced_in_the_resolvers_order_the_families_alternating():
    """RFC 8305's order: a host whose IPv6 addresses all come first, and are all unreachable, has its IPv4 one tried
    second, not after every IPv6 one."""
    assert interleaved(["2001:db8::1", "2001:db8::2", "2001:db8::3", "10.20.0.7"]) == ["2001:db8::1", "10.20.0.7", "2001:db8::2", "2001:db8::3"]
    assert interleaved(["10.20.0.7", "10.20.0.8", "2001:db8::1"]) == ["10.20.0.7", "2001:db8::1", "10.20.0.8"]
    assert interleaved(["10.20.0.8", "10.20.0.7"]) == ["10.20.0.8", "10.20.0.7"]


@pytest.mark.anyio
async def test_the_connection_that_won_is_handed_over_and_one_that_connected_as_well_is_closed(monkeypatch):
    """Two addresses that both take a connection, both attempts under way at once (no stagger): the caller gets the
    winner's connection, still open, and the other is closed by the race itself, not left to the garbage collector
    (which would warn of an unclosed transport)."""
    monkeypatch.setattr(happy_eyeballs, "CONNECT_STAGGER_S", 0.0)
    gc.collect()  # what earlier tests left is collected before the warnings are recorded
    with socket.create_server(("127.0.0.1", 0)) as first:
        port = first.getsockname()[1]
        with socket.create_server(("127.0.0.2", port)) as second, warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            first.settimeout(2)
            second.settimeout(2)
            address, _reader, writer = await egress.first_opened(["127.0.0.1", "127.0.0.2"], port, 2.0)
            await asyncio.sleep(0.1)  # the loser's transport closes on the loop's next turns
            gc.collect()
            accepted = {host: server.accept()[0] for host, server in (("127.0.0.1", first), ("127.0.0.2", second))}
    with accepted[address] as winners_peer, accepted[next(a for a in accepted if a != address)] as losers_peer:
        winners_peer.settimeout(2)
        losers_peer.settimeout(2)
        writer.write(b"still connected")
        await writer.drain()
        assert winners_peer.recv(64) == b"still connected"
        assert losers_peer.recv(64) == b""  # closed from our side
        writer.close()
    assert [w for w in warned if issubclass(w.category, ResourceWarning)] == []


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.anyio
async def test_a_connection_that_succeeded_after_the_winner_is_closed():
    """The first attempt connects only as the second (started a stagger later) does: both succeed, the second first.
    It is handed over; the first, which the caller never sees, is closed, not leaked."""
    slow, quick = _Stream(), _Stream()
    second_connected = asyncio.Event()

    async def connect_slowly() -> httpcore.AsyncNetworkStream:
        await second_connected.wait()
        return slow

    async def connect_quickly() -> httpcore.AsyncNetworkStream:
        second_connected.set()
        return quick

    assert await happy_eyeballs.first_connected([connect_slowly, connect_quickly], 2.0, _Stream.aclose) is quick
    assert slow.closed and not quick.closed


@pytest.mark.anyio
async def test_a_host_none_of_whose_addresses_connects_fails_as_one_connection_does():
    """Every address refusing: the last one's error, as a single address's; time running out: TimeoutError (the API's
    deliveries raise httpx's ConnectTimeout for it)."""
    refusals = [httpcore.ConnectError("refused 1"), httpcore.ConnectError("refused 2")]

    async def refused() -> httpcore.AsyncNetworkStream:
        raise refusals.pop(0)

    async def silent() -> httpcore.AsyncNetworkStream:
        await asyncio.sleep(60)
        raise AssertionError("the race's time ran out long before")

    with pytest.raises(httpcore.ConnectError, match="refused 2"):
        await happy_eyeballs.first_connected([refused, refused], 2.0, _Stream.aclose, failures=(httpcore.ConnectError,))
    with pytest.raises(TimeoutError):
        await happy_eyeballs.first_connected([silent, silent], 0.5, _Stream.aclose)
