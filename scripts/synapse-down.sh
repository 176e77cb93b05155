#!/usr/bin/env bash
# synapse-down.sh DIR [--purge]
# Stop the Synapse that scripts/synapse-up.sh started from DIR (by DIR/synapse.pid
# only, after checking the pid really is a Synapse). SIGTERM, wait up to
# SYNAPSE_STOP_TIMEOUT (default 15) s, then SIGKILL.
# --purge also deletes DIR/data (db, media, logs); the shared venv is kept.
# Exit 0 if it is stopped (or was not running); 1 if the pid file names a
# process that is not Synapse; 2 on bad usage.
set -euo pipefail
log() { echo "synapse-down: $*" >&2; }
alive() {  # pid exists and is not a (fully exited) zombie; PID 1 here reaps orphans with a lag
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ] && return 0
  local t=(/proc/"$1"/task/*)      # zombie leader: alive while other threads still run
  [ "${#t[@]}" -gt 1 ]
}

[ $# -ge 1 ] && [ $# -le 2 ] || { log "usage: $0 DIR [--purge]"; exit 2; }
PURGE=0
case "${2:-}" in
  "") ;;
  --purge) PURGE=1 ;;
  *) log "usage: $0 DIR [--purge]"; exit 2 ;;
esac
if [ ! -d "$1" ]; then log "not running (no directory $1)"; exit 0; fi
DIR=$(cd "$1" && pwd)
PIDFILE=$DIR/synapse.pid
TIMEOUT=${SYNAPSE_STOP_TIMEOUT:-15}

if [ -f "$PIDFILE" ]; then
  PID=$(cat "$PIDFILE" 2>/dev/null || true)
  if [ -n "$PID" ] && alive "$PID"; then
    # make sure the pid is really our Synapse before signalling it
    if ! tr '\0' ' ' < "/proc/$PID/cmdline" 2>/dev/null | grep -q "synapse.app.homeserver"; then
      log "pid $PID from $PIDFILE is not a Synapse process; not touching it"
      exit 1
    fi
    kill -TERM "$PID"
    for _ in $(seq 1 $(( TIMEOUT * 10 ))); do
      alive "$PID" || break
      sleep 0.1
    done
    if alive "$PID"; then
      log "pid $PID still alive after ${TIMEOUT}s; sending SIGKILL"
      kill -KILL "$PID" 2>/dev/null || true
    fi
    log "stopped pid $PID"
  else
    log "not running (stale pid file)"
  fi
  rm -f "$PIDFILE"
else
  log "not running (no $PIDFILE)"
fi

if [ "$PURGE" = 1 ]; then rm -rf "$DIR/data"; log "purged $DIR/data"; fi
