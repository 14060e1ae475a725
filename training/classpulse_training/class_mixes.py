"""How well class shares are read: generated classes of known mixes, made of held-out faces, read as the pipeline
reads them (per-face probabilities summed over a window) and set against the truth by total-variation distance.

Estimators compared, on the same windows: the raw mean of the probabilities (what the API showed before), the
corrected shares the API shows (`classpulse_core.share_correction`, PACC from the window's mean), and, for
reference, the EM prior adjustment of Saerens et al. (2002), which needs every face's probabilities (not stored, so
not an option for the API), started from the model's mean probabilities on the faces M came from.

Honest split: the correction matrix M is measured on held-out faces, so reading classes made of those same faces
would flatter it. The faces are cut in two halves at random; M comes from one half and the classes from the other,
then the halves swap (two-fold cross-fitting), so that every figure is out of sample. One random cut decides a lot
(the mean over mixes of 60 s windows moved from 0.052 to 0.070 between cuts of model v6's PublicTest faces), so the
check repeats the cut `splits` times and gives the spread between cuts beside the mean.

Where the error comes from: each window is also corrected with M measured on the half its faces come from (in
sample, so no claim about the method: `known_m`), which leaves the window's own sampling noise and the method's bias;
what the corrected shares lose beyond it is M's estimation noise (M from half of PublicTest against the faces of the
other half). On 60 s windows that is most of the error (model v6: 0.025 with M known, 0.059 from the other half);
with one face image a student, the few faces a window has are. Halves are the best cut for that: the error grows
with 1/faces M is fitted on + 1/faces the windows are drawn from. The shipped M comes from all the faces (twice as
many), so its own estimation noise is smaller than these figures carry.

A generated class has 12-30 students (uniform), each showing one emotion for the window: the mix's dominant emotion,
or, for the students who differ, another emotion drawn at random (as in the sample class, where a third of the class
differs). Windows come in two kinds, because what a window holds depends on how much the faces change within it:
a student who keeps one face image for the whole window (the sample class video: every frame of it shows the same
image, so its probabilities are summed again and again but are one reading), and a student whose face is a new
image of the same emotion every second (a live face's expression, pose and light change, so its crops are read
anew). The first kind is the floor: one face a student is all the evidence there is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from classpulse_core.labels import EMOTIONS
from classpulse_core.share_correction import ShareCorrection, mean_probabilities

SAMPLE_CLASS_PHASES = ("neutral", "happy", "surprise", "sad")
"""The sample class's phases (classpulse_demo.class_script.DEFAULT_PHASE_EMOTIONS; a unit test holds them equal)."""
SAMPLE_CLASS_DIFFERING = 1 / 3
"""The share of the sample class that shows another emotion than its phase's (class_script too)."""
CLASS_SIZES = (12, 30)
EM_ITERATIONS = 200
EM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Mix:
    name: str
    dominant: str | None  # None: every student's emotion is drawn uniformly
    differing: float  # share of the students showing another emotion than the dominant one


MIXES = (
    Mix("all neutral", "neutral", 0.0),
    Mix("mostly happy", "happy", 0.2),
    Mix("mostly sad", "sad", 0.2),
    Mix("even", None, 1.0),
    *(Mix(f"sample class: {emotion} phase", emotion, SAMPLE_CLASS_DIFFERING) for emotion in SAMPLE_CLASS_PHASES),
)


@dataclass(frozen=True)
class Window:
    name: str
    seconds: int
    new_face_every_second: bool


WINDOWS = (
    Window("10 s, one face image a student", 10, False),
    Window("10 s, a new face image a student each second", 10, True),
    Window("60 s, a new face image a student each second", 60, True),
)


def student_emotions(mix: Mix, students: int, rng: np.random.Generator) -> np.ndarray:
    """Each student's emotion (index into EMOTIONS)."""
    if mix.dominant is None:
        return rng.integers(0, len(EMOTIONS), students)
    dominant = EMOTIONS.index(mix.dominant)
    emotions = np.full(students, dominant)
    differing = round(students * mix.differing)
    if mix.differing and students > 1:
        differing = max(1, differing)  # the sample class's rule: at least one student differs
    others = np.array([i for i in range(len(EMOTIONS)) if i != dominant])
    emotions[rng.choice(students, differing, replace=False)] = rng.choice(others, differing)
    return emotions


def total_variation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 0.5 * np.abs(a - b).sum(axis=-1)


def em_prior_adjustment(probabilities: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Saerens, Latinne & Decaestecker (2002): class shares by EM on the faces' posteriors, from `prior`."""
    shares = prior
    for _ in range(EM_ITERATIONS):
        adjusted = probabilities * (shares / prior)
        following = (adjusted / adjusted.sum(axis=1, keepdims=True)).mean(axis=0)
        if np.abs(following - shares).max() < EM_TOLERANCE:
            return following
        shares = following
    return shares


def _windows(
    probabilities: np.ndarray, labels: np.ndarray, mix: Mix, window: Window, classes: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """(true shares, per-face-second probabilities, distinct face images) of generated windows. Face images are
    drawn with replacement from the faces of their emotion, so a long window of a large class shows some twice."""
    by_emotion = [np.flatnonzero(labels == i) for i in range(len(EMOTIONS))]
    for _ in range(classes):
        emotions = student_emotions(mix, int(rng.integers(CLASS_SIZES[0], CLASS_SIZES[1] + 1)), rng)
        images = window.seconds if window.new_face_every_second else 1
        faces = np.concatenate([rng.choice(by_emotion[e], images) for e in emotions])
        # A face image kept for the whole window is summed once a second, like the others: the same weights.
        read = np.repeat(probabilities[faces], window.seconds // images, axis=0)
        yield np.bincount(emotions, minlength=len(EMOTIONS)) / len(emotions), read, len(np.unique(faces))


def check_class_mixes(
    probabilities: np.ndarray, labels: np.ndarray, classes: int = 200, seed: int = 0, splits: int = 5
) -> dict:
    """Mean total-variation distance to the truth of the raw mean, the corrected shares and EM, per window kind and
    mix, with the share of windows whose dominant emotion each gets right; out of sample by two-fold cross-fitting,
    repeated over `splits` random cuts of the faces (`classes` per mix and window in all)."""
    rng = np.random.default_rng(seed)
    folds = []
    for _ in range(splits):
        order = rng.permutation(len(labels))
        halves = (order[: len(order) // 2], order[len(order) // 2 :])
        folds += [halves, halves[::-1]]  # (fit, read) both ways: fold 2k and 2k + 1 are cut k
    per_fold = max(1, classes // len(folds))
    results: dict[str, dict[str, dict[str, float]]] = {}
    spread: dict[str, float] = {}
    for window in WINDOWS:
        results[window.name] = {}
        by_split: list[list[float]] = [[] for _ in range(splits)]
        for mix in MIXES:
            figures = []
            for number, (fit, read) in enumerate(folds):
                correction = ShareCorrection(mean_probabilities(probabilities[fit], labels[fit]), "fit half")
                known = ShareCorrection(mean_probabilities(probabilities[read], labels[read]), "read half")
                figures.append(
                    _read_mix(correction, known, probabilities[fit].mean(axis=0), probabilities[read], labels[read],
                              mix, window, per_fold, rng)
                )
                by_split[number // 2].append(figures[-1]["corrected_tvd"])
            results[window.name][mix.name] = {key: round(float(np.mean([f[key] for f in figures])), 4) for key in figures[0]}
        spread[window.name] = round(float(np.std([np.mean(split) for split in by_split])), 4)
    return {
        "method": f"two-fold cross-fitting over {splits} random cuts: M from one random half of the faces, classes "
                  "from the other, then swapped",
        "classes_per_mix": per_fold * len(folds),
        "splits": splits,
        "class_sizes": list(CLASS_SIZES),
        "faces": len(labels),
        "windows": results,
        "mean": {name: _mean_over_mixes(mixes) | {"corrected_tvd_sd_between_cuts": spread[name]}
                 for name, mixes in results.items()},
    }


def _read_mix(correction, known, em_start, probabilities, labels, mix, window, classes, rng) -> dict[str, float]:
    windows = list(_windows(probabilities, labels, mix, window, classes, rng))
    truth = np.array([truth for truth, _, _ in windows])
    raw = np.array([read.mean(axis=0) for _, read, _ in windows])
    estimates = {
        "raw": raw,
        "corrected": correction.correct(raw),
        "em": np.array([em_prior_adjustment(read, em_start) for _, read, _ in windows]),
        "known_m": known.correct(raw),
    }
    figures = {f"{name}_tvd": float(total_variation(shares, truth).mean()) for name, shares in estimates.items()}
    if mix.dominant is not None:
        right = truth.argmax(axis=1)
        figures |= {f"{name}_dominant_right": float((estimates[name].argmax(axis=1) == right).mean())
                    for name in ("raw", "corrected", "em")}
    return figures | {"face_readings": float(np.mean([len(read) for _, read, _ in windows])),
                      "distinct_faces": float(np.mean([distinct for _, _, distinct in windows]))}


def _mean_over_mixes(mixes: dict[str, dict[str, float]]) -> dict[str, float]:
    return {key: round(float(np.mean([figures[key] for figures in mixes.values()])), 4)
            for key in ("raw_tvd", "corrected_tvd", "em_tvd", "known_m_tvd")}
