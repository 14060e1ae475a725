"""Why a source could not be opened, in words an operator can act on, and URLs without their credentials.

OpenCV only says "not opened"; FFmpeg's reasons are silenced (video.py). For a local file the reason is worked out
here: a missing or empty file, a container recognised by its first bytes (whose codec then is unsupported, or whose
index is missing because the file was cut short). A stream is never probed for one: what a host answers (its HTTP
status, its content type, whether a port is open) must not reach an API answer or a log, or a source would be a way
to scan the internal network. (The egress proxy does connect to a host's addresses to pick the one FFmpeg reaches,
egress.py, and asks an HTTP(S) stream whether it is an HLS playlist, hls_relay.serves_a_playlist, to choose how FFmpeg
reads it; its failure reads the same whether none of them took a connection or FFmpeg failed at the one that did.)
"""

from __future__ import annotations

import struct
from pathlib import Path

from classpulse_web.destinations import redact

_CONTAINERS = (
    (0, b"RIFF", "AVI"),
    (4, b"ftyp", "MP4/MOV"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (188, b"\x47", "MPEG-TS"),  # the sync byte of the second 188-byte packet (the first is at 0)
    (0, b"OggS", "Ogg"),
)


class SourceError(RuntimeError):
    """The source cannot be opened or read: `cause` is a short label for metrics, the message says why."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


def unreadable_file(path: Path) -> SourceError:
    if not path.exists():
        return SourceError("missing", f"no such file: {path}")
    if not path.is_file():
        return SourceError("unreadable", f"not a regular file: {path}")
    try:
        with path.open("rb") as handle:
            head = handle.read(64 * 1024)
    except OSError as exc:
        return SourceError("unreadable", f"cannot read {path}: {exc.strerror}")
    if not head:
        return SourceError("unreadable", f"{path} is empty")
    container = next((name for offset, magic, name in _CONTAINERS if head[offset : offset + len(magic)] == magic), None)
    if container is None:
        return SourceError("unreadable", f"{path} is not a video file in a known container (MP4, AVI, MKV, WebM)")
    stream_header = head.find(b"strh")  # RIFF chunk: 'strh', its size, then the stream type and codec fourcc
    if container == "AVI" and stream_header >= 0 and head[stream_header + 8 : stream_header + 12] == b"vids":
        fourcc = head[stream_header + 12 : stream_header + 16].decode("latin-1")
        return SourceError("unsupported", f"{path} is an AVI whose video codec {fourcc!r} cannot be decoded")
    if container == "MP4/MOV" and not _has_top_level_box(path, b"moov"):
        return SourceError("unreadable", f"{path} is an incomplete MP4 (no 'moov' index: cut short or still being written)")
    return SourceError("unsupported", f"{path} is {container} but could not be opened: unsupported codec or damaged file")


def _has_top_level_box(path: Path, wanted: bytes) -> bool:
    """Walk an MP4's top-level boxes (size, type) without reading their contents."""
    total = path.stat().st_size
    offset = 0
    with path.open("rb") as handle:
        while offset + 8 <= total:
            handle.seek(offset)
            header = handle.read(16)
            size, kind = struct.unpack(">I4s", header[:8])
            if kind == wanted:
                return True
            if size == 1 and len(header) == 16:  # a 64-bit size follows the type
                size = struct.unpack(">Q", header[8:16])[0]
            if size < 8:  # 0 means "to the end of the file"; anything else this small is damage
                return False
            offset += size
    return False


def unopened_stream(url: str, timeout_s: float, addresses: int = 1) -> SourceError:
    """`addresses`: how many its host resolved to, all tried (FFmpeg opens the first that takes a connection)."""
    tried = f" at any of the {addresses} addresses its host resolves to" if addresses > 1 else ""
    return SourceError(
        "unreachable",
        f"{redact(url)} did not open as a video stream{tried} within {timeout_s:g} s: check its address, path, "
        "credentials and codec from the camera's side",
    )
