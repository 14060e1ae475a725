"""Hostile input straight onto the isolated stack's real topics: every malformed message goes to `<topic>.dlq` with
the stage, the reason and its origin (topic, partition, offset) and the original bytes; it is counted in
classpulse_dead_letters_total; the stage keeps running and the valid message behind them in the same partition
still reaches Redis."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from classpulse_core.schemas import DeadLetter
from classpulse_core.settings import KafkaSettings
from classpulse_core.timeseries import FRAMES
from classpulse_reliability.hostile_messages import (
    faces_cases,
    frame_cases,
    predictions_cases,
    valid_faces,
    valid_frame,
    valid_result,
)
from classpulse_reliability.scrape import scrape, total
from classpulse_reliability.workload import Workload, class_totals, end_offsets, read_topic, register_class
from classpulse_stream.kafka import make_producer

pytestmark = pytest.mark.faults

TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def hostile_class(isolated_stack) -> str:
    class_id = f"hostile-{uuid.uuid4().hex[:8]}"
    register_class(isolated_stack.url("api"), isolated_stack.admin_key(), class_id, 6)
    return class_id


def _cases_and_valid(stage: str, class_id: str, workload: Workload):
    """(input topic, malformed cases, a valid message for the same partition) of a stage."""
    jpeg, size = workload.jpegs[0], (workload.width, workload.height)
    if stage == "detector":
        cases = frame_cases(class_id, f"nobody-{uuid.uuid4().hex[:6]}", jpeg, *size)
        return "classpulse.frames", cases, valid_frame(class_id, 1, jpeg, *size)
    if stage == "classifier":
        return "classpulse.faces", faces_cases(class_id), valid_faces(class_id, 2)
    return "classpulse.predictions", predictions_cases(class_id), valid_result(class_id, 3)


@pytest.mark.parametrize("stage", ["detector", "classifier", "aggregator"])
def test_malformed_messages_are_dead_lettered_and_the_partition_keeps_flowing(
    stage, isolated_stack, hostile_class, drill_workload
):
    topic, cases, valid = _cases_and_valid(stage, hostile_class, Workload.load(drill_workload))
    dead_letter_topic = f"{topic}.dlq"
    bootstrap = isolated_stack.kafka_bootstrap
    pid = isolated_stack.pid(stage)
    letters_before = end_offsets(bootstrap, dead_letter_topic)
    counted_before = total(scrape(isolated_stack.url(stage)), "classpulse_dead_letters_total")
    frames_before = class_totals(isolated_stack.redis(), hostile_class)[FRAMES]

    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    producer = make_producer(kafka, "hostile-producer")
    key = hostile_class.encode()
    sent = [producer.send(topic, key=key, value=value) for _label, value in cases]
    producer.send(topic, key=valid.key, value=valid.encode())
    producer.flush(timeout=30)
    producer.close()
    origins = {(meta.partition, meta.offset): (label, value) for (label, value), meta in zip(cases, (f.get() for f in sent), strict=True)}

    letters = _wait_for_letters(bootstrap, dead_letter_topic, letters_before, topic, set(origins))
    # The valid message behind the malformed ones, in the same partition, went all the way to Redis.
    _wait_until(lambda: class_totals(isolated_stack.redis(), hostile_class)[FRAMES] == frames_before + 1, "valid frame counted")

    assert set(letters) == set(origins)
    for origin, letter in letters.items():
        label, value = origins[origin]
        assert letter.stage == stage, label
        assert letter.reason and letter.origin_topic == topic, label
        assert letter.key == key, label
        # The original bytes travel with the letter (cut short only where the letter would exceed the broker's limit).
        assert value.startswith(letter.value) and (letter.value == value or "truncated" in letter.reason), label

    def counted() -> float:
        return total(scrape(isolated_stack.url(stage)), "classpulse_dead_letters_total") - counted_before

    # Counted once their batch is committed, a moment after the letters are in the topic.
    _wait_until(lambda: counted() >= len(cases), "dead letters counted")
    assert counted() == len(cases)
    assert isolated_stack.pid(stage) == pid, f"{stage} restarted"
    assert httpx.get(f"{isolated_stack.url(stage)}/healthz", timeout=5).status_code == 200


def _wait_for_letters(bootstrap, topic, since, origin_topic, wanted) -> dict[tuple[int, int], DeadLetter]:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        letters = {}
        for record in read_topic(bootstrap, topic, since):
            letter = DeadLetter.decode(record.value)
            if letter.origin_topic == origin_topic and (letter.origin_partition, letter.origin_offset) in wanted:
                letters[(letter.origin_partition, letter.origin_offset)] = letter
        if len(letters) == len(wanted) or time.monotonic() > deadline:
            return letters
        time.sleep(1.0)


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.5)
