"""What the demo waits on: the range of capture times `publish` reports, out to whole seconds, on the stack the
environment names; and what it says when frames are missing."""

from __future__ import annotations

import pytest

from classpulse_demo.run import capture_range, shortfall, stack_component
from classpulse_devstack.config import DevstackConfig

pytestmark = pytest.mark.unit

START_MS = 1_700_000_000_250


def _published(first_ms: int, last_ms: int, frames: int = 120, **status: object) -> dict:
    return {
        "source_id": "file-abc",
        "frames": frames,
        "first_captured_at_ms": first_ms,
        "last_captured_at_ms": last_ms,
        "frames_dropped": {},
        **status,
    }


@pytest.mark.parametrize("fps", [0.5, 2, 4, 7.5, 25, 30])
@pytest.mark.parametrize("frames", [1, 30, 120, 3601])
@pytest.mark.parametrize("offset_ms", [0, 1, 250, 999])
def test_the_range_holds_the_second_of_every_frame_and_no_whole_second_more(fps, frames, offset_ms):
    """Frames stamped on a video's own timeline from any instant, as ingest stamps a file read faster than real time
    (the case of issue 18: 4 frames/s, 120 frames, whose stamps run 30 s ahead of the clock)."""
    captured = [START_MS - 250 + offset_ms + int(n * 1000 / fps) for n in range(frames)]
    start_ms, end_ms = capture_range(_published(min(captured), max(captured), frames))
    seconds = {t - t % 1000 for t in captured}  # the aggregator adds each frame to the second it was captured in
    assert start_ms == min(seconds) and start_ms <= min(captured)
    assert max(seconds) <= end_ms < max(captured) + 1000 and end_ms % 1000 == 0


def test_whole_seconds_stay_put():
    assert capture_range(_published(1_700_000_000_000, 1_700_000_030_000)) == (1_700_000_000_000, 1_700_000_030_000)


def test_the_shortfall_says_what_is_missing_and_where_it_went():
    published = _published(START_MS, START_MS + 29_750, frames_dropped={"class_quota": 2})
    message = shortfall(published, 12, {"classpulse.frames.dlq": 3, "classpulse.faces.dlq": 1}, 300)
    assert message.startswith("timed out, no new frame counted for 300 s: the API counts 12 of the 120 frames source file-abc")
    assert "108 missing" in message
    assert "4 dead-lettered (classpulse.faces.dlq: 1, classpulse.frames.dlq: 3)" in message
    assert "104 neither counted nor dead-lettered" in message
    assert "ingest dropped frames before Kafka (class_quota: 2)" in message


def test_nothing_dead_lettered_is_said_too():
    message = shortfall(_published(START_MS, START_MS + 29_750), 119, {}, 60)
    assert "1 missing; 0 dead-lettered; 1 neither counted nor dead-lettered" in message
    assert "dropped" not in message


def test_the_demo_finds_a_stack_moved_by_a_port_offset(tmp_path):
    config = DevstackConfig.from_env({"CLASSPULSE_DEVSTACK_PORT_OFFSET": "200", "CLASSPULSE_DEVSTACK_RUN_DIR": str(tmp_path)})
    assert stack_component(config, "api").address == "http://127.0.0.1:8200"
    ingest_env = stack_component(config, "ingest").env
    assert ingest_env["CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9292"
    assert ingest_env["CLASSPULSE_REDIS_URL"] == "redis://127.0.0.1:6579/0"
