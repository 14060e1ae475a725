"""`python -m classpulse_bench.publisher`: the bench's ingest, a process of its own so its CPU can be measured.

Publishes the workload's frames for several classes at once through the services' own producer settings
(`classpulse_stream.kafka.make_producer`), like `classpulse_ingest publish` minus reading and encoding video: the
JPEGs are encoded once, beforehand (the frames are then byte-identical between runs and between the systems
compared). Frame k of class i (of N) is due at start + (k + i / N) / fps, the classes' cameras spread over the frame
interval as independent cameras are, and is stamped captured at that time, so a publisher that falls behind shows as
latency, not as a hidden gap. `--fps 0` publishes as fast as the producer goes (a backlog), stamped at the video's frame rate.

Prints one JSON line: frames sent, seconds, how late the last frame went out, its CPU seconds and peak memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

from classpulse_bench.procstat import peak_rss_bytes
from classpulse_core.logs import configure_logging
from classpulse_core.schemas import Frame
from classpulse_core.settings import KafkaSettings
from classpulse_reliability.workload import Workload
from classpulse_stream.kafka import make_producer

log = logging.getLogger(__name__)


def video_frame(sequence: int, class_index: int, classes: int, window: int) -> int:
    """Which frame of the video class `class_index` (of `classes`) shows at `sequence`. Classes start at different
    points of the video's first `window` frames (i/N of the way in) and loop over them: in lockstep every class's
    picture would change at the same instant, a burst of work no real set of classes produces; this way they still
    show exactly the same `window` frames, each once per loop (the frames the peers are timed on)."""
    return (sequence + round(class_index * window / classes)) % window


def frame_of(workload: Workload, class_id: str, source_id: str, sequence: int, captured_at_ms: int, index: int) -> Frame:
    """Frame `sequence` of a class's source, showing the video's frame `index`."""
    return Frame(
        class_id=class_id,
        source_id=source_id,
        frame_id=f"{source_id}:{sequence}",
        sequence=sequence,
        captured_at_ms=captured_at_ms,
        published_at_ms=int(time.time() * 1000),
        width=workload.width,
        height=workload.height,
        jpeg=workload.jpegs[index],
    )


def publish(workload: Workload, class_ids: list[str], fps: float, frames_per_class: int, run_id: str) -> dict:
    kafka = KafkaSettings()
    producer = make_producer(kafka, "classpulse-bench-publisher")
    started = time.time()
    origin = started if fps > 0 else started - frames_per_class / workload.fps
    window = min(len(workload.jpegs), frames_per_class)
    late_s = 0.0
    for sequence in range(frames_per_class):
        for index, class_id in enumerate(class_ids):
            # Classes' cameras are not in step: class i's frames come i/N of a frame interval after class 0's.
            due = origin + (sequence + index / len(class_ids)) / (fps or workload.fps)
            if fps > 0:
                late_s = max(0.0, time.time() - due)
                time.sleep(max(0.0, due - time.time()))
            # A backlog is stamped on the video's own timeline, as if captured at its frame rate over the seconds
            # before the run (a backlog is in the past): the detector's tracking then scans as often as it would live.
            index_in_video = video_frame(sequence, index, len(class_ids), window)
            frame = frame_of(workload, class_id, f"{run_id}-{class_id}", sequence, int(due * 1000), index_in_video)
            producer.send(kafka.frames_topic, key=frame.key, value=frame.encode())
    producer.flush(timeout=120)
    producer.close(timeout=10)
    return {
        "frames": frames_per_class * len(class_ids),
        "seconds": round(time.time() - started, 3),
        "last_frame_late_s": round(late_s, 3),
        "cpu_s": round(time.process_time(), 3),
        # VmHWM, not getrusage's ru_maxrss: that one counts the parent's pages this process was forked with.
        "peak_rss_mb": round(peak_rss_bytes(os.getpid()) / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m classpulse_bench.publisher", description=__doc__.split("\n")[0])
    parser.add_argument("--workload", type=Path, required=True)
    parser.add_argument("--classes", required=True, help="comma-separated class ids (registered)")
    parser.add_argument("--fps", type=float, required=True, help="frames per second per class; 0: as fast as possible")
    parser.add_argument("--frames", type=int, required=True, help="frames per class")
    parser.add_argument("--run-id", required=True, help="prefix of the source ids, unique per run")
    args = parser.parse_args()
    configure_logging("bench-publisher")
    summary = publish(Workload.load(args.workload), args.classes.split(","), args.fps, args.frames, args.run_id)
    log.info("published", extra=summary)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
