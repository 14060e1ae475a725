# Sourced by the start scripts: current_primary prints the primary's address as the first sentinel that answers
# names it (the sentinel of this pod's name, if any, is skipped: it is the one starting), or nothing. REDISCLI_AUTH
# (the container's env) authenticates redis-cli to the sentinels, which share Redis's password. redis-cli prints an
# error reply (NOAUTH, WRONGPASS, a server that is no sentinel) on stdout and exits 0: only an answer of a host and a
# port names the primary.
current_primary() {
  for index in 0 1 2; do
    [ "$(hostname)" = "redis-sentinel-$index" ] && continue
    answer="$(redis-cli -h "redis-sentinel-$index.redis-sentinel" -p 26379 --raw \
      SENTINEL GET-MASTER-ADDR-BY-NAME classpulse 2>/dev/null)" || answer=""
    host="$(printf '%s\n' "$answer" | sed -n 1p)"
    port="$(printf '%s\n' "$answer" | sed -n 2p)"
    case "$host" in "" | *[!A-Za-z0-9.:-]*) continue ;; esac
    case "$port" in "" | *[!0-9]*) continue ;; esac
    echo "$host"
    return
  done
}
