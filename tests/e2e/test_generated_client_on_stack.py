"""The generated Python client (clients/python/classpulse-client) against the running stack, as the README shows a
platform using it: register a class, run a lesson whose students post webcam snapshots, read its summary back as
typed models; keys and scopes behave as the API documents them."""

from __future__ import annotations

import time
import uuid

import pytest

from classpulse_client import AuthenticatedClient
from classpulse_client.api.api_keys import create_key
from classpulse_client.api.class_metrics import live, summary
from classpulse_client.api.classes import create_class, end_session, get_class, list_classes, start_session
from classpulse_client.errors import UnexpectedStatus
from classpulse_client.models import ClassCreate, ClassSummary, KeyCreate, Role, SessionStart
from classpulse_demo import webcams
from classpulse_demo.fer_csv import FerCsvNotFoundError, resolve_fer_csv
from classpulse_demo.run import api_client
from classpulse_devstack.config import DevstackConfig

pytestmark = pytest.mark.e2e

LESSON = webcams.WebcamLesson(students=3, seconds=15.0, cameras_off=())


@pytest.fixture(scope="module")
def api_url(stack) -> str:
    return stack.select("api")[0].address


@pytest.fixture(scope="module")
def admin(api_url):
    with AuthenticatedClient(base_url=api_url, token=DevstackConfig.from_env().admin_api_key(), raise_on_unexpected_status=True) as client:
        yield client


def test_a_platform_registers_a_class_runs_a_lesson_and_reads_its_summary(stack, admin):
    try:
        resolve_fer_csv()
    except FerCsvNotFoundError as exc:
        pytest.skip(f"the lesson's students are FER2013 faces: {exc}")
    class_id = f"client-{uuid.uuid4().hex[:8]}"
    created = create_class.sync(client=admin, body=ClassCreate(class_id=class_id, teacher="t-client", expected_students=3))
    assert created.class_id == class_id and created.expected_students == 3
    lesson = start_session.sync(class_id, client=admin, body=SessionStart(name="client lesson"))
    with api_client(stack.select("ingest")[0].address) as ingest:
        sent = webcams.run_lesson(ingest, class_id, LESSON)
    deadline = time.monotonic() + 60
    while (report := summary.sync(class_id, client=admin, session=lesson.session_id)).frames < len(sent.snapshots):
        assert time.monotonic() < deadline, f"{report.frames} of {len(sent.snapshots)} snapshots counted"
        time.sleep(1)
    ended = end_session.sync(class_id, lesson.session_id, client=admin)
    assert ended.ended_at_ms is not None

    report = summary.sync(class_id, client=admin, session=lesson.session_id)
    assert isinstance(report, ClassSummary)
    assert report.frames == len(sent.snapshots) and report.faces >= len(sent.snapshots) - 2
    assert 0.5 <= report.presence <= 1.0
    shares = report.emotions.to_dict()
    assert set(shares) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert live.sync(class_id, client=admin).frames >= 0


def test_a_teacher_key_reads_its_classes_only_and_a_bad_key_is_refused(api_url, admin):
    mine, other, teacher_id = (f"client-{uuid.uuid4().hex[:8]}" for _ in range(3))
    create_class.sync(client=admin, body=ClassCreate(class_id=mine, teacher=teacher_id))
    create_class.sync(client=admin, body=ClassCreate(class_id=other, teacher=f"{teacher_id}-other"))
    key = create_key.sync(client=admin, body=KeyCreate(role=Role.TEACHER, teacher_id=teacher_id))
    with AuthenticatedClient(base_url=api_url, token=key.api_key, raise_on_unexpected_status=True) as teacher:
        listed = list_classes.sync(client=teacher, limit=200)
        assert [c.class_id for c in listed.items] == [mine] and listed.total == 1
        assert get_class.sync(mine, client=teacher).teacher == teacher_id
        with pytest.raises(UnexpectedStatus) as refused:
            get_class.sync(other, client=teacher)
        assert refused.value.status_code in (403, 404)
    with AuthenticatedClient(base_url=api_url, token="cpk_nope_nope") as stranger:
        assert get_class.sync_detailed(mine, client=stranger).status_code == 401
