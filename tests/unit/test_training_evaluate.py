"""Evaluate's choice of splits and its printed table."""

import numpy as np
import pytest

from classpulse_training.evaluate import Scored, default_usages, format_report
from classpulse_training.fer_csv import FerData

pytestmark = pytest.mark.unit


def _data(usages: list[str]) -> FerData:
    n = len(usages)
    return FerData(np.zeros((n, 48, 48, 1), np.uint8), np.arange(n) % 7, np.array(usages), np.arange(2, n + 2))


def test_full_kaggle_file_reports_both_test_splits():
    assert default_usages(_data(["Training", "PublicTest", "PrivateTest", "Training"])) == ["PublicTest", "PrivateTest"]


def test_training_only_file_is_scored_whole():
    assert default_usages(_data(["Training", "Training"])) == ["Training"]


def test_table_shows_metrics_and_confusion_counts():
    labels = np.array([0, 0, 3, 3, 3])
    probabilities = np.eye(7)[[0, 3, 3, 3, 0]]
    scored = Scored(probabilities, labels)
    table = format_report("PublicTest", scored)
    assert table.startswith("== PublicTest: n=5 accuracy=0.6000")
    per_class_row, confusion_row = [line.split() for line in table.splitlines() if line.startswith("Happy")]
    assert per_class_row[1:] == ["0.667", "0.667", "0.667", "3"]  # precision, recall, F1, support
    assert confusion_row[1:] == ["1", "0", "0", "2", "0", "0", "0"]
    assert scored.summary()["n"] == 5 and scored.summary()["accuracy"] == 0.6


def test_calibration_is_flagged_against_the_target_for_the_classifiers_signature():
    from classpulse_training.evaluate import ECE_TARGET, calibration_line

    assert calibration_line("emotion_single_pass", ECE_TARGET - 0.001).endswith("(the classifier's default): 0.0390 (target <= 0.04): ok")
    assert calibration_line("serving_default", ECE_TARGET + 0.001).endswith("ABOVE TARGET")
