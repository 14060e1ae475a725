import msgpack
import numpy as np
import pytest

from classpulse_core.schemas import CROP_BYTES, DeadLetter, DetectedFaces, Frame, FrameResult, SchemaError

pytestmark = pytest.mark.unit

IDENTITY = dict(class_id="math-101", session_id=None, source_id="cam-1", frame_id="cam-1:7", sequence=7, captured_at_ms=1_700_000_000_000)


def frame(**overrides):
    return Frame(**{**IDENTITY, "published_at_ms": 1_700_000_000_010, "width": 640, "height": 480, "jpeg": b"\xff\xd8jpeg", **overrides})


def test_frame_round_trips_as_compact_binary():
    message = frame()
    payload = message.encode()
    assert Frame.decode(payload) == message
    # JPEG bytes travel as msgpack bin, not base64 text.
    assert b"\xff\xd8jpeg" in payload
    assert message.key == b"math-101"


def test_decoding_checks_schema_name_and_version():
    body = msgpack.unpackb(frame().encode())
    body["v"] = 3
    with pytest.raises(SchemaError, match="expected classpulse.frame v1..v2"):
        Frame.decode(msgpack.packb(body))
    with pytest.raises(SchemaError, match="expected classpulse.faces"):
        DetectedFaces.decode(frame().encode())


@pytest.mark.parametrize("payload", [b"", b"\xc1", b"\x93\x01\x02\x03", msgpack.packb("text"), b"\x00" * 100])
def test_garbage_is_a_schema_error(payload):
    with pytest.raises(SchemaError):
        Frame.decode(payload)


def test_missing_and_wrong_fields_are_schema_errors():
    body = msgpack.unpackb(frame().encode())
    del body["jpeg"]
    with pytest.raises(SchemaError, match="jpeg"):
        Frame.decode(msgpack.packb(body))
    body = msgpack.unpackb(frame().encode())
    body["width"] = "wide"
    with pytest.raises(SchemaError, match="width"):
        Frame.decode(msgpack.packb(body))


@pytest.mark.parametrize("class_id", ["", "a b", "../etc", "x" * 65, "{demo}", "a*"])
def test_unsafe_class_ids_are_refused(class_id):
    with pytest.raises(ValueError):
        frame(class_id=class_id)


def test_crops_must_match_boxes_and_come_back_as_an_array():
    crops = np.arange(2 * CROP_BYTES, dtype=np.uint32).astype(np.uint8).tobytes()
    faces = DetectedFaces(**IDENTITY, detected_at_ms=1, frame_width=640, frame_height=480, boxes=[[0, 0, 10, 10], [5, 5, 10, 10]], crops=crops)
    array = DetectedFaces.decode(faces.encode()).crop_array()
    assert array.shape == (2, 48, 48, 1) and array.dtype == np.uint8
    assert array.tobytes() == crops
    with pytest.raises(ValueError, match="crop bytes"):
        DetectedFaces(**IDENTITY, detected_at_ms=1, frame_width=640, frame_height=480, boxes=[[0, 0, 10, 10]], crops=b"x" * 10)


def test_frame_result_needs_one_probability_vector_per_face():
    uniform = [1 / 7] * 7
    assert FrameResult(**IDENTITY, completed_at_ms=1, boxes=[[0, 0, 1, 1]], probabilities=[uniform]).emotion_enabled
    assert not FrameResult(**IDENTITY, completed_at_ms=1, boxes=[[0, 0, 1, 1]]).emotion_enabled
    with pytest.raises(ValueError, match="probability vectors"):
        FrameResult(**IDENTITY, completed_at_ms=1, boxes=[[0, 0, 1, 1]], probabilities=[])
    with pytest.raises(ValueError):
        FrameResult(**IDENTITY, completed_at_ms=1, boxes=[[0, 0, 1, 1]], probabilities=[[2.0] * 7])


@pytest.mark.parametrize("vector", [[1.0] * 7, [0.1] * 7, [0.5, 0.5, 0.5, 0, 0, 0, 0]])
def test_a_face_whose_probabilities_do_not_sum_to_one_is_refused(vector):
    """Seven values in [0, 1] that sum to 7 counted one face as seven in the class's shares."""
    with pytest.raises(ValueError, match="sum to"):
        FrameResult(**IDENTITY, completed_at_ms=1, boxes=[[0, 0, 1, 1]], probabilities=[vector])
    rounded = [0.143] * 6 + [0.15]  # a bfloat16 softmax's rounding (sums to 1.008) passes
    assert FrameResult(**IDENTITY, completed_at_ms=1, boxes=[[0, 0, 1, 1]], probabilities=[rounded]).emotion_enabled


def test_identity_carries_over_to_derived_messages():
    result = FrameResult(**frame().identity(), completed_at_ms=1, boxes=[])
    assert (result.class_id, result.frame_id, result.sequence, result.captured_at_ms) == ("math-101", "cam-1:7", 7, IDENTITY["captured_at_ms"])


def test_dead_letter_keeps_the_original_bytes():
    letter = DeadLetter(stage="detector", reason="undecodable", origin_topic="t", origin_partition=3, origin_offset=42, failed_at_ms=1, key=b"k", value=b"\x00raw")
    assert DeadLetter.decode(letter.encode()) == letter


def test_version_1_messages_from_producers_not_yet_upgraded_are_read_as_room_cameras():
    body = msgpack.unpackb(frame(camera_kind="personal").encode())
    assert body["v"] == 2 and body["camera_kind"] == "personal"
    del body["camera_kind"]
    body["v"] = 1
    old = Frame.decode(msgpack.packb(body))
    assert old.camera_kind == "room" and old.frame_id == "cam-1:7"
    with pytest.raises(SchemaError, match="camera_kind"):
        Frame.decode(msgpack.packb({**body, "v": 2, "camera_kind": "drone"}))


def test_a_gallery_camera_travels_in_version_2_and_carries_over_to_derived_messages():
    """"gallery" came without a new version: a v2 room or personal frame is byte for byte what it was, so a consumer
    not yet upgraded reads those as before and dead-letters only a gallery frame, with the field as the reason."""
    gallery = frame(camera_kind="gallery")
    body = msgpack.unpackb(gallery.encode())
    assert body["v"] == 2 and body["camera_kind"] == "gallery"
    assert Frame.decode(gallery.encode()) == gallery
    result = FrameResult(**gallery.identity(), completed_at_ms=1, boxes=[])
    assert FrameResult.decode(result.encode()).camera_kind == "gallery"
    assert msgpack.unpackb(frame().encode()) == {**body, "camera_kind": "room"}


def test_facing_flags_are_carried_per_face_and_older_messages_read_as_without_pose():
    boxes = [[0, 0, 10, 10], [20, 0, 10, 10], [40, 0, 10, 10]]
    result = FrameResult(**IDENTITY, completed_at_ms=1, boxes=boxes, facing=[True, False, None])
    assert FrameResult.decode(result.encode()).facing == [True, False, None]
    faces = DetectedFaces(**IDENTITY, detected_at_ms=1, frame_width=64, frame_height=64, boxes=boxes,
                          crops=b"\x00" * 3 * CROP_BYTES, facing=[None, True, True])
    assert DetectedFaces.decode(faces.encode()).facing == [None, True, True]
    for message in (result, faces):  # a v2 producer, not yet upgraded, knew no head pose
        body = msgpack.unpackb(message.encode())
        assert body["v"] == 3
        del body["facing"]
        body["v"] = 2
        assert type(message).decode(msgpack.packb(body)).facing is None
    with pytest.raises(SchemaError, match="facing flags"):
        FrameResult.decode(msgpack.packb({**msgpack.unpackb(result.encode()), "facing": [True]}))


def test_faces_beyond_a_message_travel_in_version_4_and_a_message_without_them_stays_version_3():
    """A consumer not yet upgraded reads v3: during a rolling upgrade only a frame of more faces than a message
    carries (a lecture hall) is dead-lettered by it, to be replayed once upgraded; every other frame goes through."""
    boxes = [[0, 0, 10, 10], [20, 0, 10, 10]]
    result = FrameResult(**IDENTITY, completed_at_ms=1, boxes=boxes, facing=[True, None])
    faces = DetectedFaces(**IDENTITY, detected_at_ms=1, frame_width=64, frame_height=64, boxes=boxes,
                          crops=b"\x00" * 2 * CROP_BYTES, facing=[None, True])
    for message in (result, faces):
        body = msgpack.unpackb(message.encode())
        assert body["v"] == 3 and "faces_beyond" not in body
        assert type(message).decode(message.encode()).faces_beyond == 0
        hall = message.model_copy(update={"faces_beyond": 44})
        body = msgpack.unpackb(hall.encode())
        assert body["v"] == 4 and body["faces_beyond"] == 44
        assert type(message).decode(hall.encode()) == hall
        with pytest.raises(SchemaError, match="faces_beyond"):
            type(message).decode(msgpack.packb({**body, "faces_beyond": -1}))
