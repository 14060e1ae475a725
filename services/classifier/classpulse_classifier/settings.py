from __future__ import annotations

from pydantic import Field

from classpulse_core.settings import RedisSettings


class ClassifierSettings(RedisSettings):
    """Redis: the class registry, read for every batch so that a class switched to presence-only gets no emotion
    inferred from that moment on."""

    http_port: int = Field(8003, description="CLASSPULSE_HTTP_PORT")
    model_server: str = Field(
        "127.0.0.1:8500",
        description="CLASSPULSE_MODEL_SERVER: TF Serving gRPC host:port (dns:///<headless service>:8500 spreads calls over all replicas)",
    )
    model_name: str = Field("emotion", description="CLASSPULSE_MODEL_NAME")
    # `stable` unless told otherwise: a call that names no label gets the highest version loaded, which during a
    # rollout is the canary, so a classifier that left this out would put every class on the version under trial. A
    # model server whose config gives no `stable` fails the contract check (INVALID_ARGUMENT, in /readyz) instead.
    model_version_label: str = Field(
        "stable",
        description="CLASSPULSE_MODEL_VERSION_LABEL: stable or canary, from TF Serving's model config; empty: the "
        "highest version loaded, for a model server without labels",
    )
    # One pass of the network a face by default: the flip-averaging default signature ("serving_default") is about a
    # point of per-face accuracy for twice the model's CPU, and what a teacher sees is an average over the class and
    # over seconds, where that point barely shows while the cost of every monitored student doubles (make bench:
    # the "accuracy profile" rows; docs/performance.md).
    model_signature: str = Field(
        "emotion_single_pass",
        description="CLASSPULSE_MODEL_SIGNATURE: emotion_single_pass, or serving_default (flip averaging, 2x the cost)",
    )
    model_timeout_s: float = Field(5.0, gt=0, description="CLASSPULSE_MODEL_TIMEOUT_S: deadline of one Predict call")
    max_batch_faces: int = Field(256, ge=1, le=4096, description="CLASSPULSE_MAX_BATCH_FACES: faces per Predict call")
    concurrent_calls: int = Field(
        2, ge=1, le=16, description="CLASSPULSE_CONCURRENT_CALLS: Predict calls of one batch in flight at once"
    )
    max_poll_frames: int = Field(128, ge=1, description="CLASSPULSE_MAX_POLL_FRAMES: frames consumed per batch")
