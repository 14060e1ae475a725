"""Fixtures of the integration tests that more than one file uses."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def class_id(redis_client):
    """A fresh class id; every key of it (series, registry, presence, dedup) and its index entry deleted afterwards."""
    class_id = f"it-{uuid.uuid4().hex[:8]}"
    yield class_id
    for key in redis_client.scan_iter(match=f"*{{{class_id}}}*"):
        redis_client.delete(key)
    redis_client.zrem("classes", class_id)
