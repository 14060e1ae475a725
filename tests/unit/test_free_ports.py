"""The tests' servers get ports no outbound connection can take between the probe and their bind: under the kernel's
ephemeral range, and free when handed out (tests/free_ports.py)."""

from __future__ import annotations

import itertools
import random
import socket

import pytest

from free_ports import LOWEST, _ephemeral_low, free_port

pytestmark = pytest.mark.unit


def test_a_free_port_lies_under_the_ephemeral_range_and_can_be_bound():
    ports = {free_port() for _ in range(20)}
    assert all(LOWEST <= port < _ephemeral_low() for port in ports)
    assert len(ports) > 1  # drawn, not one fixed port every caller would collide on
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports.pop()))


def test_a_port_in_use_is_not_handed_out(monkeypatch):
    real_randrange = random.randrange
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        taken.listen()
        # The busy port drawn twice, then real draws: a fixed third port could be another running test's.
        draws = itertools.chain([busy, busy], iter(lambda: real_randrange(LOWEST, 65536), None))
        monkeypatch.setattr("free_ports.random.randrange", lambda low, high: next(draws))
        monkeypatch.setattr("free_ports._ephemeral_low", lambda: 65536)
        assert free_port() != busy
