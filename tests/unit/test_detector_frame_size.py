"""A frame's size is read from its image header and checked before anything is decoded: a small JPEG that declares
65535x65535 pixels once made the detector allocate gigabytes and be OOM-killed, redelivered, killed again."""

from __future__ import annotations

import zlib

import cv2
import numpy as np
import pytest

from classpulse_detector import faces
from classpulse_detector.faces import UndecodableFrame, decode_gray, image_size

pytestmark = pytest.mark.unit


def _encoded(suffix: str, width: int = 64, height: int = 48) -> bytes:
    return cv2.imencode(suffix, np.zeros((height, width), np.uint8))[1].tobytes()


def _declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with its start-of-frame rewritten to declare width x height (the data stays that of the small image)."""
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[: sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[sof + 9 :]


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_the_size_comes_from_the_header(suffix):
    assert image_size(_encoded(suffix, 64, 48)) == (64, 48)


def test_a_huge_declared_size_is_refused_without_decoding(monkeypatch):
    def must_not_decode(*args):
        raise AssertionError("decoded a frame whose header declares a size over the cap")

    huge = _declaring(_encoded(".jpg"), 65_000, 65_000)
    assert image_size(huge) == (65_000, 65_000)
    monkeypatch.setattr(faces.cv2, "imdecode", must_not_decode)
    with pytest.raises(UndecodableFrame, match="65000x65000"):
        decode_gray(huge)


@pytest.mark.parametrize("data", [b"GIF89a....", b"\xff\xd8\xff\xda\x00\x02", b"\xff\xd8\x00\x00\x00"])
def test_a_frame_without_a_readable_size_is_undecodable(data):
    with pytest.raises(UndecodableFrame):
        image_size(data)


def test_a_png_declaring_a_huge_size_is_refused_by_its_header():
    png = _encoded(".png")
    header = b"IHDR" + (40_000).to_bytes(4, "big") + (30_000).to_bytes(4, "big") + png[24:29]  # width, height, rest
    huge = png[:12] + header + zlib.crc32(header).to_bytes(4, "big") + png[33:]
    assert image_size(huge) == (40_000, 30_000)
    with pytest.raises(UndecodableFrame, match="40000x30000"):
        decode_gray(huge)
