"""The leases that make each source run on exactly one ingest replica, against the real Redis: one claim wins, a
renewal keeps it, a replica that stopped renewing loses it to another and can then write nothing, a stop reaches
the owner, a webcam goes only to a replica of its own machine, and the owner stops trusting its lease before any other
replica may claim it."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from classpulse_ingest.source_store import (
    ALL_KEY,
    FINISHED_KEY,
    LEASE_SAFETY,
    UNFINISHED_KEY,
    Lease,
    SourceStore,
    lease_key,
    progress_fields,
    record_key,
)

# Sources released here are unowned: on database 0 the session's stack's ingest would claim them between two steps.
pytestmark = [pytest.mark.integration, pytest.mark.own_redis_database]

TTL_MS = 600


@pytest.fixture
def store(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    made: list[str] = []
    store = SourceStore(client, finished_kept=2)

    def new_source(state: str = "waiting") -> str:
        """A source created by a replica that then let it go (as at its shutdown): unowned, to be claimed."""
        source_id = f"lease-test-{uuid.uuid4().hex[:10]}"
        created = store.create(source_id, "/media/lesson.mp4", True, _status(source_id, state), "creator/1", TTL_MS, "creator")
        assert created is not None and created.next_sequence == 0 and created.owner == ""
        assert store.release(source_id, "creator/1", [])
        made.append(source_id)
        return source_id

    store.new_source = new_source
    store.made = made  # removed afterwards, with their leases
    yield store
    for source_id in made:
        client.delete(record_key(source_id), lease_key(source_id))
        client.srem(UNFINISHED_KEY, source_id)
        client.zrem(ALL_KEY, source_id)
        client.zrem(FINISHED_KEY, source_id)
    client.close()


def _status(source_id: str, state: str) -> dict:
    return {"source_id": source_id, "state": state, "started_at_ms": int(time.time() * 1000), "fps": 2.0}


def test_one_claim_wins_and_the_source_is_no_longer_unowned(store):
    source_id = store.new_source()
    assert source_id in store.unowned()
    first = store.claim(source_id, "replica-a/1", TTL_MS, "replica-a")
    second = store.claim(source_id, "replica-b/1", TTL_MS, "replica-b")
    assert first is not None and first.owner == "" and second is None
    assert source_id not in store.unowned()
    assert store.get(source_id).owner == "replica-a" and store.get(source_id).leased


def test_renewals_keep_the_lease_past_its_time_to_live_and_carry_progress(store):
    source_id = store.new_source()
    store.claim(source_id, "replica-a/1", TTL_MS, "replica-a")
    for sequence in range(1, 5):
        time.sleep(TTL_MS / 2000)
        fields = progress_fields(_status(source_id, "live"), sequence, 250.0 * sequence)
        assert store.renew([(source_id, "replica-a/1", fields)], TTL_MS) == [1]
    assert store.claim(source_id, "replica-b/1", TTL_MS, "replica-b") is None
    stored = store.get(source_id)
    assert (stored.next_sequence, stored.continue_at_ms, stored.status["state"]) == (4, 1000.0, "live")


def test_a_replica_that_stopped_renewing_loses_the_source_and_then_writes_nothing(store):
    source_id = store.new_source()
    store.claim(source_id, "replica-a/1", TTL_MS, "replica-a")
    store.renew([(source_id, "replica-a/1", progress_fields(_status(source_id, "live"), 7, 3500.0))], TTL_MS)
    time.sleep(TTL_MS / 1000 + 0.1)
    taken = store.claim(source_id, "replica-b/1", TTL_MS, "replica-b")
    assert taken is not None and taken.owner == "replica-a" and (taken.next_sequence, taken.continue_at_ms) == (7, 3500.0)
    late = progress_fields(_status(source_id, "live"), 99, 1e9)
    assert store.renew([(source_id, "replica-a/1", late)], TTL_MS) == [0]
    assert not store.release(source_id, "replica-a/1", late)
    assert not store.finish(source_id, "replica-a/1", 0, late)
    stored = store.get(source_id)
    assert (stored.next_sequence, stored.owner, stored.leased) == (7, "replica-b", True)


def test_a_released_source_is_claimed_at_once_as_a_handover_not_a_takeover(store):
    source_id = store.new_source()
    store.claim(source_id, "replica-a/1", 60_000, "replica-a")
    assert store.release(source_id, "replica-a/1", progress_fields(_status(source_id, "waiting"), 12, None))
    taken = store.claim(source_id, "replica-b/1", TTL_MS, "replica-b")
    assert taken is not None and taken.owner == "" and taken.next_sequence == 12


def test_a_stop_reaches_the_owner_at_its_renewal_and_an_unowned_source_stops_at_once(store):
    owned, unowned = store.new_source(), store.new_source()
    now_ms = int(time.time() * 1000)  # finished sources are kept newest first
    store.claim(owned, "replica-a/1", TTL_MS, "replica-a")
    assert store.request_stop(owned, now_ms, _status(owned, "stopped")) == 1
    assert store.renew([(owned, "replica-a/1", [])], TTL_MS) == [2]
    assert store.finish(owned, "replica-a/1", now_ms, progress_fields(_status(owned, "stopped"), 3, None))
    assert store.request_stop(unowned, now_ms, _status(unowned, "stopped")) == 0
    assert store.claim(unowned, "replica-b/1", TTL_MS, "replica-b") is None
    assert store.request_stop("lease-test-no-such-source", now_ms, {}) == -1
    assert {store.get(owned).status["state"], store.get(unowned).status["state"]} == {"stopped"}


def test_a_new_source_is_its_creators_at_once_and_an_id_in_use_is_refused(store):
    source_id = f"lease-test-{uuid.uuid4().hex[:10]}"
    store.made.append(source_id)
    created = store.create(source_id, "/media/lesson.mp4", True, _status(source_id, "waiting"), "replica-a/1", TTL_MS, "replica-a")
    assert created is not None and store.claim(source_id, "replica-b/1", TTL_MS, "replica-b") is None
    assert store.get(source_id).owner == "replica-a" and source_id not in store.unowned()
    again = store.create(source_id, "/media/other.mp4", True, _status(source_id, "waiting"), "replica-b/1", TTL_MS, "replica-b")
    assert again is None and store.renew([(source_id, "replica-a/1", [])], TTL_MS) == [1]


def test_a_finished_id_is_reused_with_its_numbers_going_on(store):
    source_id = store.new_source()
    store.claim(source_id, "replica-a/1", TTL_MS, "replica-a")
    store.finish(source_id, "replica-a/1", int(time.time() * 1000), progress_fields(_status(source_id, "ended"), 40, 20_000.0))
    again = store.create(source_id, "/media/other.mp4", True, _status(source_id, "waiting"), "replica-b/1", TTL_MS, "replica-b")
    assert again is not None and again.next_sequence == 40 and again.location == "/media/other.mp4"


def test_finished_sources_beyond_the_kept_number_are_forgotten_oldest_first(store):
    sources = [store.new_source() for _ in range(4)]
    now_ms = int(time.time() * 1000)
    for order, source_id in enumerate(sources):
        store.claim(source_id, f"{source_id}/t", TTL_MS, "replica-a")
        store.finish(source_id, f"{source_id}/t", now_ms + order, progress_fields(_status(source_id, "ended"), 1, None))
    kept = {stored.source_id for stored in store.all()}
    assert store.get(sources[0]) is None and sources[0] not in kept
    assert set(sources[-2:]) <= kept


def test_a_webcam_is_claimed_only_by_a_replica_of_its_own_machine(store):
    source_id = f"lease-test-{uuid.uuid4().hex[:10]}"
    store.made.append(source_id)
    store.create(source_id, "0", True, _status(source_id, "waiting"), "machine-a/1", TTL_MS, "machine-a/1", "machine-a")
    time.sleep(TTL_MS / 1000 + 0.1)  # its replica died
    assert source_id not in store.unowned("machine-b") and source_id in store.unowned("machine-a")
    assert store.claim(source_id, "machine-b/1", TTL_MS, "machine-b/1", "machine-b") is None
    taken = store.claim(source_id, "machine-a/2", TTL_MS, "machine-a/2", "machine-a")
    assert taken is not None and taken.owner == "machine-a/1" and taken.host == "machine-a"


def test_the_owner_stops_trusting_its_lease_before_redis_lets_another_replica_claim_it(store):
    source_id = store.new_source()
    granted_at = time.monotonic()
    store.claim(source_id, "replica-a/1", TTL_MS, "replica-a")
    lease = Lease("replica-a/1", TTL_MS / 1000, granted_at)
    assert lease.held()
    time.sleep(TTL_MS / 1000 * LEASE_SAFETY + 0.02)
    assert not lease.held()
    assert store.client.pttl(lease_key(source_id)) > 0  # still this replica's in Redis: nobody else runs it yet
    lease.renewed(time.monotonic())
    assert lease.held()
    lease.lost = True
    assert not lease.held()
