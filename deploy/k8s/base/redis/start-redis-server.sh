#!/bin/sh
# Starts redis-server (the arguments: redis-server, its config, the password) through the official image's entrypoint,
# which loads the bundled modules, with maxmemory two thirds of the container's memory limit (REDIS_MEMORY_LIMIT_MIB:
# the limit in MiB, from the downward API in Kubernetes, the same setting as the container's limit in compose). Past
# maxmemory, noeviction (redis.conf) refuses writes, which the aggregator retries; without it the kernel kills Redis
# at the limit. The third left holds what maxmemory does not count: the copy-on-write pages of the fork that rewrites
# the append-only file, replication and client buffers.
set -eu
exec docker-entrypoint.sh "$@" --maxmemory "$((REDIS_MEMORY_LIMIT_MIB * 2 / 3))mb"
