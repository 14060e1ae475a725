"""Message schemas of the pipeline, defined once and versioned.

Every message is a msgpack map carrying `schema` (its name) and `v` (its version) beside its fields: compact binary
(JPEG bytes and crops travel as msgpack bin, never base64) that any language can read. Every message carries the
class id, the frame id and timestamps, so results can be traced back to their frame and deduplicated.

A consumer that meets a schema name or version it does not know rejects the message with `SchemaError`; the stage
sends it to the dead-letter topic instead of guessing. A consumer reads every version from `OLDEST_VERSION` on (the
fields a newer version added take their defaults), so producers and consumers can be upgraded in any order.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

import msgpack
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from classpulse_core.labels import EMOTIONS

CROP_SIDE = 48
CROP_BYTES = CROP_SIDE * CROP_SIDE
MAX_FRAME_BYTES = 8 * 1024 * 1024
MAX_FRAME_SIDE = 8192
"""Pixels a frame's side may have: the detector refuses a larger image before decoding it."""
MAX_FACES = 256
"""Faces one message carries: their crops (~590 KB) fit Kafka's default message.max.bytes (1 MiB, the local stack's)
with room to spare. A frame may show more (a lecture hall, a large gallery): the detector sends its MAX_FACES
largest and the number of the others (`faces_beyond`, v4), which count present with no box, pose or emotion."""

ClassId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
"""Class ids appear in Redis keys and URLs, so they are restricted to a safe alphabet."""
EpochMs = Annotated[int, Field(ge=0, lt=1 << 53)]
Box = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=4, max_length=4)]
"""x, y, width, height of a face in its frame, in pixels."""
CameraKind = Literal["personal", "room", "gallery"]
"""What a source's camera shows: "personal", one student's own camera (a webcam at home, the student page): it shows
that student or nobody; "room", a camera on several people in one place (a classroom): every face is a student;
"gallery", a video call's gallery or a screen share of students' tiles (one source, many students' own webcams):
every face is a student, as in a room, but its faces are tiles of known kind, which the detector reads with a finder
of their own (classpulse_detector.settings). Set when a source or token is made (student tokens: personal; every
other source: room, unless told), never guessed from a frame: presence counts a personal source as one student at
most (indices.py). "gallery" came after v2 without a new version (a v2 room or personal frame is unchanged): a
consumer that predates it dead-letters a gallery message with the reason (camera_kind), to be replayed once
upgraded."""


Facing = Annotated[list[bool | None] | None, Field(max_length=MAX_FACES)]
"""Per face (in the order of `boxes`): whether its head faces its camera (within the head-pose cone of
classpulse_detector.headpose), or None where the detector gave no landmarks to tell (Haar). None for the whole list:
a message from before v3, which knew no head pose (read as no face with a pose)."""
FacesBeyond = Annotated[int, Field(ge=0, lt=1 << 20, description="faces found beyond the boxes carried (v4)")]
"""Faces the detector found in a frame beyond the MAX_FACES largest it carries (v4; 0 in every earlier message)."""


class SchemaError(ValueError):
    """A message that cannot be decoded into the schema it claims (or claims no schema this code knows)."""


class VersionedMessage(BaseModel):
    """A message with a schema name and version on the wire, and its encode/decode."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    SCHEMA: ClassVar[str]
    VERSION: ClassVar[int]
    OLDEST_VERSION: ClassVar[int | None] = None
    """The oldest version this code still reads (None: only VERSION)."""
    SENT_ONLY_WHEN_SET: ClassVar[frozenset[str]] = frozenset()
    """Fields VERSION added that a message carries only when one differs from its default: without them it goes as
    VERSION - 1, which a consumer not yet upgraded reads, so a rolling upgrade dead-letters only the messages that
    need the new version (the rare ones, by the choice of what goes here)."""

    def encode(self) -> bytes:
        body = self.model_dump(mode="python")
        version = self.VERSION
        if self.SENT_ONLY_WHEN_SET and all(
            body[name] == type(self).model_fields[name].default for name in self.SENT_ONLY_WHEN_SET
        ):
            version -= 1
            for name in self.SENT_ONLY_WHEN_SET:
                del body[name]
        packed: bytes = msgpack.packb({"schema": self.SCHEMA, "v": version, **body}, use_bin_type=True)
        return packed

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        try:
            body = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises several unrelated types for corrupt input
            raise SchemaError(f"not a msgpack message: {exc}") from exc
        if not isinstance(body, dict):
            raise SchemaError(f"expected a map, got {type(body).__name__}")
        schema, version = body.pop("schema", None), body.pop("v", None)
        oldest = cls.OLDEST_VERSION or cls.VERSION
        if schema != cls.SCHEMA or not isinstance(version, int) or not oldest <= version <= cls.VERSION:
            versions = f"v{cls.VERSION}" if oldest == cls.VERSION else f"v{oldest}..v{cls.VERSION}"
            raise SchemaError(f"expected {cls.SCHEMA} {versions}, got {schema!r} v{version!r}")
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise SchemaError(f"invalid {cls.SCHEMA} v{cls.VERSION}: {exc.errors(include_url=False)}") from exc


class Message(VersionedMessage):
    """Base of every pipeline message: the identity of the frame it is about."""

    class_id: ClassId
    session_id: str | None = Field(None, max_length=128)
    source_id: str = Field(min_length=1, max_length=128)
    frame_id: str = Field(min_length=1, max_length=200, description="unique per frame: '<source_id>:<sequence>'")
    sequence: int = Field(ge=0, lt=1 << 53, description="the frame's number within its source")
    captured_at_ms: EpochMs
    camera_kind: CameraKind = Field(
        "room", description="what the source's camera shows (v2; gallery later in v2; v1 messages: room)"
    )

    IDENTITY: ClassVar[frozenset[str]] = frozenset(
        {"class_id", "session_id", "source_id", "frame_id", "sequence", "captured_at_ms", "camera_kind"}
    )

    def identity(self) -> dict[str, object]:
        """The fields that say which frame this message is about, to carry into a message derived from it."""
        return self.model_dump(include=set(self.IDENTITY))

    @property
    def key(self) -> bytes:
        """Kafka key: all messages of a class land in one partition, in order."""
        return self.class_id.encode()


class Frame(Message):
    """A JPEG-encoded video frame of a class, published by ingest."""

    SCHEMA: ClassVar[str] = "classpulse.frame"
    VERSION: ClassVar[int] = 2
    OLDEST_VERSION: ClassVar[int | None] = 1

    published_at_ms: EpochMs
    width: int = Field(gt=0, le=MAX_FRAME_SIDE)
    height: int = Field(gt=0, le=MAX_FRAME_SIDE)
    jpeg: bytes = Field(min_length=4, max_length=MAX_FRAME_BYTES)


class DetectedFaces(Message):
    """The faces the detector found in one frame, as 48x48 grayscale crops, on their way to the classifier."""

    SCHEMA: ClassVar[str] = "classpulse.faces"
    VERSION: ClassVar[int] = 4
    OLDEST_VERSION: ClassVar[int | None] = 1
    SENT_ONLY_WHEN_SET: ClassVar[frozenset[str]] = frozenset({"faces_beyond"})

    detected_at_ms: EpochMs
    frame_width: int = Field(gt=0)
    frame_height: int = Field(gt=0)
    boxes: list[Box] = Field(max_length=MAX_FACES)
    crops: bytes = Field(description="len(boxes) crops of 48x48 uint8, row-major, concatenated")
    facing: Facing = Field(None, description="per face: facing its camera, or null without a head pose (v3)")
    faces_beyond: FacesBeyond = 0

    @model_validator(mode="after")
    def _crops_match_boxes(self) -> Self:
        if len(self.crops) != len(self.boxes) * CROP_BYTES:
            raise ValueError(f"{len(self.boxes)} boxes need {len(self.boxes) * CROP_BYTES} crop bytes, got {len(self.crops)}")
        _check_facing(self.facing, self.boxes)
        return self

    def crop_array(self) -> np.ndarray:
        """The crops as a uint8 array of shape [faces, 48, 48, 1], without copying."""
        return np.frombuffer(self.crops, dtype=np.uint8).reshape(len(self.boxes), CROP_SIDE, CROP_SIDE, 1)


Probabilities = Annotated[list[Annotated[float, Field(ge=0.0, le=1.0)]], Field(min_length=len(EMOTIONS), max_length=len(EMOTIONS))]
PROBABILITY_SUM_TOLERANCE = 0.02
"""How far a face's seven probabilities may sum from 1 (a softmax computed in bfloat16 rounds each to 3 digits): a
vector of scores or logits would count one face as several in the class's shares."""


class FrameResult(Message):
    """What the pipeline concluded about one frame: where the faces are and, when emotions are on, their emotions.

    `probabilities` is None in presence-only mode: then no emotion was inferred for this frame at all.
    """

    SCHEMA: ClassVar[str] = "classpulse.frame_result"
    VERSION: ClassVar[int] = 4
    OLDEST_VERSION: ClassVar[int | None] = 1
    SENT_ONLY_WHEN_SET: ClassVar[frozenset[str]] = frozenset({"faces_beyond"})

    completed_at_ms: EpochMs
    boxes: list[Box] = Field(max_length=MAX_FACES)
    probabilities: list[Probabilities] | None = None
    model_version: str | None = None
    facing: Facing = Field(None, description="per face: facing its camera, or null without a head pose (v3)")
    faces_beyond: FacesBeyond = 0

    @model_validator(mode="after")
    def _one_probability_vector_per_face(self) -> Self:
        if self.probabilities is not None and len(self.probabilities) != len(self.boxes):
            raise ValueError(f"{len(self.boxes)} faces but {len(self.probabilities)} probability vectors")
        for face, vector in enumerate(self.probabilities or []):
            if abs(sum(vector) - 1) > PROBABILITY_SUM_TOLERANCE:
                raise ValueError(f"face {face}'s probabilities sum to {sum(vector):.4g}, not 1")
        _check_facing(self.facing, self.boxes)
        return self

    @property
    def emotion_enabled(self) -> bool:
        return self.probabilities is not None


def _check_facing(facing: list[bool | None] | None, boxes: list[Box]) -> None:
    if facing is not None and len(facing) != len(boxes):
        raise ValueError(f"{len(boxes)} faces but {len(facing)} facing flags")


class DeadLetter(VersionedMessage):
    """A message a stage could not process, with why and where it came from; the original bytes are kept."""

    SCHEMA: ClassVar[str] = "classpulse.dead_letter"
    VERSION: ClassVar[int] = 1

    stage: str
    reason: str
    origin_topic: str
    origin_partition: int
    origin_offset: int
    failed_at_ms: EpochMs
    key: bytes | None
    value: bytes | None
