"""Scoring what a system said about the sample class's frames against the video's ground truth (labels.json).

Each labelled face is matched to at most one detected face (IoU >= 0.4, greedy, by the rule of
`classpulse_demo.haar_check`).
`accuracy` counts a labelled face right when it was detected and its most probable emotion is the labelled one, so a
missed face counts as wrong: it is what a teacher's numbers are made of. `accuracy_of_detected` leaves the misses out
and compares the classifiers alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from classpulse_core.labels import EMOTIONS
from classpulse_demo.haar_check import MIN_IOU, iou

Box = Sequence[int]


@dataclass(frozen=True)
class FaceGuess:
    box: Box
    emotion: str | None
    """The most probable emotion, None where the system only found the face."""


@dataclass
class Score:
    frames: int = 0
    labelled: int = 0
    detected: int = 0
    matched: int = 0
    correct: int = 0

    def add_frame(self, truth: Sequence[dict], guesses: Sequence[FaceGuess]) -> None:
        """One frame: `truth` is labels.json's per_frame[i]["faces"], `guesses` what the system found in it."""
        matches = matched_guesses([face["box"] for face in truth], [guess.box for guess in guesses])
        self.frames += 1
        self.labelled += len(truth)
        self.detected += len(guesses)
        self.matched += len(matches)
        self.correct += sum(guesses[g].emotion == truth[t]["emotion"] for t, g in matches.items())

    def figures(self) -> dict[str, float]:
        return {
            "recall": _ratio(self.matched, self.labelled),
            "precision": _ratio(self.matched, self.detected),
            "accuracy": _ratio(self.correct, self.labelled),
            "accuracy_of_detected": _ratio(self.correct, self.matched),
        }


def matched_guesses(truth: Sequence[Box], boxes: Sequence[Box]) -> dict[int, int]:
    """Labelled index -> index of the detection matched to it: greedy by IoU, one-to-one, IoU >= MIN_IOU (the same
    rule as haar_check.match_detections, which returns the IoUs rather than the pairs)."""
    candidates = sorted(((iou(t, d), ti, di) for ti, t in enumerate(truth) for di, d in enumerate(boxes)), reverse=True)
    pairs: dict[int, int] = {}
    for overlap, ti, di in candidates:
        if overlap < MIN_IOU:
            break
        if ti not in pairs and di not in pairs.values():
            pairs[ti] = di
    return pairs


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def top_emotion(probabilities: Sequence[float]) -> str:
    """The FER2013 emotion (labels.json spelling) with the highest probability."""
    return EMOTIONS[max(range(len(probabilities)), key=probabilities.__getitem__)]


def score_frames(per_frame: Sequence[dict], guesses_by_frame: Iterable[tuple[int, Sequence[FaceGuess]]]) -> Score:
    """Scores (frame number, guesses) pairs against labels.json's per_frame list."""
    score = Score()
    for frame, guesses in guesses_by_frame:
        score.add_frame(per_frame[frame]["faces"], guesses)
    return score
