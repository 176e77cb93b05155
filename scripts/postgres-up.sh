#!/usr/bin/env bash
# postgres-up.sh DIR
#
# Start a throwaway PostgreSQL cluster for tests, listening on 127.0.0.1 only,
# with database msn_test owned by role msn (password msn), wait until it is
# ready, and print its connection URL on stdout (the ONLY thing printed on
# stdout, so  PG_URL=$(scripts/postgres-up.sh DIR)  works), e.g.
#   postgres://msn:msn@127.0.0.1:PORT/msn_test
# Progress and errors go to stderr. Stop it with scripts/postgres-down.sh DIR
# (add --purge to delete DIR).
#
# If no server binaries exist under /usr/lib/postgresql/*/bin, Debian's
# `postgresql` package is installed (root only); the Debian default cluster is
# neither created nor started. As root, initdb/pg_ctl run as the `postgres`
# system user (created if missing); DIR gets o+x so that user can reach
# DIR/data, so every parent directory of DIR must be traversable by it.
#
# Layout under DIR:
#   DIR/data/            the cluster (wiped on each start unless PG_KEEP_DATA=1)
#   DIR/run/             unix socket directory
#   DIR/postgres.log     server log
#   DIR/url, DIR/port    the printed URL and the port
#
# Environment knobs (all optional):
#   PG_PORT              TCP port on 127.0.0.1; default: a free port picked automatically
#   PG_BIN               server bin dir; default: newest /usr/lib/postgresql/*/bin
#   PG_OS_USER           OS user running the server when we are root; default postgres
#   PG_READY_TIMEOUT     seconds to wait for readiness; default 30
#   PG_KEEP_DATA=1       reuse an existing DIR/data instead of a fresh initdb
#   PG_DB / PG_ROLE / PG_PASSWORD   default msn_test / msn / msn
#   PG_MAX_CONNECTIONS   default 200
set -euo pipefail

log() { echo "postgres-up: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ $# -eq 1 ] || die "usage: $0 DIR"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
DATA=$DIR/data
SOCK=$DIR/run
LOGFILE=$DIR/postgres.log
DB=${PG_DB:-msn_test}
ROLE=${PG_ROLE:-msn}
PASSWORD=${PG_PASSWORD:-msn}
READY_TIMEOUT=${PG_READY_TIMEOUT:-30}
OS_USER=${PG_OS_USER:-postgres}
MAXCONN=${PG_MAX_CONNECTIONS:-200}
IS_ROOT=0; [ "$(id -u)" = 0 ] && IS_ROOT=1

find_bin() {
  if [ -n "${PG_BIN:-}" ]; then
    [ -x "$PG_BIN/initdb" ] || die "PG_BIN=$PG_BIN has no initdb"
    echo "$PG_BIN"; return
  fi
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then echo "$d"; fi
  done | sort -V | tail -n 1
}

install_postgres() {
  [ "$IS_ROOT" = 1 ] || die "no PostgreSQL server found under /usr/lib/postgresql/*/bin and not root: install Debian's postgresql package (or set PG_BIN)"
  command -v apt-get >/dev/null || die "no PostgreSQL server and no apt-get to install it"
  log "no PostgreSQL server binaries found; installing Debian's postgresql package"
  local t0 guard=""
  t0=$(date +%s)
  # never let the package start services (no systemd here; invoke-rc.d would start
  # the default cluster on 5432): a policy-rc.d that says "no", if none exists
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, from matrix-msn scripts/postgres-up.sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  local APT=(apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  apt-get -q update >&2 || die "apt-get update failed"
  # don't create the default 'main' cluster: we only use our own throwaway ones
  "${APT[@]}" install --no-install-recommends postgresql-common >&2 || die "apt-get install postgresql-common failed"
  if [ -f /etc/postgresql-common/createcluster.conf ]; then
    sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
  fi
  "${APT[@]}" install --no-install-recommends postgresql >&2 || die "apt-get install postgresql failed"
  if [ -n "$guard" ]; then rm -f "$guard"; trap - EXIT; fi
  log "installed postgresql in $(( $(date +%s) - t0 )) s"
}

as_pg() {  # run a command as the server's OS user
  if [ "$IS_ROOT" = 1 ]; then runuser -u "$OS_USER" -- "$@"; else "$@"; fi
}

BIN=$(find_bin)
if [ -z "$BIN" ]; then
  install_postgres
  BIN=$(find_bin)
  [ -n "$BIN" ] || die "postgresql installed but no server binaries under /usr/lib/postgresql/*/bin"
fi
PSQL=$BIN/psql; [ -x "$PSQL" ] || PSQL=psql
ISREADY=$BIN/pg_isready; [ -x "$ISREADY" ] || ISREADY=pg_isready

if [ "$IS_ROOT" = 1 ] && ! id -u "$OS_USER" >/dev/null 2>&1; then
  log "creating system user $OS_USER"
  useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
    --shell /bin/bash "$OS_USER" || die "could not create system user $OS_USER"
fi

# --- refuse to start twice ------------------------------------------------------
alive() {  # pid exists and is not a (fully exited) zombie; PID 1 here reaps orphans with a lag
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ] && return 0
  local t=(/proc/"$1"/task/*)      # zombie leader: alive while other threads still run
  [ "${#t[@]}" -gt 1 ]
}
if [ -f "$DATA/postmaster.pid" ]; then
  OLD=$(head -n 1 "$DATA/postmaster.pid")
  if alive "$OLD" && tr '\0' ' ' < "/proc/$OLD/cmdline" 2>/dev/null | grep -q postgres; then
    die "a PostgreSQL is already running from $DIR (pid $OLD, $(cat "$DIR/url" 2>/dev/null || echo '?')); run scripts/postgres-down.sh $DIR first"
  fi
  log "stale $DATA/postmaster.pid (pid $OLD not running)"
fi

# --- port -------------------------------------------------------------------
port_free() {  # can we bind 127.0.0.1:$1 ?
  if command -v python3 >/dev/null; then
    python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
  else
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 1; fi  # something answers
  fi
}
if [ -n "${PG_PORT:-}" ]; then
  PORT=$PG_PORT
  port_free "$PORT" || die "PG_PORT $PORT on 127.0.0.1 is busy; pick another (or unset PG_PORT for a free one)"
else
  PORT=""
  if command -v python3 >/dev/null; then
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  else
    for p in $(seq 55432 55532); do if port_free "$p"; then PORT=$p; break; fi; done
  fi
  [ -n "$PORT" ] || die "found no free port; set PG_PORT"
fi

# --- fresh cluster ----------------------------------------------------------------
# the server user must be able to reach DIR/data: give DIR, and those of its
# parents that are below /tmp or $TMPDIR (e.g. a mktemp -d), o+x (traverse only)
if [ "$IS_ROOT" = 1 ]; then
  d=""
  IFS=/ read -r -a parts <<< "${DIR#/}"
  for part in "${parts[@]}"; do          # top-down, so the first failure is the real blocker
    d="$d/$part"
    if ! runuser -u "$OS_USER" -- test -x "$d"; then
      case "$d/" in
        "$DIR/"|/tmp/?*|"${TMPDIR:-/tmp}"/?*) chmod o+x "$d"; log "chmod o+x $d (so $OS_USER can reach $DIR)" ;;
        *) die "user $OS_USER cannot traverse $d, so cannot reach $DIR; use a DIR under /tmp (or chmod o+x $d)" ;;
      esac
    fi
  done
fi
mkdir -p "$SOCK"
touch "$LOGFILE"
if [ "$IS_ROOT" = 1 ]; then chown "$OS_USER:" "$SOCK" "$LOGFILE"; fi
if ! as_pg test -w "$SOCK"; then
  die "user $OS_USER cannot write $SOCK"
fi

if [ "${PG_KEEP_DATA:-0}" = 1 ] && [ -f "$DATA/PG_VERSION" ]; then
  log "reusing existing cluster in $DATA"
else
  rm -rf "$DATA"
  mkdir -p "$DATA"
  [ "$IS_ROOT" = 1 ] && chown "$OS_USER:" "$DATA"
  chmod 700 "$DATA"
  t0=$(date +%s.%N)
  if ! as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
       >"$DIR/initdb.log" 2>&1; then
    tail -n 20 "$DIR/initdb.log" >&2
    die "initdb failed (full output: $DIR/initdb.log)"
  fi
  log "initdb done in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") s ($("$BIN/postgres" --version))"
fi

# (re)write our settings each start; the last occurrence of a setting wins
as_pg tee "$DATA/pg_hba.conf" >/dev/null <<'EOF'
# throwaway test cluster (scripts/postgres-up.sh): trust, loopback only
local   all             all                     trust
host    all             all     127.0.0.1/32    trust
local   replication     all                     trust
host    replication     all     127.0.0.1/32    trust
EOF
as_pg tee "$DATA/postgresql.auto.conf" >/dev/null <<EOF
# written by scripts/postgres-up.sh: throwaway test cluster, speed over durability
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
max_connections = $MAXCONN
fsync = off
synchronous_commit = off
full_page_writes = off
log_destination = 'stderr'
logging_collector = off
EOF

# --- start + readiness --------------------------------------------------------------
t0=$(date +%s.%N)
if ! as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t "$READY_TIMEOUT" -s start >&2; then
  tail -n 20 "$LOGFILE" >&2 || true
  die "PostgreSQL failed to start (log: $LOGFILE)"
fi
deadline=$(( $(date +%s) + READY_TIMEOUT ))
until "$ISREADY" -q -h 127.0.0.1 -p "$PORT" -d postgres -U postgres; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    tail -n 20 "$LOGFILE" >&2 || true
    die "PostgreSQL not ready after ${READY_TIMEOUT}s (stop it with scripts/postgres-down.sh $DIR)"
  fi
  sleep 0.1
done

# --- role + database (idempotent, for PG_KEEP_DATA=1) ---------------------------------
if ! "$PSQL" -X -q -h "$SOCK" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
     -v role="$ROLE" -v pw="$PASSWORD" -v db="$DB" >/dev/null 2>"$DIR/psql-setup.err" <<'EOF'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'pw')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'role', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
EOF
then
  cat "$DIR/psql-setup.err" >&2
  die "could not create role $ROLE / database $DB (server still running; stop it with scripts/postgres-down.sh $DIR)"
fi

URL="postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
echo "$URL" > "$DIR/url"
echo "$PORT" > "$DIR/port"
log "ready at $URL in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") s; pid $(head -n 1 "$DATA/postmaster.pid"); log $LOGFILE"
echo "$URL"
