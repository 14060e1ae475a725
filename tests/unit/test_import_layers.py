"""What may import what (docs/architecture.md): import-linter checks the contracts in pyproject.toml against the
code's import graph (built from the source, nothing imported)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = REPO / "pyproject.toml"


def test_every_classpulse_package_is_under_the_contracts():
    config = tomllib.loads(PYPROJECT.read_text())
    packages = {path.name for where in config["tool"]["setuptools"]["packages"]["find"]["where"] for path in (REPO / where).glob("classpulse_*")}
    assert packages and set(config["tool"]["importlinter"]["root_packages"]) == packages


def test_the_import_contracts_are_kept():
    assert lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True) == 0, "see the broken contracts above"
