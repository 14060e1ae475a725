# Sourced by the start scripts: current_primary prints the primary's address as the first sentinel that answers
# names it (the sentinel of this pod's name, if any, is skipped: it is the one starting), or nothing. REDISCLI_AUTH
# (the container's env) authenticates redis-cli to the sentinels, which share Redis's password.
current_primary() {
  for index in 0 1 2; do
    [ "$(hostname)" = "redis-sentinel-$index" ] && continue
    answer="$(redis-cli -h "redis-sentinel-$index.redis-sentinel" -p 26379 --raw \
      SENTINEL GET-MASTER-ADDR-BY-NAME classpulse 2>/dev/null | head -n 1)" || answer=""
    if [ -n "$answer" ]; then
      echo "$answer"
      return
    fi
  done
}
