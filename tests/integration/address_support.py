"""Where a test's connections go: a name this process resolves to addresses the test chooses, and addresses that never
answer a connection (for the address races of classpulse_web.happy_eyeballs)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Sequence

import pytest


def resolving_to(
    monkeypatch: pytest.MonkeyPatch, name: str, port: int | None, *addresses: str, later: Sequence[str] = ()
) -> None:
    """This process's resolver answers `addresses` for `name` asked with `port` (None: any port), and `later`, where
    given, from its second answer on; FFmpeg's own (the C library's) still answers as the system does: 127.0.0.1 for
    localhost. As a name whose owner rebinds it between the check and the connection would, or a name with several
    addresses."""
    resolve = socket.getaddrinfo
    answers = 0

    def answering(host, asked_port, *args, **kwargs):
        nonlocal answers
        asked = host.decode() if isinstance(host, bytes) else host  # anyio asks with the name's IDNA bytes
        if asked != name or port not in (None, asked_port):
            return resolve(host, asked_port, *args, **kwargs)
        answers += 1
        given = later if later and answers > 1 else addresses
        return [answer for address in given for answer in resolve(address, asked_port, *args, **kwargs)]

    monkeypatch.setattr(socket, "getaddrinfo", answering)


@contextlib.contextmanager
def silent_addresses(*hosts: str, port: int = 0) -> Iterator[int]:
    """`hosts` never answer a connection to the port yielded (`port`, or a free one): as a camera that is off behind a
    firewall dropping packets, not refusing them (127.0.0.x with nothing listening refuses at once). Each is a listener
    whose queue of connections is full (one from here, never accepted), so the kernel drops a new connection's SYN."""
    with contextlib.ExitStack() as sockets:
        for host in hosts:
            port = sockets.enter_context(socket.create_server((host, port), backlog=0)).getsockname()[1]
            sockets.enter_context(socket.create_connection((host, port), timeout=2))
        yield port
