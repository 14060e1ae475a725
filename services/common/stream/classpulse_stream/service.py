"""Start-up and shut-down shared by the stages that consume Kafka: logging, signals, health server, clients."""

from __future__ import annotations

import logging
from collections.abc import Callable

from classpulse_core.lifecycle import StopSignal
from classpulse_core.logs import configure_logging
from classpulse_core.settings import ServiceSettings
from classpulse_stream.health import HealthState, serve_health
from classpulse_stream.kafka import make_consumer, make_producer
from classpulse_stream.stage import AttemptLedger, BatchHandler, M, StageConfig, StageRunner

log = logging.getLogger(__name__)


def run_stage(
    settings: ServiceSettings,
    config: StageConfig,
    schema: type[M],
    build_handler: Callable[[StopSignal], BatchHandler[M]],
    http_port: int,
    max_poll_records: int = 64,
    attempts: AttemptLedger | None = None,
) -> None:
    """Run one stage until SIGTERM; `build_handler` connects the stage's own dependencies before consuming;
    `attempts`: where the stage counts attempts per message (in the process if None)."""
    configure_logging(config.name, settings.log_level)
    log.info("starting", extra={"settings": settings.model_dump(mode="json")})
    stop = StopSignal().install()
    health = HealthState()
    server = serve_health(health, settings.http_host, http_port)
    try:
        handler = build_handler(stop)
        runner = StageRunner(
            config,
            schema,
            handler,
            consumer=make_consumer(
                settings.kafka, f"classpulse-{config.name}", [config.input_topic], max_poll_records=max_poll_records
            ),
            producer=make_producer(settings.kafka, f"classpulse-{config.name}"),
            stop=stop,
            health=health,
            # A handler with a contract to check (the classifier's model) has it checked at start and while running.
            check_contract=getattr(handler, "check_contract", None),
            attempts=attempts,
        )
        runner.run()
    finally:
        server.shutdown()
        log.info("stopped")
