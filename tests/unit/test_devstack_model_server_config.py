"""The local stack's model server serves the deployment's model config (deploy/k8s/base/model-server/models.config:
versions, `stable` and `canary`) from this checkout's models/emotion/, so the classifier's default label resolves
locally as it does in a deployment, and a label moved in the rendered copy is read again while it runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from classpulse_devstack import model_server
from classpulse_devstack.components import registry
from classpulse_devstack.config import DevstackConfig

pytestmark = pytest.mark.unit


def _parsed(path: Path) -> model_server_config_pb2.ModelServerConfig:
    return text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())


def test_the_stand_in_reads_the_deployments_model_config_pointed_at_this_checkout(tmp_path: Path) -> None:
    config = DevstackConfig.from_env({"CLASSPULSE_DEVSTACK_RUN_DIR": str(tmp_path)})
    (server,) = [component for component in registry(config) if component.name == "model-server"]
    assert server.prepare is not None
    server.prepare()

    rendered = _parsed(model_server.rendered_config_file(config))
    (model,) = rendered.model_config_list.config
    assert Path(model.base_path) == config.repo_root / "models" / "emotion"
    for version in model.model_version_policy.specific.versions:
        assert (Path(model.base_path) / str(version) / "saved_model.pb").is_file(), version
    committed = _parsed(model_server.committed_config_file(config))
    committed.model_config_list.config[0].base_path = model.base_path
    assert rendered == committed

    command = server.command
    assert command[command.index("--model-config-file") + 1] == str(model_server.rendered_config_file(config))
    assert float(command[command.index("--model-config-file-poll-wait-seconds") + 1]) > 0
    assert "--allow-version-labels-for-unavailable-models" in command
