"""Redis without a single point of failure: the primary killed -9 while the aggregator counts frames, the sentinels
promote the replica, every client follows, and the class's sums come out exactly as in a run without the fault
(classpulse_reliability.failover)."""

from __future__ import annotations

import os

import pytest

from classpulse_reliability.failover import failover_stack, run

pytestmark = pytest.mark.faults

FRAMES = 400
RATE = 40.0
"""Frames published per second: 10 s of publishing, the primary killed 4 s in."""


@pytest.fixture(scope="module")
def stack():
    offset = os.environ.get("CLASSPULSE_FAULTS_PORT_OFFSET")
    with failover_stack(int(offset) if offset else None) as running:
        yield running


def test_killing_the_primary_under_load_loses_and_doubles_nothing(stack):
    clean = run(stack, FRAMES, RATE, kill_primary=False)
    assert clean.totals["frames"] == FRAMES and clean.totals["faces"] > 0
    assert clean.replica_waits_retried == 0

    failover = run(stack, FRAMES, RATE, kill_primary=True)
    assert failover.totals == clean.totals
    assert failover.failover_s is not None and failover.failover_s < 30, failover
    # The promoted replica has the other one following it at once: counting goes on within seconds of the promotion,
    # not once the killed primary is back as a replica (min-replicas-to-write 1).
    assert failover.counting_again_s is not None and failover.counting_again_s < failover.failover_s + 5, failover
