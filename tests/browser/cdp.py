"""A headless Chromium (Debian's `chromium`) driven over the Chrome DevTools Protocol: just what browser tests need.

Chromium is started with a fresh profile and `--remote-debugging-port=0`; the port it picked is read from the
profile's DevToolsActivePort file, and the test talks to its one page over a websocket: evaluate JavaScript, wait for
a condition, take a screenshot. JavaScript exceptions and console errors (a Content-Security-Policy violation is one)
are collected so that a test can assert there were none; the requests the page sends, once `record_requests()` is
called.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import time
from pathlib import Path

import httpx
import websocket

CHROMIUM = "/usr/bin/chromium"
STUDENT_SNAPSHOT_INTERVAL_S = 1.0
"""How often the student page takes a photo in the browser tests (ingest's CLASSPULSE_STUDENT_SNAPSHOT_INTERVAL_S)."""
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)


class JavaScriptError(AssertionError):
    pass


class Chromium:
    def __init__(
        self,
        profile_dir: Path,
        width: int = 1280,
        height: int = 900,
        start_timeout_s: float = 60.0,
        extra_flags: tuple[str, ...] = (),
    ) -> None:
        """`extra_flags`: more command-line switches, e.g. a fake camera for a page that captures."""
        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, *extra_flags, f"--user-data-dir={profile_dir}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.errors: list[str] = []
        self.requests: list[dict] = []
        """Each request the page (its frames included) sent, as the protocol's Network.Request: url, method, postData."""
        self._ids = itertools.count(1)
        try:
            port = self._devtools_port(profile_dir / "DevToolsActivePort", start_timeout_s)
            page = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page")
            # No Origin header: Chromium refuses websocket clients whose origin it was not told to allow.
            self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable")
            self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    def _devtools_port(self, active_port_file: Path, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode} before it was ready")
            if active_port_file.exists() and active_port_file.read_text().strip():
                return int(active_port_file.read_text().split()[0])
            time.sleep(0.1)
        raise TimeoutError(f"chromium did not open its DevTools port in {timeout_s:.0f}s")

    def send(self, method: str, **params: object) -> dict:
        """One protocol command; the events that arrive meanwhile are looked at for errors."""
        message_id = next(self._ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self._note(message)

    def record_requests(self) -> None:
        self.send("Network.enable")

    def _note(self, event: dict) -> None:
        params = event.get("params", {})
        if event.get("method") == "Network.requestWillBeSent":
            self.requests.append(params["request"])
        elif event.get("method") == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
        elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(f"{params['entry']['source']}: {params['entry']['text']}")
        elif event.get("method") == "Runtime.consoleAPICalled" and params["type"] == "error":
            self.errors.append(" ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"]))

    def evaluate(self, expression: str) -> object:
        """The value of a JavaScript expression (promises are awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise JavaScriptError(f"{expression!r}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    def navigate(self, url: str, timeout_s: float = 30.0) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", timeout_s)

    def wait_for(self, expression: str, timeout_s: float, poll_s: float = 0.25) -> object:
        """Polls a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still falsy after {timeout_s:.0f}s: {expression}")
            time.sleep(poll_s)

    def screenshot(self, path: Path) -> Path:
        """The whole page, not only the viewport, as PNG."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.send("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        socket = getattr(self, "socket", None)
        if socket is not None:
            socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
