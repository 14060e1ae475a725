"""The sample-class generator on a small synthetic FER2013-style CSV (noise images stand in for faces)."""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import os
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from classpulse_demo import fer_csv
from classpulse_demo.fer_csv import EMOTIONS, FerCsvNotFoundError
from classpulse_demo.gallery import plan_gallery
from classpulse_demo.haar_check import match_detections
from classpulse_demo.sample_class import generate_sample_class, main

pytestmark = pytest.mark.unit

ROWS_PER_EMOTION = {"PublicTest": 4, "Training": 2}
SMALL_CLASS = {"students": 4, "seconds": 6.0, "fps": 5.0, "seed": 3, "size": (640, 480)}


def _write_csv(path: Path) -> dict[int, tuple[str, str]]:
    """A Kaggle-layout CSV; returns line number -> (emotion name, usage) of each data row."""
    rng = np.random.default_rng(0)
    rows = [
        (emotion, usage)
        for usage, count in ROWS_PER_EMOTION.items()
        for emotion in range(len(EMOTIONS))
        for _ in range(count)
    ]
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["emotion", "pixels", "Usage"])
        for emotion, usage in rows:
            writer.writerow([emotion, " ".join(map(str, rng.integers(0, 256, 48 * 48))), usage])
    return {line: (EMOTIONS[emotion], usage) for line, (emotion, usage) in enumerate(rows, start=2)}


@pytest.fixture(scope="module")
def fer_rows(tmp_path_factory) -> tuple[Path, dict[int, tuple[str, str]]]:
    path = tmp_path_factory.mktemp("fer") / "fer2013.csv.gz"
    return path, _write_csv(path)


@pytest.fixture(scope="module")
def sample(fer_rows, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample")
    paths = generate_sample_class(fer_rows[0], out, **SMALL_CLASS)
    return paths.video, json.loads(paths.labels.read_text())


def _read_frames(video: Path) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(video))
    assert capture.isOpened()
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


def test_video_matches_labels(sample):
    video, labels = sample
    frames, fps = _read_frames(video)
    assert len(frames) == labels["frames"] == len(labels["per_frame"]) == 30
    assert fps == pytest.approx(labels["fps"])
    assert frames[0].shape == (labels["height"], labels["width"], 3)
    assert [entry["frame"] for entry in labels["per_frame"]] == list(range(labels["frames"]))
    assert labels["emotions"] == list(EMOTIONS)
    assert labels["students"] == SMALL_CLASS["students"]


def test_phases_cover_every_frame_once(sample):
    _, labels = sample
    phases = labels["phases"]
    assert [phase["dominant_emotion"] for phase in phases] == ["neutral", "happy", "surprise", "sad"]
    assert phases[0]["start_frame"] == 0 and phases[-1]["end_frame"] == labels["frames"]
    for before, after in itertools.pairwise(phases):
        assert before["end_frame"] == after["start_frame"]
        assert before["end_s"] == after["start_s"] == after["start_frame"] / labels["fps"]


def test_dominant_emotion_leads_each_phase(sample):
    _, labels = sample
    for phase in labels["phases"]:
        shown = [
            face["emotion"]
            for entry in labels["per_frame"][phase["start_frame"] : phase["end_frame"]]
            for face in entry["faces"]
        ]
        assert max(set(shown), key=shown.count) == phase["dominant_emotion"]


def test_labelled_faces_come_from_public_test_rows_of_their_emotion(sample, fer_rows):
    _, labels = sample
    _, row_by_line = fer_rows
    faces = [face for entry in labels["per_frame"] for face in entry["faces"]]
    assert faces
    for face in faces:
        assert row_by_line[face["fer_usage_row"]] == (face["emotion"], "PublicTest")


def test_emotion_share_counts_visible_faces(sample):
    _, labels = sample
    shown = [face["emotion"] for entry in labels["per_frame"] for face in entry["faces"]]
    share = labels["expected_emotion_share"]
    assert set(share) == set(EMOTIONS)
    for emotion in EMOTIONS:
        assert share[emotion] == pytest.approx(shown.count(emotion) / len(shown), abs=1e-4)


def test_away_students_have_no_face_in_labels_or_video(sample):
    video, labels = sample
    frames, _ = _read_frames(video)
    empty = [entry["frame"] for entry in labels["per_frame"] if not entry["faces"]]
    assert empty, "the class must have a stretch with nobody on camera"
    nobody = frames[empty[0]].astype(np.int16)
    layout = plan_gallery(labels["width"], labels["height"], labels["students"])
    for entry, frame in zip(labels["per_frame"], frames, strict=True):
        present = {face["student"] for face in entry["faces"]}
        for student in range(1, labels["students"] + 1):
            box = layout.face_box(student - 1)
            region = np.s_[box.y : box.y + box.h, box.x : box.x + box.w]
            difference = np.abs(frame[region].astype(np.int16) - nobody[region]).mean()
            # Noise "faces" differ from the camera-off tile by ~100 levels; codec noise is a few levels.
            assert (difference > 30) == (student in present), (entry["frame"], student, difference)


def test_face_boxes_are_inside_the_frame_and_large_enough_to_detect(sample):
    _, labels = sample
    for entry in labels["per_frame"]:
        for face in entry["faces"]:
            x, y, w, h = face["box"]
            assert 0 <= x and x + w <= labels["width"] and 0 <= y and y + h <= labels["height"]
            assert w == h >= 60


def test_same_seed_same_class_and_plain_csv_reads_like_gzip(sample, tmp_path):
    _, labels = sample
    plain_csv = tmp_path / "fer2013.csv"
    _write_csv(plain_csv)
    again = generate_sample_class(plain_csv, tmp_path / "out", **SMALL_CLASS)
    assert json.loads(again.labels.read_text()) == labels


def test_a_second_draw_reuses_the_rows_read_and_a_rewritten_csv_is_read_again(tmp_path):
    path = tmp_path / "fer2013.csv"
    _write_csv(path)
    needed = {"happy": 2, "sad": 1}
    first = fer_csv.sample_faces(path, needed, "PublicTest", random.Random(5))
    # The header broken in place, size and modification time kept: a draw that read the file again would fail.
    written = path.stat()
    path.write_bytes(path.read_bytes().replace(b"emotion,pixels", b"emotion,pixelz", 1))
    os.utime(path, ns=(written.st_atime_ns, written.st_mtime_ns))
    again = fer_csv.sample_faces(path, needed, "PublicTest", random.Random(5))
    assert {e: [(f.csv_line, f.pixels.tobytes()) for f in faces] for e, faces in again.items()} == {
        e: [(f.csv_line, f.pixels.tobytes()) for f in faces] for e, faces in first.items()
    }
    # A newer file at the same path is read again, and its broken header is reported.
    os.utime(path, ns=(written.st_atime_ns, written.st_mtime_ns + 1_000_000_000))
    with pytest.raises(ValueError, match="lacks column"):
        fer_csv.sample_faces(path, needed, "PublicTest", random.Random(5))


def test_six_students_fill_a_three_by_two_grid_with_detectable_faces():
    layout = plan_gallery(640, 480, 6)
    assert len({tile.x for tile in layout.tiles}) == 3 and len({tile.y for tile in layout.tiles}) == 2
    assert 120 <= layout.face_side <= 150
    with pytest.raises(ValueError, match="do not fit"):
        plan_gallery(320, 240, 9)


def test_missing_csv_message_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv(fer_csv.FER_CSV_ENV, str(tmp_path / "absent.csv"))
    with pytest.raises(FerCsvNotFoundError, match="FER2013_CSV") as raised:
        generate_sample_class(None, tmp_path / "out")
    assert "kaggle" in str(raised.value).lower() and "absent.csv" in str(raised.value)

    monkeypatch.delenv(fer_csv.FER_CSV_ENV)
    monkeypatch.setattr(fer_csv, "DEFAULT_FER_CSV", tmp_path / "no-shared-copy.csv.gz")
    with pytest.raises(FerCsvNotFoundError, match="FER2013_CSV"):
        generate_sample_class(None, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_exits_non_zero_with_the_message_when_csv_is_missing(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "out"), "--csv", str(tmp_path / "absent.csv")]) == 2
    error = capsys.readouterr().err
    assert "fer2013.csv" in error and "FER2013_CSV" in error


def test_cli_prints_the_written_paths(fer_rows, tmp_path, capsys):
    args = ["--out", str(tmp_path), "--csv", str(fer_rows[0]), "--students", "2", "--seconds", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "sample_class.mp4"), str(tmp_path / "sample_class.labels.json")]
    assert all(Path(path).stat().st_size > 0 for path in printed)


def test_detections_match_labelled_boxes_one_to_one():
    truth = [(0, 0, 100, 100), (200, 0, 100, 100)]
    detections = [(5, 5, 100, 100), (0, 0, 90, 90), (400, 400, 80, 80)]
    matches = match_detections(truth, detections)
    # Two detections on one face count once (the better one); the far one matches nothing.
    assert matches == {0: pytest.approx(95 * 95 / (2 * 100 * 100 - 95 * 95))}
