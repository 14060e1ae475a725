"""The API's writes of a class and its lessons against the real Redis, with requests at once: one of two End requests
ends a lesson; a change of a class keeps what another request changed meanwhile and never brings a deleted class
back; a class registered or a lesson started while the class is deleted leaves nothing half made or behind."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

import httpx
import pytest
import redis.asyncio as aioredis

from classpulse_api.app import create_app
from classpulse_api.settings import ApiSettings
from classpulse_api.store import LESSONS, ClassStore
from classpulse_store.classkeys import session_key, sessions_key
from classpulse_store.registry import CLASS_INDEX, ClassRecord, class_key
from classpulse_web.auth import new_key

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ADMIN_KEY = new_key()[1]
T = TypeVar("T")


@asynccontextmanager
async def admin_client(redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(redis_url=redis_url, admin_api_key=ADMIN_KEY, integrations_worker=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as client:
        yield client


async def test_of_two_end_requests_at_once_one_ends_the_lesson_and_adds_its_ended_event(redis_url, redis_client, class_id):
    """Each End request read the lesson running, then wrote its end and an "ended" event: both answered 200, the
    lesson's end was the later one's and the lessons' stream had two ends of it (the xAPI export handled it twice)."""
    async with admin_client(redis_url) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id})).status_code == 201
        started = await client.post(f"/v1/classes/{class_id}/sessions", json={"name": "Fractions"})
        session_id = started.json()["session_id"]
        end = f"/v1/classes/{class_id}/sessions/{session_id}/end"
        answers = await asyncio.gather(client.post(end), client.post(end))
        assert sorted(answer.status_code for answer in answers) == [200, 409], [answer.text for answer in answers]
        [ended] = [answer.json() for answer in answers if answer.status_code == 200]
        kept = (await client.get(f"/v1/classes/{class_id}/sessions")).json()["items"]
    assert [session["ended_at_ms"] for session in kept] == [ended["ended_at_ms"]]
    ends = [fields for _id, fields in redis_client.xrange(LESSONS)
            if fields[b"session_id"] == session_id.encode() and fields[b"ended"] == b"1"]
    assert len(ends) == 1


async def test_two_changes_at_once_each_stand(redis_url, class_id):
    """A change read the whole class and wrote it back: of two at once, the later undid the other's."""
    async with admin_client(redis_url) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id, "name": "Maths"})).status_code == 201
        changes = await asyncio.gather(client.patch(f"/v1/classes/{class_id}", json={"name": "Algebra"}),
                                       client.patch(f"/v1/classes/{class_id}", json={"expected_students": 24}))
        assert [change.status_code for change in changes] == [200, 200]
        kept = (await client.get(f"/v1/classes/{class_id}")).json()
    assert (kept["name"], kept["expected_students"]) == ("Algebra", 24)


async def test_a_class_deleted_while_it_is_changed_does_not_come_back(redis_url, redis_client, class_id):
    """A change read the whole class and wrote it back: made while the class was deleted, it brought the class's
    record back without its index entry (a class no list shows, its series and lessons gone). The roster's update of
    an LTI course's size was written so too."""
    async with admin_client(redis_url) as client:
        assert (await client.post("/v1/classes", json={"class_id": class_id})).status_code == 201

        async def after(turns: int, request: Awaitable[httpx.Response]) -> httpx.Response:
            for _turn in range(turns):
                await asyncio.sleep(0)
            return await request

        # Changes started a turn of the event loop apart, the deletion amid them: some read the class before the
        # deletion and write after it.
        changes = [after(turns, client.patch(f"/v1/classes/{class_id}", json={"name": f"Geometry {turns}"})) for turns in range(40)]
        deleted, *changed = await asyncio.gather(after(20, client.delete(f"/v1/classes/{class_id}")), *changes)
        assert deleted.status_code == 204
        assert {change.status_code for change in changed} <= {200, 404}  # made before the deletion, or refused
        assert (await client.get(f"/v1/classes/{class_id}")).status_code == 404
    assert not redis_client.exists(class_key(class_id))
    assert redis_client.zscore(CLASS_INDEX, class_id) is None


async def _after(turns: int, work: Awaitable[T]) -> T:
    """`work` started `turns` turns of the event loop from now: requests started so interleave their round trips."""
    for _turn in range(turns):
        await asyncio.sleep(0)
    return await work


async def test_a_class_registered_while_it_is_deleted_is_kept_only_when_the_deletion_found_nothing(redis_url, redis_client):
    """Registration took three round trips (claim the id, write the fields, index it): a deletion amid them answered
    that it removed the class, which the next write made again whole. Now a class the deletion removed stays gone,
    and a class registered after it is whole and indexed."""
    ids = [f"it-{uuid.uuid4().hex[:8]}" for _ in range(12)]
    try:
        async with aioredis.Redis.from_url(redis_url, decode_responses=True) as client:
            store = ClassStore(client, ["1s"])
            outcomes = await asyncio.gather(*(
                asyncio.gather(_after(turns, store.create(ClassRecord(class_id=each, name="Maths"))), _after(6, store.delete(each)))
                for turns, each in enumerate(ids)
            ))
        for each, (created, removed) in zip(ids, outcomes, strict=True):
            kept = redis_client.hgetall(class_key(each))
            assert created
            assert bool(kept) == (removed == 0), (each, removed, kept)
            assert (redis_client.zscore(CLASS_INDEX, each) is not None) == bool(kept)
            assert not kept or kept[b"name"] == b"Maths"
        assert any(removed for _created, removed in outcomes) and any(not removed for _created, removed in outcomes)
    finally:
        for each in ids:
            redis_client.delete(class_key(each))
            redis_client.zrem(CLASS_INDEX, each)


async def test_a_lesson_started_while_its_class_is_deleted_leaves_no_key_behind(redis_url, redis_client, class_id):
    """A start wrote the lesson, its index entry and its event in three round trips: started while the class was
    deleted, it wrote them after the deletion, keys nothing would ever remove. Now a start after the deletion is
    refused (the route answers 404) and one before it is removed with the class."""
    async with aioredis.Redis.from_url(redis_url, decode_responses=True) as client:
        store = ClassStore(client, ["1s"])
        assert await store.create(ClassRecord(class_id=class_id))
        starts = [_after(turns, store.start_session(class_id, f"Lesson {turns}")) for turns in range(12)]
        _removed, *started = await asyncio.gather(_after(6, store.delete(class_id)), *starts)
    left = [session.session_id for session in started if session and redis_client.exists(session_key(class_id, session.session_id))]
    assert left == []
    assert redis_client.exists(sessions_key(class_id)) == 0
    assert None in started and any(started)  # some started before the deletion, some refused after it
    async with admin_client(redis_url) as client:
        refused = await client.post(f"/v1/classes/{class_id}/sessions", json={"name": "Late"})
    assert refused.status_code == 404
