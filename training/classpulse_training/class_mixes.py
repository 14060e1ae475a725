"""How well class shares are read: generated classes of known mixes, made of held-out faces, read as the pipeline
reads them (per-face probabilities summed over a window) and set against the truth by total-variation distance.

Estimators compared, on the same windows: the raw mean of the probabilities (what the API showed before), the
corrected shares the API shows (`classpulse_core.share_correction`, PACC from the window's mean), and, for
reference, the EM prior adjustment of Saerens et al. (2002), which needs every face's probabilities (not stored, so
not an option for the API), started from the model's mean probabilities on the faces M came from.

Honest split, as near the deployment as PublicTest allows: the shipped M comes from all 3,589 PublicTest faces and
is applied to classes of faces it never saw. Here every generated class is read from a random half of each emotion's
faces (drawn anew for every class) and corrected with M fitted on every face it does not show (leave the class out:
its own faces never inform its M), so M is fitted on 2,491-3,578 faces (model v6), the class's window on up to half
of them. The error a class sees from M is M's departure from the mean of the faces the window shows, whose variance
grows with 1/faces M is fitted on + 1/distinct faces the window shows: drawing from half of each emotion's faces keeps
that sum near its smallest for the emotion that fills a window, and the faces a class leaves unused count for its M
(v6, 60 s: 0.053, against 0.054 with M from the other half alone). K-fold cross-fitting (M from k-1 folds, the class from the held-out
fold) reads worse, not better: on model v6, 60 s windows, 0.054 with k = 2, 0.054 with 3, 0.065 with 5, 0.097 with
10 (M from 3,230 faces, the class's images from 359), because a small fold's own mean strays from the population's as
much as a small M does. Beside the corrected shares, `half_m` corrects the same windows with M from the other half
only (the former two-fold figure: M from ~1,795 faces), which shows what M's size is worth.

Where the error comes from: each window is also corrected with M measured on the halves its faces come from (in
sample, so no claim about the method: `known_m`), which leaves the window's own sampling noise and the method's bias;
what the corrected shares lose beyond it is M's estimation noise. On 60 s windows that is most of the error; with one
face image a student, the few faces a window has are. No split of 3,589 faces reaches the deployment (M from all of
them and a class of fresh faces); the deployment's M noise is smaller than any figure here carries.

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
from classpulse_core.share_correction import mean_probabilities, solve_shares

SAMPLE_CLASS_PHASES = ("neutral", "happy", "surprise", "sad")
"""The sample class's phases (classpulse_demo.class_script.DEFAULT_PHASE_EMOTIONS; a unit test holds them equal)."""
SAMPLE_CLASS_DIFFERING = 1 / 3
"""The share of the sample class that shows another emotion than its phase's (class_script too)."""
CLASS_SIZES = (12, 30)
CLASSES_PER_MIX = 200
"""Generated classes per mix and window of a model's check."""
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
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(true shares, per-face-second probabilities, the distinct faces shown, the faces the class drew from) of
    generated windows. Each class draws from a random half of each emotion's faces, with replacement, so a long window
    of a large class shows some face images twice."""
    by_emotion = [np.flatnonzero(labels == i) for i in range(len(EMOTIONS))]
    for _ in range(classes):
        halves = [rng.choice(faces, (len(faces) + 1) // 2, replace=False) for faces in by_emotion]
        emotions = student_emotions(mix, int(rng.integers(CLASS_SIZES[0], CLASS_SIZES[1] + 1)), rng)
        images = window.seconds if window.new_face_every_second else 1
        faces = np.concatenate([rng.choice(halves[e], images) for e in emotions])
        # A face image kept for the whole window is summed once a second, like the others: the same weights.
        read = np.repeat(probabilities[faces], window.seconds // images, axis=0)
        yield (np.bincount(emotions, minlength=len(EMOTIONS)) / len(emotions), read, np.unique(faces),
               np.concatenate(halves))


def _means_without(sums: np.ndarray, counts: np.ndarray, probabilities: np.ndarray, labels: np.ndarray,
                   left_out: np.ndarray) -> tuple[np.ndarray, int]:
    """M over every face but `left_out` (sums, counts: per emotion over all faces), and how many faces that is."""
    indicator = np.eye(len(EMOTIONS))[labels[left_out]]
    remaining = counts - indicator.sum(axis=0)
    return (sums - indicator.T @ probabilities[left_out]) / remaining[:, None], int(remaining.sum())


def check_class_mixes(
    probabilities: np.ndarray, labels: np.ndarray, classes: int = CLASSES_PER_MIX, seed: int = 0
) -> dict:
    """Mean total-variation distance to the truth of the raw mean, the corrected shares and EM, per window kind and
    mix, with the share of windows whose dominant emotion each gets right; out of sample by leaving each class's
    faces out of its M (`classes` per mix and window)."""
    rng = np.random.default_rng(seed)
    mean_probabilities(probabilities, labels)  # refuses a set of faces that lacks an emotion
    indicator = np.eye(len(EMOTIONS))[labels]
    sums, counts = indicator.T @ probabilities, indicator.sum(axis=0)
    results: dict[str, dict[str, dict[str, float]]] = {}
    fitted_on: list[int] = []
    for window in WINDOWS:
        results[window.name] = {}
        for mix in MIXES:
            figures = _read_mix(probabilities, labels, sums, counts, mix, window, classes, rng)
            fitted_on += figures.pop("m_faces")
            results[window.name][mix.name] = figures
    return {
        "method": "leave the class out: each class drawn from a random half of each emotion's faces, M fitted on "
                  f"every face the class does not show ({min(fitted_on)}-{max(fitted_on)} faces, "
                  f"{round(float(np.mean(fitted_on)))} on average)",
        "m_faces": [min(fitted_on), max(fitted_on)],
        "classes_per_mix": classes,
        "class_sizes": list(CLASS_SIZES),
        "faces": len(labels),
        "windows": results,
        "mean": {name: _mean_over_mixes(mixes) for name, mixes in results.items()},
    }


def _read_mix(probabilities, labels, sums, counts, mix, window, classes, rng) -> dict:
    windows = list(_windows(probabilities, labels, mix, window, classes, rng))
    truth = np.array([truth for truth, _, _, _ in windows])
    raw = np.array([read.mean(axis=0) for _, read, _, _ in windows])
    left_out = [_means_without(sums, counts, probabilities, labels, shown) for _, _, shown, _ in windows]
    other_half = [_means_without(sums, counts, probabilities, labels, pool)[0] for _, _, _, pool in windows]
    known = [mean_probabilities(probabilities[pool], labels[pool]) for _, _, _, pool in windows]
    matrices = np.array([matrix for matrix, _ in left_out])
    estimates = {
        "raw": raw,
        "corrected": solve_shares(matrices, raw),
        "half_m": solve_shares(np.array(other_half), raw),
        # EM starts from the model's mean probabilities on the faces M comes from (its training mix, as it reads it).
        "em": np.array([em_prior_adjustment(read, (sums.sum(axis=0) - probabilities[shown].sum(axis=0)) / (len(labels) - len(shown)))
                        for _, read, shown, _ in windows]),
        "known_m": solve_shares(np.array(known), raw),
    }
    distances = {name: total_variation(shares, truth) for name, shares in estimates.items()}
    figures = {f"{name}_tvd": float(distance.mean()) for name, distance in distances.items()}
    figures["corrected_tvd_se"] = float(distances["corrected"].std(ddof=1) / np.sqrt(len(windows)))
    if mix.dominant is not None:
        right = truth.argmax(axis=1)
        figures |= {f"{name}_dominant_right": float((estimates[name].argmax(axis=1) == right).mean())
                    for name in ("raw", "corrected", "em")}
    figures = {key: round(value, 4) for key, value in figures.items()}
    return figures | {"face_readings": round(float(np.mean([len(read) for _, read, _, _ in windows])), 1),
                      "distinct_faces": round(float(np.mean([len(shown) for _, _, shown, _ in windows])), 1),
                      "m_faces": [faces for _, faces in left_out]}


def _mean_over_mixes(mixes: dict[str, dict[str, float]]) -> dict[str, float]:
    """The mean of each figure over the mixes, and the standard error of the corrected mean (the mixes' classes are
    drawn independently, so their errors add in quadrature)."""
    means = {key: round(float(np.mean([figures[key] for figures in mixes.values()])), 4)
             for key in ("raw_tvd", "corrected_tvd", "half_m_tvd", "em_tvd", "known_m_tvd")}
    errors = np.array([figures["corrected_tvd_se"] for figures in mixes.values()])
    return means | {"corrected_tvd_se": round(float(np.sqrt((errors**2).sum()) / len(errors)), 4)}
