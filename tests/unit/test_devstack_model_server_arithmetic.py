"""The local model server computes the float32 export in bfloat16 only where this machine's CPU runs that faster
("auto", the stack's default), or as told (CLASSPULSE_DEVSTACK_MODEL_SERVER_MIXED_PRECISION), as a deployment turns
TF Serving's --mixed_precision=bfloat16 on for its CPUs."""

from __future__ import annotations

import pytest

import classpulse_training.hardware
from classpulse_devstack.components import registry
from classpulse_devstack.config import DevstackConfig
from classpulse_devstack.tfserving_standin import computes_bfloat16

pytestmark = pytest.mark.unit


def _model_server_flag(environ: dict[str, str]) -> str:
    (server,) = [c for c in registry(DevstackConfig.from_env(environ)) if c.name == "model-server"]
    return server.command[server.command.index("--mixed-precision") + 1]


def test_the_stack_lets_the_cpu_choose_unless_told() -> None:
    assert _model_server_flag({}) == "auto"
    assert _model_server_flag({"CLASSPULSE_DEVSTACK_MODEL_SERVER_MIXED_PRECISION": "off"}) == "off"
    assert _model_server_flag({"CLASSPULSE_DEVSTACK_MODEL_SERVER_MIXED_PRECISION": "bfloat16"}) == "bfloat16"


@pytest.mark.parametrize("training_choice", ["mixed_bfloat16", "float32"])
def test_auto_follows_the_rule_training_precision_auto_follows(monkeypatch: pytest.MonkeyPatch, training_choice: str) -> None:
    monkeypatch.setattr(classpulse_training.hardware, "resolve_precision", lambda precision: training_choice)
    assert computes_bfloat16("auto") is (training_choice == "mixed_bfloat16")
    assert computes_bfloat16("bfloat16") is True and computes_bfloat16("off") is False


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mixed precision must be one of"):
        computes_bfloat16("float16")
