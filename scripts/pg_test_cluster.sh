#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on 127.0.0.1 for the test suite and print the
# environment to use it. Installs Debian's postgresql when no server binaries exist.
#   eval "$(bash scripts/pg_test_cluster.sh start)"   # exports CITEWISE_TEST_POSTGRES_URL, PG_TEST_DIR
#   bash scripts/pg_test_cluster.sh stop "$PG_TEST_DIR"
# Fault drills (docs/operations.md): `pause DIR` stops the server and keeps its data,
# `resume DIR` starts it again on the same port.
set -euo pipefail

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
    dir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$dir"
}

as_owner() {
  # initdb and postgres refuse to run as root: use the postgres account then.
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

serve() {  # serve BIN DIR PORT: start the cluster and wait until it accepts connections
  as_owner "$1/pg_ctl" -D "$2/data" -l "$2/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $3 -k $2 -c fsync=off" start >&2
}

case "${1:-start}" in
  start)
    bin=$(pg_bin)
    dir=$(mktemp -d /tmp/citewise-pg.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -U citewise --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
    echo "$port" > "$dir/port"
    serve "$bin" "$dir" "$port"
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U citewise citewise_test
    echo "export PG_TEST_DIR=$dir"
    echo "export CITEWISE_TEST_POSTGRES_URL=postgresql+psycopg://citewise@127.0.0.1:$port/citewise_test"
    ;;
  pause)
    dir=${2:?usage: pause DIR}
    as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >&2
    ;;
  resume)
    dir=${2:?usage: resume DIR}
    serve "$(pg_bin)" "$dir" "$(cat "$dir/port")"
    ;;
  stop)
    dir=${2:?usage: stop DIR}
    bin=$(pg_bin)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >&2 || true
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|pause DIR|resume DIR|stop DIR" >&2; exit 2 ;;
esac
