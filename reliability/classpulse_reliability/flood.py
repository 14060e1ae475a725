"""`python -m classpulse_reliability flood`: ingest's memory while 200 uploads at once hit it, decompression bombs and
valid frames of the largest size it accepts, round after round.

The ingest service runs as deployed (`python -m classpulse_ingest serve`, its default settings) against the
devstack's Kafka and Redis (the CLASSPULSE_DEVSTACK_* variables choose them, as for the tests). Every upload has a
student token of its own and the class's quota is lifted: a token's own rate would otherwise refuse most of them
before a byte is read, which is its point but not what is measured here; what is left is the upload slots and the
header checks. Resident memory is sampled every 20 ms (/proc/<pid>/status VmRSS), and its peak (VmHWM) read at the
end, against the 512 MiB limit of ingest's container in Kubernetes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np

from classpulse_core.settings import RedisSettings
from classpulse_devstack.config import DevstackConfig
from classpulse_devstack.stack import Stack
from classpulse_reliability import sections
from classpulse_store.redis_clients import async_redis_client
from classpulse_store.registry import ClassRecord, class_key
from classpulse_web.auth import Role
from classpulse_web.keystore import KeyStore

K8S_LIMIT_BYTES = 512 * 1024 * 1024
SECTION = "upload-flood"
"""The flood's section of the reliability report, kept when the fault drills rewrite the rest of it."""


def png_bomb(width: int, height: int) -> bytes:
    """A valid grey PNG of width x height pixels, all zeros: 5000x5000 compresses to 24 KB and decodes to 25 MP."""
    row = b"\x00" + bytes(width)  # filter byte, then a row of zeros
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def upload_mix() -> list[tuple[str, bytes, str]]:
    """One round of 200: half bombs, a quarter noisy 1080p JPEGs (the largest file and decode), a quarter flat 1080p
    PNGs (the most pixels a small file may decode to)."""
    noise = np.random.default_rng(7).integers(0, 255, (1080, 1920, 3), np.uint8)
    kinds = [
        ("bomb 5000x5000 PNG", png_bomb(5000, 5000), "image/png"),
        ("noise 1920x1080 JPEG", cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes(), "image/jpeg"),
        ("flat 1920x1080 PNG", png_bomb(1920, 1080), "image/png"),
    ]
    return [kinds[0]] * 100 + [kinds[1]] * 50 + [kinds[2]] * 50


@dataclass
class FloodResult:
    rounds: int
    uploads: int
    seconds: float
    rss_before: int
    rss_peak_sampled: int
    hwm: int
    statuses: dict[str, collections.Counter]
    sizes: dict[str, int]


def _memory(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _flood(url: str, redis_url: str, rounds: int, pid: int) -> FloodResult:
    class_id = f"flood-{uuid.uuid4().hex[:8]}"
    client = async_redis_client(RedisSettings(redis_url=redis_url), decode_responses=True)
    record = ClassRecord(class_id=class_id, teacher=None, created_at_ms=int(time.time() * 1000))
    await client.hset(class_key(class_id), mapping=record.to_hash())
    mix = upload_mix()
    keys = KeyStore(client)
    tokens = [(await keys.create(Role.STUDENT, "flood", class_id=class_id, ttl_s=3600))[1] for _ in mix]
    statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _memory(pid, "VmRSS"))
            time.sleep(0.02)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=len(mix))) as http:

        async def post(token: str, name: str, body: bytes, content_type: str) -> None:
            response = await http.post(
                f"/v1/classes/{class_id}/frames", content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
            )
            statuses[name][response.status_code] += 1

        await post(tokens[-1], "warm-up", mix[-1][1], mix[-1][2])  # lazy imports and pools made before measuring
        rss_before = _memory(pid, "VmRSS")
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        for _ in range(rounds):
            await asyncio.gather(*(post(token, *upload) for token, upload in zip(tokens, mix, strict=True)))
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
    await client.aclose()
    sizes = {name: len(body) for name, body, _ in mix}
    return FloodResult(rounds, rounds * len(mix), seconds, rss_before, peak[0], _memory(pid, "VmHWM"), statuses, sizes)


def run(rounds: int) -> FloodResult:
    config = DevstackConfig.from_env()
    stack = Stack(config)
    servers = stack.select("kafka,redis")
    started = stack.up(servers)  # reused when they already run, and then left running
    redis_url = f"redis://127.0.0.1:{config.redis_port}/0"
    port = _free_port()
    env = {
        **os.environ,
        "CLASSPULSE_HTTP_PORT": str(port),
        "CLASSPULSE_KAFKA_BOOTSTRAP_SERVERS": config.kafka_bootstrap,
        "CLASSPULSE_REDIS_URL": redis_url,
        "CLASSPULSE_CLASS_MAX_FPS": "100000",
        "CLASSPULSE_CLASS_BURST": "100000",
        "CLASSPULSE_LOG_LEVEL": "WARNING",
    }
    ingest = subprocess.Popen([sys.executable, "-m", "classpulse_ingest", "serve"], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{url}/readyz"):
            if time.monotonic() > deadline or ingest.poll() is not None:
                raise RuntimeError("ingest did not become ready within 60 s")
            time.sleep(0.5)
        return asyncio.run(_flood(url, redis_url, rounds, ingest.pid))
    finally:
        ingest.terminate()
        ingest.wait(30)
        stack.down([server for server in servers if server.name in started])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def markdown(result: FloodResult, command: str) -> str:
    mib = 1024 * 1024
    rows = [
        f"| {name} | {result.sizes.get(name, 0) / 1024:,.0f} KB | "
        + ", ".join(f"{count} x {status}" for status, count in sorted(counts.items()))
        + " |"
        for name, counts in result.statuses.items()
        if name != "warm-up"
    ]
    verdict = "within" if result.hwm <= K8S_LIMIT_BYTES else "OVER"
    return sections.wrap(
        SECTION,
        [
            "## Upload flood: ingest's memory",
            "",
            f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `{command}`: the ingest service with its",
            f"default settings, {result.rounds} rounds of 200 uploads at once (one student token each, the class quota",
            "lifted), half of them decompression bombs.",
            "",
            "| upload | size | answers |",
            "|---|---|---|",
            *rows,
            "",
            f"Resident memory of the ingest process: **{result.rss_before / mib:.0f} MiB** before, **peak"
            f" {result.rss_peak_sampled / mib:.0f} MiB** sampled during the flood, high-water mark (VmHWM)"
            f" **{result.hwm / mib:.0f} MiB**: {verdict} the 512 MiB limit of its container. {result.uploads}"
            f" uploads in {result.seconds:.1f} s. Bombs are refused from their header (413) without a pixel"
            " decoded; valid frames are read and decoded only inside one of `CLASSPULSE_UPLOAD_MAX_CONCURRENT`"
            " slots, the others wait for one (503 with `Retry-After` past `CLASSPULSE_UPLOAD_SLOT_WAIT_S`).",
        ],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("docs/reliability-report.md"))
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 200 uploads at once")


def main(args: argparse.Namespace) -> int:
    result = run(args.rounds)
    section = markdown(result, f"python -m classpulse_reliability flood --rounds {args.rounds}")
    sections.write_section(args.out, SECTION, section)
    print(section)
    return 0 if result.hwm <= K8S_LIMIT_BYTES else 1
