"""What happens in the sample class, frame by frame: who is on camera and which expression they show.

The lesson is cut into equal phases, each with a dominant emotion most students show while a few differ, so the
class-level numbers downstream have a clear, known shape. A student keeps one face image per phase, sometimes
switching once to a second image of the same emotion, so the detector sees stable faces. Students step away now
and then, and everybody is away for a short stretch mid-lesson, so "nobody on camera" frames exist.

Faces are referred to by slot: slot i shows one FER2013 image of emotion slot_emotions[i]. The image is chosen
later, when the CSV is read, because only then is it known which rows exist.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from classpulse_demo.fer_csv import EMOTIONS

DEFAULT_PHASE_EMOTIONS = ("neutral", "happy", "surprise", "sad")
AWAY = -1  # value in ClassScript.shown for a student who is off camera

# Share of the class that does not follow the phase's dominant emotion (at least one student when there are two).
DIFFERING_SHARE = 1 / 3
_SECOND_IMAGE_PROBABILITY = 0.5
_STEP_AWAY_PROBABILITY = 0.5
_STEP_AWAY_SECONDS = (2.0, 4.0)  # capped at a quarter of the lesson for short videos
# Everybody away, ending at the middle phase boundary; capped at a tenth of the lesson for short videos.
_ALL_AWAY_SECONDS = 2.0


@dataclass(frozen=True)
class Phase:
    start_frame: int
    end_frame: int  # exclusive
    dominant_emotion: str


@dataclass(frozen=True)
class ClassScript:
    fps: float
    frames: int
    phases: tuple[Phase, ...]
    slot_emotions: tuple[str, ...]
    shown: np.ndarray  # int, shape (students, frames): the slot each student shows, or AWAY

    @property
    def students(self) -> int:
        return self.shown.shape[0]

    def slots_needed(self) -> dict[str, int]:
        """How many distinct face images each emotion needs."""
        return {emotion: self.slot_emotions.count(emotion) for emotion in EMOTIONS}


def plan_class(
    students: int,
    seconds: float,
    fps: float,
    rng: random.Random,
    phase_emotions: tuple[str, ...] = DEFAULT_PHASE_EMOTIONS,
) -> ClassScript:
    frames = round(seconds * fps)
    if students < 1 or frames < len(phase_emotions):
        raise ValueError(f"need at least one student and {len(phase_emotions)} frames (got {students}, {frames})")
    unknown = set(phase_emotions) - set(EMOTIONS)
    if unknown:
        raise ValueError(f"unknown emotion(s) {sorted(unknown)}; known: {EMOTIONS}")

    phases = tuple(
        Phase(i * frames // len(phase_emotions), (i + 1) * frames // len(phase_emotions), emotion)
        for i, emotion in enumerate(phase_emotions)
    )
    slot_emotions: list[str] = []
    shown = np.full((students, frames), AWAY, dtype=np.int32)
    for phase in phases:
        for student, emotion in enumerate(_phase_emotions_per_student(phase.dominant_emotion, students, rng)):
            for start, end in _image_spans(phase, rng):
                shown[student, start:end] = len(slot_emotions)
                slot_emotions.append(emotion)

    for student in range(students):
        if rng.random() < _STEP_AWAY_PROBABILITY:
            start, end = _step_away_span(frames, fps, rng)
            shown[student, start:end] = AWAY
    everybody_away = max(1, round(min(_ALL_AWAY_SECONDS, seconds / 10) * fps))
    middle = phases[len(phases) // 2].start_frame
    shown[:, max(0, middle - everybody_away) : middle] = AWAY

    return ClassScript(fps, frames, phases, tuple(slot_emotions), shown)


def _phase_emotions_per_student(dominant: str, students: int, rng: random.Random) -> list[str]:
    differing = max(1, round(students * DIFFERING_SHARE)) if students > 1 else 0
    others = [emotion for emotion in EMOTIONS if emotion != dominant]
    emotions = [dominant] * students
    for student in rng.sample(range(students), differing):
        emotions[student] = rng.choice(others)
    return emotions


def _image_spans(phase: Phase, rng: random.Random) -> list[tuple[int, int]]:
    """One span covering the phase, or two when the student switches to a second image part-way."""
    length = phase.end_frame - phase.start_frame
    if length < 2 or rng.random() >= _SECOND_IMAGE_PROBABILITY:
        return [(phase.start_frame, phase.end_frame)]
    switch = phase.start_frame + max(1, round(length * rng.uniform(0.3, 0.7)))
    return [(phase.start_frame, switch), (switch, phase.end_frame)]


def _step_away_span(frames: int, fps: float, rng: random.Random) -> tuple[int, int]:
    length = max(1, min(frames // 4, round(rng.uniform(*_STEP_AWAY_SECONDS) * fps)))
    start = rng.randrange(frames - length + 1)
    return start, start + length
