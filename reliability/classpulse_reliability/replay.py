"""`python -m classpulse_reliability.replay`: the drills' ingest publisher, a process of its own so it can be killed.

Publishes a workload's frames for one class at a steady rate through the services' own producer settings
(`classpulse_stream.kafka.make_producer`: idempotent, acks=all), flushing every few frames and then writing a
checkpoint: the next sequence to publish. A publisher killed mid-run and started again with `--resume` goes on from
its checkpoint with the same source id and timeline, so the frames it sent after the last checkpoint are sent a
second time, byte for byte, and the aggregator's dedup makes the result identical to one uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

from classpulse_core.logs import configure_logging
from classpulse_core.settings import KafkaSettings
from classpulse_reliability.workload import FrameSender, Workload
from classpulse_stream.kafka import make_producer

log = logging.getLogger(__name__)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m classpulse_reliability.replay", description=__doc__.split("\n")[0])
    parser.add_argument("--workload", type=Path, required=True, help="a workload file (workload.sample_class_workload)")
    parser.add_argument("--class", dest="class_id", required=True)
    parser.add_argument("--source-id", required=True)
    parser.add_argument("--origin-ms", type=int, required=True, help="capture time of frame 0 (epoch ms)")
    parser.add_argument("--rate", type=float, default=4.0, help="frames published per second")
    parser.add_argument("--checkpoint", type=Path, required=True, help="file holding the next sequence to publish")
    parser.add_argument("--resume", action="store_true", help="start from the checkpoint instead of frame 0")
    parser.add_argument("--flush-every", type=int, default=4, help="frames between flush-and-checkpoint")
    return parser.parse_args()


def _write_checkpoint(path: Path, next_sequence: int) -> None:
    """Atomically (write, then rename): a kill -9 mid-write leaves the previous checkpoint, never half a number."""
    partial = path.with_suffix(".partial")
    partial.write_text(str(next_sequence))
    os.replace(partial, path)


def main() -> None:
    args = _arguments()
    configure_logging("ingest-replay")
    workload = Workload.load(args.workload)
    first = int(args.checkpoint.read_text()) if args.resume and args.checkpoint.exists() else 0
    kafka = KafkaSettings()
    sender = FrameSender(make_producer(kafka, "classpulse-ingest-replay"), kafka.frames_topic)
    started = time.monotonic()
    for sequence in range(first, len(workload.jpegs)):
        time.sleep(max(0.0, started + (sequence - first) / args.rate - time.monotonic()))
        sender.send(workload.frame(sequence, args.class_id, args.source_id, args.origin_ms))
        if (sequence + 1) % args.flush_every == 0 or sequence + 1 == len(workload.jpegs):
            sender.flush()
            _write_checkpoint(args.checkpoint, sequence + 1)
    sender.producer.close(timeout=10)
    summary = {"class_id": args.class_id, "source_id": args.source_id, "first": first, "end": len(workload.jpegs)}
    log.info("replay done", extra=summary)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
