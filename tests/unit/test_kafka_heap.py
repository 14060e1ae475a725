"""Every Kafka JVM the project runs (devstack, compose, each Kubernetes node pool) has a fixed heap, committed and
touched at start: a heap free to grow from a small -Xms grows the process's memory for hours, which the soak read as
a leak (docs/reliability-report.md), and a pod's memory limit would be met late instead of at start."""

from __future__ import annotations

import re

import pytest

from classpulse_devstack.kafka_broker import BROKER_HEAP
from deploy_support import OVERLAYS, compose, objects_of, render

pytestmark = pytest.mark.unit

UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def _bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"([0-9]+)([a-zA-Z]*)", quantity).groups()
    return int(number) * UNITS[unit.lower()]


def _fixed_heap(options: list[str]) -> int:
    """The heap of a JVM command line's options; fails unless -Xms equals -Xmx and AlwaysPreTouch is on."""
    sizes = {option[:4]: _bytes(option[4:]) for option in options if option[:4] in ("-Xms", "-Xmx")}
    assert sizes.get("-Xms") == sizes.get("-Xmx") and "-Xmx" in sizes, options
    assert "-XX:+AlwaysPreTouch" in options, options
    return sizes["-Xmx"]


def test_the_devstack_broker_heap_is_fixed_and_touched_at_start():
    assert _fixed_heap(list(BROKER_HEAP)) == 512 * 1024**2


def test_the_compose_broker_heap_is_fixed_and_touched_at_start():
    environment = compose()["services"]["kafka"]["environment"]
    assert _fixed_heap(environment["KAFKA_HEAP_OPTS"].split()) == 1024**3


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_kafka_node_pool_has_a_fixed_heap_of_at_most_half_its_memory(overlay):
    pools = objects_of(render(overlay), "KafkaNodePool")
    assert pools
    for pool in pools:
        spec = pool["spec"]
        jvm = spec["jvmOptions"]
        # Strimzi's form of the same options: "-Xms", "-Xmx" and a map of -XX options.
        options = [f"-Xms{jvm['-Xms']}", f"-Xmx{jvm['-Xmx']}", *(f"-XX:+{name}" for name, on in jvm["-XX"].items() if on == "true")]
        heap = _fixed_heap(options)
        # The rest is the JVM's own memory (metaspace, code, threads, ~200 MiB) and the page cache Kafka reads from.
        assert heap <= _bytes(spec["resources"]["limits"]["memory"]) // 2, pool["metadata"]["name"]
