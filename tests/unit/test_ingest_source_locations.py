"""A source's location is refused with a 422, never a 500, whatever characters it holds (found by schemathesis:
a NUL made the media-folder check raise `ValueError: embedded null byte`)."""

import pytest
from fastapi import HTTPException

from classpulse_ingest.settings import IngestSettings
from classpulse_ingest.sources_api import _allowed_spec

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("location", ["\x00", "/media/class.mp4\x00.txt", "rtsp://camera/\x07stream", "0\n", "\x7f"])
def test_a_location_with_control_characters_is_refused_with_422(location, tmp_path):
    with pytest.raises(HTTPException) as refused:
        _allowed_spec(location, IngestSettings(media_dir=tmp_path))
    assert refused.value.status_code == 422
    assert "control characters" in refused.value.detail


def test_a_file_inside_the_media_folder_is_still_allowed(tmp_path):
    video = tmp_path / "class.mp4"
    video.write_bytes(b"")
    spec = _allowed_spec(str(video), IngestSettings(media_dir=tmp_path))
    assert spec.location == str(video.resolve())
