"""`python -m classpulse_detector`: consume frames, publish face crops."""

from __future__ import annotations

import cv2

from classpulse_core.schemas import Frame
from classpulse_detector.settings import DetectorSettings
from classpulse_detector.stage import STAGE, DetectFaces
from classpulse_store.attempts import RedisAttempts
from classpulse_store.redis_clients import redis_client
from classpulse_store.registry import ClassDirectory
from classpulse_stream.service import run_stage
from classpulse_stream.stage import StageConfig


def main() -> None:
    settings = DetectorSettings()
    cv2.setNumThreads(settings.opencv_threads)
    detectors = settings.tracking_detectors()
    run_stage(
        settings,
        StageConfig(STAGE, settings.kafka.frames_topic, settings.kafka.dead_letter_suffix),
        Frame,
        lambda _stop: DetectFaces(
            detectors,
            ClassDirectory(redis_client(settings)),
            settings.kafka,
            settings.emotion_enabled,
        ),
        settings.http_port,
        max_poll_records=16,
        # A frame that kills the detector (a decoder's crash in native code) must not crash-loop it: its attempts
        # are counted where a restart finds them.
        attempts=RedisAttempts(redis_client(settings), STAGE),
    )


if __name__ == "__main__":
    main()
