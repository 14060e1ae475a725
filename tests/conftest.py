"""Fixtures shared by all test suites: the local servers, started through classpulse_devstack, and clients of them.

Tests that request `infra` (or any fixture built on it) get a real Kafka broker and redis-stack-server; whatever
the session started is stopped at its end, and whatever was already running (a developer's `make up`) is reused
and left running.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from joserfc import jwt
from joserfc.jwk import OKPKey
from kafka import KafkaAdminClient

from classpulse_demo import webcams
from classpulse_demo.fer_csv import FerCsvNotFoundError, resolve_fer_csv
from classpulse_demo.run import api_client
from classpulse_devstack.config import REPO_ROOT, DevstackConfig
from classpulse_devstack.kafka_topics import kafka_admin as open_kafka_admin
from classpulse_devstack.stack import Stack
from classpulse_reliability.isolated import claimed_offset
from classpulse_web.auth import new_key


@pytest.fixture(scope="session")
def devstack() -> Stack:
    """The local stack as configured by the environment (CLASSPULSE_DEVSTACK_* overrides included)."""
    return Stack(DevstackConfig.from_env())


@pytest.fixture(scope="session")
def infra(devstack: Stack) -> Iterator[Stack]:
    """Kafka (with the pipeline topics) and Redis, up for the whole session."""
    components = devstack.select("kafka,redis")
    started = devstack.up(components)
    yield devstack
    devstack.down([component for component in components if component.name in started])


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: Stack) -> str:
    return infra.config.kafka_bootstrap


@pytest.fixture
def kafka_admin(kafka_bootstrap: str) -> Iterator[KafkaAdminClient]:
    """A fresh client per test (they cost milliseconds): kafka-python 3.0's admin client does not recover by itself
    from a broker restart; it raises NodeNotReadyError while it backs off from reconnecting."""
    with open_kafka_admin(kafka_bootstrap) as admin:
        yield admin


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def _unused_redis_databases(infra: Stack) -> list[int]:
    """Redis' databases other than 0 (the session's stack's), the highest taken first."""
    return list(range(1, int(redis.Redis(port=infra.config.redis_port).config_get("databases")["databases"])))


@pytest.fixture(scope="module")
def redis_url(request: pytest.FixtureRequest, infra: Stack, _unused_redis_databases: list[int]) -> Iterator[str]:
    """The Redis database of a module's clients, APIs and ingest processes: database 0, the session's stack's; for a
    module marked `own_redis_database`, one of its own, emptied before and after (a run killed half-way leaves keys).
    A deployment is one Redis database (README, "One Redis database per deployment"): the processes of another on the
    same database take part in its work with their own settings (claim its sources, send its outbox)."""
    if request.node.get_closest_marker("own_redis_database") is None:
        yield f"redis://127.0.0.1:{infra.config.redis_port}/0"
        return
    number = _unused_redis_databases.pop()
    url = f"redis://127.0.0.1:{infra.config.redis_port}/{number}"
    with redis.Redis.from_url(url) as client:
        client.flushdb()
        yield url
        client.flushdb()
    _unused_redis_databases.append(number)


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """`create(partitions, name=None)` makes a topic (uniquely named unless `name` is given) and returns its name;
    the topics are deleted afterwards. The broker does not create topics on first use, so a test needs this for
    any topic of its own. Each call uses its own admin client, so deleting works even after a test restarted Kafka."""
    created: list[str] = []

    def create(partitions: int = 1, name: str | None = None) -> str:
        name = name or f"test.{uuid.uuid4().hex[:12]}"
        with open_kafka_admin(kafka_bootstrap) as admin:
            admin.create_topics(
                {name: {"num_partitions": partitions, "replication_factor": 1}}, wait_for_metadata=True
            )
        created.append(name)
        return name

    yield create
    if created:
        with open_kafka_admin(kafka_bootstrap) as admin:
            admin.delete_topics(created)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop uvicorn serves the API on."""
    return "asyncio"


@pytest.fixture(scope="session")
def stack(devstack: Stack) -> Iterator[Stack]:
    """The whole local stack: servers, model server and the five services, as `make up` starts them."""
    components = devstack.select(None)
    with pytest.MonkeyPatch.context() as patch:
        # Integration tests run APIs of their own settings (webhook allow-lists, an LRS) against the same Redis: the
        # stack's API must not take their outbox's work with its own settings.
        patch.setenv("CLASSPULSE_INTEGRATIONS_WORKER", "0")
        started = devstack.up(components)
    yield devstack
    devstack.down([component for component in components if component.name in started])


@dataclass
class WebcamClass:
    """A class of 12 students on their own webcams (classpulse_demo.webcams) on the stack, owned by a teacher of its
    own. `start()` posts its lesson in the background, in real time, as the students' pages would; `sent()` waits
    for the end of the lesson and returns what was posted."""

    class_id: str
    ingest: str
    lesson: webcams.WebcamLesson = field(default_factory=webcams.WebcamLesson)
    _posting: Future[webcams.Sent] | None = None

    @property
    def started(self) -> bool:
        return self._posting is not None

    def start(self) -> None:
        if self._posting is not None:
            return
        posting: Future[webcams.Sent] = Future()

        def post() -> None:
            try:
                with api_client(self.ingest) as ingest:
                    posting.set_result(webcams.run_lesson(ingest, self.class_id, self.lesson))
            except BaseException as exc:  # the test that waits for the lesson sees it fail
                posting.set_exception(exc)

        threading.Thread(target=post, name=f"webcam-class-{self.class_id}", daemon=True).start()
        self._posting = posting

    def sent(self, timeout_s: float | None = None) -> webcams.Sent:
        self.start()
        assert self._posting is not None
        return self._posting.result(timeout=self.lesson.seconds + 120 if timeout_s is None else timeout_s)

    def raise_if_failed(self) -> None:
        """Raise what stopped the lesson's posting if it stopped early, without waiting for the lesson's end."""
        if self._posting is not None and self._posting.done():
            self._posting.result()

    def stop_waiting(self) -> None:
        """Wait until no snapshot is being posted any more, however the lesson ended."""
        if self._posting is not None:
            wait([self._posting], timeout=self.lesson.seconds + 120)


@dataclass
class WebcamClasses:
    """The webcam class lesson takes two minutes of real time: one run of it serves every test that reads it (the
    end-to-end numbers, the dashboard watching it live). `shared()` is that run; `to_watch()` is it while it has not
    started yet, and a fresh class otherwise (a test that must see the lesson from its first snapshot, run after the
    shared lesson began)."""

    api: str
    ingest: str
    teacher_id: str
    teacher_key: str
    made: list[WebcamClass] = field(default_factory=list)

    def shared(self) -> WebcamClass:
        return self.made[0] if self.made else self._new()

    def to_watch(self) -> WebcamClass:
        shared = self.shared()
        return shared if not shared.started else self._new()

    def _new(self) -> WebcamClass:
        made = WebcamClass(f"webcams-{uuid.uuid4().hex[:8]}", self.ingest)
        body = {"class_id": made.class_id, "name": "Webcam class", "teacher": self.teacher_id,
                "expected_students": made.lesson.students, "emotion_enabled": True}
        with api_client(self.api) as admin:
            admin.post("/v1/classes", json=body).raise_for_status()
        self.made.append(made)
        return made


@pytest.fixture(scope="session")
def webcam_classes(stack: Stack) -> Iterator[WebcamClasses]:
    """Webcam classes on the stack (WebcamClasses), their teacher's key; deleted with all their data at the end."""
    try:
        resolve_fer_csv()
    except FerCsvNotFoundError as exc:
        pytest.skip(f"the webcam class is made of FER2013 faces: {exc}")
    api = stack.select("api")[0].address
    teacher_id = f"t-{uuid.uuid4().hex[:8]}"
    with api_client(api) as admin:
        created = admin.post("/v1/keys", json={"role": "teacher", "teacher_id": teacher_id, "name": "webcam class"})
        created.raise_for_status()
    classes = WebcamClasses(api, stack.select("ingest")[0].address, teacher_id, created.json()["api_key"])
    yield classes
    for made in classes.made:
        made.stop_waiting()  # never delete a class while its lesson is still posting
    with api_client(api) as admin:  # a client of its own: the session's tests may have restarted the API
        for made in classes.made:
            admin.delete(f"/v1/classes/{made.class_id}")
        admin.delete(f"/v1/keys/{created.json()['key_id']}")
    # A lesson that a test started and no test waited for (the dashboard's browser test run without the e2e test
    # that reads it) still fails the session if its posting failed, or had not ended, after that test.
    for made in classes.made:
        if made.started:
            made.sent(timeout_s=0)


@dataclass(frozen=True)
class ApiService:
    base_url: str
    admin_key: str
    log: Path
    process: subprocess.Popen


@contextmanager
def _api_starter(redis_url: str, logs: Path) -> Iterator[Callable[..., ApiService]]:
    """`start(**settings)` runs `python -m classpulse_api` on a free port against `redis_url`, with a fresh admin key and
    CLASSPULSE_<NAME> settings of the caller's own, logging into `logs`; each is stopped (SIGTERM) on leaving."""
    processes: list[subprocess.Popen] = []

    def start(**settings: str) -> ApiService:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        admin_key = new_key()[1]
        env = {
            **os.environ,
            "CLASSPULSE_HTTP_PORT": str(port),
            "CLASSPULSE_REDIS_URL": redis_url,
            "CLASSPULSE_ADMIN_API_KEY": admin_key,
            "CLASSPULSE_PUBLIC_URL": f"http://127.0.0.1:{port}",  # where it is reached, unless a test says otherwise
            **{f"CLASSPULSE_{name.upper()}": value for name, value in settings.items()},
        }
        log = logs / f"api-{port}.log"
        with log.open("w") as out:
            process = subprocess.Popen([sys.executable, "-m", "classpulse_api"], env=env, stdout=out, stderr=out)
        processes.append(process)
        service = ApiService(f"http://127.0.0.1:{port}", admin_key, log, process)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{service.base_url}/readyz", timeout=2).status_code == 200:
                    return service
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the API is not ready after 60 s: {log.read_text()}"
            time.sleep(0.2)

    try:
        yield start
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


@pytest.fixture
def start_api(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., ApiService]]:
    """`start_api(**settings)`: an API of the test's own (_api_starter), stopped after the test."""
    with _api_starter(redis_url, tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def module_api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiService]:
    """One API with the default settings for all of a module's tests (each start costs seconds of a busy CI machine),
    for tests that need no settings of their own, stop nothing and make their own classes, keys and issuers."""
    with _api_starter(redis_url, tmp_path_factory.mktemp("api")) as start:
        yield start()


class Platform:
    """An e-learning platform's back end as the embedding tests play it: its own Ed25519 key, minting viewer tokens."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.signing_key = OKPKey.generate_key("Ed25519")
        self.public_pem = self.signing_key.as_pem(private=False).decode()

    def mint(self, class_id: str | None, lifetime_s: int = 300, issued_ago_s: int = 0, signing_key=None, **claims: object) -> str:
        iat = int(time.time()) - issued_ago_s
        payload = {"iss": self.issuer, "aud": "classpulse", "class_id": class_id, "iat": iat, "exp": iat + lifetime_s,
                   "jti": uuid.uuid4().hex, **claims}
        payload = {name: value for name, value in payload.items() if value is not None}  # None: a claim left out
        return jwt.encode({"alg": "Ed25519"}, payload, signing_key or self.signing_key, algorithms=["Ed25519"])


@pytest.fixture
def platform() -> Platform:
    return Platform(f"https://lms-{uuid.uuid4().hex[:6]}.example.org")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test` runs two workers), the first worker uses the stack the environment names (the
    default ports, a developer's `make up` included) and every other worker a stack of its own: a claimed port offset
    and its own run dir, set before anything reads DevstackConfig so that the services, `make` and every subprocess
    it starts inherit them. The offset stays claimed (its lock file held) until the worker ends."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if worker == "gw0":
        return
    claim = ExitStack()
    offset = claim.enter_context(claimed_offset())
    config.add_cleanup(claim.close)
    for name in ("CLASSPULSE_DEVSTACK_KAFKA_PORT", "CLASSPULSE_DEVSTACK_KAFKA_CONTROLLER_PORT", "CLASSPULSE_DEVSTACK_REDIS_PORT"):
        os.environ.pop(name, None)  # a developer's own port would win over the offset and point at their stack
    os.environ["CLASSPULSE_DEVSTACK_PORT_OFFSET"] = str(offset)
    os.environ["CLASSPULSE_DEVSTACK_RUN_DIR"] = str(REPO_ROOT / ".run" / "xdist" / worker)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-load", action="store_true",
        help="also run the tests marked full_load: every fault drill at 8 classes x 6 students x 2 fps (about 40 min)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Full-load drills take most of an hour on two cores: `make test` leaves them out, `make test-faults` and the
    reliability report run them."""
    if config.getoption("--full-load"):
        return
    skip = pytest.mark.skip(reason="a full-load drill: run with --full-load (make test-faults)")
    for item in items:
        if "full_load" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def public_test_split():
    """FER2013's PublicTest faces ([N, 48, 48] uint8) and their labels ([N]), which the generated frames of the faces
    bench are drawn from; a test that needs them is skipped where the data set is absent."""
    from classpulse_demo.fer_csv import FerCsvNotFoundError, resolve_fer_csv
    from classpulse_training.fer_csv import load_fer_csv

    try:
        csv_path = resolve_fer_csv(None)
    except FerCsvNotFoundError as exc:
        pytest.skip(f"FER2013 is needed to draw the generated frames: {exc}")
    data = load_fer_csv(csv_path).split("PublicTest")
    return data.images[..., 0], data.labels


@pytest.fixture(scope="session")
def public_test_faces(public_test_split):
    """FER2013's PublicTest faces alone ([N, 48, 48] uint8)."""
    return public_test_split[0]
