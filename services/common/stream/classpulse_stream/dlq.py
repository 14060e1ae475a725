"""`python -m classpulse_stream.dlq --topic classpulse.frames.dlq [--since-ms EPOCH_MS]`: replay a dead-letter
topic into its source topic, after the fix that makes its letters processable again.

Every letter carries its message's original key and bytes (see stage.py); they are produced again, unchanged, to the
letter's origin topic, which must be the dead-letter topic's source (a letter naming any other topic is skipped: its
origin is data, not a destination to trust). Letters whose bytes were truncated (too large to keep whole) cannot be
replayed and are counted. The topic is read from its beginning (or from --since-ms) to its end as it was when the
command started, without a consumer group: running it twice replays twice, which the pipeline's idempotent sink
absorbs. Image dead-letter topics keep 10 minutes: replay soon after the fix. Runs in any service image (Kafka
settings from the same CLASSPULSE_KAFKA_* environment).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from classpulse_core.schemas import DeadLetter, SchemaError
from classpulse_core.settings import KafkaSettings
from classpulse_stream.kafka import make_consumer, make_producer


@dataclass
class Replayed:
    replayed: int = 0
    truncated: int = 0
    foreign: int = 0
    unreadable: int = 0


def replay(consumer: KafkaConsumer, producer: KafkaProducer, topic: str, suffix: str, since_ms: int | None) -> Replayed:
    """Produce every letter of `topic` (from `since_ms`, when given) to its source topic; wait until all are acked."""
    source = topic.removesuffix(suffix)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if source == topic or not partitions:
        raise SystemExit(f"{topic!r} is not a dead-letter topic (…{suffix}) with partitions")
    consumer.assign(partitions)
    ends = consumer.end_offsets(partitions)
    starts = consumer.offsets_for_times(dict.fromkeys(partitions, since_ms)) if since_ms is not None else {}
    for tp in partitions:
        if since_ms is None:
            consumer.seek_to_beginning(tp)
        else:  # no letter from since_ms on: nothing to read in that partition
            consumer.seek(tp, starts[tp].offset if starts.get(tp) else ends[tp])
    counts, sends = Replayed(), []
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        for records in consumer.poll(timeout_ms=1000).values():
            for record in records:
                if record.offset >= ends[TopicPartition(record.topic, record.partition)]:
                    continue  # written after the start: a letter of the replay itself, or of live traffic
                try:
                    letter = DeadLetter.decode(record.value)
                except SchemaError:
                    counts.unreadable += 1
                    continue
                if letter.origin_topic != source:
                    counts.foreign += 1
                elif letter.value is None or "truncated to its first" in letter.reason:
                    counts.truncated += 1
                else:
                    sends.append(producer.send(source, key=letter.key, value=letter.value))
                    counts.replayed += 1
    producer.flush(timeout=60)
    failed = [send for send in sends if send.failed()]
    if failed:
        raise SystemExit(f"{len(failed)} of {len(sends)} replayed messages were not acknowledged: {failed[0].exception!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classpulse_stream.dlq", description=__doc__.split("\n\n")[0])
    parser.add_argument("--topic", required=True, help="the dead-letter topic, e.g. classpulse.frames.dlq")
    parser.add_argument("--since-ms", type=int, default=None, help="only letters written from this epoch ms on")
    args = parser.parse_args(argv)
    settings = KafkaSettings()
    consumer = make_consumer(settings, None, [], client_id="classpulse-dlq-replay")
    producer = make_producer(settings, "classpulse-dlq-replay")
    try:
        counts = replay(consumer, producer, args.topic, settings.dead_letter_suffix, args.since_ms)
    finally:
        producer.close(timeout=10)
        consumer.close()
    print(f"{args.topic}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
