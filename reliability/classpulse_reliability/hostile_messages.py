"""Malformed messages for each pipeline topic: what a broken or hostile producer could put on it.

Every case is something the consuming stage must refuse (dead-letter) without crashing or stalling its partition:
random bytes, truncated msgpack, a payload near the broker's size limit, wrong types, missing fields, an unknown
schema or version, impossible values, and for frames the cases only the detector can see (not a JPEG, a size that
lies, a class nobody registered).
"""

from __future__ import annotations

import random
import time

import msgpack

from classpulse_core.schemas import CROP_BYTES, DetectedFaces, Frame, FrameResult, Message

BROKER_MAX_MESSAGE_BYTES = 1_048_588
"""Kafka's default message.max.bytes (the devstack does not change it)."""
HUGE_BYTES = BROKER_MAX_MESSAGE_BYTES - 400
"""As large as the broker takes: the dead letter that wraps it (reason, origin, key) is larger than that."""

Case = tuple[str, bytes]


def _pack(body: dict) -> bytes:
    return msgpack.packb(body, use_bin_type=True)


def _body(message: Message) -> dict:
    return msgpack.unpackb(message.encode(), raw=False)


def _mutations(valid: Message, impossible: dict[str, object]) -> list[Case]:
    """Schema-level breakage of one valid message."""
    body = _body(valid)
    encoded = valid.encode()
    rng = random.Random(len(encoded))
    required = [name for name in ("class_id", "source_id", "frame_id", "sequence", "captured_at_ms") if name in body]
    cases: list[Case] = [
        ("random bytes", rng.randbytes(64)),
        ("empty", b""),
        ("truncated msgpack", encoded[: len(encoded) // 2]),
        ("msgpack, not a map", _pack([1, 2, 3])),
        ("huge payload", _pack({**body, "padding": rng.randbytes(HUGE_BYTES - len(encoded))})),
        ("wrong schema version", _pack({**body, "v": valid.VERSION + 1})),
        ("unknown schema", _pack({**body, "schema": "classpulse.something_else"})),
        ("no schema at all", _pack({k: v for k, v in body.items() if k not in ("schema", "v")})),
        ("wrong types", _pack({**body, "class_id": 123, "sequence": "seven"})),
        ("unsafe class id", _pack({**body, "class_id": "../../etc/passwd"})),
        ("unexpected field", _pack({**body, "extra": 1})),
    ]
    cases += [(f"missing {name}", _pack({k: v for k, v in body.items() if k != name})) for name in required]
    cases += [(f"impossible {name}", _pack({**body, name: value})) for name, value in impossible.items()]
    return cases


def identity(class_id: str, sequence: int) -> dict[str, object]:
    return {
        "class_id": class_id,
        "source_id": "hostile",
        "frame_id": f"hostile:{sequence}",
        "sequence": sequence,
        # Now: the aggregator refuses capture times outside the window it keeps (classpulse_core.capture).
        "captured_at_ms": int(time.time() * 1000) + sequence * 250,
    }


def frame_cases(class_id: str, unregistered_class: str, jpeg: bytes, width: int, height: int) -> list[Case]:
    valid = Frame(**identity(class_id, 0), published_at_ms=1, width=width, height=height, jpeg=jpeg)
    cases = _mutations(valid, {"sequence": -1, "width": 0, "height": 100_000, "captured_at_ms": -5, "jpeg": b""})
    cases += [
        ("not a JPEG", valid.model_copy(update={"jpeg": b"\x00" * 4096}).encode()),
        ("JPEG cut short", valid.model_copy(update={"jpeg": jpeg[:200]}).encode()),
        ("size that lies", valid.model_copy(update={"width": width + 1}).encode()),
        ("unregistered class", valid.model_copy(update={"class_id": unregistered_class}).encode()),
    ]
    return cases


def faces_cases(class_id: str) -> list[Case]:
    valid = DetectedFaces(
        **identity(class_id, 0), detected_at_ms=1, frame_width=640, frame_height=480, boxes=[[1, 2, 48, 48]],
        crops=bytes(CROP_BYTES),
    )
    return _mutations(
        valid,
        {"crops": bytes(CROP_BYTES - 1), "boxes": [[1, 2, 3]], "frame_width": -640, "sequence": 1 << 60},
    )


def predictions_cases(class_id: str) -> list[Case]:
    valid = FrameResult(**identity(class_id, 0), completed_at_ms=1, boxes=[[1, 2, 48, 48]], probabilities=[[1 / 7] * 7])
    return _mutations(
        valid,
        {
            "probabilities": [[1.5, 0, 0, 0, 0, 0, 0]],
            "boxes": [[-1, 2, 48, 48]],
            "completed_at_ms": "yesterday",
        },
    ) + [
        ("NaN probability", valid.model_copy(update={"probabilities": [[float("nan")] * 7]}).encode()),
        ("probabilities summing to 7", _pack({**_body(valid), "probabilities": [[1.0] * 7]})),
        ("more faces than probabilities", _pack({**_body(valid), "boxes": [[1, 2, 48, 48]] * 2})),
    ]


def valid_frame(class_id: str, sequence: int, jpeg: bytes, width: int, height: int) -> Frame:
    return Frame(**identity(class_id, sequence), published_at_ms=1, width=width, height=height, jpeg=jpeg)


def valid_faces(class_id: str, sequence: int) -> DetectedFaces:
    return DetectedFaces(
        **identity(class_id, sequence), detected_at_ms=1, frame_width=640, frame_height=480, boxes=[[1, 2, 48, 48]],
        crops=bytes(range(256)) * 9,
    )


def valid_result(class_id: str, sequence: int) -> FrameResult:
    return FrameResult(**identity(class_id, sequence), completed_at_ms=1, boxes=[[1, 2, 48, 48]], probabilities=[[1 / 7] * 7])
