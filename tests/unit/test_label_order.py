"""One emotion order for the whole repository: training numbers its classes as the services read the model's
output, and the classifier checks the model's width against the same list."""

from __future__ import annotations

import pytest

from classpulse_classifier.serving_client import EMOTION_COUNT, FACE_SHAPE
from classpulse_core.labels import EMOTIONS
from classpulse_core.schemas import CROP_SIDE
from classpulse_training import labels as training_labels

pytestmark = pytest.mark.unit


def test_training_shows_the_pipelines_emotions_in_its_order() -> None:
    assert [name.lower() for name in training_labels.EMOTIONS] == list(EMOTIONS)
    assert training_labels.NUM_CLASSES == EMOTION_COUNT == len(EMOTIONS)


def test_training_and_the_classifier_use_the_crop_side_the_detector_cuts() -> None:
    assert training_labels.IMAGE_SIDE == CROP_SIDE
    assert FACE_SHAPE == (CROP_SIDE, CROP_SIDE, 1)
