"""Reading a source at a chosen frame rate: a video file, a webcam index, an RTSP/HTTP/HLS URL, a folder of images.

Sampling, not every frame: a frame is kept when its position has reached the next sampling instant, and skipped
frames are only grabbed, never converted. A recording (a file, or a URL whose length is known: an HTTP file, an
HLS playlist with an end) is sampled on its own timeline, and so is a live HLS stream, whose segments arrive whole,
seconds of video at once (sampled as they arrive, a segment's frames would be one instant's); another live source
(camera, RTSP or MJPEG stream, whose frames arrive as they are captured, and whose timestamps may be made up: an MJPEG
stream's count frames at an assumed rate) on the wall clock.

Capture times: a recording's frames are stamped on its own timeline from the moment it started playing; a live
stream's from the stream's own timestamps where they are plausible (`StreamClock`); a folder's images by their
modification time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
from prometheus_client import Counter

from classpulse_ingest.destinations import check_stream_destination
from classpulse_ingest.diagnose import SourceError, unopened_stream, unreadable_file
from classpulse_ingest.egress import StreamEgressProxy
from classpulse_ingest.hls_relay import HlsSession
from classpulse_ingest.images import ImageRejected, decode_image
from classpulse_ingest.rtsp_relay import RTSP_SCHEMES, RelayedCamera
from classpulse_ingest.settings import IngestSettings
from classpulse_web.destinations import redact

# FFmpeg's own error lines (on stderr, so in the service's log) name the hosts it reached and what they answered:
# silenced, as any other probe of the network would be (an operator may set another level to debug a camera).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# FFmpeg connects straight to the hosts `no_proxy` names, past the egress proxy (egress.py), resolving them itself.
os.environ.pop("no_proxy", None)

_RECORDING_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,avi,matroska,webm,mpegts,ogg"
_FFMPEG_OPTIONS = {
    # What FFmpeg may open for each kind of source: the protocols (no concat:, subfile, file from a stream, ...) and
    # the demuxers (no playlists or concat lists from a file), in OPENCV_FFMPEG_CAPTURE_OPTIONS' syntax. HTTP(S) goes
    # through the egress proxy (`http_proxy`, added per open): https tunnels with CONNECT, FFmpeg's httpproxy protocol.
    # Never httpproxy and hls together: a playlist's httpproxy://host:port/ segment has FFmpeg connect to that host
    # itself, past the proxy. So an https stream plays no playlists, and a playlist (http or https) is read by the
    # proxy's HLS relay (hls_relay.py), to which FFmpeg speaks plain HTTP alone: every URI it is given there is the
    # relay's (an http playlist's https segments too, which FFmpeg could not reach through the proxy), and any other
    # http URL it would open still goes through the proxy. `crypto` (AES-128 segments) opens what it decrypts with these
    # same protocols.
    "file": f"protocol_whitelist;file|format_whitelist;{_RECORDING_FORMATS}",
    # RTSP(S) to the egress proxy's RTSP relay alone (rtsp_relay.py), RTP interleaved on that one TCP connection.
    "rtsp": "protocol_whitelist;tcp|format_whitelist;rtsp|rtsp_transport;tcp",
    "http": f"protocol_whitelist;http,https,tcp,tls|format_whitelist;mpjpeg,{_RECORDING_FORMATS}",
    "https": f"protocol_whitelist;http,https,tcp,tls,httpproxy|format_whitelist;mpjpeg,{_RECORDING_FORMATS}",
    "hls": f"protocol_whitelist;http,tcp,crypto|format_whitelist;hls,{_RECORDING_FORMATS}",
}
_FFMPEG_OPEN = threading.Lock()
"""OpenCV reads the options from the environment as it opens a capture: one open at a time sees the options meant for
it (OpenCV serialises its FFmpeg opens anyway)."""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
CONTINUE_SEEK_MARGIN_MS = 5_000.0  # longer than the key frame interval of common recordings
_KNOWN_LENGTH_LIMIT = 1e9  # live streams report a frame count of -1, 0 or nonsense such as -9.2e18

IMAGES_SKIPPED = Counter("classpulse_ingest_images_skipped_total", "Images of a folder source skipped", ["reason"])


class SourceKind(StrEnum):
    FILE = "file"
    FOLDER = "folder"
    WEBCAM = "webcam"
    STREAM = "stream"
    UPLOAD = "upload"


@dataclass(frozen=True)
class SourceSpec:
    location: str

    @property
    def kind(self) -> SourceKind:
        if self.location.isdigit():
            return SourceKind.WEBCAM
        if "://" in self.location:
            return SourceKind.STREAM
        return SourceKind.FOLDER if Path(self.location).is_dir() else SourceKind.FILE

    @property
    def can_drop(self) -> bool:
        """Whether a failure to read may be temporary (a camera or network), worth reconnecting to."""
        return self.kind in (SourceKind.WEBCAM, SourceKind.STREAM)

    @property
    def display(self) -> str:
        return redact(self.location)

    def validate(self, settings: IngestSettings) -> list[str]:
        """The addresses a stream's host was checked at (none for other kinds); SourceError unless its URL may be
        opened: an allowed scheme, a host inside the allowed networks. Checked at every open: a host name may resolve
        elsewhere by the next reconnection."""
        if self.kind == SourceKind.STREAM:
            return check_stream_destination(self.location, settings.source_allowed_networks, settings.source_allowed_schemes)
        return []


@dataclass(frozen=True)
class Timeouts:
    open_ms: int
    read_ms: int


@dataclass(frozen=True)
class FfmpegInput:
    """What FFmpeg opens for a file or stream, and the options it opens it with; `relayed`: the RTSP relay's ports an
    RTSP(S) stream is read through, or the HLS relay's session of an HTTPS playlist, closed with the capture;
    `playlist`: an HLS playlist (a live one is sampled on its own timeline, as a recording)."""

    url: str
    options: str
    relayed: RelayedCamera | HlsSession | None = None
    playlist: bool = False

    def close(self) -> None:
        if self.relayed is not None:
            self.relayed.close()


def ffmpeg_input(spec: SourceSpec, egress: StreamEgressProxy | None) -> FfmpegInput:
    """A file as it is; a stream through the `egress` proxy, which checks each connection (without one, streams are
    refused): an RTSP(S) one at ports of its RTSP relay, an HTTP(S) one through the proxy, an HLS playlist at its HLS
    relay (a playlist known by its name, or by what its host answers: hls_relay.serves_a_playlist): never at a name
    FFmpeg resolves itself."""
    if spec.kind != SourceKind.STREAM:
        return FfmpegInput(spec.location, _FFMPEG_OPTIONS["file"])
    if egress is None:
        raise SourceError("bad_location", f"{spec.display}: streams are opened only through the egress proxy")
    scheme = urlsplit(spec.location).scheme
    if scheme in RTSP_SCHEMES:
        camera = egress.camera(spec.location)
        return FfmpegInput(camera.url, _FFMPEG_OPTIONS["rtsp"], camera)
    try:
        playlist = egress.serves_a_playlist(spec.location)
    except (OSError, TimeoutError):  # its host took no connection or answered nothing: as FFmpeg's open would fail
        raise unopened_stream(spec.location, egress.connect_timeout_s) from None
    if playlist:
        session = egress.relay.session()
        options = f"{_FFMPEG_OPTIONS['hls']}|http_proxy;{egress.url}"
        return FfmpegInput(session.url_for(spec.location), options, session, playlist=True)
    return FfmpegInput(spec.location, f"{_FFMPEG_OPTIONS[scheme]}|http_proxy;{egress.url}")


@dataclass(frozen=True)
class RawFrame:
    image: np.ndarray
    position_ms: float  # on the source's own timeline (recordings), or since the source started (live)
    captured_at_ms: int
    continue_at_ms: float = 0.0  # a recording: where reading continues to take the frames after this one


class Sampler:
    """Keeps about `fps` frames a second of a timeline; a jump back in the timeline (a new segment) restarts it.
    `first_due_ms`: the next sampling instant of a recording continued where another reader stopped (the same
    instants, so the same frames, as if one reader had read it all)."""

    def __init__(self, fps: float, first_due_ms: float | None = None) -> None:
        self.interval_ms = 1000.0 / fps
        self._next_due_ms: float | None = first_due_ms

    @property
    def next_due_ms(self) -> float:
        return self._next_due_ms or 0.0

    def due(self, position_ms: float) -> bool:
        if self._next_due_ms is None or position_ms < self._next_due_ms - 2 * self.interval_ms:
            self._next_due_ms = position_ms
        if position_ms + 1e-6 < self._next_due_ms:
            return False
        self._next_due_ms += self.interval_ms * (int((position_ms - self._next_due_ms) // self.interval_ms) + 1)
        return True


class StreamClock:
    """Wall-clock times of a live stream's frames from the stream's own timestamps.

    Anchored on the wall clock at the first frame, a frame's stamp is anchor + its stream position, so frames that
    arrive late (buffered by the network) keep the time they were captured. A stamp in the future, or further in the
    past than `max_lag_ms`, means the stream's clock is missing or made up (an MJPEG stream counts frames at an assumed
    rate) or jumped: the clock re-anchors on that frame, which then gets the wall clock.
    """

    def __init__(self, max_lag_ms: float = 5_000.0) -> None:
        self.max_lag_ms = max_lag_ms
        self._anchor_ms: float | None = None

    def stamp(self, position_ms: float, now_ms: float) -> int:
        if self._anchor_ms is not None:
            stamped = self._anchor_ms + position_ms
            if now_ms - self.max_lag_ms <= stamped <= now_ms:
                return int(stamped)
        self._anchor_ms = now_ms - position_ms
        return int(now_ms)


def wall_ms() -> float:
    return time.time() * 1000


class CaptureReader:
    """Frames of a video file, webcam or stream URL through OpenCV's FFmpeg (or V4L2 for webcams) backend.

    `resume_at_ms`: where a recording that dropped is reopened; `continue_at_ms`: the sampling instant at which a
    recording read by another process (an ingest replica that died or let it go) continues, frame for frame."""

    def __init__(
        self,
        spec: SourceSpec,
        timeouts: Timeouts,
        source: FfmpegInput,
        resume_at_ms: float = 0.0,
        continue_at_ms: float | None = None,
    ) -> None:
        self.spec = spec
        self.source = source
        self.capture = _open_capture(spec, timeouts, source)
        frame_count = self.capture.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        known_length = 0 < frame_count < _KNOWN_LENGTH_LIMIT and fps > 0
        self.recording = spec.kind == SourceKind.FILE or (spec.kind == SourceKind.STREAM and known_length)
        self.on_own_timeline = self.recording or source.playlist
        self.duration_ms = 1000.0 * frame_count / fps if known_length else None
        self.frame_interval_ms = 1000.0 / fps if fps > 0 else 0.0
        self.continue_at_ms = continue_at_ms if self.recording else None
        if self.continue_at_ms is not None:
            # Seek short of it (a seek lands on a key frame, maybe after the instant asked) and read up to it: the
            # timeline starts over here, so nothing before counts as a jump back.
            self.capture.set(cv2.CAP_PROP_POS_MSEC, max(0.0, self.continue_at_ms - CONTINUE_SEEK_MARGIN_MS))
            resume_at_ms = 0.0
        elif resume_at_ms > 0 and self.recording:
            self.capture.set(cv2.CAP_PROP_POS_MSEC, resume_at_ms)  # back where a dropped recording stopped
        self.last_position_ms = resume_at_ms
        self.delivered = 0
        self.skipped = 0  # a video has no images to skip; kept so that every reader answers the same questions
        self.reached_end = False

    def frames(self, fps: float, started_wall_ms: float) -> Iterator[RawFrame]:
        """Sampled frames until the source ends or stops delivering; then `reached_end` tells which."""
        sampler = Sampler(fps, self.continue_at_ms)
        clock = StreamClock()
        opened = time.monotonic()
        timeline_offset_ms = 0.0
        while self.capture.grab():
            stream_position = self.capture.get(cv2.CAP_PROP_POS_MSEC)
            if self.on_own_timeline:
                if stream_position + timeline_offset_ms < self.last_position_ms - self.frame_interval_ms:
                    # The timestamps restarted (a new HLS segment, a concatenated file): keep the timeline going on.
                    timeline_offset_ms = self.last_position_ms + self.frame_interval_ms - stream_position
                position = stream_position + timeline_offset_ms
            else:
                position = (time.monotonic() - opened) * 1000
            self.last_position_ms = position
            if self.continue_at_ms is not None and position + 1e-6 < self.continue_at_ms:
                continue  # read by the process before
            if not sampler.due(position):
                continue
            ok, image = self.capture.retrieve()
            if not ok or image is None:
                continue
            self.delivered += 1
            if self.recording:
                captured_at = started_wall_ms + position
            elif self.spec.kind == SourceKind.STREAM:
                captured_at = clock.stamp(position if self.on_own_timeline else stream_position, wall_ms())
            else:
                captured_at = wall_ms()
            yield RawFrame(image, position, int(captured_at), sampler.next_due_ms)
        self.reached_end = self._at_end()
        if self.delivered == 0 and self.spec.kind == SourceKind.FILE:
            raise SourceError("no_frames", f"{self.spec.display} opened but no frame could be decoded (damaged or unsupported)")

    def _at_end(self) -> bool:
        if self.spec.kind == SourceKind.FILE:
            return True  # a local file does not drop: the end of reading is the end of the file
        if self.duration_ms is None:
            return False  # a live stream never ends by itself: it dropped
        # A recording over the network ended if reading stopped within a second (or two frames) of its length.
        return self.last_position_ms >= self.duration_ms - max(1000.0, 2 * self.frame_interval_ms)

    def release(self) -> None:
        self.capture.release()
        self.source.close()


def _open_capture(spec: SourceSpec, timeouts: Timeouts, source: FfmpegInput) -> cv2.VideoCapture:
    if spec.kind == SourceKind.WEBCAM:
        capture = cv2.VideoCapture(webcam_index(spec), cv2.CAP_ANY)
        if not capture.isOpened():
            device = Path(f"/dev/video{webcam_index(spec)}")
            why = "it does not exist" if not device.exists() else "it cannot be opened (in use, or no permission)"
            raise SourceError("no_camera", f"no camera at index {webcam_index(spec)}: {device} {why}")
        return capture
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeouts.open_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeouts.read_ms]
    with _FFMPEG_OPEN:
        # Only for this open: left set, the options would limit every later capture of the process (another
        # source's, or a tool's reading a video file) to this kind's protocols and formats.
        before = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = source.options
        try:
            capture = cv2.VideoCapture(source.url, cv2.CAP_FFMPEG, params)
        finally:
            if before is None:
                del os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"]
            else:
                os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = before
    if capture.isOpened():
        return capture
    if spec.kind == SourceKind.STREAM:
        raise unopened_stream(spec.location, timeouts.open_ms / 1000)
    raise unreadable_file(Path(spec.location))


def webcam_index(spec: SourceSpec) -> int:
    """The camera index OpenCV opens for a webcam source ("0" is /dev/video0)."""
    return int(spec.location)


class FolderReader:
    """The images of a folder (.jpg, .jpeg, .png) in name order, one frame each, paced at `fps`.

    An unreadable or oversized image is skipped and counted, not fatal; each image's capture time is its
    modification time (when the camera that dropped it there wrote it).
    """

    recording = True
    duration_ms = None  # each image carries its own time

    def __init__(self, spec: SourceSpec, max_pixels: int, continue_at_ms: float | None = None) -> None:
        self.spec = spec
        self.max_pixels = max_pixels
        self.continue_at_ms = continue_at_ms or 0.0
        self.skipped = 0
        self.last_position_ms = 0.0
        self.delivered = 0
        self.reached_end = False

    def frames(self, fps: float, started_wall_ms: float) -> Iterator[RawFrame]:
        folder = Path(self.spec.location)
        images = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
        if not images:
            raise SourceError("no_frames", f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        interval_ms = 1000.0 / fps
        for index, path in enumerate(images):
            if index * interval_ms + 1e-6 < self.continue_at_ms:
                continue  # read by the process before
            try:
                image = decode_image(path.read_bytes(), self.max_pixels)
            except (ImageRejected, OSError) as exc:
                IMAGES_SKIPPED.labels(exc.reason if isinstance(exc, ImageRejected) else "unreadable").inc()
                self.skipped += 1
                continue
            self.delivered += 1
            self.last_position_ms = index * interval_ms
            yield RawFrame(image, self.last_position_ms, int(path.stat().st_mtime * 1000), (index + 1) * interval_ms)
        self.reached_end = True
        if self.delivered == 0:
            raise SourceError("no_frames", f"none of the {len(images)} images in {folder} could be read")

    def release(self) -> None:
        pass


def open_reader(
    spec: SourceSpec,
    settings: IngestSettings,
    resume_at_ms: float = 0.0,
    continue_at_ms: float | None = None,
    egress: StreamEgressProxy | None = None,
) -> CaptureReader | FolderReader:
    """`egress`: the proxy a stream is read through (ffmpeg_input)."""
    addresses = spec.validate(settings)
    if spec.kind == SourceKind.FOLDER:
        return FolderReader(spec, settings.max_image_pixels, continue_at_ms)
    timeouts = Timeouts(settings.stream_open_timeout_ms, settings.stream_read_timeout_ms)
    source = None
    try:
        source = ffmpeg_input(spec, egress)
        return CaptureReader(spec, timeouts, source, resume_at_ms, continue_at_ms)
    except BaseException as error:
        if source is not None:
            source.close()
        if isinstance(error, SourceError) and error.cause == "unreachable" and len(addresses) > 1:
            # A host with several checked addresses (IPv4 and IPv6, a pair of recorders): the proxy connected to the
            # first to take a connection. The same words whether none did or the one that did served no stream:
            # which of a host's ports are open must not reach an answer (diagnose.py).
            raise unopened_stream(spec.location, timeouts.open_ms / 1000, len(addresses)) from None
        raise
