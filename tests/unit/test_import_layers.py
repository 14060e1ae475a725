"""What may import what (docs/architecture.md): import-linter checks the contracts in pyproject.toml against the
code's import graph (built from the source, nothing imported)."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def loggers_left_as_they_were() -> Iterator[None]:
    """import-linter configures logging as its command does (`logging.config.dictConfig`), which disables every logger
    that exists by then: a test run after this one in the same process found nothing in its caplog. They are put back."""
    loggers = [logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    disabled = [logger.disabled for logger in loggers]
    try:
        yield
    finally:
        for logger, was_disabled in zip(loggers, disabled, strict=True):
            logger.disabled = was_disabled


def test_the_import_contracts_are_kept():
    a_service_log = logging.getLogger("classpulse_tests.import_layers")
    with loggers_left_as_they_were():
        kept = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    assert kept == 0, "see the broken contracts above"
    assert not a_service_log.disabled, "checking the contracts switched off the loggers of the tests after it"
