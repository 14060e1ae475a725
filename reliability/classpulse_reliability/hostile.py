"""`python -m classpulse_reliability hostile`: the hostile inputs of issue 21 against a running stack (an isolated
one, every service as deployed), each a number of times, with what came back: 4xx answers, dead letters, a stalled
stage. Every input must get its expected outcome, with no 5xx and no process exiting or restarting.

- token source-id spray: one student token posts frames, a new `X-Source-Id` on each: its rate is its own (429);
- decompression bombs: 5000x5000 PNGs of 24 KB, each with a student token of its own: refused from the header (413);
- metadata-URL sources: stream sources at cloud metadata, link-local, private and internal addresses, FFmpeg protocol
  tricks and relative files, with the admin key: refused (4xx), never started;
- oversize JPEG headers: a frame whose JPEG header declares 65,000 x 65,000 pixels, uploaded (413) and put straight
  on the frames topic (a dead letter from the detector, which reads the header before decoding);
- bodies over the limit before authentication: 16 MiB posted without a key to ingest and to the API (413);
- a contract-breaking model: a classifier asking for a signature the model server does not serve, while frames flow:
  it stalls (not ready, `classpulse_stage_stalled` 1) and dead-letters nothing; once fixed, every frame is counted;
- poison messages: every malformed message of `hostile_messages` on each pipeline topic: one dead letter each.

    python -m classpulse_reliability hostile --count 60
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import struct
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from classpulse_core.schemas import DeadLetter
from classpulse_core.settings import KafkaSettings
from classpulse_core.timeseries import FRAMES
from classpulse_reliability import sections
from classpulse_reliability.drills import ONE_CLASS
from classpulse_reliability.flood import png_bomb
from classpulse_reliability.hostile_messages import faces_cases, frame_cases, predictions_cases, valid_frame
from classpulse_reliability.isolated import COMPONENTS, IsolatedStack, running_isolated_stack
from classpulse_reliability.scrape import scrape, total
from classpulse_reliability.workload import Workload, class_totals, end_offsets, read_topic, register_class
from classpulse_stream.kafka import make_producer

log = logging.getLogger(__name__)

SECTION = "hostile-inputs"
OVER_LIMIT_BYTES = 16 * 1024 * 1024
DECLARED_SIDE = 65_000
WAIT_S = 120.0
STALL_S = 15.0
"""How long the broken classifier runs with frames waiting: several contract checks and retries."""
HOSTILE_SOURCES = (
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.1/stream.mjpg",
    "rtsp://admin:secret@169.254.169.254:554/live",
    "file:videos/lesson.mp4",
    "videos/../../etc/passwd",
    "concat:/etc/passwd|/etc/hosts",
    "subfile,,start,0,end,0,,:/etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
)


@dataclass
class Outcome:
    name: str
    expected: str
    count: int = 0
    seen: collections.Counter = field(default_factory=collections.Counter)
    """What came back, by kind: an HTTP status ("413") or "dead letter"."""
    notes: list[str] = field(default_factory=list)
    """What a count does not say (a stage's readiness, its alert)."""
    server_errors: int = 0
    ok: bool = False

    def answered(self, response: httpx.Response) -> None:
        self.count += 1
        self.seen[str(response.status_code)] += 1
        self.server_errors += response.status_code >= 500

    def ok_if(self, condition: bool) -> None:
        self.ok = condition and self.server_errors == 0


@dataclass
class HostileRun:
    outcomes: list[Outcome]
    crashed: list[str]
    """Processes that exited or were replaced during the run (but the classifier the contract case restarts)."""

    @property
    def passed(self) -> bool:
        return not self.crashed and all(outcome.ok for outcome in self.outcomes)


def oversize_jpeg(jpeg: bytes, side: int = DECLARED_SIDE) -> bytes:
    """The JPEG with its frame header (SOF0) declaring side x side pixels; the data behind it is unchanged."""
    at = jpeg.index(b"\xff\xc0")
    return jpeg[: at + 5] + struct.pack(">HH", side, side) + jpeg[at + 9 :]


class Hostile:
    """The hostile inputs against one stack, each `count` times where a count makes sense."""

    def __init__(self, stack: IsolatedStack, count: int) -> None:
        self.stack = stack
        self.count = count
        self.admin = {"Authorization": f"Bearer {stack.admin_key()}"}
        self.ingest = stack.url("ingest")
        self.workload = Workload.load(ONE_CLASS.workload())
        self.class_id = f"hostile-{uuid.uuid4().hex[:8]}"
        register_class(stack.url("api"), stack.admin_key(), self.class_id, 6)
        self.http = httpx.Client(timeout=60)

    def student_token(self) -> str:
        response = self.http.post(f"{self.ingest}/v1/classes/{self.class_id}/student-tokens", headers=self.admin)
        response.raise_for_status()
        return response.json()["api_key"]

    def post_frame(self, body: bytes, headers: dict[str, str], content_type: str = "image/jpeg") -> httpx.Response:
        return self.http.post(
            f"{self.ingest}/v1/classes/{self.class_id}/frames", content=body, headers={"Content-Type": content_type, **headers}
        )

    # --- the inputs --------------------------------------------------------------------------------------------

    def source_id_spray(self) -> Outcome:
        outcome = Outcome("one student token, a new X-Source-Id per frame", "the token's own rate: 429 past it")
        auth = {"Authorization": f"Bearer {self.student_token()}"}
        for _ in range(self.count):
            outcome.answered(self.post_frame(self.workload.jpegs[0], {**auth, "X-Source-Id": f"spray-{uuid.uuid4().hex}"}))
        outcome.ok_if(outcome.seen["429"] > 0 and set(outcome.seen) <= {"202", "429"})
        return outcome

    def decompression_bombs(self) -> Outcome:
        outcome = Outcome("decompression bomb, 5000x5000 PNG of 24 KB, a student token each", "413 from the header")
        bomb = png_bomb(5000, 5000)
        for _ in range(self.count):
            outcome.answered(self.post_frame(bomb, {"Authorization": f"Bearer {self.student_token()}"}, "image/png"))
        outcome.ok_if(outcome.seen["413"] == outcome.count)
        return outcome

    def metadata_sources(self) -> Outcome:
        outcome = Outcome(f"stream source at a metadata/internal address or FFmpeg trick ({len(HOSTILE_SOURCES)} kinds), admin key", "4xx, never started")
        url = f"{self.ingest}/v1/classes/{self.class_id}/sources"
        for index in range(self.count):
            response = self.http.post(url, json={"url": HOSTILE_SOURCES[index % len(HOSTILE_SOURCES)]}, headers=self.admin)
            outcome.answered(response)
        started = self.http.get(f"{self.ingest}/v1/sources", headers=self.admin).json()
        outcome.ok_if(all(400 <= int(status) < 500 for status in outcome.seen) and not started)
        return outcome

    def oversize_header_uploads(self) -> Outcome:
        outcome = Outcome(f"JPEG declaring {DECLARED_SIDE:,} x {DECLARED_SIDE:,} px, uploaded", "413 from the header")
        body = oversize_jpeg(self.workload.jpegs[0])
        for _ in range(self.count):
            outcome.answered(self.post_frame(body, {"Authorization": f"Bearer {self.student_token()}"}))
        outcome.ok_if(outcome.seen["413"] == outcome.count)
        return outcome

    def oversize_header_frames(self) -> Outcome:
        outcome = Outcome(f"JPEG declaring {DECLARED_SIDE:,} x {DECLARED_SIDE:,} px, on the frames topic", "a dead letter each")
        jpeg = oversize_jpeg(self.workload.jpegs[0])
        frames = [
            valid_frame(self.class_id, 1000 + n, jpeg, self.workload.width, self.workload.height).encode() for n in range(self.count)
        ]
        outcome.count = len(frames)
        outcome.seen.update(self._dead_letters("classpulse.frames", frames))
        outcome.ok_if(outcome.seen["dead letter"] == outcome.count)
        return outcome

    def bodies_before_auth(self) -> Outcome:
        outcome = Outcome("16 MiB body without a key, to ingest and to the API", "413 before authentication")
        for index in range(self.count):
            service = ("ingest", "api")[index % 2]
            response = self.http.post(f"{self.stack.url(service)}/v1/classes/{self.class_id}/frames", content=bytes(OVER_LIMIT_BYTES))
            outcome.answered(response)
        outcome.ok_if(outcome.seen["413"] == outcome.count)
        return outcome

    def poison_messages(self) -> Outcome:
        jpeg, size = self.workload.jpegs[0], (self.workload.width, self.workload.height)
        by_topic = {
            "classpulse.frames": frame_cases(self.class_id, f"nobody-{uuid.uuid4().hex[:6]}", jpeg, *size),
            "classpulse.faces": faces_cases(self.class_id),
            "classpulse.predictions": predictions_cases(self.class_id),
        }
        kinds = sum(len(cases) for cases in by_topic.values())
        outcome = Outcome(f"poison message ({kinds} kinds over the three pipeline topics)", "a dead letter each")
        for topic, cases in by_topic.items():
            values = [value for _label, value in cases]
            outcome.count += len(values)
            outcome.seen.update(self._dead_letters(topic, values))
        outcome.ok_if(outcome.seen["dead letter"] == outcome.count)
        return outcome

    def contract_breaking_model(self) -> Outcome:
        """The classifier restarted with a signature the model server lacks, frames published meanwhile, then the
        classifier as configured again."""
        outcome = Outcome("classifier asking for a signature the model does not serve, frames flowing", "stalls: not ready, no dead letter; all counted once fixed")
        class_id = f"contract-{uuid.uuid4().hex[:8]}"
        register_class(self.stack.url("api"), self.stack.admin_key(), class_id, 6)
        letters_before = end_offsets(self.stack.kafka_bootstrap, "classpulse.faces.dlq")
        classifier = self.stack.component("classifier")
        self.stack.stop("classifier")
        env = {**os.environ, **classifier.env, "CLASSPULSE_MODEL_SIGNATURE": "not_the_models_signature"}
        broken = subprocess.Popen(classifier.command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            frames = [
                valid_frame(class_id, n, self.workload.jpegs[n % len(self.workload.jpegs)], self.workload.width, self.workload.height)
                for n in range(self.count)
            ]
            self._publish("classpulse.frames", [frame.encode() for frame in frames], class_id.encode())
            outcome.count = len(frames)
            time.sleep(STALL_S)
            ready = _status(f"{classifier.address}/readyz")
            stalled = total(scrape(classifier.address), "classpulse_stage_stalled")
            exited = broken.poll() is not None
        finally:
            broken.terminate()
            broken.wait(30)
        self.stack.start("classifier")
        outcome.notes += ["not ready (503)" if ready == 503 else f"readyz {ready}"]
        outcome.notes += ["stalled (classpulse_stage_stalled 1)" if stalled == 1 else "no stall alert"]
        letters = [
            DeadLetter.decode(record.value)
            for record in read_topic(self.stack.kafka_bootstrap, "classpulse.faces.dlq", letters_before)
            if record.key == class_id.encode()
        ]
        outcome.notes.append(f"{len(letters)} dead letters")
        counted = _wait_for(lambda: class_totals(self.stack.redis(), class_id)[FRAMES] >= len(frames))
        outcome.notes.append(f"{round(class_totals(self.stack.redis(), class_id)[FRAMES])} of {len(frames)} frames counted after the fix")
        outcome.ok_if(ready == 503 and stalled == 1 and not letters and counted and not exited)
        return outcome

    # --- helpers -----------------------------------------------------------------------------------------------

    def _publish(self, topic: str, values: list[bytes], key: bytes | None = None) -> list[tuple[int, int]]:
        producer = make_producer(KafkaSettings(bootstrap_servers=self.stack.kafka_bootstrap), "hostile")
        sends = [producer.send(topic, key=key or self.class_id.encode(), value=value) for value in values]
        producer.flush(timeout=30)
        producer.close()
        return [(meta.partition, meta.offset) for meta in (send.get() for send in sends)]

    def _dead_letters(self, topic: str, values: list[bytes]) -> collections.Counter:
        """Put `values` on `topic`; count the dead letters that come back for them (the rest: "no dead letter")."""
        before = end_offsets(self.stack.kafka_bootstrap, f"{topic}.dlq")
        origins = set(self._publish(topic, values))
        found: set[tuple[int, int]] = set()

        def all_back() -> bool:
            for record in read_topic(self.stack.kafka_bootstrap, f"{topic}.dlq", before):
                letter = DeadLetter.decode(record.value)
                if letter.origin_topic == topic:
                    found.add((letter.origin_partition, letter.origin_offset))
            return origins <= found

        _wait_for(all_back)
        return collections.Counter({"dead letter": len(origins & found), "no dead letter": len(origins - found)})


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def _wait_for(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)
    return True


def run_hostile(stack: IsolatedStack, count: int) -> HostileRun:
    hostile = Hostile(stack, count)
    pids = {name: stack.pid(name) for name in COMPONENTS}
    outcomes = [
        hostile.source_id_spray(),
        hostile.decompression_bombs(),
        hostile.metadata_sources(),
        hostile.oversize_header_uploads(),
        hostile.oversize_header_frames(),
        hostile.bodies_before_auth(),
        hostile.poison_messages(),
        hostile.contract_breaking_model(),  # last: it restarts the classifier
    ]
    hostile.http.close()
    crashed = [
        name for name in COMPONENTS
        if name != "classifier" and (stack.stack.process(stack.component(name)) is None or stack.pid(name) != pids[name])
    ]
    return HostileRun(outcomes, crashed)


def markdown(run: HostileRun, command: str) -> str:
    rows = [
        f"| {o.name} | {o.count} | {', '.join([f'{n} x {kind}' for kind, n in sorted(o.seen.items()) if n] + o.notes)} | {o.expected} "
        f"| {o.server_errors} | {'as expected' if o.ok else 'NOT AS EXPECTED'} |"
        for o in run.outcomes
    ]
    return sections.wrap(
        SECTION,
        [
            "## Hostile inputs",
            "",
            f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `{command}` against an isolated stack",
            "(every service as deployed, its own Kafka, Redis and model server).",
            "",
            "| input | count | outcome | expected | 5xx | result |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Crashes: **{len(run.crashed)}** ({', '.join(run.crashed) if run.crashed else 'every process kept its pid'}; the"
            " classifier is restarted on purpose by the contract case). 5xx answers: "
            f"**{sum(o.server_errors for o in run.outcomes)}**.",
        ],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, default=60, help="how many times each input is sent")
    parser.add_argument("--out", type=Path, default=Path("docs/reliability-report.md"))


def main(args: argparse.Namespace) -> int:
    with running_isolated_stack(args.offset) as stack:
        run = run_hostile(stack, args.count)
    section = markdown(run, f"python -m classpulse_reliability hostile --count {args.count}")
    sections.write_section(args.out, SECTION, section)
    print(section)
    return 0 if run.passed else 1
