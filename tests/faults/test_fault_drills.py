"""The same workload through a clean run and through one run per fault, on the isolated stack: every fault must
leave exactly the clean run's class metrics in Redis (frames, faces and the seven emotion sums). Each drill runs on
one class, and at full load (8 classes x 6 students x 2 fps for two minutes; with --full-load, as
`make test-faults` does)."""

from __future__ import annotations

import random

import pytest

from classpulse_reliability.drills import FAULTS, FULL_LOAD, ONE_CLASS, DrillProfile, DrillResult, run_drill
from classpulse_reliability.report import EMOTION_TOLERANCE, differences, markdown

pytestmark = pytest.mark.faults

SEED = random.randrange(1_000_000)
"""A new random moment per fault each session; printed with the report, so a failing run can be replayed."""


@pytest.fixture(scope="module", params=[ONE_CLASS, pytest.param(FULL_LOAD, marks=pytest.mark.full_load)], ids=lambda p: p.name)
def profile(request) -> DrillProfile:
    return request.param


@pytest.fixture(scope="module")
def drill_results(isolated_stack, profile, tmp_path_factory):
    """Filled by the tests in order (clean run first); the report table is printed and written at the end."""
    results: list[DrillResult] = []
    yield results
    if results:
        report = markdown(results, SEED, profile, f"pytest -m faults tests/faults/test_fault_drills.py ({profile.name})")
        path = tmp_path_factory.mktemp("reliability") / f"reliability-report-{profile.name}.md"
        path.write_text(report)
        print(f"\n{report}\n(written to {path})")


@pytest.fixture(scope="module")
def clean_run(isolated_stack, profile, drill_results) -> DrillResult:
    result = run_drill(isolated_stack, profile, None, random.Random(SEED))
    drill_results.append(result)
    return result


def test_clean_run_counts_every_frame(clean_run, profile):
    assert clean_run.redis_frames == clean_run.frames_in == clean_run.frames_classified == profile.frames
    assert clean_run.redis_faces == clean_run.faces_classified > 0
    assert not clean_run.unexpected_exits


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_fault_leaves_the_clean_runs_metrics(fault, profile, isolated_stack, clean_run, drill_results):
    result = run_drill(isolated_stack, profile, fault, random.Random(f"{SEED}-{fault.name}"))
    drill_results.append(result)

    diff = differences(result, clean_run)
    assert result.unexpected_exits == (), f"processes exited on their own: {result.unexpected_exits}"
    assert (result.redis_frames, diff["frames"], diff["faces"]) == (result.frames_in, 0, 0), result
    assert diff["emotions"] <= EMOTION_TOLERANCE, result.totals
    # Every frame was classified, and the faces counted are the faces classified: nothing lost, nothing twice.
    assert result.frames_classified == result.frames_in and result.faces_classified == result.redis_faces
    assert result.recover_s is not None and result.recover_s < 90, result
