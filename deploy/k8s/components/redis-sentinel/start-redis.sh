#!/bin/sh
# Starts a Redis pod of the StatefulSet as the replica of the current primary, which the sentinels name; only when no
# sentinel answers (the very first start of the deployment) is redis-0 the primary. The sentinels reconfigure a pod
# that comes back after a failover anyway; asking first keeps an old primary from serving stale data meanwhile.
# Arguments: the container's args (redis-server, its config, the password), passed on to the image's entrypoint.
set -eu
self="$(hostname).redis"
. /scripts/current-primary.sh
primary="$(current_primary)"
if [ -z "$primary" ] && [ "$(hostname)" != redis-0 ]; then
  primary=redis-0.redis
fi
set -- "$@" --masterauth "$REDIS_PASSWORD" --replica-announce-ip "$self"
if [ -n "$primary" ] && [ "$primary" != "$self" ]; then
  set -- "$@" --replicaof "$primary" 6379
fi
exec docker-entrypoint.sh "$@"
