"""Backpressure against a Kafka broker of the test's own (free ports, data under tmp): frozen (slow) and then stopped
(down). Capture must never block, memory must stay within the buffer's bounds, the oldest frames are dropped on
purpose and counted, and every frame ends up either acknowledged or dropped for a stated reason."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import numpy as np
import pytest

from classpulse_ingest.accounting import SourceTally
from classpulse_ingest.app import create_app
from classpulse_ingest.pipeline import Pipeline
from classpulse_ingest.publisher import FrameIdentity
from classpulse_web.auth import Role, new_key
from ingest_support import (  # noqa: F401 (kafka_up, make_class and private_kafka are fixtures)
    ingest_settings,
    kafka_up,
    make_class,
    private_kafka,
    wait_until,
    write_video,
)

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
# Noise compresses badly: each frame is about 150 KB of JPEG, so a few make a megabyte.
NOISE = np.random.default_rng(7).integers(0, 255, (480, 640, 3), np.uint8)


@pytest.fixture
def pipeline(infra, kafka_up):
    stack, _ = kafka_up
    settings = ingest_settings(
        infra,
        stack.config.kafka_bootstrap,
        "classpulse.frames",
        buffer_max_frames=50,
        buffer_max_bytes=MIB,
        in_flight_max_bytes=MIB,
        kafka_block_ms=1000,
        kafka_delivery_timeout_ms=3000,
    )
    made = Pipeline(settings, "test-backpressure")
    made.sender.producer.partitions_for("classpulse.frames")  # connected, with metadata, before the clock starts
    yield made
    made.close(1)


def rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Feed:
    """A live source's capture side: frames at a steady rate, timing every hand-over to the buffer."""

    def __init__(self, pipeline: Pipeline, class_id: str) -> None:
        self.pipeline = pipeline
        self.class_id = class_id
        self.tally = SourceTally("stream")
        self.sent = 0
        self.slowest_put_s = 0.0
        self.most_buffered_bytes = 0
        self.most_in_flight_bytes = 0

    def run(self, seconds: float, fps: float = 40.0) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            identity = FrameIdentity(self.class_id, "camera", self.sent, int(time.time() * 1000))
            started = time.monotonic()
            self.pipeline.publisher.publish(NOISE, identity, self.tally)
            self.slowest_put_s = max(self.slowest_put_s, time.monotonic() - started)
            self.sent += 1
            self.most_buffered_bytes = max(self.most_buffered_bytes, self.pipeline.buffer.depth[1])
            self.most_in_flight_bytes = max(self.most_in_flight_bytes, self.pipeline.sender.in_flight_bytes)
            time.sleep(1 / fps)

    def accounted(self) -> int:
        return self.tally.published_count + sum(self.tally.dropped_counts().values())


def test_a_frozen_broker_fills_the_window_then_drops_oldest_and_recovers(kafka_up, pipeline, make_class):
    stack, kafka = kafka_up
    feed = Feed(pipeline, make_class())
    feed.run(seconds=1.0, fps=10)
    assert wait_until(lambda: feed.tally.published_count == feed.sent, 15), (feed.sent, feed.tally.dropped_counts())

    broker_pid = stack.status(kafka)[0].pid
    os.kill(broker_pid, signal.SIGSTOP)  # the broker stops answering, connections stay open: Kafka is "slow"
    try:
        feed.run(seconds=6.0)
    finally:
        os.kill(broker_pid, signal.SIGCONT)
    dropped = feed.tally.dropped_counts()
    assert dropped.get("buffer_full", 0) > 0 and dropped.get("delivery_failed", 0) > 0, dropped
    assert feed.slowest_put_s < 0.25  # capture never waited on Kafka
    assert feed.most_buffered_bytes <= MIB and feed.most_in_flight_bytes <= MIB + NOISE.nbytes

    published_before_recovery = feed.tally.published_count
    feed.run(seconds=2.0, fps=10)
    assert wait_until(lambda: feed.accounted() == feed.sent, 20), (feed.sent, feed.accounted(), feed.tally.dropped_counts(), feed.tally.published_count, pipeline.buffer.depth, pipeline.sender.in_flight_bytes, published_before_recovery)
    assert feed.tally.published_count >= published_before_recovery + 10  # frames flow again once Kafka answers


def test_a_stopped_broker_costs_bounded_memory_and_shutdown_never_hangs(kafka_up, pipeline, make_class):
    stack, kafka = kafka_up
    feed = Feed(pipeline, make_class())
    feed.run(seconds=1.0, fps=10)
    assert wait_until(lambda: feed.tally.published_count == feed.sent, 15)
    stack.down(kafka)

    rss_before = rss_bytes()
    sent_before = feed.sent
    feed.run(seconds=8.0, fps=50)
    pushed_bytes = (feed.sent - sent_before) * len(pipeline.publisher.encode(NOISE)[0])
    rss_growth = rss_bytes() - rss_before

    assert pushed_bytes > 40 * MIB  # far more than the bounds...
    assert rss_growth < 25 * MIB, rss_growth / MIB  # ...yet memory grew by at most about the buffer and the window
    assert feed.slowest_put_s < 0.25 and feed.most_buffered_bytes <= MIB
    dropped = feed.tally.dropped_counts()
    assert dropped["buffer_full"] > feed.sent // 2, dropped

    started = time.monotonic()
    pipeline.sender.close(drain_timeout_s=2.0)
    assert time.monotonic() - started < 8.0  # drain time + one blocked send + closing, not forever
    assert feed.accounted() == feed.sent, (feed.sent, feed.tally.published_count, feed.tally.dropped_counts())


@pytest.mark.anyio
async def test_a_recording_reads_ended_only_once_kafka_answered_for_its_frames(kafka_up, infra, make_class, tmp_path):
    """A file is read in milliseconds, Kafka answers later: "ended" is read as the source's final count, so it must
    not be shown while frames are still in flight (it was: 0 of 6 published, now and then, on a busy machine)."""
    stack, kafka = kafka_up
    (tmp_path / "media").mkdir()
    lesson = write_video(tmp_path / "media" / "lesson.avi", "MJPG", frames=6, fps=6)
    settings = ingest_settings(infra, stack.config.kafka_bootstrap, "classpulse.frames", media_dir=tmp_path / "media", kafka_delivery_timeout_ms=30_000)
    app = create_app(settings)
    url = f"/v1/classes/{make_class()}/sources"
    admin_key = new_key()[1]
    admin = {"Authorization": f"Bearer {admin_key}"}
    async with app.router.lifespan_context(app):
        await app.state.keys.install(admin_key, Role.ADMIN, "test admin")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:

            async def read_until_final(source_id: str, polls: int) -> list[dict]:
                seen = []
                for _ in range(polls):
                    seen.append((await client.get(f"/v1/sources/{source_id}", headers=admin)).json())
                    if seen[-1]["state"] in {"ended", "failed", "stopped"}:
                        break
                    await asyncio.sleep(0.1)
                return seen

            first = (await client.post(url, json={"url": str(lesson), "fps": 6, "realtime": False}, headers=admin)).json()
            first_read = await read_until_final(first["source_id"], 200)
            assert first_read[-1]["frames_published"] == 6, str(first_read[-1])  # the topic and its metadata known

            broker_pid = stack.status(kafka)[0].pid
            os.kill(broker_pid, signal.SIGSTOP)
            try:
                frozen = (await client.post(url, json={"url": str(lesson), "fps": 6, "realtime": False}, headers=admin)).json()
                while_frozen = await read_until_final(frozen["source_id"], 15)
            finally:
                os.kill(broker_pid, signal.SIGCONT)
            after = await read_until_final(frozen["source_id"], 200)
    assert [status["state"] for status in while_frozen if status["state"] == "ended"] == [], while_frozen
    assert after[-1]["state"] == "ended" and after[-1]["frames_published"] == 6, after[-1]
