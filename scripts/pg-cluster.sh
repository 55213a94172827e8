#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite and the benchmarks (issue 23): initdb into
# DIR, listening on 127.0.0.1:PORT only, password-less for loopback connections, durable as
# PostgreSQL's defaults are (fsync on). PostgreSQL refuses to run as root; as root the cluster
# belongs to the unprivileged `postgres` user that Debian's package creates.
#
#   scripts/pg-cluster.sh start DIR PORT   # prints postgres://huren@127.0.0.1:PORT/huren
#   scripts/pg-cluster.sh stop DIR
set -euo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    port=${3:?port}
    if [ ! -f "$dir/PG_VERSION" ]; then
      mkdir -p "$dir"
      [ "$(id -u)" = 0 ] && chown postgres: "$dir"
      as_owner "$bin/initdb" -D "$dir" -U huren --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
      cat >>"$dir/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = 256MB
EOF
    fi
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
    as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U huren -d postgres -qtAc \
      "SELECT 1 FROM pg_database WHERE datname = 'huren'" | grep -q 1 ||
      as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U huren huren
    echo "postgres://huren@127.0.0.1:$port/huren"
    ;;
  stop)
    [ -f "$dir/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
  *)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
