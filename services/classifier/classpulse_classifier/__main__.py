"""`python -m classpulse_classifier`: consume face crops, classify them on the model server, publish probabilities."""

from __future__ import annotations

from classpulse_classifier.serving_client import EmotionModelClient
from classpulse_classifier.settings import ClassifierSettings
from classpulse_classifier.stage import STAGE, ClassifyFaces
from classpulse_core.schemas import DetectedFaces
from classpulse_store.redis_clients import redis_client
from classpulse_store.registry import ClassDirectory
from classpulse_stream.service import run_stage
from classpulse_stream.stage import StageConfig


def main() -> None:
    settings = ClassifierSettings()

    def build_handler(_stop: object) -> ClassifyFaces:
        client = EmotionModelClient(
            settings.model_server,
            settings.model_name,
            settings.model_signature,
            timeout_s=settings.model_timeout_s,
            version_label=settings.model_version_label or None,
        )
        classes = ClassDirectory(redis_client(settings))
        return ClassifyFaces(
            client, classes, settings.kafka.predictions_topic, settings.max_batch_faces, settings.concurrent_calls,
            settings.emotion_enabled,
        )

    run_stage(
        settings,
        StageConfig(STAGE, settings.kafka.faces_topic, settings.kafka.dead_letter_suffix),
        DetectedFaces,
        build_handler,
        settings.http_port,
        max_poll_records=settings.max_poll_frames,
    )


if __name__ == "__main__":
    main()
