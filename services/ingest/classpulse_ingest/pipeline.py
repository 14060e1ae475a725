"""What every ingest entry point (the service and the `publish` command) shares: the bounded buffer, the Kafka
sender, the encoder, the class quotas and the proxy HTTP(S) streams are read through, wired once."""

from __future__ import annotations

from classpulse_core.schemas import CameraKind
from classpulse_ingest.buffer import FrameBuffer
from classpulse_ingest.egress import StreamEgressProxy
from classpulse_ingest.publisher import FramePublisher, new_source_id
from classpulse_ingest.ratelimit import Quotas, TokenBuckets
from classpulse_ingest.runner import Continuation, SourceRunner
from classpulse_ingest.sender import KafkaSender, make_frame_producer
from classpulse_ingest.settings import IngestSettings
from classpulse_ingest.source_store import Lease
from classpulse_ingest.video import SourceSpec
from classpulse_store.redis_clients import redis_client
from classpulse_store.registry import class_key


class Pipeline:
    def __init__(self, settings: IngestSettings, client_id: str) -> None:
        self.settings = settings
        self.redis = redis_client(settings, decode_responses=True)
        self.buffer = FrameBuffer(settings.buffer_max_frames, settings.buffer_max_bytes)
        producer = make_frame_producer(settings.kafka, client_id, settings.kafka_block_ms, settings.kafka_delivery_timeout_ms)
        self.sender = KafkaSender(producer, settings.kafka.frames_topic, self.buffer, settings.in_flight_max_bytes).start()
        self.publisher = FramePublisher(self.buffer, settings.jpeg_quality, settings.max_frame_side)
        self.quotas = Quotas(settings, TokenBuckets(self.redis))
        self.egress = StreamEgressProxy(
            settings.source_allowed_networks, settings.source_allowed_schemes, settings.stream_open_timeout_ms / 1000,
            verify_rtsps=settings.rtsps_verify_certificates,
        ).start()

    def is_registered(self, class_id: str) -> bool:
        return bool(self.redis.exists(class_key(class_id)))

    def runner(
        self,
        spec: SourceSpec,
        class_id: str,
        fps: float,
        source_id: str | None = None,
        session_id: str | None = None,
        realtime: bool = True,
        camera_kind: CameraKind = "room",
        started_at_ms: int | None = None,
        continuation: Continuation | None = None,
        lease: Lease | None = None,
    ) -> SourceRunner:
        return SourceRunner(
            spec,
            class_id,
            source_id or new_source_id(spec.kind.value),
            fps,
            self.settings,
            self.publisher,
            self.quotas,
            self.egress,
            session_id=session_id,
            realtime=realtime,
            camera_kind=camera_kind,
            started_at_ms=started_at_ms,
            continuation=continuation,
            lease=lease,
        )

    def close(self, drain_timeout_s: float) -> None:
        self.sender.close(drain_timeout_s)
        self.redis.close()
        self.egress.close()
