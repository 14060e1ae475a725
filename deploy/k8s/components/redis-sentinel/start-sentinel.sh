#!/bin/sh
# Starts a sentinel on its state: /data/sentinel.conf, on the pod's own PersistentVolume, which the sentinel rewrites
# with what it learns (the primary, the epoch of the failover that made it, the replicas and the other sentinels).
# Every sentinel restarted at once (a node pool upgrade) still knows which pod is the primary; fresh state would
# name redis-0 even where it is a replica that fell behind, and the others would resync from it, dropping
# acknowledged writes. The file is written on the first start only, monitoring the primary the other sentinels
# name, or redis-0 when none answers (the deployment's first start). The password and the failover timing are
# given on every start, so a rotated Secret or a setting changed here applies.
set -eu
conf=/data/sentinel.conf
if [ ! -s "$conf" ]; then
  . /scripts/current-primary.sh
  primary="$(current_primary)"
  [ -n "$primary" ] || primary=redis-0.redis
  # Renamed into place: a start cut short leaves no half-written file to be taken for the state.
  cat > "$conf.new" <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $(hostname).redis-sentinel
# Quorum 2 of 3: two sentinels must agree the primary is down; a majority must elect the one that fails over.
sentinel monitor classpulse $primary 6379 2
CONF
  mv "$conf.new" "$conf"
fi
# The secrets come from the Secret on every start; the sentinel's own copies in the file go first, or the ACL line of
# a rotated-out password would win over them.
sed -i -e '/^user default /d' -e '/^requirepass /d' \
  -e '/^sentinel auth-pass /d' -e '/^sentinel sentinel-pass /d' "$conf"
exec redis-sentinel "$conf" \
  --requirepass "$REDIS_PASSWORD" \
  --sentinel sentinel-pass "$REDIS_PASSWORD" \
  --sentinel auth-pass classpulse "$REDIS_PASSWORD" \
  --sentinel down-after-milliseconds classpulse 5000 \
  --sentinel failover-timeout classpulse 60000 \
  --sentinel parallel-syncs classpulse 1
