#!/bin/sh
# Writes a sentinel's configuration into its own writable volume (a sentinel rewrites it with what it learns) and
# starts it, monitoring the primary the other sentinels name, or redis-0 when none answers (the first start).
set -eu
conf=/data/sentinel.conf
. /scripts/current-primary.sh
primary="$(current_primary)"
[ -n "$primary" ] || primary=redis-0.redis
cat > "$conf" <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $(hostname).redis-sentinel
requirepass $REDIS_PASSWORD
sentinel sentinel-pass $REDIS_PASSWORD
# Quorum 2 of 3: two sentinels must agree the primary is down; a majority must elect the one that fails over.
sentinel monitor classpulse $primary 6379 2
sentinel auth-pass classpulse $REDIS_PASSWORD
sentinel down-after-milliseconds classpulse 5000
sentinel failover-timeout classpulse 60000
sentinel parallel-syncs classpulse 1
CONF
exec redis-sentinel "$conf"
