#!/usr/bin/env bash
# postgres-down.sh DIR [--purge]
# Stop the PostgreSQL that scripts/postgres-up.sh started from DIR
# (pg_ctl stop -m fast; -m immediate if that does not finish within
# PG_STOP_TIMEOUT, default 30 s). --purge then deletes DIR.
# Exit 0 if it is stopped (or was not running); 1 if it could not be stopped;
# 2 on bad usage.
set -euo pipefail
log() { echo "postgres-down: $*" >&2; }

[ $# -ge 1 ] && [ $# -le 2 ] || { log "usage: $0 DIR [--purge]"; exit 2; }
PURGE=0
case "${2:-}" in
  "") ;;
  --purge) PURGE=1 ;;
  *) log "usage: $0 DIR [--purge]"; exit 2 ;;
esac
if [ ! -d "$1" ]; then log "not running (no directory $1)"; exit 0; fi
DIR=$(cd "$1" && pwd)
DATA=$DIR/data
TIMEOUT=${PG_STOP_TIMEOUT:-30}
OS_USER=${PG_OS_USER:-postgres}

alive() {  # pid exists and is not a (fully exited) zombie; PID 1 here reaps orphans with a lag
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ] && return 0
  local t=(/proc/"$1"/task/*)      # zombie leader: alive while other threads still run
  [ "${#t[@]}" -gt 1 ]
}
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$OS_USER" -- "$@"; else "$@"; fi
}

if [ -f "$DATA/postmaster.pid" ]; then
  BIN=${PG_BIN:-}
  if [ -z "$BIN" ] && [ -f "$DATA/PG_VERSION" ]; then BIN=/usr/lib/postgresql/$(cat "$DATA/PG_VERSION")/bin; fi
  [ -x "$BIN/pg_ctl" ] || { log "no pg_ctl found (set PG_BIN)"; exit 1; }
  PID=$(head -n 1 "$DATA/postmaster.pid")
  if alive "$PID" && tr '\0' ' ' < "/proc/$PID/cmdline" 2>/dev/null | grep -q postgres; then
    if ! as_pg "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t "$TIMEOUT" -s >&2; then
      log "fast shutdown did not finish in ${TIMEOUT}s; trying immediate"
      as_pg "$BIN/pg_ctl" stop -D "$DATA" -m immediate -w -t "$TIMEOUT" -s >&2 \
        || { log "could not stop PostgreSQL pid $PID"; exit 1; }
    fi
    log "stopped pid $PID"
  else
    log "not running (stale $DATA/postmaster.pid, pid $PID)"
  fi
else
  log "not running (no $DATA/postmaster.pid)"
fi

if [ "$PURGE" = 1 ]; then
  case "$DIR" in /|/tmp|/root|/home|/var|/usr|/etc) log "refusing to purge $DIR"; exit 1 ;; esac
  rm -rf "$DIR"
  log "purged $DIR"
fi
