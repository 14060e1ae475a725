#!/bin/sh
# Starts a Redis pod of the StatefulSet as the primary or as its replica, as the sentinels name the primary. It waits
# for them, whatever pod it is: they keep the primary on their volumes (start-sentinel.sh) and name redis-0 on the
# deployment's first start. A pod that took itself or redis-0 for the primary while no sentinel answered (every pod
# restarted at once, say by a node pool upgrade) would hand a replica's data, perhaps behind the primary's, to the
# others, dropping writes they had acknowledged. The sentinels reconfigure a pod that comes back after a failover
# anyway; asking first keeps an old primary from serving stale data meanwhile.
# Arguments: the container's args (redis-server, its config, the password), passed on to the base's start script
# (maxmemory from the memory limit, then the image's entrypoint).
set -eu
self="$(hostname).redis"
. /scripts/current-primary.sh
until primary="$(current_primary)"; [ -n "$primary" ]; do
  echo "start-redis.sh: no sentinel names the primary yet" >&2
  sleep 2
done
failover=""
# Left on the volume while it holds nothing it synced: what an empty pod writes as a replica of nothing (an append-only
# dir, a snapshot at shutdown) is no data set, and a restart before the failover must not take it for one.
unsynced=/data/unsynced-since-empty
if [ "$primary" = "$self" ] && { [ -e "$unsynced" ] || { [ ! -e /data/appendonlydir ] && [ ! -e /data/dump.rdb ]; }; }; then
  # Named the primary with nothing on its volume (lost, or recreated empty) while the sentinels know replicas: back
  # before they noticed it was away, or while none was promotable. As the primary it would have the replicas copy its
  # empty data set, every class wiped (Redis's "safety of replication when master has persistence turned off"). It
  # follows one of them instead (a replica without a primary refuses to sync it, so none copies anything meanwhile)
  # and has the sentinels promote one; then it syncs from that one. Only the deployment's first start, when the
  # sentinels know no replica, has a primary begin empty.
  replica="$(known_replicas | sed -n 1p)"
  if [ -n "$replica" ]; then
    echo "start-redis.sh: named the primary with an empty volume; following $replica until a replica is promoted" >&2
    primary="$replica"
    failover=yes
    touch "$unsynced"
  fi
fi
set -- "$@" --masterauth "$REDIS_PASSWORD" --replica-announce-ip "$self"
# A primary takes a write only while a replica follows it (acknowledged within 5 s): one cut off from the replicas and
# the sentinels by a partition refuses writes within seconds rather than until the partition heals, when the replica
# the sentinels promoted meanwhile has it drop them all. Two replicas: one may be away (a drain, a restart).
set -- "$@" --min-replicas-to-write 1 --min-replicas-max-lag 5
if [ "$primary" != "$self" ]; then
  # Never promoted (replica-priority 0) before it has synced with the primary: until then it holds what its own disk
  # had, perhaps far behind, and the sentinels cannot tell (a restart from the append-only file forgets the
  # replication offset they rank replicas by). After a restart of every pod they wait for the old primary to come back
  # rather than promote such a replica. The image's default priority once the link is up.
  set -- "$@" --replicaof "$primary" 6379 --replica-priority 0
  (
    # $$ is this shell, redis-server once exec'd below: the loop ends with it.
    while kill -0 $$ 2>/dev/null; do
      if redis-cli -h "$self" INFO replication 2>/dev/null | grep -q '^master_link_status:up' &&
        rm -f "$unsynced" && [ "$(redis-cli -h "$self" CONFIG SET replica-priority 100 2>/dev/null)" = OK ]; then
        break
      fi
      sleep 1
    done
  ) &
fi
if [ -n "$failover" ]; then
  (
    while kill -0 $$ 2>/dev/null; do
      named="$(current_primary)"
      if [ -n "$named" ] && [ "$named" != "$self" ]; then
        break
      fi
      # One sentinel runs the failover: asking another while one is at it (INPROG) would start a second.
      for index in 0 1 2; do
        case "$(ask_sentinel "$index" SENTINEL FAILOVER classpulse)" in OK | INPROG*) break ;; esac
      done
      sleep 5
    done
  ) &
fi
exec sh /etc/redis/start-redis-server.sh "$@"
