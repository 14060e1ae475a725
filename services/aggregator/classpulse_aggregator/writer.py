"""Idempotent writes of frame results into RedisTimeSeries, and the per-source presence accounting.

One Lua script per frame does, atomically (no other command runs between its steps):
1. skip the frame if it was counted already (its sequence number is in a per-source, per-minute set that expires
   after the dedup window; a small set of integers costs a few bytes a frame);
2. refuse it, before writing anything, if a sample of it would be refused (older than a series' retention behind
   that series' newest sample) or would empty a roll-up bucket (a closed bucket that began before the raw seconds
   the series keeps: RedisTimeSeries sums a bucket written into again from the raw seconds, which no longer hold all
   of it): a script is not rolled back, so a refusal halfway would count half a frame;
3. add its counts to the per-second sums, creating the class's series and compaction rules on first use; the emotion
   sums only while the class's own record allows emotions at this very moment (a class switched to presence-only
   gets none written, whatever was in flight when it switched);
4. move the source's presence (below) and the class's watched seconds;
5. only then remember the frame as counted.
A redelivered frame therefore changes nothing, and a refused one is never remembered as counted: the stage
dead-letters it with the reason.

Replicas: a script's effects reach a replica together (sums and the frame's mark, or neither), and with
`replicas` > 0 a batch's pipeline ends with `WAIT replicas timeout` (classpulse_store.replication); a batch not held
by that many replicas raises `ReplicasBehind`, so its offsets are not committed and it is written again (as duplicates
where it did land). A primary lost right after a batch therefore loses no frame whose offset was committed: the promoted
replica holds it, and what it lacks is redelivered and counted once.

Presence: a frame says how many students its camera shows (a personal camera: 1 if it shows a face, else 0; a room
or gallery camera: its faces). That count holds from the frame's capture time until the source's next frame, or for the
presence window if none comes (a student page posts a snapshot every few seconds; a camera that stops counts as gone
once its window runs out). The script writes it ahead into the `present` series, spread over the seconds it covers
(fractions of a second where it starts or ends), and when the next frame comes earlier it corrects the part written
ahead by the difference. `observed` gets 1 for each second covered by any source of the class, whatever order its
sources' frames come in (the class's watched intervals are kept for the raw retention). Both are sums like
every other series, so any bucket's students on camera is present / observed (indices.py).

Facing: `facing` (students whose head faces their camera) and `posed` (students with a head pose at all: BlazeFace
faces, not Haar ones) are held per source exactly like `present`, so any bucket's facing share is facing / posed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import redis
from redis.typing import EncodableT

from classpulse_core.schemas import FrameResult
from classpulse_core.timeseries import (
    EMOTION_METRICS,
    FACES,
    FACING,
    FRAMES,
    OBSERVED,
    POSED,
    PRESENT,
    RAW_RESOLUTION,
    Resolution,
    series_key,
)
from classpulse_store.classkeys import class_presence_key, dedup_key, keys_index, source_presence_key
from classpulse_store.registry import class_key
from classpulse_store.replication import execute_replicated

# KEYS: 1 dedup set, 2 class record, 3 source presence state, 4 class presence state, 5 the class's key index, then
# the raw series: frames, faces, present, observed, facing, posed and, when the frame has emotions, the seven emotion
# sums.
# ARGV: 1 sequence, 2 dedup ttl (s), 3 capture time (ms), 4 class id, 5 raw retention (ms), 6 presence window (ms),
# 7 students the frame shows on camera, 8 of them facing it, 9 of them with a head pose, 10 emotions allowed by the
# deployment (1/0), 11 compaction count c, then c triples (name, bucket ms, retention ms), then per raw series its
# metric name and the value to add (present, observed, facing and posed: computed here).
_WRITE_FRAME = """
local FIRST_SERIES, PRESENT, OBSERVED, FACING, POSED, FIRST_EMOTION = 6, 8, 9, 10, 11, 12
local HELD = {PRESENT, FACING, POSED}
local HELD_FIELDS = {'count', 'facing', 'posed'}
local seq, ttl, t, class_id = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local retention, window = tonumber(ARGV[5]), tonumber(ARGV[6])
local shown = {tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])}
local ncomp = tonumber(ARGV[11])
local first_value = 12 + 3 * ncomp

if redis.call('SISMEMBER', KEYS[1], seq) == 1 then return 'duplicate' end
if redis.call('EXISTS', KEYS[2]) == 0 then return 'refused:unknown class: ' .. class_id .. ' is not registered' end
local last_series = FIRST_EMOTION - 1
if #KEYS >= FIRST_EMOTION and ARGV[10] == '1' and redis.call('HGET', KEYS[2], 'emotion_enabled') ~= '0' then
  last_series = #KEYS
end
local emotions_dropped = #KEYS >= FIRST_EMOTION and last_series < FIRST_EMOTION

-- Which series exist, looked up once: the check below and the writes after it both need it.
local exists = {}
local second = t - t % 1000
for i = FIRST_SERIES, last_series do
  exists[i] = redis.call('EXISTS', KEYS[i]) == 1
  if exists[i] then
    local newest = redis.call('TS.GET', KEYS[i])
    if newest[1] then
      local newest_t, kept_from = tonumber(newest[1]), tonumber(newest[1]) - retention
      if second < kept_from then
        return 'refused:older than retention: capture time ' .. t .. ' is more than ' .. retention ..
          ' ms before the newest sample of ' .. KEYS[i]
      end
      -- A sample added to a roll-up bucket that has closed makes RedisTimeSeries sum that bucket again from the
      -- raw seconds, and those it trimmed are gone: the bucket (kept for months) would lose them for good. Asked of
      -- `frames`, written at capture seconds only (never ahead, as presence is): a frame in a closed bucket of it is
      -- late, and its other samples fall in the same closed buckets.
      if i == FIRST_SERIES then
        for c = 0, ncomp - 1 do
          local bucket = tonumber(ARGV[13 + 3 * c])
          local bucket_start = second - second % bucket
          if bucket_start < newest_t - newest_t % bucket and bucket_start < kept_from then
            return 'refused:older than its roll-up: capture time ' .. t .. ' falls in a closed ' .. ARGV[12 + 3 * c] ..
              ' bucket of ' .. KEYS[i] .. ' that began before the raw seconds it keeps (' .. retention ..
              ' ms): summed again from them it would lose the rest'
          end
        end
      end
    end
  end
end

local function ensure(i)
  local key = KEYS[i]
  if exists[i] then return key end
  exists[i] = true
  local metric = ARGV[first_value + (i - FIRST_SERIES) * 2]
  redis.call('TS.CREATE', key, 'RETENTION', retention, 'DUPLICATE_POLICY', 'SUM',
    'LABELS', 'app', 'classpulse', 'class_id', class_id, 'metric', metric, 'resolution', '{raw}')
  for c = 0, ncomp - 1 do
    local name, bucket, kept = ARGV[12 + 3 * c], ARGV[13 + 3 * c], ARGV[14 + 3 * c]
    local compacted = key .. ':' .. name
    redis.call('DEL', compacted)
    redis.call('TS.CREATE', compacted, 'RETENTION', kept, 'DUPLICATE_POLICY', 'LAST',
      'LABELS', 'app', 'classpulse', 'class_id', class_id, 'metric', metric, 'resolution', name)
    redis.call('TS.CREATERULE', key, compacted, 'AGGREGATION', 'sum', bucket)
  end
  return key
end

-- Adds `amount` for each second of [from, to), in proportion to the part of the second covered.
local function spread(i, from, to, amount)
  if amount == 0 or to <= from then return end
  local key = ensure(i)
  local second = from - from % 1000
  while second < to do
    local covered = math.min(second + 1000, to) - math.max(second, from)
    redis.call('TS.ADD', key, second, tostring(amount * covered / 1000), 'ON_DUPLICATE', 'SUM')
    second = second + 1000
  end
end

for i = FIRST_SERIES, last_series do
  if i < PRESENT or i > POSED then
    redis.call('TS.ADD', ensure(i), t - t % 1000, ARGV[first_value + (i - FIRST_SERIES) * 2 + 1], 'ON_DUPLICATE', 'SUM')
  end
end

-- The source's counts (students, facing, with a pose) hold from t for the window; what an earlier frame wrote ahead
-- past t is corrected. A frame older than the source's last one (out of order) is counted above but does not move
-- them. A state written before facing was counted has no facing or posed field: it held 0 of them.
local state = redis.call('HMGET', KEYS[3], 'until', 'last', unpack(HELD_FIELDS))
local held_until, last = tonumber(state[1]) or 0, tonumber(state[2]) or -1
if t >= last then
  local new_until = t + window
  for k, i in ipairs(HELD) do
    local held, now = tonumber(state[2 + k]) or 0, shown[k]
    if held_until > t then
      spread(i, t, math.min(held_until, new_until), now - held)
      spread(i, new_until, held_until, -held)
    end
    spread(i, math.max(held_until, t), new_until, now)
  end
  redis.call('HSET', KEYS[3], 'until', new_until, 'last', t, 'count', shown[1], 'facing', shown[2], 'posed', shown[3])
  redis.call('EXPIRE', KEYS[3], ttl)
end
-- The class's watched time, as disjoint intervals [from, to) sorted by start ("from,to;..."): `observed` gets only the
-- part of [t, t + window) no interval covers yet. A frame of one camera captured before another's that came first
-- (a snapshot uploaded late, a recording's frames) covers seconds a high-water mark took for watched already. A
-- state of the former shape holds only 'until': everything before it counts as covered.
local covered = {}
local state_text = redis.call('HGET', KEYS[4], 'covered')
if state_text then
  for from, to in string.gmatch(state_text, '(%d+),(%d+)') do covered[#covered + 1] = {tonumber(from), tonumber(to)} end
else
  local former_until = tonumber(redis.call('HGET', KEYS[4], 'until'))
  if former_until then
    covered[1] = {0, former_until}
    redis.call('HDEL', KEYS[4], 'until')
  end
end
local cursor, frame_end = t, t + window
for _, interval in ipairs(covered) do
  if cursor >= frame_end then break end
  if interval[2] > cursor and interval[1] < frame_end then
    if interval[1] > cursor then spread(OBSERVED, cursor, interval[1], 1) end
    cursor = math.max(cursor, interval[2])
  end
end
if cursor < frame_end then spread(OBSERVED, cursor, frame_end, 1) end
covered[#covered + 1] = {t, frame_end}
table.sort(covered, function(a, b) return a[1] < b[1] end)
-- Merged, and trimmed to the raw retention behind the newest: an older frame is refused above.
local merged, newest_end = {}, 0
for _, interval in ipairs(covered) do newest_end = math.max(newest_end, interval[2]) end
for _, interval in ipairs(covered) do
  local last = merged[#merged]
  if last and interval[1] <= last[2] then
    last[2] = math.max(last[2], interval[2])
  elseif interval[2] >= newest_end - retention then
    merged[#merged + 1] = {interval[1], interval[2]}
  end
end
local parts = {}
for k, interval in ipairs(merged) do parts[k] = string.format('%.0f,%.0f', interval[1], interval[2]) end
redis.call('HSET', KEYS[4], 'covered', table.concat(parts, ';'))
redis.call('EXPIRE', KEYS[4], ttl)

-- The per-source keys go in the class's key index (classkeys.py), scored by when they expire, once per source and
-- minute (when its dedup set is new; the minute's other frames push the expiry by under a minute, hence the margin),
-- and the entries of keys expired since are dropped.
if redis.call('EXISTS', KEYS[1]) == 0 then
  local clock = redis.call('TIME')
  local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local expires = now_ms + tonumber(ttl) * 1000 + 60000
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now_ms)
  redis.call('ZADD', KEYS[5], expires, KEYS[1], expires, KEYS[3])
end
redis.call('SADD', KEYS[1], seq)
redis.call('EXPIRE', KEYS[1], ttl)
if emotions_dropped then return 'new:emotions off' end
return 'new'
""".replace("{raw}", RAW_RESOLUTION)


class Written(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


@dataclass(frozen=True)
class FrameWrite:
    """What happened to one frame's write."""

    outcome: Written
    reason: str = ""
    """Why it was refused, or, for a new frame, "emotions off" when its emotion sums were left out."""


def faces_found(result: FrameResult) -> int:
    """The faces found in a frame: those it carries and those beyond the most a message carries."""
    return len(result.boxes) + result.faces_beyond


def students_on_camera(result: FrameResult) -> int:
    """How many students a frame shows: one at most on a student's own camera, every face on a room or gallery
    camera (a gallery's tiles are students' own webcams, one face each)."""
    faces = faces_found(result)
    return min(faces, 1) if result.camera_kind == "personal" else faces


def students_facing(result: FrameResult) -> tuple[int, int]:
    """(facing their camera, with a head pose) among the students a frame shows, as `students_on_camera` counts
    them: on a student's own camera, the student is its largest face (someone passing behind is smaller); on a room
    or gallery camera, every face. A face without a pose (Haar's, one beyond the most a message carries, or one of a
    message from before head pose) is in neither count."""
    flags = result.facing or [None] * len(result.boxes)
    if result.camera_kind == "personal" and flags:
        flags = [max(zip(result.boxes, flags, strict=True), key=lambda pair: pair[0][2] * pair[0][3])[1]]
    return sum(flag is True for flag in flags), sum(flag is not None for flag in flags)


class SeriesWriter:
    def __init__(
        self,
        client: redis.Redis,
        resolutions: tuple[Resolution, ...],
        dedup_window_s: int,
        presence_window_ms: int = 12_000,
        emotion_enabled: bool = True,
        replicas: int = 0,
        replica_timeout_ms: int = 2000,
    ) -> None:
        """`resolutions`: the raw one first, then the compactions (see StorageSettings.resolutions); `replicas`: how
        many replicas must hold a batch before `write` returns (0: no WAIT)."""
        raw, *compactions = resolutions
        self.client = client
        self.replicas = replicas
        self.replica_timeout_ms = replica_timeout_ms
        self.dedup_window_s = dedup_window_s
        self.presence_window_ms = presence_window_ms
        self.emotion_enabled = emotion_enabled
        self._script = client.register_script(_WRITE_FRAME)
        self._fixed_args: list[EncodableT] = [len(compactions)]
        for resolution in compactions:
            self._fixed_args += [resolution.name, resolution.bucket_ms, resolution.retention_ms]
        self.raw_retention_ms = raw.retention_ms

    def write(self, results: list[FrameResult]) -> list[FrameWrite]:
        """Write a batch in one round trip; one outcome per frame, in order."""
        pipeline = self.client.pipeline(transaction=False)
        for result in results:
            keys, args = self._frame_arguments(result)
            self._script(keys=keys, args=args, client=pipeline)
        return [_outcome(reply) for reply in execute_replicated(pipeline, self.replicas, self.replica_timeout_ms)]

    def _frame_arguments(self, result: FrameResult) -> tuple[list[str], list[EncodableT]]:
        class_id = result.class_id
        minute = result.captured_at_ms // 60_000
        values: list[tuple[str, float]] = [
            (FRAMES, 1), (FACES, faces_found(result)), (PRESENT, 0), (OBSERVED, 0), (FACING, 0), (POSED, 0)
        ]
        if result.probabilities is not None and self.emotion_enabled:
            sums = [sum(column) for column in zip(*result.probabilities, strict=True)] or [0.0] * len(EMOTION_METRICS)
            values += list(zip(EMOTION_METRICS, sums, strict=True))
        keys = [
            dedup_key(class_id, result.source_id, minute),
            class_key(class_id),
            source_presence_key(class_id, result.source_id),
            class_presence_key(class_id),
            keys_index(class_id),
        ] + [series_key(class_id, metric) for metric, _ in values]
        args: list[EncodableT] = [
            result.sequence, self.dedup_window_s, result.captured_at_ms, class_id, self.raw_retention_ms,
            self.presence_window_ms, students_on_camera(result), *students_facing(result), int(self.emotion_enabled),
            *self._fixed_args,
        ]
        for metric, value in values:
            args += [metric, repr(float(value))]
        return keys, args


def _outcome(reply: bytes | str) -> FrameWrite:
    text = reply.decode() if isinstance(reply, bytes) else reply
    outcome, _, reason = text.partition(":")
    return FrameWrite(Written(outcome), reason)
