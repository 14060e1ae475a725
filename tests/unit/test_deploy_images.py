"""The Dockerfiles: one for every Python service (build argument SERVICE) and the model server's; multi-stage, slim,
pinned, non-root. Each image installs exactly the packages its service imports (versions as in requirements.txt),
from a hashed lock whose every entry is the audited requirements.lock's, and the classifier's TF Serving messages
work without TensorFlow."""

from __future__ import annotations

import importlib.metadata
import itertools
import re
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from deploy_support import (
    DOCKER,
    REPO,
    ROOT_LOCK,
    SERVICES,
    dockerfile,
    load_tool,
    normalise,
    requirement_pins,
    shared_packages,
    shared_parts_imported,
    third_party_imports,
)

pytestmark = pytest.mark.unit

ROOT_PINS = requirement_pins(REPO / "requirements.txt")
USED_THROUGH_A_LIBRARY = {"api": {"python-multipart"}}
"""Packages a service needs without importing them: FastAPI parses form bodies (`Form()`, `request.form()`: the LTI
launch and login posts) with python-multipart, an optional dependency it imports only when a form arrives."""


def _dockerfile(name: str) -> str:
    return dockerfile(name).read_text()


def _lock_entries(path: Path) -> dict[str, str]:
    return load_tool("image_locks").entries(path.read_text())


def _image_pins(service: str) -> dict[str, str]:
    pins = requirement_pins(DOCKER / service / "requirements.txt")
    no_deps = DOCKER / service / "requirements-no-deps.txt"
    return pins | (requirement_pins(no_deps) if no_deps.exists() else {})


def _with_dependencies(distributions: set[str]) -> set[str]:
    """The distributions and everything they depend on (as installed here), which pip brings in with them."""
    result, todo = set(), list(distributions)
    while todo:
        name = todo.pop()
        if name in result:
            continue
        result.add(name)
        for requirement in importlib.metadata.requires(name) or []:
            parsed = Requirement(requirement)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                todo.append(normalise(parsed.name))
    return result


@pytest.mark.parametrize("service", SERVICES)
def test_image_pins_agree_with_requirements_txt(service: str) -> None:
    pins = _image_pins(service)
    assert pins, service
    for name, version in pins.items():
        assert ROOT_PINS.get(name) == version, f"{service}: {name}=={version}, requirements.txt has {ROOT_PINS.get(name)}"


@pytest.mark.parametrize("service", SERVICES)
def test_image_installs_what_the_service_imports_and_no_more(service: str) -> None:
    pins = requirement_pins(DOCKER / service / "requirements.txt")
    installed = _with_dependencies(set(pins)) | set(_image_pins(service))
    providers = importlib.metadata.packages_distributions()
    imported = set(third_party_imports(service))
    for module in imported:
        assert {normalise(d) for d in providers[module]} & installed, f"{service} imports {module}, its image lacks it"
    needed = {normalise(d) for module in imported for d in providers[module]}
    # What the --no-deps packages need in place of their declared dependencies (all but tensorflow itself).
    for name in set(_image_pins(service)) - set(pins):
        needed |= {normalise(Requirement(r).name) for r in importlib.metadata.requires(name) or []} - {"tensorflow"}
    needed |= USED_THROUGH_A_LIBRARY.get(service, set())
    unused = {name for name in pins if name not in needed}
    assert not unused, f"{service}'s image installs {sorted(unused)}, which it never imports"


@pytest.mark.parametrize("service", SERVICES)
def test_image_copies_the_shared_parts_the_service_imports_and_no_more(service: str) -> None:
    """The classifier takes no web part (FastAPI), the API no stream part (Kafka): each image copies the parts its
    code reaches, whose own dependencies its requirements hold."""
    assert set(shared_packages(service)) == shared_parts_imported(service)


@pytest.mark.parametrize("name", ["api", "model-server"])
def test_dockerfile_is_pinned_and_runs_as_non_root(name: str) -> None:
    path = dockerfile(name)
    text = path.read_text()
    images = re.findall(r"^(?:ARG PYTHON_IMAGE=|FROM )(\S+)", text, re.MULTILINE)
    for image in (i for i in images if not i.startswith("${")):
        assert re.fullmatch(r"[a-z0-9./-]+:\d+(\.\d+)+[a-z0-9.-]*", image), f"{name}: {image} is not pinned"
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE), name
    ignore = [line for line in path.with_name("Dockerfile.dockerignore").read_text().splitlines() if not line.startswith("#")]
    assert ignore[0] == "*", "the build context starts from nothing; what the image needs is let back in"
    allowed = [line[1:] for line in ignore if line.startswith("!")]
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for pattern, service in itertools.product(source.split(), SERVICES):
            path = REPO / pattern.replace("${SERVICE}", service)
            assert path.exists(), f"{name}: COPY {path.relative_to(REPO)}: no such file"
            sent = [path, *path.rglob("*")]
            assert any(fnmatch(str(p.relative_to(REPO)), a) for p in sent for a in allowed), (
                f"{name}: COPY {path.relative_to(REPO)} must be in the context"
            )


def test_one_dockerfile_builds_every_python_service_from_its_hashed_lock() -> None:
    text = _dockerfile("api")
    assert re.search(r"^ARG SERVICE$", text, re.MULTILINE)
    assert {p.parent.name for p in DOCKER.glob("*/Dockerfile")} == {"model-server"}, "no Dockerfile per service"
    assert "COPY deploy/docker/${SERVICE}/ /tmp/image/" in text
    installs = re.findall(r"pip (?:install|download) [^\n]*", text)
    assert installs and all("--require-hashes" in line for line in installs), installs
    assert "pip install --no-compile --require-hashes -r /tmp/image/requirements.lock" in text
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\} AS build$", text, re.MULTILINE)
    assert "python:3.11." in text and "-slim-" in text
    assert "COPY --from=build /opt/venv /opt/venv" in text and "CLASSPULSE_HTTP_HOST=0.0.0.0" in text
    assert "COPY services/${SERVICE}/classpulse_${SERVICE} " in text and "COPY services/common/ /tmp/common/" in text
    assert "SERVICE_MODULE=classpulse_${SERVICE}" in text
    assert 'ENTRYPOINT ["/bin/sh", "-c", "exec python -m \\"$SERVICE_MODULE\\" \\"$@\\"", "classpulse"]' in text


@pytest.mark.parametrize("lock", sorted(DOCKER.glob("*/*.lock")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_image_locks_hold_the_audited_entries(lock: Path) -> None:
    """Every version and hash an image installs is requirements.lock's, which `make audit` audits."""
    root = _lock_entries(ROOT_LOCK)
    entries = _lock_entries(lock)
    assert entries, lock
    for name, entry in entries.items():
        assert entry == root.get(name), f"{lock}: {name} differs from requirements.lock: run make lock"


@pytest.mark.parametrize("service", SERVICES)
def test_image_lock_is_the_closure_of_its_requirements(service: str) -> None:
    """requirements.lock of an image holds its requirements.txt and their dependencies, nothing else; the other
    locks hold just their .txt's packages (taken without dependencies)."""
    for requirements in sorted((DOCKER / service).glob("*.txt")):
        pins = set(requirement_pins(requirements))
        expected = _with_dependencies(pins) if requirements.name == "requirements.txt" else pins
        assert set(_lock_entries(requirements.with_suffix(".lock"))) == expected, f"{requirements}: run make lock"


def test_classifier_image_carries_no_tensorflow() -> None:
    """TF Serving's messages and stubs are generated into classpulse_tfserving (deploy/tools/tfserving_api.py):
    neither TensorFlow nor tensorflow-serving-api, nor any part of their wheels, reaches the image."""
    text = _dockerfile("classifier")
    commands = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in commands if "tensorflow" in line.lower()]
    for lock in (DOCKER / "classifier").glob("*.lock"):
        assert not {"tensorflow", "tensorflow-serving-api"} & set(_lock_entries(lock)), lock
    assert {"grpcio", "protobuf"} <= set(_lock_entries(DOCKER / "classifier" / "requirements.lock"))


def test_model_server_image_matches_the_serving_api() -> None:
    assert f"FROM tensorflow/serving:{ROOT_PINS['tensorflow-serving-api']}\n" in _dockerfile("model-server")


def _link_distribution(distribution: str, site: Path) -> None:
    for top in {Path(str(f)).parts[0] for f in importlib.metadata.files(distribution)}:
        source = Path(importlib.metadata.distribution(distribution).locate_file(top))
        if top.endswith(".dist-info") or not source.exists() or (site / top).exists():
            continue
        (site / top).symlink_to(source)


def test_serving_client_imports_with_only_the_images_packages(tmp_path: Path) -> None:
    """Rebuilds the classifier image's site-packages here from its lock's distributions, and imports the client with
    the interpreter's own site-packages (where TensorFlow is) out of reach."""
    site = tmp_path / "site-packages"
    site.mkdir()
    for distribution in _lock_entries(DOCKER / "classifier" / "requirements.lock"):
        _link_distribution(distribution, site)
    program = """
import sys
import numpy as np
from classpulse_classifier.serving_client import build_predict_request, predict_pb2
request = build_predict_request(np.zeros((2, 48, 48, 1), np.uint8), "emotion", "serving_default", "faces", "probabilities")
assert predict_pb2.PredictRequest.FromString(request.SerializeToString()) == request
assert not any(name.split(".")[0] in ("tensorflow", "tensorflow_serving") for name in sys.modules)
print(len(request.inputs["faces"].tensor_content))
"""
    path = [str(site), str(REPO / "services" / "classifier"), *(str(REPO / "services" / "common" / part) for part in shared_packages("classifier"))]
    result = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path[:0] = {path!r}\n{program}"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(2 * 48 * 48)
