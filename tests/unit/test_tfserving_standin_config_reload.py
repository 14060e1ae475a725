"""The stand-in reads its model config file again every few seconds, as TF Serving does: a file it cannot read as a
config is refused with the one before it kept, and the next good one is still applied."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.protobuf import text_format
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.config import model_server_config_pb2

from classpulse_devstack.tfserving_standin.errors import ServingError
from classpulse_devstack.tfserving_standin.model_config import ModelConfig
from classpulse_devstack.tfserving_standin.model_manager import ModelManager

pytestmark = pytest.mark.unit


def _config_text(base_path: Path, labels: dict[str, int]) -> str:
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name="emotion", base_path=str(base_path), model_platform="tensorflow")
    model.version_labels.update(labels)
    return text_format.MessageToString(config)


def _label_code(manager: ModelManager, label: str) -> grpc.StatusCode:
    with pytest.raises(ServingError) as raised:
        manager.resolve(model_pb2.ModelSpec(name="emotion", version_label=label))
    return raised.value.code


def test_a_config_file_saved_in_another_encoding_is_refused_and_the_next_one_applied(tmp_path: Path) -> None:
    """An editor that saves a comment's accent in Latin-1: the file is not UTF-8. Refused, as a file that is not a
    config is, rather than raised into the config poller's thread, which would end it and every later edit with it."""
    manager = ModelManager(ModelConfig("emotion", tmp_path), max_load_attempts=1, allow_labels_for_unavailable=True)
    config_file = tmp_path / "models.config"
    config_file.write_bytes(f"# stable: the version the café's classifiers call\n{_config_text(tmp_path, {'stable': 1})}".encode("latin-1"))

    manager.reload_config_file(config_file)
    assert _label_code(manager, "stable") == grpc.StatusCode.INVALID_ARGUMENT  # the config before it, no labels

    config_file.write_text(_config_text(tmp_path, {"stable": 1}))
    manager.reload_config_file(config_file)
    assert _label_code(manager, "stable") == grpc.StatusCode.NOT_FOUND  # labelled now, version 1 not loaded
