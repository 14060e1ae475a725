"""`python -m classpulse_aggregator`: consume frame results, write class time series to Redis."""

from __future__ import annotations

from classpulse_aggregator.alerts import AlertEvaluator
from classpulse_aggregator.settings import AggregatorSettings
from classpulse_aggregator.stage import STAGE, AggregateResults
from classpulse_aggregator.writer import SeriesWriter
from classpulse_core.schemas import FrameResult
from classpulse_store.redis_clients import redis_client
from classpulse_store.registry import ClassDirectory
from classpulse_stream.service import run_stage
from classpulse_stream.stage import StageConfig


def main() -> None:
    settings = AggregatorSettings()

    def build_handler(_stop: object) -> AggregateResults:
        client = redis_client(settings)
        alerts = AlertEvaluator(
            client, ClassDirectory(client), tuple(settings.alert_rules), settings.alert_window_s, idle_s=settings.alert_idle_s
        )
        writer = SeriesWriter(
            client, settings.resolutions(), settings.dedup_window_s, settings.presence_window_ms, settings.emotion_enabled,
            settings.replicas_to_wait_for(), settings.redis_wait_timeout_ms,
        )
        return AggregateResults(writer, alerts, settings.max_capture_ahead_ms)

    run_stage(
        settings,
        StageConfig(STAGE, settings.kafka.predictions_topic, settings.kafka.dead_letter_suffix),
        FrameResult,
        build_handler,
        settings.http_port,
        max_poll_records=256,
    )


if __name__ == "__main__":
    main()
