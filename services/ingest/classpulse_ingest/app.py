"""Ingest's HTTP side: frames posted by students' browsers and services, the student page, student tokens, the
sources of the deployment (start, stop, state; run by whichever replica holds each one), plus health and metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from classpulse_ingest import sources_api, student_page, uploads
from classpulse_ingest.accounting import SourceTally
from classpulse_ingest.manager import FINISHED_KEPT, SourceManager
from classpulse_ingest.pipeline import Pipeline
from classpulse_ingest.settings import IngestSettings
from classpulse_ingest.source_store import SourceStore
from classpulse_ingest.video import SourceKind
from classpulse_store.redis_clients import async_redis_client, redis_client
from classpulse_web.keystore import KeyStore
from classpulse_web.webapp import install_common


def create_app(settings: IngestSettings) -> FastAPI:
    pipeline = Pipeline(settings, "classpulse-ingest-http")
    client = async_redis_client(settings, decode_responses=True)
    sources_client = redis_client(settings, decode_responses=True)
    store = SourceStore(sources_client, FINISHED_KEPT, settings.replicas_to_wait_for(), settings.redis_wait_timeout_ms)
    manager = SourceManager(settings, pipeline, store)
    publishes = uploads.ShieldedPublishes()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        manager.start()
        yield
        # The requests in progress had their part of the budget (uvicorn's graceful shutdown, which then cancels them);
        # the frames of uploads that recorded their answers are queued before the Kafka sender closes; the sources get
        # the rest.
        ends_at = time.monotonic() + settings.shutdown_budget_s - settings.requests_shutdown_s
        await publishes.finished()
        await asyncio.to_thread(manager.shut_down, ends_at - time.monotonic())
        sources_client.close()
        await client.aclose()

    app = FastAPI(title="ClassPulse ingest", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.pipeline = pipeline
    app.state.redis = client
    app.state.keys = KeyStore(client)
    app.state.sources = manager
    app.state.upload_tally = SourceTally(SourceKind.UPLOAD.value)
    app.state.upload_slots = asyncio.Semaphore(settings.upload_max_concurrent)
    app.state.upload_publishes = publishes

    async def ready() -> tuple[bool, str]:
        topic = settings.kafka.frames_topic
        try:
            await client.ping()
            partitions = await asyncio.wait_for(asyncio.to_thread(pipeline.sender.producer.partitions_for, topic), 3.0)
        except Exception as exc:  # timeouts and every Kafka or Redis error mean the same here: not ready
            return False, f"kafka or redis: {exc!r}"
        return bool(partitions), f"{topic}: {len(partitions or ())} partitions; redis reachable"

    # The largest body any route takes: a frame in a multipart form (the JSON routes' requests are far smaller).
    install_common(app, "ingest", ready, settings.max_upload_bytes + uploads.MULTIPART_OVERHEAD_BYTES)
    for module in (uploads, sources_api, student_page):
        app.include_router(module.router)
    return app
