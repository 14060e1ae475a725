"""`quantification.json` beside a model version: what the API needs to correct class shares for the model's known
errors (`classpulse_core.share_correction`), measured on held-out faces through each exported signature, and how
well corrected shares read generated classes (`class_mixes`), for the model card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from classpulse_core.labels import EMOTIONS
from classpulse_core.share_correction import FILE_NAME, mean_probabilities

from .class_mixes import CLASSES_PER_MIX, check_class_mixes
from .serving import SERVING_SIGNATURE, SINGLE_PASS_SIGNATURE, load_signature, predict_probabilities

CHECKED_SIGNATURE = SINGLE_PASS_SIGNATURE
"""The signature the classifier calls by default: the one whose class shares are checked on generated classes."""
SIGNATURES = (SERVING_SIGNATURE, SINGLE_PASS_SIGNATURE)


def signature_probabilities(model_dir: Path, faces: np.ndarray) -> dict[str, np.ndarray]:
    return {signature: predict_probabilities(load_signature(model_dir, signature), faces) for signature in SIGNATURES}


def write_quantification(
    model_dir: Path, probabilities: dict[str, np.ndarray], labels: np.ndarray, training_labels: np.ndarray, split: str,
    classes_per_mix: int = CLASSES_PER_MIX,
) -> dict:
    """From each signature's probabilities of held-out faces (`labels`: their emotions; the model never trained on
    them), M per signature and the check of the classifier's signature on `classes_per_mix` generated classes per
    mix and window, written to `<model_dir>/quantification.json`."""
    document = {
        "method": "PACC: corrected shares = the point of the simplex that best solves M^T p = mean probabilities "
                  "(least squares); M[i][j] = mean probability of emotion j over held-out faces of emotion i",
        "model_version": int(model_dir.name),
        "emotions": list(EMOTIONS),
        "split": split,
        "faces": len(labels),
        "faces_per_emotion": np.bincount(labels, minlength=len(EMOTIONS)).tolist(),
        "training_prior": np.round(np.bincount(training_labels, minlength=len(EMOTIONS)) / len(training_labels), 6).tolist(),
        "signatures": {
            signature: {"mean_probabilities": np.round(mean_probabilities(probabilities[signature], labels), 6).tolist()}
            for signature in SIGNATURES
        },
        "class_mix_check": {"signature": CHECKED_SIGNATURE}
        | check_class_mixes(probabilities[CHECKED_SIGNATURE], labels, classes=classes_per_mix),
    }
    (model_dir / FILE_NAME).write_text(json.dumps(document, indent=1) + "\n")
    return document
