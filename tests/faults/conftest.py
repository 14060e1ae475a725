"""Fixtures of the fault, hostile-input and load tests: a whole stack of their own.

`isolated_stack` is the devstack relocated by a port offset (CLASSPULSE_DEVSTACK_PORT_OFFSET; claimed with a lock
file, so concurrent sessions never share one; CLASSPULSE_FAULTS_PORT_OFFSET picks it) with its own run dir under
.run/isolated/<offset>/. These tests kill, stop and flood its processes; the default stack on the fixed ports,
which others run end-to-end tests on, is never touched. It lives as long as this folder's tests (package scope) and
is stopped after them, whatever happened.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from classpulse_reliability.drills import DETERMINISTIC_DETECTOR, ONE_CLASS
from classpulse_reliability.isolated import IsolatedStack, running_isolated_stack


@pytest.fixture(scope="package")
def isolated_stack() -> Iterator[IsolatedStack]:
    offset = os.environ.get("CLASSPULSE_FAULTS_PORT_OFFSET")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DETERMINISTIC_DETECTOR.items():
            patch.setenv(name, value)  # the stack's services inherit it, restarts included
        with running_isolated_stack(int(offset) if offset else None) as stack:
            yield stack


@pytest.fixture(scope="session")
def drill_workload() -> Path:
    """The one-class drills' frames of the sample class (needs the FER2013 CSV, as `make demo` does)."""
    return ONE_CLASS.workload()
