"""Checking an image before it is decoded: what it really is, how many pixels it claims, whether it is whole.

Browsers and cameras send JPEG and PNG. Pillow reads the header alone (`Image.open` is lazy, and is allowed only its
JPEG and PNG parsers), so a small file that would decompress into gigabytes (a decompression bomb) is refused by the
pixels it declares before any pixel is decoded; a JPEG or PNG cut short is refused instead of being published half
grey. The image decoded is the one whose header was checked: the same parser does both.
"""

from __future__ import annotations

import dataclasses
import io
from enum import StrEnum

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from python_multipart.multipart import MultipartParser, parse_options_header


class ImageType(StrEnum):
    JPEG = "image/jpeg"
    PNG = "image/png"


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PILLOW_FORMAT = {ImageType.JPEG: "JPEG", ImageType.PNG: "PNG"}


class ImageRejected(ValueError):
    """An image refused, with the HTTP status to answer, a short reason for metrics and a message for people."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def sniff(data: bytes) -> ImageType | None:
    if data.startswith(b"\xff\xd8\xff"):
        return ImageType.JPEG
    if data.startswith(_PNG_SIGNATURE):
        return ImageType.PNG
    return None


def _is_complete(data: bytes, kind: ImageType) -> bool:
    if kind == ImageType.PNG:
        return data.rstrip(b"\x00")[-12:].startswith(b"\x00\x00\x00\x00IEND")
    return data.rstrip(b"\x00").endswith(b"\xff\xd9")  # some encoders pad after the end-of-image marker


MAX_ASPECT_RATIO = 8
"""Cameras give 4:3 to 21:9 (2.4), a phone held upright 9:16, a video call's strip of tiles a few times wider than
tall; a 1x20000 "picture" is none of them, and downscaled to the frame's largest side it would have no width."""


def _checked_header(data: bytes, max_pixels: int, declared: str | None = None) -> Image.Image:
    """The image in `data`, opened but not decoded, once its type, declared size and completeness are acceptable;
    else ImageRejected saying why. `declared`: the content type the sender named."""
    kind = sniff(data)
    if kind is None:
        raise ImageRejected(400, "not_an_image", "the body is not a JPEG or PNG image")
    if declared is not None and declared != kind.value:
        raise ImageRejected(415, "content_type_mismatch", f"the body is a {kind.name} image but was sent as {declared!r}")
    try:
        image = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[kind]])
    except Image.DecompressionBombError:
        raise ImageRejected(413, "too_many_pixels", f"the image declares far more than {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError):
        if _is_complete(data, kind):
            raise ImageRejected(400, "undecodable", f"the {kind.name} image could not be decoded (damaged header)") from None
        raise ImageRejected(400, "truncated", f"the {kind.name} header is incomplete: the image is cut short or damaged") from None
    width, height = image.size
    if width == 0 or height == 0:
        raise ImageRejected(400, "undecodable", f"the {kind.name} header declares an empty {width}x{height} image")
    if width * height > max_pixels:
        raise ImageRejected(
            413, "too_many_pixels", f"the image is {width}x{height} pixels; at most {max_pixels} pixels are accepted"
        )
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageRejected(
            400, "not_a_camera_picture", f"the image is {width}x{height} pixels: no camera's picture is more than "
            f"{MAX_ASPECT_RATIO} times as wide as it is tall, or as tall as wide",
        )
    if not _is_complete(data, kind):
        raise ImageRejected(400, "truncated", f"the {kind.name} image is cut short (no end marker): send it whole")
    return image


def decode_image(data: bytes, max_pixels: int, declared: str | None = None) -> np.ndarray:
    """The BGR image in `data`, decoded only after `_checked_header` accepted it; or ImageRejected saying why not."""
    image = _checked_header(data, max_pixels, declared)
    try:
        # Phones' photos carry their orientation in EXIF; browsers' canvas snapshots carry none.
        rgb = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's errors for data its decoders cannot make sense of
        raise ImageRejected(400, "undecodable", f"the {image.format} image could not be decoded (damaged data: {exc})") from None
    return cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


@dataclasses.dataclass
class _FormPart:
    """A part of a multipart/form-data body: its headers (names lower-cased) and its bytes."""

    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    data: bytearray = dataclasses.field(default_factory=bytearray)


def multipart_image(body: bytes, content_type: str, field: str = "frame") -> tuple[bytes, str | None]:
    """The bytes and declared type of the image part of a multipart/form-data body: the part named `field`, else its
    only file part. Parsed in memory: a frame is never spooled to disk (no face image is written outside Kafka)."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise ImageRejected(400, "bad_multipart", "multipart/form-data without a boundary")
    parts: list[_FormPart] = []
    header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}

    def begin() -> None:
        parts.append(_FormPart())

    def header_end() -> None:
        parts[-1].headers[bytes(header["field"]).decode("latin-1").lower()] = bytes(header["value"]).decode("latin-1")
        header["field"].clear()
        header["value"].clear()

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": begin,
            "on_header_field": lambda data, start, end: header["field"].extend(data[start:end]),
            "on_header_value": lambda data, start, end: header["value"].extend(data[start:end]),
            "on_header_end": header_end,
            "on_part_data": lambda data, start, end: parts[-1].data.extend(data[start:end]),
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart raises its own and ValueError for malformed bodies
        raise ImageRejected(400, "bad_multipart", f"malformed multipart body: {exc}") from None
    files = []
    for part in parts:
        _, disposition = parse_options_header(part.headers.get("content-disposition", ""))
        if disposition.get(b"name") == field.encode() or b"filename" in disposition:
            files.append((disposition.get(b"name") == field.encode(), part))
    if not files:
        raise ImageRejected(400, "bad_multipart", f"the form has no {field!r} field and no file")
    _, chosen = max(files, key=lambda named_part: named_part[0])
    declared = chosen.headers.get("content-type")
    return bytes(chosen.data), media_type(declared) if declared else None
