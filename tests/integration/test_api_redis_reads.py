"""What the API asks Redis, counted by Redis itself (INFO commandstats): a class list is one script call whatever
the number of classes, deleting a class scans nothing, and the viewers of a class's live stream share one read a
second, over a real HTTP server; and what it reads survives a FLUSHDB of another database of the same server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from classpulse_aggregator.writer import SeriesWriter
from classpulse_api.app import create_app
from classpulse_api.settings import ApiSettings
from classpulse_core.schemas import FrameResult
from classpulse_core.settings import StorageSettings
from classpulse_core.timeseries import SERIES_METRICS
from classpulse_web.auth import new_key
from free_ports import free_port

pytestmark = pytest.mark.integration

ADMIN_KEY = new_key()[1]
WATCH_S = 3.5
CONNECTION_SETUP = ("HELLO", "CLIENT SETINFO")
"""What a new connection sends first (whoever opens it): not part of what a route asks."""


def _calls(redis_client, command: str) -> int:
    return redis_client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)


@contextlib.contextmanager
def monitored(redis_client) -> Iterator[list[str]]:
    """The commands clients send Redis while the block runs (MONITOR), not those scripts run inside Redis, nor a new
    connection's set-up."""
    commands: list[str] = []
    marker = f"end-of-monitoring-{new_key()[0]}"
    listening = threading.Event()

    def collect() -> None:
        with redis_client.monitor() as monitor:
            listening.set()
            for command in monitor.listen():
                if marker in command["command"]:
                    return
                if command["client_type"] != "lua" and not command["command"].startswith(CONNECTION_SETUP):
                    commands.append(command["command"])

    thread = threading.Thread(target=collect, name="monitor", daemon=True)
    thread.start()
    assert listening.wait(10)
    yield commands
    redis_client.echo(marker)
    thread.join(timeout=10)


@pytest.fixture
def served_api(infra) -> Iterator[str]:
    """The API app served by uvicorn on a free port (a stream needs a real server), stopped after the test."""
    settings = ApiSettings(redis_url=f"redis://127.0.0.1:{infra.config.redis_port}/0", admin_api_key=ADMIN_KEY)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def _client(base_url: str, key: str = ADMIN_KEY) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def _create(client: httpx.Client, class_id: str, **fields) -> None:
    assert client.post("/v1/classes", json={"class_id": class_id, **fields}).status_code == 201


def test_a_teachers_class_list_is_one_script_call_whatever_the_number_of_classes(served_api, redis_client):
    teacher = f"t-{new_key()[0]}"
    own_classes: list[str] = []
    other_classes: list[str] = []
    with _client(served_api) as admin:
        key = admin.post("/v1/keys", json={"role": "teacher", "name": "t", "teacher_id": teacher}).json()["api_key"]
        try:
            with _client(served_api, key) as own:
                costs = {}
                for count in (2, 7):
                    while len(own_classes) < count:
                        own_classes.append(f"list-{new_key()[0]}")
                        _create(admin, own_classes[-1], teacher=teacher)
                    other_classes.append(f"other-{new_key()[0]}")
                    _create(admin, other_classes[-1], teacher="someone-else")
                    own.get("/v1/classes")  # the script is loaded once; what follows is a steady state
                    with monitored(redis_client) as sent:
                        listed = own.get("/v1/classes", params={"offset": 1, "limit": 3}).json()
                    # The key's check, then one script call: nothing per class.
                    costs[count] = sent
                    assert sent[-1].startswith("EVALSHA") and sum(command.startswith("EVALSHA") for command in sent) == 1, sent
                    assert listed["total"] == count and len(listed["items"]) == min(3, count - 1)
                    assert {item["teacher"] for item in listed["items"]} == {teacher}
            assert len(costs[2]) == len(costs[7]), costs
        finally:
            for class_id in own_classes + other_classes:
                admin.delete(f"/v1/classes/{class_id}")


def test_deleting_a_class_scans_nothing_and_leaves_no_per_source_key(served_api, redis_client):
    class_id = f"del-{new_key()[0]}"
    with _client(served_api) as admin:
        _create(admin, class_id)
        writer = SeriesWriter(redis_client, StorageSettings().resolutions(), dedup_window_s=600)
        now = int(time.time() * 1000)
        # Two sources over two minutes: dedup sets and presence states whose names only the key index knows.
        writer.write([_frame(class_id, f"cam-{i % 2}", i, now - 90_000 + i * 30_000) for i in range(4)])
        assert len(list(redis_client.scan_iter(match=f"*{{{class_id}}}*"))) > 10
        scans = _calls(redis_client, "scan")
        assert admin.delete(f"/v1/classes/{class_id}").status_code == 204
        assert _calls(redis_client, "scan") == scans
    assert list(redis_client.scan_iter(match=f"*{{{class_id}}}*")) == []


def _frame(class_id: str, source_id: str, sequence: int, at_ms: int) -> FrameResult:
    return FrameResult(
        class_id=class_id, source_id=source_id, frame_id=f"{source_id}:{sequence}", sequence=sequence,
        captured_at_ms=at_ms, completed_at_ms=at_ms, boxes=[[0, 0, 10, 10]], probabilities=[[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]],
    )


async def _watch(base_url: str, class_id: str, window: int, seconds: float) -> list[tuple[str, dict]]:
    """The events one viewer receives in `seconds`, as (name, data)."""
    received: list[tuple[str, dict]] = []
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as client:
        async with client.stream("GET", f"/v1/classes/{class_id}/stream", params={"window": window}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            name = None
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(seconds):
                    async for line in response.aiter_lines():
                        if line.startswith("event: "):
                            name = line.removeprefix("event: ")
                        elif line.startswith("data: "):
                            received.append((name, json.loads(line.removeprefix("data: "))))
    return received


def test_every_viewer_of_a_class_shares_one_read_a_second(served_api, redis_client):
    class_id = f"live-{new_key()[0]}"
    with _client(served_api) as admin:
        _create(admin, class_id, expected_students=1)
        try:
            writer = SeriesWriter(redis_client, StorageSettings().resolutions(), dedup_window_s=600)
            writer.write([_frame(class_id, "cam", 0, int(time.time() * 1000) - 3000)])
            reads = {}
            for viewers in (1, 6):
                before = _calls(redis_client, "ts.range")
                seen = asyncio.run(_gather(served_api, class_id, viewers))
                # A read is one TS.RANGE a metric of the class, pipelined (classpulse_core.timeseries.range_commands).
                reads[viewers] = (_calls(redis_client, "ts.range") - before) / len(SERIES_METRICS)
                for index, events in enumerate(seen):
                    live = [data for name, data in events if name == "live"]
                    assert len(live) >= 2 and {data["class_id"] for data in live} == {class_id}
                    # Each viewer gets its own window's sums from the shared read.
                    assert {data["window_s"] for data in live} == {_window(index)}
                    if _window(index) == 60:
                        assert (live[-1]["frames"], live[-1]["faces"]) == (1, 1)
            # Once a second for the class, not once a second per viewer (6 viewers alone would make 6 x 3.5).
            assert reads[1] <= WATCH_S + 2 and reads[6] <= WATCH_S + 2, reads
        finally:
            admin.delete(f"/v1/classes/{class_id}")


async def _gather(base_url: str, class_id: str, viewers: int) -> list[list[tuple[str, dict]]]:
    # Two windows among the viewers: windows read in the same buckets share the read too.
    return await asyncio.gather(*(_watch(base_url, class_id, _window(i), WATCH_S) for i in range(viewers)))


def _window(viewer: int) -> int:
    return (10, 60)[viewer % 2]


def test_a_flushdb_of_another_database_leaves_every_class_its_numbers(served_api, redis_client, infra, _unused_redis_databases):
    """RedisTimeSeries keeps one label index for every database of a server, and a FLUSHDB of any of them empties it:
    a class read by TS.MRANGE's label filter read 0 frames after another deployment's database (or a test's) was
    flushed, and its alerts saw an empty class; reads by series name do not depend on the index."""
    import redis

    from classpulse_aggregator.alerts import AlertEvaluator
    from classpulse_store.registry import ClassDirectory

    class_id = f"flushed-{new_key()[0]}"
    other = _unused_redis_databases.pop()
    with _client(served_api) as admin:
        _create(admin, class_id, expected_students=1)
        try:
            writer = SeriesWriter(redis_client, StorageSettings().resolutions(), dedup_window_s=600)
            now = int(time.time() * 1000)
            writer.write([_frame(class_id, "cam", i, now - 3000 + i * 1000) for i in range(3)])
            with redis.Redis(port=infra.config.redis_port, db=other) as neighbour:
                neighbour.execute_command("TS.CREATE", f"ts:{{{class_id}}}:probe", "LABELS", "app", "neighbour")
                neighbour.flushdb()
            # The index is empty now: the class's series are still there, and found by no filter.
            assert redis_client.execute_command("TS.QUERYINDEX", f"class_id={class_id}") == []
            summary = admin.get(f"/v1/classes/{class_id}/summary", params={"from": now - 5000, "to": now}).json()
            assert (summary["frames"], summary["faces"]) == (3, 3), summary
            record = ClassDirectory(redis_client).get(class_id)
            indices = AlertEvaluator(redis_client, ClassDirectory(redis_client), ()).current_indices(record, now)
            assert indices["presence"] is not None and indices["presence"] > 0, indices
        finally:
            admin.delete(f"/v1/classes/{class_id}")
