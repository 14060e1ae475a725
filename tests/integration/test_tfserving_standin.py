"""The local TF Serving stand-in, run as a real subprocess on a tiny SavedModel that follows the emotion contract."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from prometheus_client.parser import text_string_to_metric_families
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from classpulse_classifier.serving_client import (
    EmotionModelClient,
    ModelRequestRejected,
    ModelServerUnavailable,
    UnexpectedModelResponse,
)
from classpulse_classifier.stage import ClassifyFaces
from classpulse_core.labels import EMOTIONS, LABELS_OUTPUT, LABELS_SIGNATURE
from classpulse_devstack import probes
from classpulse_stream.stage import ContractBroken
from classpulse_training.hardware import native_bfloat16
from free_ports import free_port

pytestmark = pytest.mark.integration

MODEL_NAME = "emotion"
START_TIMEOUT_S = 120


class TinyEmotionModel(tf.Module):
    """The model contract with a fixed random linear map + softmax in place of a trained network."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        weights = np.random.default_rng(seed).normal(scale=0.05, size=(48 * 48, 7)).astype(np.float32)
        self.weights = tf.Variable(weights)

    @tf.function(input_signature=[tf.TensorSpec([None, 48, 48, 1], tf.uint8, name="faces")])
    def classify(self, faces: tf.Tensor) -> dict[str, tf.Tensor]:
        pixels = tf.reshape(tf.cast(faces, tf.float32) / 255.0, [-1, 48 * 48])
        return {"probabilities": tf.nn.softmax(pixels @ self.weights)}


class LabelledEmotionModel(TinyEmotionModel):
    """The tiny model, naming its outputs as an exporter does (classpulse_core.labels.LABELS_SIGNATURE)."""

    def __init__(self, seed: int, label_names: list[str]) -> None:
        super().__init__(seed)
        self.label_names = tf.constant(label_names)

    @tf.function(input_signature=[])
    def labels(self) -> dict[str, tf.Tensor]:
        return {LABELS_OUTPUT: self.label_names}


def _faces(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 48, 48, 1), dtype=np.uint8)


def _predict_request(faces: np.ndarray, **model_spec: object) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    for field, value in model_spec.items():
        if field == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, field, value)
    request.inputs["faces"].CopyFrom(tf.make_tensor_proto(faces))
    return request


def export_version(base_path: Path, version: int, model: TinyEmotionModel) -> None:
    """Exports like a real exporter: into a temporary folder, then renamed into place in one step."""
    staging = base_path / f".staging-{version}"
    signatures = {"serving_default": model.classify, "emotion": model.classify}
    if isinstance(model, LabelledEmotionModel):
        signatures[LABELS_SIGNATURE] = model.labels
    tf.saved_model.save(model, str(staging), signatures=signatures)
    warmup = staging / "assets.extra" / "tf_serving_warmup_requests"
    warmup.parent.mkdir()
    with tf.io.TFRecordWriter(str(warmup)) as writer:
        record = prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=_predict_request(_faces(2)))
        )
        writer.write(record.SerializeToString())
    staging.rename(base_path / str(version))


@dataclass
class RunningStandin:
    process: subprocess.Popen[bytes]
    target: str
    monitoring_port: int
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text()


def standin_command(port: int, monitoring_port: int, *flags: str) -> list[str]:
    return [
        sys.executable, "-m", "classpulse_devstack.tfserving_standin", "--port", str(port),
        "--monitoring-port", str(monitoring_port), "--file-system-poll-wait-seconds", "1", *flags,
    ]  # fmt: skip


@contextmanager
def run_standin(base_path: Path | None, log_path: Path, *flags: str) -> Iterator[RunningStandin]:
    """The stand-in serving `base_path`'s highest version, or, with base_path None, what the --model-config-file
    among `flags` names."""
    port, monitoring_port = free_port(), free_port()
    model = ["--model-name", MODEL_NAME, "--model-base-path", str(base_path)] if base_path else []
    command = standin_command(port, monitoring_port, *model, *flags)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    standin = RunningStandin(process, f"127.0.0.1:{port}", monitoring_port, log_path)
    try:
        with EmotionModelClient(standin.target) as client:
            deadline = time.monotonic() + START_TIMEOUT_S
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    client.wait_until_available(timeout_s=2)
                    break
                except ModelServerUnavailable:  # still loading TensorFlow and the model
                    continue
            else:
                pytest.fail(f"stand-in did not become AVAILABLE (exit {process.poll()}):\n{standin.log_text()}")
        yield standin
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def model_v1() -> TinyEmotionModel:
    return TinyEmotionModel(seed=1)


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory, model_v1: TinyEmotionModel) -> Iterator[RunningStandin]:
    base_path = tmp_path_factory.mktemp("models") / MODEL_NAME
    base_path.mkdir()
    export_version(base_path, 1, model_v1)
    with run_standin(base_path, base_path.parent / "standin.log") as running:
        yield running


@pytest.fixture(scope="module")
def channel(standin: RunningStandin) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(standin.target) as open_channel:
        yield open_channel


@pytest.fixture(scope="module")
def prediction_stub(channel: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.mark.parametrize("signature_name", ["serving_default", "emotion"])
def test_predict_matches_the_model_run_in_process(
    standin: RunningStandin, model_v1: TinyEmotionModel, signature_name: str
) -> None:
    faces = _faces(5, seed=7)
    with EmotionModelClient(standin.target, signature_name=signature_name) as client:
        output = client.predict_with_version(faces)
    expected = model_v1.classify(tf.constant(faces))["probabilities"].numpy()
    assert output.model_version == 1
    assert output.probabilities.dtype == np.float32
    np.testing.assert_allclose(output.probabilities, expected, rtol=1e-5, atol=1e-6)


def test_mixed_precision_computes_a_float32_model_in_bfloat16_as_tf_serving_does(
    tmp_path: Path, model_v1: TinyEmotionModel, standin: RunningStandin
) -> None:
    """--mixed-precision bfloat16 (TF Serving's --mixed_precision=bfloat16): the float32 SavedModel's matrix product
    runs in bfloat16 (TensorFlow's oneDNN rewrite), so its probabilities carry bfloat16's rounding, a few parts in a
    thousand; off (the default, the module's stand-in) computes float32 exactly. The rewrite runs where oneDNN has
    bfloat16 (AVX-512 and up); the flag is honoured and logged everywhere."""
    base_path = tmp_path / MODEL_NAME
    base_path.mkdir()
    export_version(base_path, 1, model_v1)
    faces = _faces(64, seed=11)
    expected = model_v1.classify(tf.constant(faces))["probabilities"].numpy()
    with run_standin(base_path, tmp_path / "standin.log", "--mixed-precision", "bfloat16") as running:
        with EmotionModelClient(running.target) as client:
            output = client.predict_with_version(faces)
        assert '"mixed_precision": "bfloat16", "bfloat16": true' in running.log_text()
    assert '"mixed_precision": "off", "bfloat16": false' in standin.log_text()
    difference = np.abs(output.probabilities - expected).max()
    assert difference < 0.01, difference
    if native_bfloat16():
        assert difference > 1e-5, "the product ran in float32"


def test_predict_response_names_model_version_and_signature(
    prediction_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = _predict_request(_faces(3))
    request.output_filter.append("probabilities")
    response = prediction_stub.Predict(request, timeout=10)
    assert (response.model_spec.name, response.model_spec.version.value) == (MODEL_NAME, 1)
    assert response.model_spec.signature_name == "serving_default"
    assert list(response.outputs) == ["probabilities"]
    assert tf.make_ndarray(response.outputs["probabilities"]).shape == (3, 7)


def test_get_model_metadata_lists_the_signatures(
    prediction_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL_NAME
    response = prediction_stub.GetModelMetadata(request, timeout=10)
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_defs)
    assert {"serving_default", "emotion"} <= set(signature_defs.signature_def)
    signature = signature_defs.signature_def["serving_default"]
    faces, probabilities = signature.inputs["faces"], signature.outputs["probabilities"]
    assert faces.dtype == types_pb2.DT_UINT8
    assert [dim.size for dim in faces.tensor_shape.dim] == [-1, 48, 48, 1]
    assert probabilities.dtype == types_pb2.DT_FLOAT
    assert [dim.size for dim in probabilities.tensor_shape.dim] == [-1, 7]
    assert response.model_spec.version.value == 1


def test_model_status_is_available(standin: RunningStandin) -> None:
    with EmotionModelClient(standin.target) as client:
        assert client.model_status() == {1: "AVAILABLE"}


def test_warmup_requests_are_replayed_before_available(standin: RunningStandin) -> None:
    log_text = standin.log_text()
    assert '"warmup_requests": 1' in log_text
    assert log_text.index("Successfully loaded servable version") < log_text.index("Running gRPC ModelServer")


@pytest.mark.parametrize(
    ("inputs", "message_part"),
    [
        ({"images": _faces(2)}, "input tensor alias not found in signature: images"),
        ({"faces": _faces(2), "extra": _faces(2)}, "Sent extra: {extra}"),
        ({"faces": _faces(2).astype(np.float32)}, "to be DT_UINT8 but DT_FLOAT is provided"),
        ({"faces": _faces(2)[..., 0]}, "has shape [2,48,48], incompatible with the signature's [-1,48,48,1]"),
        ({"faces": np.zeros((2, 32, 32, 1), np.uint8)}, "has shape [2,32,32,1]"),
    ],
    ids=["unknown-key", "extra-key", "wrong-dtype", "wrong-rank", "wrong-size"],
)
def test_bad_inputs_are_invalid_argument(
    prediction_stub: prediction_service_pb2_grpc.PredictionServiceStub, inputs: dict[str, np.ndarray], message_part: str
) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    for key, array in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
    with pytest.raises(grpc.RpcError) as raised:
        prediction_stub.Predict(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message_part in raised.value.details()


def test_unknown_output_in_filter_is_invalid_argument(
    prediction_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = _predict_request(_faces(1))
    request.output_filter.append("logits")
    with pytest.raises(grpc.RpcError) as raised:
        prediction_stub.Predict(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "output tensor alias not found in signature: logits" in raised.value.details()


@pytest.mark.parametrize(
    ("model_spec", "code", "details"),
    [
        ({"name": "sentiment"}, grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(sentiment)"),
        ({"version": 7}, grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(emotion, 7)"),
        ({"version_label": "stable"}, grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label: stable"),
        ({"signature_name": "nope"}, grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.'),
    ],
)
def test_unserved_model_spec_is_refused_like_tf_serving(
    prediction_stub: prediction_service_pb2_grpc.PredictionServiceStub,
    model_spec: dict[str, object],
    code: grpc.StatusCode,
    details: str,
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        prediction_stub.Predict(_predict_request(_faces(1), **model_spec), timeout=10)
    assert (raised.value.code(), raised.value.details()) == (code, details)


def test_unknown_model_status_is_not_found(channel: grpc.Channel) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "sentiment"
    with pytest.raises(grpc.RpcError) as raised:
        model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_client_reports_an_unknown_model_as_a_rejection(standin: RunningStandin) -> None:
    with EmotionModelClient(standin.target, model_name="sentiment") as client:
        with pytest.raises(ModelRequestRejected) as raised:
            client.predict(_faces(1))
    assert raised.value.code == grpc.StatusCode.NOT_FOUND


def test_classify_is_unimplemented(prediction_stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL_NAME
    with pytest.raises(grpc.RpcError) as raised:
        prediction_stub.Classify(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


def _scrape(monitoring_port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{monitoring_port}/metrics", timeout=10).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_requests_and_batch_sizes(standin: RunningStandin) -> None:
    before = _scrape(standin.monitoring_port)
    with EmotionModelClient(standin.target) as client:
        client.predict(_faces(64))
    after = _scrape(standin.monitoring_port)

    def increase(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert increase("tfserving_standin_requests_total", api="Predict", status="OK") == 1
    assert increase("tfserving_standin_predict_batch_size_bucket", le="64.0") == 1
    assert increase("tfserving_standin_predict_batch_size_bucket", le="32.0") == 0
    assert after[("tfserving_standin_served_version", (("model_name", "emotion"),))] == 1


def _wait_for(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.5)


def test_new_versions_are_picked_up_broken_ones_skipped_then_sigterm_exits_zero(
    tmp_path: Path, model_v1: TinyEmotionModel
) -> None:
    base_path = tmp_path / MODEL_NAME
    base_path.mkdir()
    export_version(base_path, 1, model_v1)
    model_v3 = TinyEmotionModel(seed=3)
    faces = _faces(4, seed=3)
    with run_standin(base_path, tmp_path / "standin.log") as running, EmotionModelClient(running.target) as client:
        (base_path / "2").mkdir()
        (base_path / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
        _wait_for(lambda: client.model_status().get(2) == "END")
        assert client.predict_with_version(faces).model_version == 1

        export_version(base_path, 3, model_v3)
        _wait_for(lambda: client.predict_with_version(faces).model_version == 3)
        np.testing.assert_allclose(
            client.predict(faces), model_v3.classify(tf.constant(faces))["probabilities"].numpy(), rtol=1e-5, atol=1e-6
        )
        assert client.model_status() == {1: "END", 2: "END", 3: "AVAILABLE"}

        os.kill(running.process.pid, signal.SIGTERM)
        assert running.process.wait(timeout=30) == 0
        assert "TF Serving stand-in stopped" in running.log_text()


def test_a_model_that_names_no_labels_passes_the_contract_check(standin: RunningStandin) -> None:
    with EmotionModelClient(standin.target) as client:
        assert client.check_contract() == 1


def test_the_classifier_stalls_on_labels_in_another_order_and_resumes_on_a_model_in_its_order(tmp_path: Path) -> None:
    """A model whose outputs are numbered otherwise would put every probability under the wrong emotion, on every
    frame alike: the contract check (at start and in readiness) fails, which stalls the stage, dead-lettering nothing."""
    base_path = tmp_path / MODEL_NAME
    base_path.mkdir()
    swapped = [EMOTIONS[-1], *EMOTIONS[1:-1], EMOTIONS[0]]
    export_version(base_path, 1, LabelledEmotionModel(1, swapped))
    with run_standin(base_path, tmp_path / "standin.log") as running, EmotionModelClient(running.target) as client:
        assert client.model_labels(1) == swapped
        stage = ClassifyFaces(client, classes=None, predictions_topic="p", max_batch_faces=8)
        with pytest.raises(ContractBroken, match="the model's outputs are \\['neutral'"):
            stage.check_contract()

        export_version(base_path, 2, LabelledEmotionModel(2, list(EMOTIONS)))
        _wait_for(lambda: client.model_status().get(2) == "AVAILABLE")
        stage.check_contract()
        assert client.model_labels(2) == list(EMOTIONS)


def test_answers_of_a_version_the_server_switched_to_are_used_only_once_its_labels_pass(tmp_path: Path) -> None:
    """The stage runner checks the contract at start and every 30 s; a server switching versions in between (a new
    export, a label moved to a canary or back) must not have its probabilities taken under the checked one's labels."""
    base_path = tmp_path / MODEL_NAME
    base_path.mkdir()
    export_version(base_path, 1, LabelledEmotionModel(1, list(EMOTIONS)))
    faces = _faces(4)
    with run_standin(base_path, tmp_path / "standin.log") as running, EmotionModelClient(running.target) as client:
        assert client.check_contract() == 1
        assert client.predict_with_version(faces).model_version == 1

        swapped = [EMOTIONS[-1], *EMOTIONS[1:-1], EMOTIONS[0]]
        export_version(base_path, 2, LabelledEmotionModel(2, swapped))
        _wait_for(lambda: client.model_status().get(2) == "AVAILABLE")
        with pytest.raises(UnexpectedModelResponse, match="the model's outputs are \\['neutral'"):
            client.predict_with_version(faces)


# --- version labels (a model config file, as the deployment's models.config) -------------------------------------

ALLOW_LABELS = "--allow-version-labels-for-unavailable-models"
LABEL_NOT_AVAILABLE = "Request to assign label to version {} of model emotion, which is not currently available for inference"


def model_config(base_path: Path, versions: list[int], labels: dict[str, int]) -> model_server_config_pb2.ModelServerConfig:
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name=MODEL_NAME, base_path=str(base_path), model_platform="tensorflow")
    model.model_version_policy.specific.versions.extend(versions)
    model.version_labels.update(labels)
    return config


def write_model_config(path: Path, base_path: Path, versions: list[int], labels: dict[str, int]) -> Path:
    """Written beside and renamed into place, as a ConfigMap's files change: the server never reads half of it."""
    written = path.with_suffix(".writing")
    written.write_text(text_format.MessageToString(model_config(base_path, versions, labels)))
    written.rename(path)
    return path


def _served_version(client: EmotionModelClient, faces: np.ndarray) -> int:
    return client.predict_with_version(faces).model_version


def test_labels_route_stable_and_canary_and_a_reloaded_config_promotes_then_rolls_back(tmp_path: Path) -> None:
    """The deployment's rollout: `stable` and `canary` on two loaded versions, each label moved by editing the
    config file the server reads again (as TF Serving reads its models.config every poll), through the classifier's
    own client. A call without a label gets the highest version, the canary: why the classifier names `stable`."""
    base_path = tmp_path / MODEL_NAME
    base_path.mkdir()
    models = {1: TinyEmotionModel(seed=1), 2: TinyEmotionModel(seed=2)}
    for version, model in models.items():
        export_version(base_path, version, model)
    config_file = write_model_config(tmp_path / "models.config", base_path, [1, 2], {"stable": 1, "canary": 2})
    faces = _faces(4, seed=5)
    flags = ("--model-config-file", str(config_file), "--model-config-file-poll-wait-seconds", "0.5", ALLOW_LABELS)
    with (
        run_standin(None, tmp_path / "standin.log", *flags) as running,
        EmotionModelClient(running.target, version_label="stable") as stable,
        EmotionModelClient(running.target, version_label="canary") as canary,
        EmotionModelClient(running.target) as unlabelled,
    ):
        assert stable.model_status() == {1: "AVAILABLE", 2: "AVAILABLE"}
        output = stable.predict_with_version(faces)
        assert output.model_version == 1
        np.testing.assert_allclose(
            output.probabilities, models[1].classify(tf.constant(faces))["probabilities"].numpy(), rtol=1e-5, atol=1e-6
        )
        assert (_served_version(canary, faces), _served_version(unlabelled, faces)) == (2, 2)
        assert stable.check_contract() == 1 and stable.wait_until_available(timeout_s=5) == 1

        write_model_config(config_file, base_path, [1, 2], {"stable": 2, "canary": 2})  # promoted
        _wait_for(lambda: _served_version(stable, faces) == 2)
        write_model_config(config_file, base_path, [1, 2], {"stable": 1, "canary": 2})  # rolled back
        _wait_for(lambda: _served_version(stable, faces) == 1)
        assert _served_version(canary, faces) == 2
        assert stable.model_status() == {1: "AVAILABLE", 2: "AVAILABLE"}


def test_devstack_probe_calls_the_server_ready_once_the_labelled_version_serves(tmp_path: Path) -> None:
    """`stable` on version 1, loaded; `canary` on version 2, not exported yet: the devstack's readiness probe is true
    for the first only, and for no other model or label; once version 2 is exported and loaded, for the canary too."""
    base_path = tmp_path / MODEL_NAME
    base_path.mkdir()
    export_version(base_path, 1, TinyEmotionModel(seed=1))
    config_file = write_model_config(tmp_path / "models.config", base_path, [1, 2], {"stable": 1, "canary": 2})
    flags = ("--model-config-file", str(config_file), "--file-system-poll-wait-seconds", "0.5", ALLOW_LABELS)
    with run_standin(None, tmp_path / "standin.log", *flags) as running:
        port = int(running.target.rsplit(":", 1)[1])
        ready = {label: probes.model_available(port, MODEL_NAME, label)() for label in ("stable", "canary", "beta")}
        assert ready == {"stable": True, "canary": False, "beta": False}
        assert probes.model_available(port, "no-such-model", "stable")() is False
        export_version(base_path, 2, TinyEmotionModel(seed=2))
        _wait_for(probes.model_available(port, MODEL_NAME, "canary"))


def test_a_label_on_a_version_not_loaded_is_not_found_and_one_moved_there_is_refused(tmp_path: Path) -> None:
    """As TF Serving: a label names its version from the config on, but a call of it is NOT_FOUND until that version
    is loaded, and waiting for the model waits for that version, not for any; a label unknown to the config is
    INVALID_ARGUMENT; a config that moves a label to a version not AVAILABLE is refused (FAILED_PRECONDITION) and
    the labels before it stay. Configs here come through HandleReloadConfigRequest, TF Serving's reload RPC."""
    base_path = tmp_path / MODEL_NAME
    base_path.mkdir()
    export_version(base_path, 1, TinyEmotionModel(seed=1))
    config_file = write_model_config(tmp_path / "models.config", base_path, [1, 2], {"stable": 1, "canary": 2})
    faces = _faces(2)
    with (
        run_standin(None, tmp_path / "standin.log", "--model-config-file", str(config_file), ALLOW_LABELS) as running,
        EmotionModelClient(running.target, version_label="stable") as stable,
        EmotionModelClient(running.target, version_label="canary") as canary,
        EmotionModelClient(running.target, version_label="beta") as unknown,
        grpc.insecure_channel(running.target) as channel,
    ):
        with pytest.raises(ModelRequestRejected, match=r"Servable not found for request: Specific\(emotion, 2\)") as raised:
            canary.predict(faces)
        assert raised.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(ModelServerUnavailable, match="not AVAILABLE after 1.5 s"):
            canary.wait_until_available(timeout_s=1.5, poll_interval_s=0.2)
        with pytest.raises(ModelRequestRejected, match="Unrecognized servable version label: beta.*no version the label 'beta'"):
            unknown.wait_until_available(timeout_s=30)

        models = model_service_pb2_grpc.ModelServiceStub(channel)

        def reload(labels: dict[str, int]) -> None:
            request = model_management_pb2.ReloadConfigRequest(config=model_config(base_path, [1, 2], labels))
            models.HandleReloadConfigRequest(request, timeout=60)

        with pytest.raises(grpc.RpcError) as refused:
            reload({"stable": 2, "canary": 2})
        assert (refused.value.code(), refused.value.details()) == (
            grpc.StatusCode.FAILED_PRECONDITION, LABEL_NOT_AVAILABLE.format(2)
        )
        assert _served_version(stable, faces) == 1

        export_version(base_path, 2, TinyEmotionModel(seed=2))
        assert canary.wait_until_available(timeout_s=60) == 2
        assert _served_version(canary, faces) == 2
        reload({"stable": 2, "canary": 2})
        assert _served_version(stable, faces) == 2
        reload({"stable": 1, "canary": 2})
        assert _served_version(stable, faces) == 1


def test_labels_on_versions_not_loaded_yet_refuse_the_first_config_unless_allowed(tmp_path: Path) -> None:
    """TF Serving checks a config's labels before it loads the config's versions, so at start every label names a
    version not AVAILABLE: without --allow_version_labels_for_unavailable_models it refuses the config and exits
    (the deployment passes the flag; tests/unit/test_deploy_monitoring_and_model.py checks it)."""
    base_path = tmp_path / MODEL_NAME
    base_path.mkdir()
    export_version(base_path, 1, TinyEmotionModel(seed=1))
    config_file = write_model_config(tmp_path / "models.config", base_path, [1], {"stable": 1})
    command = standin_command(free_port(), free_port(), "--model-config-file", str(config_file))
    finished = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False)
    assert finished.returncode == 1, finished.stdout + finished.stderr
    assert LABEL_NOT_AVAILABLE.format(1) in finished.stdout + finished.stderr
