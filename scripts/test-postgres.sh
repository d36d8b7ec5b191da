# Sourced by scripts/test.sh: starts a private PostgreSQL on a free loopback port for the
# tests (unless PORTCULLIS_TEST_POSTGRES_URL already names one), stopped when the script exits.
# Installs Debian's postgresql package if the server binaries are missing and we are root.

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

start_test_postgres() {
  if [ -n "${PORTCULLIS_TEST_POSTGRES_URL:-}" ]; then
    echo "using PostgreSQL at $PORTCULLIS_TEST_POSTGRES_URL"
    return
  fi
  local bin
  bin=$(pg_bin)
  if [ -z "$bin" ] && [ "$(id -u)" = 0 ]; then
    echo "installing PostgreSQL (Debian package)"
    (apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; })
    bin=$(pg_bin)
  fi
  if [ -z "$bin" ]; then
    echo "PostgreSQL server binaries not found; install postgresql or set PORTCULLIS_TEST_POSTGRES_URL" >&2
    exit 1
  fi
  PG_TEST_DIR=$(mktemp -d)
  local port run=()
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_TEST_DIR"
    run=(runuser -u postgres --)
  fi
  # From /, which the postgres user can enter (the caller's directory may be private).
  (cd / && "${run[@]}" "$bin/initdb" -D "$PG_TEST_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null)
  (cd / && "${run[@]}" "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/log" -w start \
    -o "-p $port -k $PG_TEST_DIR -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null)
  PG_TEST_STOP=("${run[@]}" "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -m fast stop)
  trap stop_test_postgres EXIT
  export PORTCULLIS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "started PostgreSQL on 127.0.0.1:$port"
}

stop_test_postgres() {
  (cd / && "${PG_TEST_STOP[@]}" >/dev/null 2>&1) || true
  rm -rf "$PG_TEST_DIR"
}
