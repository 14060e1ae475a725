"""The hostile inputs of issue 21 on a small count, as `python -m classpulse_reliability hostile` sends them for the
reliability report: each gets its expected outcome (4xx, dead letter, a stalled stage), no 5xx, no process crashes."""

from __future__ import annotations

import pytest

from classpulse_reliability.hostile import HOSTILE_SOURCES, markdown, run_hostile

pytestmark = pytest.mark.faults


def test_every_hostile_input_gets_its_outcome_without_a_5xx_or_a_crash(isolated_stack):
    run = run_hostile(isolated_stack, count=len(HOSTILE_SOURCES))
    print("\n" + markdown(run, "pytest tests/faults/test_hostile_inputs.py"))

    assert run.crashed == []
    for outcome in run.outcomes:
        assert outcome.server_errors == 0, outcome
        assert outcome.ok, outcome
    seen = {outcome.name: outcome.seen for outcome in run.outcomes}
    assert sum(seen[name]["dead letter"] for name in seen if "poison" in name) > 30
    assert all(counts["413"] == len(HOSTILE_SOURCES) for name, counts in seen.items() if "bomb" in name or "16 MiB" in name)
