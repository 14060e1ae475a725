"""The classifier's generated TF Serving modules: reproducible from the committed descriptor set, that set the
installed tensorflow-serving-api's, and the same message types as TensorFlow's own (one process may hold both)."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

from deploy_support import REPO, load_tool

pytestmark = pytest.mark.unit

tfserving_api = load_tool("tfserving_api")


def _differences(left: Path, right: Path) -> list[str]:
    comparison = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [f"{left / name}" for name in comparison.left_only + comparison.right_only + comparison.diff_files]
    for name in comparison.subdirs:
        found += _differences(left / name, right / name)
    return found


def test_generated_modules_are_what_the_generator_writes(tmp_path: Path) -> None:
    regenerated = tmp_path / "tfserving_api"
    tfserving_api.generate(tfserving_api.DESCRIPTOR_SET, regenerated)
    assert _differences(tfserving_api.OUTPUT, regenerated) == [], "run: python deploy/tools/tfserving_api.py generate"


def test_descriptor_set_is_the_installed_tensorflow_serving_apis() -> None:
    """In a child process: reading them imports tensorflow_serving.apis, which loads the TensorFlow runtime."""
    program = (
        "import sys; sys.path.insert(0, 'deploy/tools'); import tfserving_api; "
        "sys.stdout.buffer.write(tfserving_api.descriptor_set_of_installed_package())"
    )
    installed = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, check=True).stdout
    assert installed == tfserving_api.DESCRIPTOR_SET.read_bytes(), "run: python deploy/tools/tfserving_api.py descriptors"


def test_generated_messages_are_tensorflows_own_types() -> None:
    """The .proto file names stay TensorFlow's, so either import first hands back the same classes: a TensorFlow
    process (the devstack's stand-in model server, training) can read what the classifier builds and back."""
    program = """
from classpulse_tfserving.tensorflow_serving.apis import predict_pb2 as generated
from tensorflow_serving.apis import predict_pb2 as tensorflow_serving
assert generated.PredictRequest is tensorflow_serving.PredictRequest
"""
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_generated_modules_import_nothing_of_tensorflow() -> None:
    imports = [
        line
        for path in tfserving_api.OUTPUT.rglob("*.py")
        for line in path.read_text().splitlines()
        if line.startswith(("from tensorflow", "import tensorflow", "from xla", "import xla"))
    ]
    assert imports == []
