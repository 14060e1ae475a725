"""`python -m classpulse_ingest publish`: publish one source into the running pipeline and return when it ends.

Prints one JSON line: the source's final status (state, reason, frames acknowledged by Kafka, frames dropped by
reason, the earliest and latest capture times of its frames: the range over which the API counts them). Exits 1 if
the source failed, with the reason on that line, and at once if `--source-id` names a source of the class that the
ingest service runs (`POST /v1/classes/{id}/sources`): a source id is one camera.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import cast, get_args

from classpulse_core.lifecycle import StopSignal
from classpulse_core.schemas import CameraKind
from classpulse_ingest.pipeline import Pipeline
from classpulse_ingest.publisher import RUN_SEQUENCE_BLOCK, new_source_id, reserve_sequences
from classpulse_ingest.runner import Continuation, SourceState, SourceStatus
from classpulse_ingest.settings import IngestSettings
from classpulse_ingest.source_store import StoredSource, record_key
from classpulse_ingest.video import SourceSpec

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--class", dest="class_id", required=True, help="class id the frames belong to")
    parser.add_argument(
        "--source", required=True, help="video file, folder of images, webcam index (0) or rtsp:// http(s):// URL"
    )
    parser.add_argument("--fps", type=float, default=None, help="frames per second to sample (default: CLASSPULSE_DEFAULT_FPS)")
    parser.add_argument("--session", default=None, help="session (lesson) id, if one is running")
    parser.add_argument(
        "--source-id", default=None,
        help="default: a new id for this run; a run under an id used before continues its frame numbers",
    )
    parser.add_argument(
        "--camera-kind",
        choices=get_args(CameraKind),
        default="room",
        help="what the camera shows: room (several students in one place, every face counts; the default), gallery (a "
        "video call's gallery or screen share of students' tiles, every face counts) or personal (one student)",
    )
    parser.add_argument(
        "--no-realtime",
        dest="realtime",
        action="store_false",
        help="publish a recording as fast as the class quota allows instead of at its own pace",
    )


def publish_source(settings: IngestSettings, args: argparse.Namespace, stop: StopSignal) -> SourceStatus:
    fps = args.fps or settings.default_fps
    if not 0 < fps <= settings.max_source_fps:
        raise SystemExit(f"--fps must be above 0 and at most {settings.max_source_fps:g}")
    pipeline = Pipeline(settings, "classpulse-ingest")
    try:
        if not pipeline.is_registered(args.class_id):
            # Fail fast: the detector would dead-letter every frame of a class that is not registered.
            raise SystemExit(f"class {args.class_id!r} is not registered: create it first (POST /v1/classes on the API)")
        spec = SourceSpec(args.source)
        if args.source_id:
            _refuse_a_service_source(pipeline, args.class_id, args.source_id)
        source_id = args.source_id or new_source_id(spec.kind.value)
        # A run again under the same id (after a crash, a lesson's second part) numbers its frames after every number
        # an earlier run could have used: the same numbers in the same minute would be counted once downstream.
        first_sequence = reserve_sequences(pipeline.redis, args.class_id, source_id, RUN_SEQUENCE_BLOCK)
        runner = pipeline.runner(
            spec, args.class_id, fps, source_id, args.session, realtime=args.realtime, camera_kind=args.camera_kind,
            continuation=Continuation(first_sequence),
        ).start()
        while not runner.wait(0.2):
            if stop.is_set:
                runner.stop()
    finally:
        # Acknowledgements are counted as they arrive: the summary is final only once the sender has drained.
        pipeline.close(DRAIN_TIMEOUT_S)
    status = runner.status()
    log.info("source finished", extra=status.model_dump(mode="json"))
    return status


def _refuse_a_service_source(pipeline: Pipeline, class_id: str, source_id: str) -> None:
    """A source id is one camera: the aggregator holds each source's count of students on camera until its next frame,
    so a run and a source of the service under one id would overwrite each other's count, frame after frame (their
    frame numbers no longer clash: both reserve them from the same counter). Whatever its state: one ended or stopped
    may be started again."""
    fields = cast(dict[str, str], pipeline.redis.hgetall(record_key(source_id)))  # the client decodes responses
    if fields and (stored := StoredSource.from_hash(fields)).status["class_id"] == class_id:
        raise SystemExit(
            f"--source-id {source_id!r} is a source of class {class_id!r} that the ingest service runs (state: "
            f"{stored.status['state']}): publish under another id, or without --source-id for a new one"
        )


def main(settings: IngestSettings, args: argparse.Namespace) -> None:
    status = publish_source(settings, args, StopSignal().install())
    # "frames" is what earlier versions printed (and the demo reads): frames acknowledged by Kafka.
    print(json.dumps({**status.model_dump(mode="json"), "frames": status.frames_published}), flush=True)
    if status.state == SourceState.FAILED:
        raise SystemExit(1)
