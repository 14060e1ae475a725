"""The Python client (clients/python/) is what `make client` generates from the API as it is: the committed OpenAPI
document is the app's, and regenerating the client from it changes no file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from classpulse_api.openapi_document import openapi_document, render

pytestmark = pytest.mark.unit

CLIENTS = Path(__file__).resolve().parents[2] / "clients" / "python"
TOOLS_BIN = CLIENTS.parents[1] / ".cache" / "tools-venv" / "bin"


def test_the_committed_openapi_document_is_the_apps():
    assert (CLIENTS / "openapi.json").read_text() == render(openapi_document()), "run `make client`"


def test_the_operations_have_the_names_clients_call_them_by():
    operations = {op["operationId"] for path in openapi_document()["paths"].values() for op in path.values()}
    assert {"create_class", "start_session", "summary", "timeseries", "create_key"} <= operations


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file() and ".ruff_cache" not in p.parts}


def test_regenerating_the_client_changes_nothing(tmp_path):
    generator = TOOLS_BIN / "openapi-python-client"
    assert generator.exists(), f"{generator} is missing: `make test` installs it (requirements-tools.txt)"
    out = tmp_path / "classpulse-client"
    subprocess.run(
        [generator, "generate", "--path", CLIENTS / "openapi.json", "--config", CLIENTS / "generator.yaml",
         "--output-path", out, "--meta", "setup"],
        check=True, capture_output=True, env={"PATH": f"{TOOLS_BIN}:/usr/bin:/bin"}, cwd=tmp_path,
    )
    committed, generated = _tree(CLIENTS / "classpulse-client"), _tree(out)
    committed = {name: text for name, text in committed.items() if ".egg-info" not in name}
    assert sorted(generated) == sorted(committed), "run `make client`"
    changed = [name for name in generated if generated[name] != committed[name]]
    assert not changed, f"run `make client`: {changed}"
