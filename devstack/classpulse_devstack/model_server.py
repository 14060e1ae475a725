"""The model server's config: the deployment's model config, serving this checkout's models/emotion/.

The committed deploy/k8s/base/model-server/models.config (the versions served, the `stable` and `canary` labels) names
the model-server image's /models/emotion; at each start it is rendered under .run/conf/ with base_path pointed at
this checkout's models/emotion/, so the classifier asks for `stable` here as it does in a deployment. The stand-in
reads the rendered copy again every few seconds: edit it to move a label locally (a rollout, a rollback); the next
start renders it afresh from the committed one.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format

from classpulse_devstack.config import DevstackConfig
from classpulse_tfserving.tensorflow_serving.config import model_server_config_pb2

CLASSIFIER_VERSION_LABEL = "stable"
"""The label the classifier calls unless told otherwise (its CLASSPULSE_MODEL_VERSION_LABEL): the model server is
ready once the version it names serves."""
CONFIG_POLL_WAIT_S = 2
"""How often the stand-in reads the rendered config again."""


def committed_config_file(config: DevstackConfig) -> Path:
    return config.repo_root / "deploy" / "k8s" / "base" / "model-server" / "models.config"


def rendered_config_file(config: DevstackConfig) -> Path:
    return config.rendered_config_dir / "models.config"


def prepare(config: DevstackConfig) -> None:
    model_config = text_format.Parse(
        committed_config_file(config).read_text(), model_server_config_pb2.ModelServerConfig()
    )
    for model in model_config.model_config_list.config:
        model.base_path = str(config.repo_root / "models" / Path(model.base_path).name)
    destination = rendered_config_file(config)
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(text_format.MessageToString(model_config))
