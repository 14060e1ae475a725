"""Each Python service's image installs from its hashed locks: the build stage of deploy/docker/Dockerfile, run
here outside a container engine (none on the build machines; buildah cannot pull the base image there) in a clean
virtual environment of this interpreter (the image's Python minor), with PyPI as the image build would use it.

The stage's own ARG, ENV, COPY and RUN instructions are what runs, with /opt and /tmp moved under a temporary
folder, so what passes here is the Dockerfile's install step, not a copy of it. Then the service's entry module
imports with nothing but what the stage installed, as in the image (PYTHONPATH=/opt/app, no system packages).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
SERVICES = ("ingest", "detector", "classifier", "aggregator", "api")

pytestmark = [pytest.mark.images, pytest.mark.timeout(600)]


def _build_stage() -> list[tuple[str, str]]:
    """(instruction, arguments) of the `AS build` stage, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"FROM \S+ AS build", line))
    stage = []
    for line in lines[start + 1 :]:
        instruction, _, arguments = line.partition(" ")
        if instruction == "FROM":
            break
        stage.append((instruction, arguments))
    return stage


@pytest.mark.parametrize("service", SERVICES)
def test_build_stage_installs_from_the_hashed_locks_and_the_service_imports(service: str, tmp_path: Path) -> None:
    def moved(arguments: str) -> str:
        arguments = arguments.replace("${SERVICE}", service)
        return re.sub(r"(?<![\w.])/(opt|tmp)/", lambda m: f"{tmp_path}/{m[1]}/", arguments)

    # Nothing of this environment but PATH and HOME (pip's download cache: a second run downloads nothing).
    env = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"], "SERVICE": service}
    for instruction, arguments in _build_stage():
        if instruction == "ENV":
            for name, value in re.findall(r"(\w+)=(\S+)", arguments):
                env[name] = moved(value).replace("$PATH", env["PATH"])
        elif instruction == "COPY":
            *sources, destination = moved(arguments).split()
            for source in sources:
                target = Path(destination)
                if (REPO / source).is_dir():
                    shutil.copytree(REPO / source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(REPO / source, target)
        elif instruction == "RUN":
            # The image's `python` is its own 3.11; here the venv is made with this interpreter, the same minor.
            command = re.sub(r"^python -m venv", f"{sys.executable} -m venv", moved(arguments))
            done = subprocess.run(["/bin/sh", "-c", command], env=env, cwd=tmp_path, capture_output=True, text=True)
            assert done.returncode == 0, f"RUN {command}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    python = tmp_path / "opt" / "venv" / "bin" / "python"
    entry = f"import classpulse_{service}.__main__, classpulse_{service}.settings"
    done = subprocess.run(
        [str(python), "-c", entry], env={"PYTHONPATH": str(tmp_path / "opt" / "app")}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-4000:]
