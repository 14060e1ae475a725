import json
import logging

import pytest

from classpulse_core.logs import JsonFormatter

pytestmark = pytest.mark.unit


def test_log_lines_are_json_with_extra_fields_and_never_carry_image_bytes():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "frame rejected %s", ("f-1",), None)
    record.class_id = "math-101"
    record.jpeg = b"\xff\xd8" + b"\x00" * 5000
    line = json.loads(JsonFormatter("detector").format(record))
    assert line["msg"] == "frame rejected f-1" and line["level"] == "warning" and line["service"] == "detector"
    assert line["class_id"] == "math-101"
    assert line["jpeg"] == "<5002 bytes>"
