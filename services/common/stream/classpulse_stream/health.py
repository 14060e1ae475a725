"""Health, readiness and metrics over HTTP for the worker services (the API serves its own through FastAPI).

- /healthz: the process is alive and its loop has turned recently (a stuck loop fails liveness and gets restarted).
- /readyz: its dependencies are reachable and it is consuming.
- /metrics: Prometheus exposition.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


class HealthState:
    def __init__(self, stall_after_s: float = 120.0) -> None:
        self.stall_after_s = stall_after_s
        self._last_beat = time.monotonic()
        self._ready = False
        self._reason = "starting"

    def beat(self) -> None:
        self._last_beat = time.monotonic()

    def set_ready(self, ready: bool, reason: str = "") -> None:
        self._ready, self._reason = ready, reason

    def alive(self) -> tuple[bool, str]:
        since = time.monotonic() - self._last_beat
        return since < self.stall_after_s, f"last loop turn {since:.1f}s ago"

    def ready(self) -> tuple[bool, str]:
        return self._ready, self._reason or "ready"


def serve_health(state: HealthState, host: str, port: int) -> ThreadingHTTPServer:
    """Serve health and metrics on a daemon thread; returns the server so the caller can shut it down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if self.path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif self.path in ("/healthz", "/readyz"):
                ok, detail = state.alive() if self.path == "/healthz" else state.ready()
                body = json.dumps({"status": "ok" if ok else "unavailable", "detail": detail}).encode()
                self._send(200 if ok else 503, body, "application/json")
            else:
                self._send(404, b'{"error":"not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # probes every few seconds would drown the service's own logs

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server
