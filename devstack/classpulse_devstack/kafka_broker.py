"""The Kafka broker: a plain JVM on the jars that `install` resolved from Maven Central, in KRaft mode."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import uuid
from pathlib import Path

from classpulse_devstack import templates
from classpulse_devstack.config import DevstackConfig

log = logging.getLogger(__name__)

BROKER_HEAP = ("-Xms512m", "-Xmx512m", "-XX:+AlwaysPreTouch")
"""A fixed heap, committed and touched at start: a heap that may grow from -Xms to -Xmx grows the process's resident
memory for hours as the collector spreads into it (the soak measured 492 -> 548 MiB with -Xms256m -Xmx1g): not a
leak, but read as one by any look at memory over time, and a memory limit is met late instead of at start. Kafka
keeps its data in the page cache, not the heap: in a soak at half the pipeline's maximum, the heap in use peaked at
360 MiB of the 512 (garbage not yet collected included); Kafka's own default, 1 GiB, would cost every test stack on a
shared machine another 512 MiB."""
TOOL_HEAP = ("-Xmx256m",)


def data_dir(config: DevstackConfig) -> Path:
    return config.run_dir / "kafka"


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    return str(Path(java_home) / "bin" / "java") if java_home else "java"


def _java_command(config: DevstackConfig, heap: tuple[str, ...], main_class: str, *args: str) -> list[str]:
    return [
        _java(),
        *heap,
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={config.devstack_files / 'kafka' / 'log4j2.properties'}",
        "-cp",
        f"{config.kafka_libs_dir}/*",
        main_class,
        *args,
    ]


def _properties_path(config: DevstackConfig) -> Path:
    return config.rendered_config_dir / "kafka.properties"


def broker_command(config: DevstackConfig) -> list[str]:
    return _java_command(config, BROKER_HEAP, "kafka.Kafka", str(_properties_path(config)))


def prepare(config: DevstackConfig) -> None:
    """Write the broker's properties; format the storage directory the first time (KRaft needs a cluster id)."""
    if not config.kafka_libs_dir.is_dir():
        raise RuntimeError(f"{config.kafka_libs_dir} is missing: run `python -m classpulse_devstack install` first")
    properties = templates.render(
        config.devstack_files / "kafka" / "server.properties",
        _properties_path(config),
        port=config.kafka_port,
        controller_port=config.kafka_controller_port,
        data_dir=data_dir(config),
    )
    # meta.properties is what formatting writes; without it the broker refuses to start.
    if not (data_dir(config) / "meta.properties").exists():
        _format_storage(config, properties)


def _format_storage(config: DevstackConfig, properties: Path) -> None:
    # A Kafka cluster id is a random UUID in unpadded URL-safe base64, as `kafka-storage random-uuid` prints it.
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    command = _java_command(
        # `--cluster-id=` in one argument: an id may start with "-", which the tool would read as an option.
        config, TOOL_HEAP, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "--config", str(properties)
    )
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")
    log.info("formatted Kafka storage in %s (cluster id %s)", data_dir(config), cluster_id)
