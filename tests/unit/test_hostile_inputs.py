"""The hostile inputs' own making: a JPEG whose header lies about its size, as an image library reads it."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from classpulse_reliability.hostile import DECLARED_SIDE, oversize_jpeg

pytestmark = pytest.mark.unit


def test_an_oversize_jpeg_declares_the_size_in_its_header_and_nothing_else_changes():
    jpeg = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))[1].tobytes()
    lying = oversize_jpeg(jpeg)
    assert Image.open(io.BytesIO(jpeg)).size == (64, 48)
    # Pillow reads the declared size from the header alone, and refuses it as a bomb.
    with pytest.raises(Image.DecompressionBombError, match=f"{DECLARED_SIDE * DECLARED_SIDE} pixels"):
        Image.open(io.BytesIO(lying))
    assert len(lying) == len(jpeg)
