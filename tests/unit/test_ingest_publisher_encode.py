"""What ingest publishes of a picture: JPEG at its own size, or downscaled to the largest side, never to nothing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from classpulse_ingest.buffer import FrameBuffer
from classpulse_ingest.publisher import FramePublisher

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("height", "width"), [(480, 640), (1080, 1920), (20_000, 1), (2, 1_000_000)])
def test_every_picture_is_published_within_the_largest_side_and_at_least_a_pixel_wide(height, width):
    """A 1x20000 picture read from a folder once rounded to a 0-px width and OpenCV's resize raised, failing the
    whole source; a sender's is refused sooner (classpulse_ingest.images.MAX_ASPECT_RATIO)."""
    publisher = FramePublisher(FrameBuffer(10, 10_000_000), jpeg_quality=85, max_side=1280)
    jpeg, published_width, published_height = publisher.encode(np.full((height, width, 3), 128, np.uint8))
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert decoded.shape == (published_height, published_width)
    assert 1 <= min(published_width, published_height) and max(published_width, published_height) == min(1280, max(height, width))
