"""How big a bench run is: the full run for `make bench`, and a tiny one for the smoke test."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchConfig:
    students: int = 6
    """Students in the sample class video (its faces per frame)."""
    video_seconds: float = 30.0
    video_fps: float = 5.0
    """The sample class video: video_seconds x video_fps distinct frames, repeated by longer runs."""
    class_fps: float = 2.0
    """Frames per second each class sends in the load runs (ingest's default sampling of a live class)."""
    drain_classes: int = 4
    drain_frames_per_class: int = 1000
    """4,000 frames, ~21,000 faces: the classifier's drain lasts ~12 s. At 300 frames a class it lasted ~4 s, and
    its start (group join, the first batches' gRPC set-up) weighed in: 1,150 faces/s measured where longer drains of
    the same code gave 1,580."""
    load_seconds: float = 30.0
    warmup_s: float = 8.0
    growth_multiples: tuple[int, ...] = (1, 2, 4)
    replicas: tuple[int, ...] = (1, 2)
    half_load_multiple: int = 2
    """The growth run at half the sustained maximum (growth loads are multiples of a quarter of it)."""
    model_server_seconds: float = 4.0
    flops_seconds: float = 3.0

    @classmethod
    def tiny(cls) -> BenchConfig:
        """Every phase, each as short as it can be and still measure something (the smoke test). A drain of several
        batches (the stages poll 64 messages at most): a drain of one was over, all but its commit, before the first
        sample after the stage's start, which then counted nothing consumed, so the drain's CPU was measured from
        there: 0 ms a frame, once in a loaded test run."""
        return cls(
            video_seconds=4.0, drain_classes=1, drain_frames_per_class=200, load_seconds=6.0, warmup_s=2.0,
            growth_multiples=(1,), half_load_multiple=1, replicas=(1,), model_server_seconds=0.5, flops_seconds=0.3,
        )
