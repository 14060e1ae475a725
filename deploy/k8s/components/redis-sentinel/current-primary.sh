# Sourced by the start scripts, to ask the sentinels what they know. The sentinel of this pod's name, if any, is never
# asked: it is the one starting. REDISCLI_AUTH (the container's env) authenticates redis-cli to the sentinels, which
# share Redis's password. redis-cli prints an error reply (NOAUTH, WRONGPASS, a server that is no sentinel) on stdout
# and exits 0: only an answer of the expected shape counts.

# ask_sentinel INDEX COMMAND...: redis-sentinel-INDEX's answer to COMMAND, one element a line; nothing if none.
ask_sentinel() {
  index="$1"
  shift
  [ "$(hostname)" = "redis-sentinel-$index" ] && return
  redis-cli -h "redis-sentinel-$index.redis-sentinel" -p 26379 --raw "$@" 2>/dev/null || true
}

is_host() {
  case "$1" in "" | *[!A-Za-z0-9.:-]*) return 1 ;; esac
}

# current_primary prints the primary's address as the first sentinel that answers names it, or nothing.
current_primary() {
  for index in 0 1 2; do
    answer="$(ask_sentinel "$index" SENTINEL GET-MASTER-ADDR-BY-NAME classpulse)"
    host="$(printf '%s\n' "$answer" | sed -n 1p)"
    port="$(printf '%s\n' "$answer" | sed -n 2p)"
    is_host "$host" || continue
    case "$port" in "" | *[!0-9]*) continue ;; esac
    echo "$host"
    return
  done
}

# known_replicas prints the address of every replica of the primary that any sentinel knows, once each: the value
# after each "ip" field of SENTINEL REPLICAS.
known_replicas() {
  for index in 0 1 2; do
    ask_sentinel "$index" SENTINEL REPLICAS classpulse | awk 'field == "ip" { print } { field = $0 }'
  done | sort -u | while read -r host; do
    if is_host "$host"; then echo "$host"; fi
  done
}
