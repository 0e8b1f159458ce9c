#!/usr/bin/env bash
# A project-local Postgres cluster, for `make run` (kept under .data/pg and reused) and for the
# tests (a throwaway cluster under a temporary folder).
#
#   scripts/pg.sh start DIR PORT   initialise DIR when empty, start the server on 127.0.0.1:PORT
#   scripts/pg.sh stop DIR         stop the server of DIR
#   scripts/pg.sh url DIR PORT     print the DATABASE_URL of that cluster
#
# initdb refuses to run as root, so as root the cluster belongs to the unprivileged `nobody`.
set -euo pipefail

cmd=${1:?usage: pg.sh start|stop|url DIR [PORT]}
dir=$(realpath -m "${2:?data directory}")
port=${3:-5432}

bindir=""
for candidate in /usr/lib/postgresql/*/bin; do
  [ -x "$candidate/initdb" ] && bindir=$candidate
done
if [ -z "$bindir" ] && [ "$cmd" != url ]; then
  echo "pg.sh: no Postgres server binaries found; run scripts/install-deps.sh" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown nobody "$dir"
    chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$dir" -U mgpass --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/../initdb.log" 2>&1 \
        || { cat "$dir/../initdb.log" >&2; exit 1; }
    fi
    if as_owner "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      exit 0
    fi
    as_owner "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=${PG_FSYNC:-on}" start >/dev/null
    # The application's database.
    for _ in $(seq 1 50); do
      if psql -h 127.0.0.1 -p "$port" -U mgpass -d postgres -Atqc 'select 1' >/dev/null 2>&1; then break; fi
      sleep 0.2
    done
    if ! psql -h 127.0.0.1 -p "$port" -U mgpass -d postgres -Atqc "select 1 from pg_database where datname='mgpass'" | grep -q 1; then
      psql -h 127.0.0.1 -p "$port" -U mgpass -d postgres -qc 'create database mgpass' >/dev/null
    fi
    ;;
  stop)
    if [ -f "$dir/PG_VERSION" ]; then
      as_owner "$bindir/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
  url)
    echo "postgres://mgpass@127.0.0.1:$port/mgpass"
    ;;
  *)
    echo "pg.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
