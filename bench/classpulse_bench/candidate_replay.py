"""Candidate replay: every BlazeFace candidate of the faces bench's frames recorded once, so that the rules that
decide which candidates are faces (the verifier's band and threshold per camera kind, the second look, a verifier
retrained on other candidates) are compared in seconds instead of a full scan of every frame per rule.

`record` scans the frames `faces.run_faces_bench` draws for a seed (the same rng, picker and finder per camera kind)
and keeps, per candidate after the merge (`BlazeFaceDetector.candidates`), what `is_face` decides on: its score,
box, landmarks, whether it holds a surer smaller face, the second look's score (from SECOND_LOOK_FLOOR, so that its
threshold can move) and the verifier's features; faces-wild photos are recorded the same way by the room finder.
`replay` applies a `Rule` and scores the kept boxes with the bench's `face_matches`: at the shipped rule it reads
what the bench reads for the same seed and frames.

    python -m classpulse_bench replay --seed 23 --frames 8 --wild-sample 300 --out .cache/replay   # replay-seed23.npz
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar, get_args

import numpy as np

from classpulse_bench.face_layouts import families, family_frame, picker
from classpulse_bench.faces import _wild_photos, face_matches
from classpulse_core.schemas import CameraKind
from classpulse_detector.blazeface import (
    GALLERY_SMALLEST_SHARE,
    GALLERY_VERIFIED_BELOW,
    GALLERY_VERIFIER_MIN,
    SECOND_LOOK_BELOW,
    SECOND_LOOK_SCORE,
    VERIFIED_BELOW,
    VERIFIER_MIN,
)
from classpulse_detector.settings import DetectorSettings

SECOND_LOOK_FLOOR = 0.05
"""The second look's score is recorded from this floor up (0 below), well under the shipped SECOND_LOOK_SCORE."""
WILD_FAMILY = "faces-wild"


SavedT = TypeVar("SavedT", bound="SavedColumns")


class SavedColumns:
    """A dataclass of numpy columns, kept as one compressed .npz (no pickles)."""

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **self.__dict__)

    @classmethod
    def load(cls: type[SavedT], path: Path) -> SavedT:
        with np.load(path, allow_pickle=False) as stored:
            return cls(**{name: stored[name] for name in stored.files})


@dataclass
class Recording(SavedColumns):
    """Candidates [N] of frames [F]; `frame` indexes a candidate's frame, `truth_frame` a drawn face's."""

    family: np.ndarray  # [F] str
    kind: np.ndarray  # [F] str: the camera kind whose finder scanned the frame
    min_face_px: np.ndarray  # [F]
    shape: np.ndarray  # [F, 2] height, width
    frame: np.ndarray  # [N]
    score: np.ndarray
    box: np.ndarray  # [N, 4] x0, y0, x1, y1
    landmarks: np.ndarray  # [N, 6, 2]
    holds_surer: np.ndarray  # [N] bool: holds a smaller, surer candidate (a face made of faces if that one is a face)
    second_look: np.ndarray
    features: np.ndarray  # [N, verifier.FEATURES]
    truth_frame: np.ndarray  # [T]
    truth_box: np.ndarray  # [T, 4] x, y, w, h


def record(
    images: np.ndarray, seed: int, frames: int, wild_sample: int = 0, min_score: float | None = None,
    family_names: list[str] | None = None,
) -> Recording:
    """Every candidate of `frames` frames a family (the faces bench's, for `seed`) and of `wild_sample` faces-wild
    photos (the bench's draw for `seed`), each scanned by its camera kind's finder (`min_score`: the network's floor,
    default the shipped setting)."""
    import cv2

    from classpulse_detector.blazeface import BlazeFaceDetector, holds_surer_face

    settings = DetectorSettings(
        **({"blazeface_min_score": min_score} if min_score is not None else {}),
        face_detector="blazeface", personal_face_detector="blazeface", gallery_face_detector="blazeface",
    )
    finders = {kind: settings.face_finder(kind) for kind in get_args(CameraKind)}
    columns: dict[str, list] = {name: [] for name in Recording.__dataclass_fields__}

    def scan(gray: np.ndarray, family: str, kind: str, truth: list[tuple[int, int, int, int]]) -> None:
        finder = finders[kind]  # type: ignore[index]
        if not isinstance(finder, BlazeFaceDetector):
            raise TypeError(f"the candidates are BlazeFace's; the {kind} finder is {type(finder).__name__}")
        number = len(columns["family"])
        columns["family"].append(family)
        columns["kind"].append(kind)
        columns["min_face_px"].append(finder.min_face_px)
        columns["shape"].append(gray.shape[:2])
        found = finder.candidates(gray)
        for index in range(len(found.scores)):
            columns["frame"].append(number)
            columns["score"].append(found.scores[index])
            columns["box"].append(found.boxes[index])
            columns["landmarks"].append(found.landmarks[index])
            columns["holds_surer"].append(holds_surer_face(found, index))
            columns["second_look"].append(finder.second_look(gray, found.boxes[index], found.landmarks[index], SECOND_LOOK_FLOOR))
            columns["features"].append(finder.candidate_features(gray, found, index))
        columns["truth_frame"].extend([number] * len(truth))
        columns["truth_box"].extend(truth)

    for family in family_names or families():
        rng = random.Random(f"{seed}:{family}")
        pick = picker(images, rng)
        for number in range(frames):
            frame = family_frame(family, number, rng, pick)
            scan(frame.gray, family, frame.camera_kind, [face.box for face in frame.faces])
    if wild_sample:
        for path, _ in _wild_photos(wild_sample, seed):
            scan(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), WILD_FAMILY, "room", [])
    from classpulse_detector.verifier import FEATURES

    empty = {"box": (0, 4), "landmarks": (0, 6, 2), "features": (0, FEATURES), "truth_box": (0, 4)}
    return Recording(**{
        name: np.array(values) if values else np.zeros(empty.get(name, (0,)), np.float32)
        for name, values in columns.items()
    })


@dataclass(frozen=True)
class Rule:
    """Which candidates are faces (`BlazeFaceDetector.is_face`'s decision, made on recorded numbers). Defaults: the
    shipped rule of a room camera's finder (`shipped_rule`: every kind's)."""

    min_score: float = DetectorSettings().blazeface_min_score
    second_look_below: float = SECOND_LOOK_BELOW
    second_look_score: float = SECOND_LOOK_SCORE
    verified_below: float = VERIFIED_BELOW
    verifier_min: float = VERIFIER_MIN
    smallest_share: float = 0.0
    """A frame's faces under this share of their median side are dropped (`without_far_smaller`; 0: none)."""
    per_kind: dict[str, Rule] = field(default_factory=dict)
    """Another rule for the frames of a camera kind (its own per_kind is ignored)."""


def shipped_rule() -> Rule:
    """What each camera kind's finder decides (DetectorSettings.face_finder): a gallery's verifier judges a wider band,
    and a gallery's faces far smaller than the others are dropped."""
    return Rule(per_kind={"gallery": Rule(
        verified_below=GALLERY_VERIFIED_BELOW, verifier_min=GALLERY_VERIFIER_MIN, smallest_share=GALLERY_SMALLEST_SHARE,
    )})


Probability = Callable[[np.ndarray], np.ndarray]
"""Verifier probabilities [N] of features [N, FEATURES]."""


def kept(recording: Recording, rule: Rule, probability: np.ndarray) -> np.ndarray:
    """[N] bool: the candidates `rule` keeps (before the finder's smallest-face filter): each judged alone, then, in a
    frame where one holds a surer smaller candidate, as `without_faces_of_faces` decides."""
    from classpulse_detector.blazeface import Detections, without_faces_of_faces

    alone = np.zeros(len(recording.score), bool)
    kinds = recording.kind[recording.frame] if len(recording.frame) else np.zeros(0, str)
    for kind in np.unique(kinds):
        mine = kinds == kind
        own = replace(rule.per_kind.get(str(kind), rule), per_kind={})
        score = recording.score[mine]
        looked = recording.second_look[mine] > own.second_look_score
        verified = (score >= own.verified_below) | (probability[mine] >= own.verifier_min)
        alone[mine] = (score >= own.min_score) & ((score >= own.second_look_below) | (looked & verified))
    keep = alone.copy()
    for number in np.unique(recording.frame[recording.holds_surer]):
        mine = np.flatnonzero(recording.frame == number)
        found = Detections(recording.box[mine], recording.landmarks[mine], recording.score[mine])
        keep[mine] = without_faces_of_faces(found, lambda index, mine=mine: bool(alone[mine[index]]))
    return keep


@dataclass
class FamilyFigures:
    """A family's frames (or photos), each as (faces drawn, faces found, detections)."""

    frames: list[tuple[int, int, int]] = field(default_factory=list)

    def _total(self, column: int) -> int:
        return sum(frame[column] for frame in self.frames)

    @property
    def faces(self) -> int:
        return self._total(0)

    @property
    def matched(self) -> int:
        return self._total(1)

    @property
    def detected(self) -> int:
        return self._total(2)

    @property
    def recall(self) -> float:
        return self.matched / max(self.faces, 1)

    @property
    def precision(self) -> float:
        return self.matched / max(self.detected, 1)

    @property
    def photos_found(self) -> int:
        """Frames with at least one detection: on faces-wild, photos with a face found."""
        return sum(frame[2] > 0 for frame in self.frames)

    @property
    def found(self) -> float:
        return self.photos_found / max(len(self.frames), 1)


def replay(
    recording: Recording, rule: Rule | None = None, probability: Probability | None = None
) -> dict[str, FamilyFigures]:
    """Per family, what the detector would report under `rule` (default: the shipped one) with the verifier
    `probability` (default: the shipped one), scored as the faces bench scores it."""
    from classpulse_detector.blazeface import face_of, without_far_smaller
    from classpulse_detector.verifier import FaceVerifier

    probability = probability or FaceVerifier.load().probability
    rule = rule or shipped_rule()
    keep = kept(recording, rule, probability(recording.features) if len(recording.score) else np.zeros(0))
    figures: dict[str, FamilyFigures] = {}
    for number, family in enumerate(recording.family):
        mine = np.flatnonzero(keep & (recording.frame == number))
        reported = []
        for index in mine:
            x0, y0, x1, y1 = recording.box[index]
            if max(x1 - x0, y1 - y0) >= recording.min_face_px[number]:
                reported.append(face_of(recording.box[index], recording.landmarks[index], tuple(recording.shape[number])))
        reported = without_far_smaller(reported, rule.per_kind.get(str(recording.kind[number]), rule).smallest_share)
        truth = [tuple(int(v) for v in box) for box in recording.truth_box[recording.truth_frame == number]]
        matched = len(face_matches(truth, reported))  # type: ignore[arg-type]
        figures.setdefault(str(family), FamilyFigures()).frames.append((len(truth), matched, len(reported)))
    return figures


def shortfall(figures: dict[str, FamilyFigures], recall: float = 0.97, precision: float = 0.98) -> float:
    """What the families but webcams and faces-wild miss of the targets, summed (docs/face-detection.md's measure)."""
    return sum(
        max(0.0, recall - row.recall) + max(0.0, precision - row.precision)
        for family, row in figures.items() if family not in ("webcam", WILD_FAMILY)
    )


def record_seed(csv_path: str | None, seed: int, frames: int, wild_sample: int, out: Path) -> str:
    """`python -m classpulse_bench replay`: records `seed`'s frames and photos to out/replay-seed<seed>.npz and
    returns the shipped rule's figures on them (the faces bench's, for the same arguments)."""
    from classpulse_demo.fer_csv import resolve_fer_csv
    from classpulse_training.fer_csv import load_fer_csv

    images = load_fer_csv(resolve_fer_csv(csv_path)).split("PublicTest").images[..., 0]
    recording = record(images, seed, frames, wild_sample)
    path = out / f"replay-seed{seed}.npz"
    recording.save(path)
    return f"{path}: {len(recording.score)} candidates\n" + table(replay(recording))


def table(figures: dict[str, FamilyFigures]) -> str:
    """One line a family: recall / precision (faces-wild: the share of photos with a face), and the shortfall."""
    lines = [
        f"{family:10} " + (
            f"found {row.found:.3f} ({row.photos_found} of {len(row.frames)})" if family == WILD_FAMILY
            else f"{row.recall:.3f} / {row.precision:.3f} ({row.matched} of {row.faces}, {row.detected} found)"
        )
        for family, row in figures.items()
    ]
    return "\n".join([*lines, f"shortfall {shortfall(figures):.3f}"])
