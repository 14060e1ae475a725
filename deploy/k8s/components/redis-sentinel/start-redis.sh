#!/bin/sh
# Starts a Redis pod of the StatefulSet as the replica of the current primary, which the sentinels name; only when no
# sentinel answers (the very first start of the deployment) is redis-0 the primary. The sentinels reconfigure a pod
# that comes back after a failover anyway; asking first keeps an old primary from serving stale data meanwhile.
# Arguments: the container's args (redis-server, its config, the password), passed on to the base's start script
# (maxmemory from the memory limit, then the image's entrypoint).
set -eu
self="$(hostname).redis"
. /scripts/current-primary.sh
primary="$(current_primary)"
if [ -z "$primary" ] && [ "$(hostname)" != redis-0 ]; then
  primary=redis-0.redis
fi
set -- "$@" --masterauth "$REDIS_PASSWORD" --replica-announce-ip "$self"
# A primary takes a write only while a replica follows it (acknowledged within 5 s): one cut off from the replicas and
# the sentinels by a partition refuses writes within seconds rather than until the partition heals, when the replica
# the sentinels promoted meanwhile has it drop them all. Two replicas: one may be away (a drain, a restart).
set -- "$@" --min-replicas-to-write 1 --min-replicas-max-lag 5
if [ -n "$primary" ] && [ "$primary" != "$self" ]; then
  set -- "$@" --replicaof "$primary" 6379
fi
exec sh /etc/redis/start-redis-server.sh "$@"
