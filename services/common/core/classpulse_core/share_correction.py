"""Class shares corrected for the emotion model's known errors: probabilistic adjusted classify-and-count (PACC).

The mean of the faces' probabilities is biased: a face of true emotion i gets, on average, probability M[i][j] for
emotion j (M: the mean probabilities per true emotion, measured on held-out faces through the served signature), so
a class whose true shares are p reads q = M^T p on average, which leans towards the mix the model learnt from (a
neutral class reads about half neutral). Only per-second sums are stored, so q (each emotion's summed probability
over their total) is all a window has; p is recovered as the point of the simplex (p >= 0, sum 1) that best solves
M^T p = q in least squares: PACC (Bella et al. 2010; QuaPy's `PACC`). The EM prior adjustment of Saerens et al.
(2002) needs every face's probabilities, which are not stored; measured on per-face probabilities anyway, it read
classes worse than PACC does (see `classpulse_training.class_mixes`).

Where its error comes from, and what did not help (model v6, `classpulse_training.class_mixes` on PublicTest): on
60 s windows of a new face image a student each second, M measured on the very faces the windows show reads them
within 0.025 of the truth, M from every face a class does not show (2,491-3,578 faces) within 0.053, M from the other
half of the faces within 0.054-0.059 (over cuts): the error is M's departure from the faces a window shows, not the
method's bias, and no variant beat plain PACC by more than 0.001 on the same windows: M averaged over bootstrap resamples, M from posteriors recalibrated by matrix
or vector scaling (alone or as a shrinkage target for the labelled rows), sums of log-probabilities, of hard votes or
of squared probabilities (alone or beside the probabilities, by ordinary or generalised least squares), blends of the
corrected and the raw shares, and dropping small shares. With one face image a student (about 20 faces a window) even
the exact M reads no better: that is the faces' own sampling noise.

Measured again on model v7 (60 s windows of `class_mixes`, 200 classes a mix; variants chosen on the classes of seed 1,
PACC 0.0525 there and 0.0527 / 0.0515 on seeds 0 / 2, standard error 0.0007): no variant on the stored sums beat it.
The maximum-likelihood fit of the mean under the multinomial reading (EM on the sums, that is iterative Bayesian
unfolding, from the uniform or the training prior) reads 0.0535 at convergence and worse when stopped early (0.127 at
10 iterations, 0.055 at 100); ridge towards the uniform shares or the raw mean 0.0525-0.0545 (weight 1e-4 to 3e-3);
each row of M shrunk towards the M the posteriors imply (sum of p_i p_j over sum of p_i) by k / (k + its faces)
0.0526-0.0727 (k 3-100; the implied M alone 0.101); M from the 28,709 Training faces at a fitted temperature (1.4)
0.111 alone and 0.054-0.091 blended or row-shrunk in: the network reads 0.865 of its training faces right against
0.685 held out, which no temperature undoes. Where the error is: each row of M in turn taken from the faces the
windows draw from (the rest as shipped) reads sad 0.044, neutral 0.047, disgust (56 faces) 0.048, surprise 0.049,
happy 0.050, fear and angry 0.052; M from a random half or quarter of the faces a class does not show, 0.060 and
0.074. TVD^2 = a + b / faces through those points leaves 0.044 with M fitted on unlimited faces (what the halves the
classes draw from stray from the rest) and puts 0.05 at about 1.5 times the faces M has: labelled faces the network
never trained on, which FER2013's Training and PublicTest rows do not hold. Flip averaging (`serving_default`, twice
the cost a face) reads 0.0509 / 0.0511 / 0.0497 on seeds 0 / 1 / 2.
M from more views of the same held-out faces through the single pass (each face, its flip, 2-px shifts, its centre 44
px scaled up, the face padded to 56 px scaled down, +-8 degree turns, gamma 0.7 and 1.4, and the flips of each: 21
views; a class's faces and all their views left out of its M; the original view weighted as all the others together,
chosen on seed 1) reads `check_class_mixes(seed=0 / 1 / 2)`'s windows 0.0516 / 0.0520 / 0.0514 against PACC's 0.0528
/ 0.0538 / 0.0527 (-0.0012 +- 0.0002 paired; the flip alone -0.0005): a face's views err together (its true emotion's
probability correlates 0.89 with its flip's), so they add few faces' worth of evidence to M.

No shrinkage towards the raw mean for windows with few faces: measured on generated classes of 1 to 30 faces,
every blend of the two read the classes worse than the corrected shares alone, even for a single face (the raw mean
of one face is as biased as that of many, and its error is no smaller than the correction's noise). A window
without faces has no shares (None).

The matrices ship beside each model version (`models/emotion/<v>/quantification.json`, written by
`python -m classpulse_training quantification` and by `export`), one per serving signature, because each signature
errs its own way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classpulse_core.labels import EMOTIONS

FILE_NAME = "quantification.json"
_TOLERANCE = 1e-9
_MAX_ITERATIONS = 5000


def mean_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """M[i][j]: the mean probability of emotion j over the faces labelled i (rows in EMOTIONS order)."""
    missing = [EMOTIONS[i] for i in range(len(EMOTIONS)) if not np.any(labels == i)]
    if missing:
        raise ValueError(f"no labelled face of {', '.join(missing)}: the correction needs every emotion")
    return np.stack([probabilities[labels == i].mean(axis=0) for i in range(len(EMOTIONS))])


def project_to_simplex(points: np.ndarray) -> np.ndarray:
    """Each row's Euclidean projection onto the probability simplex (Duchi et al. 2008)."""
    ordered = -np.sort(-points, axis=1)
    excess = np.cumsum(ordered, axis=1) - 1.0
    ranks = np.arange(1, points.shape[1] + 1)
    support = (ordered - excess / ranks > 0).sum(axis=1)
    threshold = excess[np.arange(len(points)), support - 1] / support
    projected: np.ndarray = np.maximum(points - threshold[:, None], 0.0)
    return projected


def solve_shares(matrices: np.ndarray, means: np.ndarray) -> np.ndarray:
    """PACC for each window: row k of the result is the point of the simplex that best solves matrices[k]^T p =
    means[k] in least squares (one M per window, so an evaluation can hold each window's own faces out of its M)."""
    forward = np.swapaxes(matrices, 1, 2)  # true shares -> expected mean probabilities
    step = 1.0 / np.linalg.norm(forward, 2, axis=(1, 2))[:, None] ** 2
    # Projected gradient descent on ||M^T p - q||^2 with Nesterov momentum (FISTA), from the projection of the
    # unconstrained solution: where that lies inside the simplex it is the answer and nothing moves.
    shares = project_to_simplex(np.linalg.solve(forward, means[..., None])[..., 0])
    previous, momentum = shares, 1.0
    for _ in range(_MAX_ITERATIONS):
        residual = np.einsum("kij,kj->ki", forward, shares) - means
        following = project_to_simplex(shares - step * np.einsum("ki,kij->kj", residual, forward))
        next_momentum = (1 + np.sqrt(1 + 4 * momentum**2)) / 2
        moved = np.abs(following - previous).max() if len(means) else 0.0
        shares = following + (momentum - 1) / next_momentum * (following - previous)
        previous, momentum = following, next_momentum
        if moved < _TOLERANCE:
            break
    result: np.ndarray = previous
    return result


@dataclass(frozen=True)
class ShareCorrection:
    matrix: np.ndarray  # M, rows = true emotion, columns = mean probability, EMOTIONS order
    source: str  # what M was measured on, for the record

    def __post_init__(self) -> None:
        if self.matrix.shape != (len(EMOTIONS), len(EMOTIONS)) or not np.all(np.isfinite(self.matrix)):
            raise ValueError(f"the correction matrix must be {len(EMOTIONS)}x{len(EMOTIONS)} finite numbers")
        if np.linalg.matrix_rank(self.matrix) < len(EMOTIONS):
            raise ValueError("the correction matrix is singular: the model cannot tell some emotions apart")

    @classmethod
    def load(cls, path: Path, signature: str) -> ShareCorrection:
        document = json.loads(Path(path).read_text())
        signatures = document["signatures"]
        if signature not in signatures:
            raise ValueError(f"{path} has no correction for signature {signature!r}; it has {sorted(signatures)}")
        if list(document["emotions"]) != list(EMOTIONS):
            raise ValueError(f"{path} lists emotions {document['emotions']}, expected {list(EMOTIONS)}")
        source = f"{path} ({signature}, {document['split']}, {document['faces']} faces)"
        return cls(np.asarray(signatures[signature]["mean_probabilities"], dtype=np.float64), source)

    def correct(self, means: np.ndarray) -> np.ndarray:
        """The corrected shares of windows whose mean probabilities are the rows of `means` (each summing to 1)."""
        means = np.atleast_2d(np.asarray(means, dtype=np.float64))
        return solve_shares(np.broadcast_to(self.matrix, (len(means), *self.matrix.shape)), means)

    def shares(self, sums: Sequence[dict[str, float]]) -> list[dict[str, float] | None]:
        """Corrected shares for each window's summed metrics (`emotion.<name>`), None for a window without faces."""
        totals = np.array([[window.get(f"emotion.{name}", 0.0) for name in EMOTIONS] for window in sums]).reshape(-1, len(EMOTIONS))
        whole = totals.sum(axis=1)
        seen = whole > 0
        corrected = self.correct(totals[seen] / whole[seen, None]) if seen.any() else np.zeros((0, len(EMOTIONS)))
        rows = iter(corrected)
        return [dict(zip(EMOTIONS, map(float, next(rows)), strict=True)) if face else None for face in seen]
