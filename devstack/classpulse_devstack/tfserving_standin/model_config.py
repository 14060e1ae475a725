"""Which versions of the model are served and the labels naming them: TF Serving's model config (--model-config-file,
a ModelServerConfig in protobuf text format, as deploy/k8s/base/model-server/models.config), or, without one, the
base path's highest version and no labels (--model-name with --model-base-path).

The stand-in serves one model, so a config lists exactly one. Version policies: `specific` (the versions listed that
are on disk), `latest` (the N highest, 1 when unset) and `all`, as TF Serving's file-system storage path source has them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from classpulse_devstack.tfserving_standin.errors import ServingError


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: Path
    specific_versions: frozenset[int] = frozenset()
    """Policy `specific`: these versions. Empty: the `latest_versions` highest (every one when None, policy `all`)."""
    latest_versions: int | None = 1
    labels: Mapping[str, int] = field(default_factory=dict)

    def wanted(self, found: Iterable[int]) -> set[int]:
        """The versions to serve of those `found` under the base path."""
        found = sorted(found)
        if self.specific_versions:
            return set(found) & self.specific_versions
        return set(found if self.latest_versions is None else found[-self.latest_versions :])


def _invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def from_proto(config: model_server_config_pb2.ModelServerConfig, config_dir: Path) -> ModelConfig:
    """The one model of a ModelServerConfig; a relative base_path is taken from `config_dir`."""
    models = config.model_config_list.config
    if len(models) != 1:
        names = [model.name for model in models]
        raise _invalid(f"the TF Serving stand-in serves one model; the model config lists {len(models)}: {names}")
    (model,) = models
    if model.model_platform not in ("", "tensorflow"):
        raise _invalid(f"model {model.name}: platform {model.model_platform!r}; the stand-in serves tensorflow only")
    policy = model.model_version_policy
    chosen = policy.WhichOneof("policy_choice")
    latest = (policy.latest.num_versions or 1) if chosen in (None, "latest") else None
    return ModelConfig(
        name=model.name,
        base_path=config_dir / model.base_path,
        specific_versions=frozenset(policy.specific.versions) if chosen == "specific" else frozenset(),
        latest_versions=latest,
        labels=dict(model.version_labels),
    )


def read_model_config(path: Path) -> ModelConfig:
    """The model config file at `path`; ServingError (INVALID_ARGUMENT) when it cannot be read as one."""
    try:
        config = text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())
    except (OSError, UnicodeDecodeError, text_format.ParseError) as error:
        raise _invalid(f"cannot read the model config {path}: {error}") from error
    return from_proto(config, path.parent)
