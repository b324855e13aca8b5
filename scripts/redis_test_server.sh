#!/usr/bin/env bash
# Start a throwaway Redis server on 127.0.0.1 (random free port, no persistence, in a
# temporary directory) for the test suite and print the environment to use it.
# Installs Debian's redis-server when it is missing.
#   eval "$(bash scripts/redis_test_server.sh start)"   # exports CITEWISE_TEST_REDIS_URL, REDIS_TEST_DIR
#   bash scripts/redis_test_server.sh stop "$REDIS_TEST_DIR"
# Fault drills (docs/operations.md): `pause DIR` stops the server and keeps its folder,
# `resume DIR` starts it again on the same port.
set -euo pipefail

redis_bin() {
  if ! command -v redis-server >/dev/null 2>&1; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >&2
  fi
  command -v redis-server
}

redis_ping() {  # PING over a plain socket: no redis-cli needed
  python3 - "$1" <<'EOF'
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
    s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
EOF
}

serve() {  # serve DIR PORT: start the server daemonized and wait for its PONG
  local dir=$1 port=$2
  "$(redis_bin)" --bind 127.0.0.1 --port "$port" --dir "$dir" --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >&2
  for _ in $(seq 100); do
    redis_ping "$port" 2>/dev/null && break
    sleep 0.1
  done
  redis_ping "$port" || { cat "$dir/redis.log" >&2; exit 1; }
}

halt() {  # halt DIR: stop the server, wait until it is gone
  local dir=$1 pid
  if [ -f "$dir/redis.pid" ]; then
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
}

case "${1:-start}" in
  start)
    dir=$(mktemp -d /tmp/citewise-redis.XXXXXX)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" > "$dir/port"
    serve "$dir" "$port"
    echo "export REDIS_TEST_DIR=$dir"
    echo "export CITEWISE_TEST_REDIS_URL=redis://127.0.0.1:$port/0"
    ;;
  pause) halt "${2:?usage: pause DIR}" ;;
  resume) dir=${2:?usage: resume DIR}; serve "$dir" "$(cat "$dir/port")" ;;
  stop)
    dir=${2:?usage: stop DIR}
    halt "$dir"
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|pause DIR|resume DIR|stop DIR" >&2; exit 2 ;;
esac
