"""Prometheus metrics every pipeline stage exports, labelled by stage so dashboards compare stages side by side."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Counted once a message, when its output is acknowledged and its offset committed: a batch retried after an outage or
# a failed message counts once, when it is done, so a stage that retries without end shows no progress.
MESSAGES_IN = Counter("classpulse_messages_in_total", "Messages consumed and committed", ["stage", "topic"])
MESSAGES_OUT = Counter("classpulse_messages_out_total", "Messages produced, of the committed input", ["stage", "topic"])
MESSAGES_REDELIVERED = Counter(
    "classpulse_messages_redelivered_total",
    "Messages consumed again: their batch was rewound (a dependency away, a broken contract, a failed message retried)",
    ["stage", "topic"],
)
FACES = Counter("classpulse_faces_total", "Faces found (detector) or classified (classifier)", ["stage"])
DEAD_LETTERS = Counter(
    "classpulse_dead_letters_total", "Messages sent to a dead-letter topic, of the committed input", ["stage", "reason"]
)
ERRORS = Counter("classpulse_errors_total", "Errors by kind", ["stage", "kind"])
DUPLICATES_IGNORED = Counter(
    "classpulse_duplicates_ignored_total", "Redelivered messages whose effect was already applied", ["stage"]
)
CAPTURE_TIMES_REFUSED = Counter(
    "classpulse_capture_times_refused_total",
    "Frames refused for a capture time outside the accepted window (in the future, or older than the raw retention)",
    ["stage", "reason"],
)
DEPENDENCY_RETRIES = Counter(
    "classpulse_dependency_retries_total", "Batches retried because a dependency was unavailable", ["stage", "dependency"]
)
BATCH_SECONDS = Histogram(
    "classpulse_batch_processing_seconds",
    "Time to process one consumed batch, output produced and offsets committed",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "classpulse_batch_size", "Messages per consumed batch", ["stage"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
)
STAGE_STALLED = Gauge(
    "classpulse_stage_stalled",
    "1 while the stage is stopped by a contract or configuration error (wrong model or signature): it consumes nothing",
    ["stage"],
)
CONSUMER_LAG = Gauge("classpulse_consumer_lag", "Messages behind the end of the partition", ["stage", "topic", "partition"])
LATENCY_SECONDS = Histogram(
    "classpulse_latency_seconds",
    "Time from a frame's capture until this stage finished with it",
    ["stage"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
