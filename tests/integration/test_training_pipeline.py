"""Train a tiny model on synthetic, learnable faces, resume it, export it and evaluate the export.

No servers needed: these exercise the training pipeline end to end in well under a minute.
"""

import dataclasses
import json
import shutil
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from classpulse_training.augment import AugmentConfig
from classpulse_training.batchnorm import reestimate_batchnorm
from classpulse_training.cli import main
from classpulse_training.config import TrainConfig, load_config, save_config
from classpulse_training.distill import DistillationConfig, DistillationLoss, student_of
from classpulse_training.export import export, load_trained_model
from classpulse_training.fer_csv import load_fer_csv, write_fer_csv
from classpulse_training.model import ModelConfig, build_model, count_macs
from classpulse_training.restore import restore_run
from classpulse_training.run_files import RunFiles
from classpulse_training.serving import FLOAT_SIGNATURE, SINGLE_PASS_SIGNATURE, load_signature, predict_probabilities
from classpulse_training.train import train
from classpulse_training.warmup import WARMUP_BATCH_SIZES, WARMUP_FILE, read_warmup_requests

pytestmark = pytest.mark.integration

TINY_MODEL = ModelConfig(widths=(8, 16, 16, 32), convs_per_stage=(1, 1, 1, 1), dense_units=32, dropout=0.1)
# Class k is a face of mean brightness 25 + 30k; photometric jitter would blur that signal, so it is off here.
GEOMETRIC_ONLY = AugmentConfig(max_brightness=0.0, contrast_range=(1.0, 1.0))


def synthetic_faces(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 7
    rng.shuffle(labels)
    images = rng.normal(25 + 30 * labels[:, None, None, None], 12, (n, 48, 48, 1))
    return np.clip(images, 0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    train_images, train_labels = synthetic_faces(512, seed=1)
    val_images, val_labels = synthetic_faces(140, seed=2)
    return write_fer_csv(
        tmp_path_factory.mktemp("data") / "synthetic.csv.gz",
        np.concatenate([train_images, val_images]),
        np.concatenate([train_labels, val_labels]),
        ["Training"] * 512 + ["PublicTest"] * 140,
    )


@pytest.fixture(scope="module")
def config(csv_path):
    return TrainConfig(
        csv=str(csv_path), epochs=8, batch_size=32, peak_learning_rate=0.01, warmup_epochs=1,
        precision="float32", model=TINY_MODEL, augment=GEOMETRIC_ONLY,
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, config):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    return run_dir, train(config, run_dir)


QUICK_CHECK = 20
"""Generated classes per mix and window of an export's class-share check (200 by default; its figures are not what
these tests check, and 200 took half of each export)."""
ONE_PASS_EXPORT = dict(csv=None, flip="off", min_flip_gain=0.0, speed_seconds=0.1, classes_per_mix=QUICK_CHECK)


@pytest.fixture(scope="module")
def one_pass_export(tmp_path_factory, trained_run):
    """`one_pass_export(batchnorm)` -> (version dir, metrics): the tiny run exported without flip averaging, made
    once per batch-norm mode for every test that reads such a version (an export costs seconds; none writes in it)."""
    run_dir, _ = trained_run
    made: dict[str, tuple] = {}

    def exported(batchnorm: str) -> tuple:
        if batchnorm not in made:
            version_dir = tmp_path_factory.mktemp(f"batchnorm-{batchnorm}") / "1"
            made[batchnorm] = version_dir, export([run_dir], version_dir, batchnorm=batchnorm, **ONE_PASS_EXPORT)
        return made[batchnorm]

    return exported


def test_loss_falls_and_accuracy_beats_chance(trained_run):
    _, result = trained_run
    losses = [h["loss"] for h in result.history]
    assert len(result.history) == 8
    assert losses[-1] < 0.7 * losses[0]
    assert result.best_val_accuracy > 0.6  # chance is 1/7


def test_run_files_written(trained_run, config):
    run_dir, result = trained_run
    files = RunFiles(run_dir)
    assert files.last_checkpoint.exists() and files.best_weights.exists()
    assert json.loads(files.history.read_text()) == result.history
    assert load_config(files.config) == config
    assert json.loads(files.run_info.read_text())["precision"] == "float32"  # the config's, resolved


def test_weight_average_is_scored_chosen_and_resumed(tmp_path, config, csv_path):
    averaged = dataclasses.replace(config, epochs=4, ema_momentum=0.9)
    run_dir = tmp_path / "averaged"
    train(averaged, run_dir, extra_callbacks=[_StopAfter(2)])
    result = train(averaged, run_dir, resume=True)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert all(0 <= h["ema_val_accuracy"] <= 1 for h in result.history)
    # The run keeps the best averaged weights: scored again, they give exactly what the history says of them.
    assert result.best_val_accuracy == max(h["ema_val_accuracy"] for h in result.history) > 0.5
    files = RunFiles(run_dir)
    kept = load_trained_model(files, averaged)
    val = load_fer_csv(csv_path).split("PublicTest")
    predicted = kept.predict(val.images.astype("float32"), verbose=0).argmax(1)
    assert (predicted == val.labels).mean() == pytest.approx(result.best_val_accuracy, abs=1e-6)
    # Scoring the average swaps the raw weights back: the checkpoint to resume from holds raw weights, not averages.
    last = tf.keras.models.load_model(files.last_checkpoint)
    raw_and_average = zip(last.trainable_variables, last.optimizer._model_variables_moving_average, strict=True)
    assert any(not np.allclose(raw.numpy(), average.numpy()) for raw, average in raw_and_average)


class _StopAfter(tf.keras.callbacks.Callback):
    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:
            self.model.stop_training = True


def test_interrupted_run_resumes_where_it_stopped(tmp_path, config, trained_run):
    short = TrainConfig(**{**config.__dict__, "epochs": 3})
    run_dir = tmp_path / "interrupted"
    train(short, run_dir, extra_callbacks=[_StopAfter(2)])
    assert len(json.loads(RunFiles(run_dir).history.read_text())) == 2
    resumed = train(short, run_dir, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    with pytest.raises(FileExistsError):
        train(short, run_dir)


def test_export_signatures_match_the_keras_model(tmp_path, trained_run, config):
    run_dir, _ = trained_run
    version_dir = tmp_path / "models" / "1"
    metrics = export([run_dir], version_dir, csv=None, flip="on", min_flip_gain=0.0, batchnorm="kept", speed_seconds=0.3,
                     classes_per_mix=QUICK_CHECK)
    model = load_trained_model(RunFiles(run_dir), config)
    faces, _ = synthetic_faces(20, seed=3)

    logits = (model(faces.astype(np.float32)) + model(faces[:, :, ::-1].astype(np.float32))) / 2
    expected = tf.nn.softmax(logits / metrics["calibration"]["temperature"]).numpy()
    served = predict_probabilities(load_signature(version_dir), faces)
    served_float = predict_probabilities(load_signature(version_dir, FLOAT_SIGNATURE), faces.astype(np.float32))
    np.testing.assert_allclose(served, expected, atol=2e-4)  # temperature is rounded to 4 digits in metrics.json
    np.testing.assert_allclose(served_float, served, atol=1e-6)
    assert served.shape == (20, 7) and served.dtype == np.float32
    np.testing.assert_allclose(served.sum(axis=1), 1.0, atol=1e-5)
    # The single-pass signature: the network once, no mirror image, its own temperature.
    single = metrics["single_pass"]
    once = tf.nn.softmax(model(faces.astype(np.float32)) / single["temperature"]).numpy()
    np.testing.assert_allclose(
        predict_probabilities(load_signature(version_dir, SINGLE_PASS_SIGNATURE), faces), once, atol=2e-4
    )
    assert single["macs_per_face"] * 2 == metrics["cost"]["macs_per_face"] and single["accuracy"] > 0.6

    requests = read_warmup_requests(version_dir)
    assert [r.inputs["faces"].tensor_shape.dim[0].size for r in requests] == list(WARMUP_BATCH_SIZES) * 2
    assert all(r.model_spec.name == "emotion" for r in requests)
    assert metrics["accuracy"] > 0.6 and metrics["inference"]["flip_average"] is True
    calibration = metrics["calibration"]
    assert calibration["temperature"] in (calibration["fitted_temperature"], 1.0)
    assert calibration["ece_after"] <= calibration["ece_before"] + 1e-4  # never ship a worse-calibrated model
    assert (version_dir / "MODEL_CARD.md").read_text().count(f"{metrics['accuracy']:.4f}") >= 1
    assert json.loads((version_dir / "metrics.json").read_text())["n"] == 140


def test_a_watched_base_path_sees_a_version_only_once_its_export_is_complete(tmp_path, trained_run):
    """TF Serving loads a version folder as soon as its poll of the base path finds one: an export seen half-written
    would be served with its variables cut short or without its warm-up requests."""
    run_dir, _ = trained_run
    base_path = tmp_path / "emotion"
    version_dir = base_path / "1"
    first_seen: list[set[str]] = []
    exported = threading.Event()

    def watch() -> None:
        # Looks once more after the export returned: the rename and the return may come between two of its looks.
        while not first_seen:
            returned = exported.is_set()
            if version_dir.is_dir():
                first_seen.append({path.relative_to(version_dir).as_posix() for path in version_dir.rglob("*")})
            elif returned:
                return
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        export([run_dir], version_dir, batchnorm="kept", **ONE_PASS_EXPORT)
    finally:
        exported.set()
        watcher.join()
    complete = {"saved_model.pb", "variables/variables.index", WARMUP_FILE.as_posix(), "metrics.json", "MODEL_CARD.md"}
    assert first_seen and complete <= first_seen[0]
    assert [path.name for path in base_path.iterdir()] == ["1"]  # nothing of the export left beside it


def test_export_reestimates_batchnorm_statistics_on_the_training_faces(trained_run, config, csv_path, one_pass_export):
    run_dir, _ = trained_run
    reestimated, metrics = one_pass_export("training")
    assert metrics["inference"]["batchnorm_statistics"] == (
        "re-estimated on 512 un-augmented Training faces and their mirror images"
    )
    # What is served is the trained network with the statistics of the plain training faces.
    model = load_trained_model(RunFiles(run_dir), config)
    reestimate_batchnorm(model, load_fer_csv(csv_path).split("Training").images)
    faces, _ = synthetic_faces(20, seed=6)
    expected = tf.nn.softmax(model(faces.astype(np.float32)) / metrics["calibration"]["temperature"]).numpy()
    np.testing.assert_allclose(predict_probabilities(load_signature(reestimated), faces), expected, atol=2e-4)
    kept_dir, kept = one_pass_export("kept")
    assert kept["inference"]["batchnorm_statistics"] == "as training left them"
    assert not np.allclose(predict_probabilities(load_signature(kept_dir), faces), expected, atol=1e-3)
    # auto keeps the re-estimated statistics exactly when they do not lower the selection accuracy.
    auto = one_pass_export("auto")[1]["inference"]
    accuracy = auto["batchnorm_selection_accuracy"]
    assert auto["batchnorm_statistics"].startswith("re-estimated") == (accuracy["after"] >= accuracy["before"])


def test_a_version_restores_to_a_run_that_exports_the_same_network(tmp_path, trained_run, config, one_pass_export):
    run_dir, _ = trained_run
    first_dir, first = one_pass_export("kept")
    restored = restore_run(first_dir, tmp_path / "runs" / "restored")
    original = load_trained_model(RunFiles(run_dir), config)
    again = load_trained_model(restored, load_config(restored.config))
    assert load_config(restored.config) == config
    for before, after in zip(original.weights, again.weights, strict=True):
        np.testing.assert_array_equal(before.numpy(), after.numpy())

    second = export([restored.root], tmp_path / "models" / "2", batchnorm="kept", **ONE_PASS_EXPORT)
    faces, _ = synthetic_faces(20, seed=7)
    np.testing.assert_allclose(
        predict_probabilities(load_signature(tmp_path / "models" / "2"), faces),
        predict_probabilities(load_signature(first_dir), faces), atol=1e-6,
    )
    # The re-export tells the network's own story: its training command, seed, epochs and time, not the restore's.
    keys = ("best_epoch", "epochs", "training_seconds", "command", "seed", "parameters", "config")
    (member_first,), (member_second,) = first["training"]["members"], second["training"]["members"]
    assert {k: member_second[k] for k in keys} == {k: member_first[k] for k in keys}
    assert member_second["run"] == "restored" and second["accuracy"] == first["accuracy"]
    # ... and which version the weights are, whose batch-norm statistics it kept (not "as training left them").
    assert member_second["restored_from"] == {"version": 1, "batchnorm_statistics": "as training left them"}
    assert second["inference"]["batchnorm_statistics"] == "as version 1 was exported with them (as training left them)"
    card = (tmp_path / "models" / "2" / "MODEL_CARD.md").read_text()
    assert "| weights | version 1's network, restored from its export (`restore-run`)" in card
    assert "| weights |" not in (first_dir / "MODEL_CARD.md").read_text()
    with pytest.raises(FileExistsError):
        restore_run(first_dir, restored.root)


@pytest.fixture(scope="module")
def ensemble_version(tmp_path_factory, trained_run, config):
    """(version dir, metrics, the second run): the tiny run and another one (another seed, a flatten head, 3 epochs)
    exported as one ensemble, for the tests that read such a version."""
    run_a, _ = trained_run
    run_b = tmp_path_factory.mktemp("runs") / "other-seed"
    other = TrainConfig(**{**config.__dict__, "seed": config.seed + 1, "epochs": 3,
                           "model": ModelConfig(**{**TINY_MODEL.__dict__, "head": "flatten"})})
    train(other, run_b)
    version_dir = tmp_path_factory.mktemp("ensemble") / "1"
    return version_dir, export([run_a, run_b], version_dir, batchnorm="kept", **ONE_PASS_EXPORT), run_b


def test_an_ensemble_version_is_not_restored_to_one_run(tmp_path, ensemble_version):
    version_dir, _, _ = ensemble_version
    with pytest.raises(ValueError, match="ensemble of 2 networks"):
        restore_run(version_dir, tmp_path / "runs" / "one")
    assert not (tmp_path / "runs" / "one").exists()


def test_bfloat16_export_agrees_with_float32(tmp_path, trained_run, one_pass_export):
    run_dir, _ = trained_run
    fp32_dir, fp32 = one_pass_export("auto")  # export's defaults: float32, batch-norm statistics "auto"
    assert fp32["inference"]["compute_dtype"] == "float32"
    bf16 = export([run_dir], tmp_path / "2", compute_dtype="bfloat16", **ONE_PASS_EXPORT)
    faces, _ = synthetic_faces(50, seed=4)
    fp32_probabilities = predict_probabilities(load_signature(fp32_dir), faces)
    bf16_probabilities = predict_probabilities(load_signature(tmp_path / "2"), faces)
    assert bf16["inference"]["compute_dtype"] == "bfloat16"
    assert bf16_probabilities.dtype == np.float32
    # bfloat16 keeps ~3 significant digits; each export also fits its own temperature on its own logits.
    np.testing.assert_allclose(bf16_probabilities, fp32_probabilities, atol=0.15)
    assert (bf16_probabilities.argmax(1) == fp32_probabilities.argmax(1)).mean() >= 0.9
    assert abs(bf16["accuracy"] - fp32["accuracy"]) <= 0.05


def test_evaluate_cli_prints_tables_and_one_json_line(tmp_path, trained_run, csv_path, capsys):
    run_dir, _ = trained_run
    models_dir = tmp_path / "models"
    export_args = ["--run", run_dir.name, "--runs-dir", str(run_dir.parent), "--models-dir", str(models_dir)]
    assert main(["export", *export_args, "--speed-seconds", "0.3", "--classes-per-mix", str(QUICK_CHECK)]) == 0
    capsys.readouterr()
    out_dir = tmp_path / "eval"
    assert main(["evaluate", "--csv", str(csv_path), "--model", str(models_dir / "1"), "--out", str(out_dir)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["n"] == 140 and summary["usages"] == ["PublicTest"]
    data = load_fer_csv(csv_path).split("PublicTest")
    predicted = predict_probabilities(load_signature(models_dir / "1"), data.images).argmax(axis=1)
    assert summary["accuracy"] == pytest.approx((predicted == data.labels).mean(), abs=1e-4)
    assert any(line.startswith("confusion matrix") for line in lines)
    assert (out_dir / "confusion_matrix_PublicTest.png").stat().st_size > 1000
    assert (out_dir / "learning_curves.png").stat().st_size > 1000
    # Calibration through the signature the classifier calls, flagged against the target.
    served = summary["calibration"]["emotion_single_pass"]
    assert served["within_target"] == (served["ece"] <= summary["calibration"]["target"])
    assert any(line.startswith("ECE through emotion_single_pass (the classifier's default)") for line in lines)
    # The export wrote what the API corrects class shares with, and the card shows its check.
    quantification = json.loads((models_dir / "1" / "quantification.json").read_text())
    assert set(quantification["signatures"]) == {"serving_default", "emotion_single_pass"}
    assert quantification["faces"] == 140 and "## Class shares" in (models_dir / "1" / "MODEL_CARD.md").read_text()


def test_several_runs_export_as_one_ensemble_that_averages_their_logits(tmp_path, trained_run, csv_path, ensemble_version):
    run_a, _ = trained_run
    version_dir, metrics, run_b = ensemble_version
    members = [load_trained_model(RunFiles(run), load_config(RunFiles(run).config)) for run in (run_a, run_b)]
    faces, _ = synthetic_faces(20, seed=5)
    logits = sum(member(faces.astype(np.float32)) for member in members) / 2
    expected = tf.nn.softmax(logits / metrics["calibration"]["temperature"]).numpy()
    np.testing.assert_allclose(predict_probabilities(load_signature(version_dir), faces), expected, atol=2e-4)
    assert [m["run"] for m in metrics["training"]["members"]] == [run_a.name, "other-seed"]
    assert metrics["cost"]["macs_per_face"] == sum(count_macs(member) for member in members)
    assert metrics["inference"]["networks"] == 2
    card = (version_dir / "MODEL_CARD.md").read_text()
    assert "An ensemble of 2 compact VGG-style CNNs" in card and "run `other-seed`" in card
    assert (version_dir / "card" / "learning_curves_1.png").is_file()
    out_dir = tmp_path / "eval"
    assert main(["evaluate", "--csv", str(csv_path), "--model", str(version_dir), "--out", str(out_dir)]) == 0
    assert (out_dir / "learning_curves.png").is_file() and (out_dir / "learning_curves_1.png").is_file()


STUDENT_MODEL = ModelConfig(widths=(6, 12, 12, 24), convs_per_stage=(1, 1, 1, 1), dense_units=24, dropout=0.1)


def test_a_student_distilled_from_a_trained_teacher_learns_resumes_and_keeps_only_itself(tmp_path, trained_run, config):
    teacher_dir, _ = trained_run
    runs_dir = tmp_path / "runs"
    shutil.copytree(teacher_dir, runs_dir / "teacher")
    student_config = dataclasses.replace(
        config, ema_momentum=0.9, model=STUDENT_MODEL,
        distillation=DistillationConfig(teachers=("teacher",), temperature=3.0, label_weight=0.3),
    )
    train(student_config, runs_dir / "student", extra_callbacks=[_StopAfter(3)])
    result = train(student_config, runs_dir / "student", resume=True)
    assert [h["epoch"] for h in result.history] == list(range(1, config.epochs + 1))
    assert result.best_val_accuracy > 0.5  # chance is 1/7

    files = RunFiles(runs_dir / "student")
    run_info = json.loads(files.run_info.read_text())
    assert run_info["macs_per_face"] == count_macs(build_model(STUDENT_MODEL)) < count_macs(build_model(TINY_MODEL))
    assert [t["run"] for t in run_info["teachers"]] == ["teacher"]
    # The best weights are the student's alone: export reads them into a plain network of the student's config,
    # and they score exactly what the history says of them.
    student = load_trained_model(files, student_config)
    val = load_fer_csv(config.csv).split("PublicTest")
    predicted = student.predict(val.images.astype("float32"), verbose=0).argmax(1)
    assert (predicted == val.labels).mean() == pytest.approx(result.best_val_accuracy, abs=1e-6)

    # The teacher stayed frozen: the checkpoint's teacher gives the teacher run's own logits, in training mode too
    # (dropout off), on the face and its mirror image averaged.
    last = tf.keras.models.load_model(files.last_checkpoint)
    teacher = load_trained_model(RunFiles(runs_dir / "teacher"), config)
    faces = val.images[:16].astype("float32")
    expected = (teacher(faces) + teacher(faces[:, :, ::-1])) / 2
    for training in (False, True):
        np.testing.assert_allclose(last(faces, training=training)[:, 7:], expected, atol=1e-4)
    assert student_of(last).name == "emotion_cnn" and len(last.trainable_variables) == len(
        student_of(last).trainable_variables
    )

    # Exported, it is one plain network whose card names its teachers and the recipe.
    version_dir = tmp_path / "models" / "1"
    metrics = export([files.root], version_dir, csv=None, flip="off", min_flip_gain=0.0, batchnorm="kept", speed_seconds=0.2,
                     classes_per_mix=QUICK_CHECK)
    assert metrics["cost"]["macs_per_face"] == run_info["macs_per_face"]
    card = (version_dir / "MODEL_CARD.md").read_text()
    assert "knowledge distillation: 0.7 x KL to the mean logits of teachers `teacher`" in card
    assert "temperature 3" in card


@pytest.mark.parametrize("label_weight", [0.0, 0.4, 1.0])
def test_distillation_loss_mixes_the_labels_and_the_softened_teacher(label_weight):
    labels = tf.one_hot([0, 3], 7)
    student = tf.constant([[2.0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 1.0, 0, 0, 0]])
    teacher = tf.constant([[1.0, 0, 3, 0, 0, 0, 0], [0, 0, 0, 4.0, 0, 0, 2]])
    loss = DistillationLoss(temperature=2.0, label_weight=label_weight)
    value = float(loss(labels, tf.concat([student, teacher], axis=1)))

    hard = float(tf.reduce_mean(tf.keras.losses.categorical_crossentropy(labels, student, from_logits=True)))
    p_teacher, p_student = tf.nn.softmax(teacher / 2), tf.nn.softmax(student / 2)
    kl = float(tf.reduce_mean(tf.reduce_sum(p_teacher * tf.math.log(p_teacher / p_student), axis=1))) * 4
    assert value == pytest.approx(label_weight * hard + (1 - label_weight) * kl, rel=1e-5)
    # Matching the teacher exactly leaves only the labels' part.
    matched = float(loss(labels, tf.concat([teacher, teacher], axis=1)))
    hard_matched = float(tf.reduce_mean(tf.keras.losses.categorical_crossentropy(labels, teacher, from_logits=True)))
    assert matched == pytest.approx(label_weight * hard_matched, abs=1e-6)


def test_a_missing_teacher_is_named_before_any_training(tmp_path, config):
    student_config = dataclasses.replace(config, distillation=DistillationConfig(teachers=("absent",)))
    with pytest.raises(FileNotFoundError, match="teacher run 'absent'"):
        train(student_config, tmp_path / "runs" / "student")


def test_train_cli_finishes_an_unfinished_teacher_before_its_student(tmp_path, config):
    runs_dir = tmp_path / "runs"
    teacher_config = dataclasses.replace(config, epochs=3)
    train(teacher_config, runs_dir / "teacher", extra_callbacks=[_StopAfter(1)])  # interrupted after epoch 1
    student_config = dataclasses.replace(
        config, epochs=2, model=STUDENT_MODEL, distillation=DistillationConfig(teachers=("teacher",)),
    )
    config_path = tmp_path / "student.json"
    save_config(student_config, config_path)

    assert main(["train", "--config", str(config_path), "--run", "student", "--runs-dir", str(runs_dir)]) == 0
    assert [h["epoch"] for h in json.loads(RunFiles(runs_dir / "teacher").history.read_text())] == [1, 2, 3]
    assert len(json.loads(RunFiles(runs_dir / "student").history.read_text())) == 2


def test_a_fine_tune_starts_from_a_trained_run_resumes_on_its_own_and_says_so(tmp_path, trained_run, config):
    start_dir, start = trained_run
    runs_dir = tmp_path / "runs"
    shutil.copytree(start_dir, runs_dir / "start")
    fine = dataclasses.replace(config, epochs=3, peak_learning_rate=0.001, init_from="start",
                               augment=dataclasses.replace(config.augment, low_res_probability=0.5))
    train(fine, runs_dir / "fine", extra_callbacks=[_StopAfter(1)])
    files = RunFiles(runs_dir / "fine")
    # Its first epoch already scores about what the start ended at; a fresh network's first epoch is far below.
    first = json.loads(files.history.read_text())[0]["val_accuracy"]
    assert first > start.history[0]["val_accuracy"] + 0.2 and first > start.best_val_accuracy - 0.1
    run_info = json.loads(files.run_info.read_text())
    assert run_info["init_from"]["run"] == "start"
    assert run_info["init_from"]["best_epoch"] == start.best_epoch

    # Resumed from its own checkpoint, not from the start's weights again (they were removed: reading them would fail).
    shutil.rmtree(runs_dir / "start")
    resumed = train(fine, runs_dir / "fine", resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]

    version_dir = tmp_path / "models" / "1"
    metrics = export([files.root], version_dir, batchnorm="kept", **ONE_PASS_EXPORT)
    assert metrics["training"]["members"][0]["init_from"]["run"] == "start"
    card = (version_dir / "MODEL_CARD.md").read_text()
    assert f"| start | fine-tuned from the weights of run `start` (its best epoch {start.best_epoch}" in card
    assert "low resolution p=0.5 (shrunk to 20-48 px" in card
