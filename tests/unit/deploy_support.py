"""What the deployment tests (test_deploy_*.py) share: rendering the Kubernetes overlays, the committed schemas, the
compose file, and what each service really reads and imports (its settings class, its import graph).

Everything here works offline: kustomize is the binary deploy/tools/install-kustomize.sh puts in .cache/bin (or one
on PATH), the schemas are committed files, the settings and imports come from the code itself.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
CRD_SCHEMAS = K8S / "schemas"
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKER = REPO / "deploy" / "docker"
ROOT_LOCK = REPO / "requirements.lock"


def dockerfile(image: str) -> Path:
    """The Dockerfile of an image: one for every Python service (build argument SERVICE), the model server's own."""
    return DOCKER / "model-server" / "Dockerfile" if image == "model-server" else DOCKER / "Dockerfile"


def model_server_entrypoint() -> list[str]:
    """The model-server image's exec-form ENTRYPOINT: tensorflow_model_server and its flags."""
    entrypoint = re.search(r"^ENTRYPOINT (\[.*?\])$", dockerfile("model-server").read_text(), re.MULTILINE | re.DOTALL)[1]
    return json.loads(entrypoint.replace("\\\n", ""))

SERVICES = ("ingest", "detector", "classifier", "aggregator", "api")
"""The five ClassPulse services: package classpulse_<name> under services/<name>/, image classpulse/<name>."""
STAGE_INPUT_TOPIC = {"detector": "frames_topic", "classifier": "faces_topic", "aggregator": "predictions_topic"}
"""The consuming stages and the KafkaSettings field naming the topic each consumes (classpulse-<stage> group)."""

POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


# --- Kubernetes ---------------------------------------------------------------------------------------------------


KUSTOMIZE_INSTALLER = REPO / "deploy" / "tools" / "install-kustomize.sh"


def kustomize_version(which: str) -> str:
    """The kustomize version install-kustomize.sh names `KUSTOMIZE_<WHICH>` (PINNED, OLDEST)."""
    return re.search(rf"^KUSTOMIZE_{which.upper()}=(v[0-9.]+)", KUSTOMIZE_INSTALLER.read_text(), re.MULTILINE)[1]


def kustomize_binary(version: str | None = None) -> str:
    """The pinned kustomize (or one on PATH), or exactly the given version, as install-kustomize.sh left them."""
    cached = REPO / ".cache" / "bin" / (f"kustomize-{version}" if version else "kustomize")
    if cached.exists():
        return str(cached)
    found = shutil.which("kustomize") if version is None else None
    if not found:
        pytest.fail(f"kustomize {version or ''} is not installed: run deploy/tools/install-kustomize.sh (make install does)")
    return found


@functools.cache
def build(overlay: str, version: str | None = None) -> str:
    """The output of `kustomize build deploy/k8s/overlays/<overlay>` (the pinned kustomize unless a version is given)."""
    result = subprocess.run(
        [kustomize_binary(version), "build", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kustomize {version or ''} build {overlay} failed:\n{result.stderr}"
    return result.stdout


@functools.cache
def render(overlay: str) -> tuple[dict, ...]:
    """Every object the pinned `kustomize build deploy/k8s/overlays/<overlay>` renders."""
    return tuple(document for document in yaml.safe_load_all(build(overlay)) if document)


def render_with_component(overlay: str, component: str, workdir: Path) -> tuple[dict, ...]:
    """Every object of an overlay of one's own in `workdir`: deploy/k8s/overlays/<overlay> with
    deploy/k8s/components/<component>, as a component's comment tells an operator to write (kustomize takes
    relative paths only)."""
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(K8S / "overlays" / overlay, workdir)],
        "components": [os.path.relpath(K8S / "components" / component, workdir)],
    }))
    result = subprocess.run([kustomize_binary(), "build", str(workdir)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return tuple(document for document in yaml.safe_load_all(result.stdout) if document)


def objects_of(objects: tuple[dict, ...], kind: str) -> list[dict]:
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: tuple[dict, ...], kind: str, name: str) -> dict:
    matches = [obj for obj in objects_of(objects, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_spec(obj: dict) -> dict | None:
    if obj["kind"] in POD_TEMPLATE_KINDS:
        return obj["spec"]["template"]["spec"]
    return None


def containers(obj: dict) -> list[dict]:
    spec = pod_spec(obj) or {}
    return spec.get("containers", []) + spec.get("initContainers", [])


def container_env(objects: tuple[dict, ...], container: dict) -> dict[str, dict]:
    """{name: source} of every variable a container gets: {"value": ...}, {"valueFrom": ...} or {"configMap": name}."""
    env: dict[str, dict] = {}
    for source in container.get("envFrom", []):
        config_map = named(objects, "ConfigMap", source["configMapRef"]["name"])
        env.update({name: {"value": value, "configMap": config_map["metadata"]["name"]} for name, value in config_map["data"].items()})
    for variable in container.get("env", []):
        env[variable["name"]] = {key: value for key, value in variable.items() if key != "name"}
    return env


def crd_schema(api_version: str, kind: str) -> dict | None:
    """The committed openAPIV3Schema of a custom resource, or None when it is not a custom resource we know."""
    group, _, version = api_version.rpartition("/")
    path = CRD_SCHEMAS / f"{group}_{version}_{kind}.json"
    return json.loads(path.read_text()) if path.exists() else None


def strict(schema: dict) -> dict:
    """A copy of an OpenAPI schema that rejects unknown fields, as the API server's strict field validation (kubectl's
    default) does; objects marked x-kubernetes-preserve-unknown-fields or with additionalProperties stay open."""
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) if isinstance(value, dict) else value for key, value in schema.items()}
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            result[key] = [strict(branch) for branch in schema[key]]
    if "properties" in schema:
        result["properties"] = {name: strict(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            result["additionalProperties"] = False
    return result


REDIS_START_SCRIPT = K8S / "base" / "redis" / "start-redis-server.sh"
"""Starts Redis in Kubernetes and compose: maxmemory from the memory limit, then the image's entrypoint."""


def redis_server_argv(script: str, args: list[str], memory_limit_mib: int, workdir: Path) -> list[str]:
    """The arguments the start script `script` (its text) hands the image's entrypoint, given the container's args
    and memory limit: a docker-entrypoint.sh of `workdir` on PATH prints them, one a line."""
    (workdir / "docker-entrypoint.sh").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (workdir / "docker-entrypoint.sh").chmod(0o755)
    (workdir / "start.sh").write_text(script)
    env = {"PATH": f"{workdir}:{os.environ['PATH']}", "REDIS_MEMORY_LIMIT_MIB": str(memory_limit_mib)}
    result = subprocess.run(["sh", str(workdir / "start.sh"), *args], capture_output=True, text=True, env=env, timeout=10)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def mebibytes(quantity: str) -> float:
    """A memory size in MiB, from a Kubernetes quantity (512Mi, 8Gi) or a Redis one (1365mb, 2gb)."""
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi|mb|gb)", quantity).groups()
    return int(number) * (1024 if unit in ("Gi", "gb") else 1)


def load_tool(name: str) -> ModuleType:
    """A script of deploy/tools/ (not a package) as a module, to test its functions."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "deploy" / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules[name]


# --- docker-compose -------------------------------------------------------------------------------------------------


@functools.cache
def compose() -> dict:
    """docker-compose.yml with its YAML anchors and merge keys resolved (PyYAML does both)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


# --- the services themselves --------------------------------------------------------------------------------------


def settings_class(service: str) -> type[BaseSettings]:
    module = importlib.import_module(f"classpulse_{service}.settings")
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseSettings) and value.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"classpulse_{service}.settings should define one settings class: {classes}"
    return classes[0]


def settings_env_names(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads; a nested settings class reads its own prefix."""
    prefix = settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings):
            names |= settings_env_names(field.annotation)
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def _imports_of(path: Path, package: str) -> set[str]:
    """Absolute module names imported by one file (relative imports resolved against `package`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return names


def _module_file(module: str) -> Path | None:
    top, _, rest = module.partition(".")
    if not top.startswith("classpulse_"):
        return None
    name = top.removeprefix("classpulse_")
    service_root, shared_root = REPO / "services" / name / top, REPO / "services" / "common" / name / top
    root = shared_root if shared_root.is_dir() else service_root
    candidate = root.joinpath(*rest.split(".")) if rest else root
    for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.cache
def _reachable(service: str) -> tuple[frozenset[str], frozenset[str]]:
    """What a service's code can reach, its own package plus every shared module it imports, transitively: (top-level
    names of the non-standard, non-ClassPulse modules, the shared parts `services/common/<part>` it takes)."""
    package_dir = REPO / "services" / service / f"classpulse_{service}"
    todo = [(path, f"classpulse_{service}") for path in package_dir.rglob("*.py")]
    seen: set[Path] = set()
    found: set[str] = set()
    parts: set[str] = set()
    while todo:
        path, package = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imports_of(path, package):
            top = module.split(".")[0]
            if top.startswith("classpulse_"):
                target = _module_file(module)
                if target is not None:
                    target_package = module if target.name == "__init__.py" else module.rpartition(".")[0]
                    todo.append((target, target_package))
                    if (REPO / "services" / "common") in target.parents:
                        parts.add(top.removeprefix("classpulse_"))
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
    return frozenset(found), frozenset(parts)


def third_party_imports(service: str) -> frozenset[str]:
    """Top-level names of the non-standard, non-ClassPulse modules a service's code can reach."""
    return _reachable(service)[0]


def shared_parts_imported(service: str) -> frozenset[str]:
    """The shared parts (core, stream, store, web, tfserving) a service's code reaches."""
    return _reachable(service)[1]


def shared_packages(service: str) -> list[str]:
    """The shared parts a service's image copies: deploy/docker/<service>/shared-packages, comments left out."""
    lines = (DOCKER / service / "shared-packages").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def requirement_pins(path: Path) -> dict[str, str]:
    """{normalised distribution name: version} of a pinned requirements file."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.\-+!]+)", line)
            assert match, f"{path}: not an exact pin: {line!r}"
            pins[normalise(match[1])] = match[2]
    return pins


def normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


METRIC_SAMPLE_SUFFIXES = {"Counter": ("_total",), "Gauge": ("",), "Histogram": ("_bucket", "_sum", "_count"), "Summary": ("_sum", "_count")}


@functools.cache
def exported_series() -> frozenset[str]:
    """Every classpulse_* series name the services' code exports: each prometheus_client metric it defines, with the
    suffixes of its samples (a counter's _total, a histogram's _bucket, _sum and _count)."""
    names: set[str] = set()
    for path in (REPO / "services").rglob("*.py"):
        for kind, name in re.findall(r'\b(Counter|Gauge|Histogram|Summary)\(\s*"(classpulse_\w+)"', path.read_text()):
            base = name.removesuffix("_total") if kind == "Counter" else name
            names |= {base + suffix for suffix in METRIC_SAMPLE_SUFFIXES[kind]}
    return frozenset(names)


def walk_dicts(value: object) -> Iterator[dict]:
    """Every mapping inside a parsed YAML/JSON value, depth first."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from walk_dicts(child)
    elif isinstance(value, list):
        for child in value:
            yield from walk_dicts(child)
