"""Every service stops cleanly on SIGTERM: it finishes, flushes and commits, and exits 0 within its grace period."""

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.integration

# Ports away from the local stack's, so this runs beside a developer's `make up`.
SERVICES = {"ingest": 18101, "detector": 18102, "classifier": 18103, "aggregator": 18104, "api": 18100}


@pytest.fixture(scope="module")
def model_server(infra):
    """The classifier is ready only once the model server answers with the model's contract: the local one."""
    components = infra.select("model-server")
    started = infra.up(components)
    yield f"127.0.0.1:{infra.config.model_server_port}"
    infra.down([component for component in components if component.name in started])


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_sigterm_stops_the_service_cleanly(infra, service, tmp_path, request):
    port = SERVICES[service]
    env = {
        **os.environ,
        "CLASSPULSE_HTTP_PORT": str(port),
        "CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS": infra.config.kafka_bootstrap,
        "CLASSPULSE_REDIS_URL": f"redis://127.0.0.1:{infra.config.redis_port}/0",
    }
    if service == "classifier":
        env["CLASSPULSE_MODEL_SERVER"] = request.getfixturevalue("model_server")
    log = tmp_path / f"{service}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", f"classpulse_{service}"], env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()[-2000:]
            time.sleep(0.5)
        else:
            pytest.fail(f"{service} not ready in 60 s: {log.read_text()[-2000:]}")
        process.send_signal(signal.SIGTERM)
        # uvicorn finishes its graceful shutdown, then re-raises the signal it caught so the parent sees why it ended.
        clean_codes = (0, -signal.SIGTERM) if service in ("api", "ingest") else (0,)
        assert process.wait(timeout=20) in clean_codes, log.read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert "Traceback" not in _ours(text)
    if service in ("detector", "classifier", "aggregator"):
        assert '"msg": "stage stopping"' in text and '"msg": "stopped"' in text
    else:
        assert '"msg": "Application shutdown complete."' in text


def _ours(log_text: str) -> str:
    """The log without kafka-python's own records: its 3.x IO thread may log (and then handle) a read from the socket
    that close() just took away, a race inside the library at every client's close, not a failure of the service's."""
    kept = []
    for line in log_text.splitlines():
        try:
            logger = json.loads(line).get("logger", "")
        except json.JSONDecodeError:
            logger = ""
        if not logger.startswith("kafka."):
            kept.append(line)
    return "\n".join(kept)
