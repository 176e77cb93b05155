#!/usr/bin/env bash
# synapse-up.sh DIR REGISTRATION.yaml [MORE_REGISTRATION.yaml ...]
#
# Install (if absent) and start a throwaway Synapse homeserver on 127.0.0.1
# with the given application-service registration file(s), wait until it
# answers /_matrix/client/versions, and print its base URL on stdout (the ONLY
# thing printed on stdout, so  URL=$(scripts/synapse-up.sh ...)  works).
# Progress and errors go to stderr. Stop it with scripts/synapse-down.sh DIR.
#
# Layout:
#   VENV (see SYNAPSE_VENV)   python venv with matrix-synapse, shared between runs
#   DIR/data/                 config, signing key, sqlite db, media (wiped each start)
#   DIR/data/homeserver.log   Synapse's log
#   DIR/synapse.pid           pid of the running Synapse (written by Synapse itself)
#
# Environment knobs (all optional):
#   SYNAPSE_VERSION        pip version pin; default 1.163.2; "latest" = unpinned
#   SYNAPSE_VENV           venv to use/create; default
#                          ${MSN_CACHE_DIR:-$HOME/.cache/matrix-msn}/synapse-venv-$SYNAPSE_VERSION
#   SYNAPSE_PORT           default 8008 (binds 127.0.0.1 only)
#   SYNAPSE_SERVER_NAME    default localhost (must match the regexes in the registration)
#   SYNAPSE_SHARED_SECRET  registration_shared_secret; default test_shared_secret
#   SYNAPSE_READY_TIMEOUT  seconds to wait for readiness; default 60
#   SYNAPSE_KEEP_DATA=1    do not wipe DIR/data (db, media) before starting
#   SYNAPSE_EXTRA_CONFIG   path of a YAML file appended verbatim to homeserver.yaml
#                          (a repeated top-level key wins, e.g. presence:)
#   PYTHON                 interpreter for the venv; default python3.11, else python3
#
# Install is atomic: the venv is built in VENV.build-XXXXXX and only published
# (VENV = symlink to it, swapped in with rename(2)) once `import synapse` works,
# so an interrupted install is never mistaken for a good one. Venvs cannot be
# moved (pip writes absolute shebangs), hence the symlink rather than a rename
# of the directory itself. Concurrent installers serialise on VENV.lock.
set -euo pipefail

log() { echo "synapse-up: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ $# -ge 2 ] || die "usage: $0 DIR REGISTRATION.yaml [MORE.yaml ...]"
DIR=$1; shift
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

REGS=()
for r in "$@"; do
  [ -f "$r" ] || die "registration file not found: $r"
  REGS+=("$(cd "$(dirname "$r")" && pwd)/$(basename "$r")")
done

command -v curl >/dev/null || die "curl is required (apt-get install curl)"

VERSION=${SYNAPSE_VERSION:-1.163.2}
CACHE=${MSN_CACHE_DIR:-${HOME:-/root}/.cache/matrix-msn}
VENV=${SYNAPSE_VENV:-$CACHE/synapse-venv-$VERSION}
PORT=${SYNAPSE_PORT:-8008}
SERVER_NAME=${SYNAPSE_SERVER_NAME:-localhost}
SECRET=${SYNAPSE_SHARED_SECRET:-test_shared_secret}
READY_TIMEOUT=${SYNAPSE_READY_TIMEOUT:-60}
PIDFILE=$DIR/synapse.pid
DATA=$DIR/data
BASE_URL="http://127.0.0.1:$PORT"

alive() {  # pid exists and is not a (fully exited) zombie; PID 1 here reaps orphans with a lag
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ] && return 0
  local t=(/proc/"$1"/task/*)      # zombie leader: alive while other threads still run
  [ "${#t[@]}" -gt 1 ]
}
is_synapse_pid() {  # pid alive and really a Synapse
  [ -n "${1:-}" ] && alive "$1" &&
    tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q 'synapse.app.homeserver'
}

# --- refuse to start twice ------------------------------------------------
if [ -f "$PIDFILE" ]; then
  OLD=$(cat "$PIDFILE" 2>/dev/null || true)
  if is_synapse_pid "$OLD"; then
    die "a Synapse is already running from $DIR (pid $OLD); run scripts/synapse-down.sh $DIR first"
  fi
  log "removing stale pid file $PIDFILE"
  rm -f "$PIDFILE"
fi

# --- install (if absent), atomically -------------------------------------------
venv_ok() { "$1/bin/python" -c 'import synapse' >/dev/null 2>&1; }

if ! venv_ok "$VENV"; then
  mkdir -p "$(dirname "$VENV")"
  exec 9>"$VENV.lock"
  if ! flock -n 9; then
    log "another process is installing into $VENV; waiting for it"
    flock 9
  fi
  if ! venv_ok "$VENV"; then           # re-check: the other installer may have finished
    if [ -e "$VENV" ] && [ ! -L "$VENV" ]; then
      die "$VENV exists but is not a working Synapse venv (and not one of ours); remove it or set SYNAPSE_VENV"
    fi
    # leftovers of interrupted installs (we hold the lock, so nobody is using them)
    for old in "$VENV".build-*; do
      [ -d "$old" ] || continue
      [ "$(readlink "$VENV" 2>/dev/null || true)" = "$old" ] && continue
      log "removing leftover of an interrupted install: $old"
      rm -rf "$old"
    done
    PY=${PYTHON:-}
    if [ -z "$PY" ]; then
      if command -v python3.11 >/dev/null; then PY=python3.11; else PY=python3; fi
    fi
    command -v "$PY" >/dev/null || die "no python interpreter '$PY' (set PYTHON=...)"
    if [ "$VERSION" = latest ]; then SPEC=matrix-synapse; else SPEC="matrix-synapse==$VERSION"; fi
    BUILD=$(mktemp -d "$VENV.build-XXXXXX"); chmod 755 "$BUILD"
    log "installing $SPEC into $BUILD (about 20-60 s), published as $VENV"
    t0=$(date +%s)
    "$PY" -m venv "$BUILD" >&2 || die "'$PY -m venv' failed (Debian's system python needs python3-venv)"
    "$BUILD/bin/pip" install -q --disable-pip-version-check "$SPEC" >&2 \
      || die "pip install $SPEC failed (partial venv left in $BUILD, removed by the next run)"
    venv_ok "$BUILD" || die "installed venv $BUILD cannot import synapse"
    ln -sfn "$BUILD" "$VENV.link-$$"
    mv -Tf "$VENV.link-$$" "$VENV"      # rename(2): atomic publish
    log "installed $("$VENV/bin/python" -c 'import synapse;print(synapse.__version__)') in $(( $(date +%s) - t0 )) s"
  fi
  exec 9>&-
fi
if [ "$VERSION" != latest ]; then
  GOT=$("$VENV/bin/python" -c 'import synapse;print(synapse.__version__)')
  [ "$GOT" = "$VERSION" ] || log "WARNING: $VENV has Synapse $GOT, not the pinned $VERSION"
fi

# --- port must be free -----------------------------------------------------
if ! "$VENV/bin/python" - "$PORT" <<'EOF'
import socket, sys
s = socket.socket()
# as Synapse (Twisted) does: a connection of the last run in TIME_WAIT does not make the
# port busy, a listener does
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError as e:
    sys.exit(f"synapse-up: port {sys.argv[1]} on 127.0.0.1 is busy: {e}")
EOF
then die "pick another SYNAPSE_PORT"; fi

# --- fresh data dir + config ------------------------------------------------
if [ "${SYNAPSE_KEEP_DATA:-0}" != 1 ]; then rm -rf "$DATA"; fi
mkdir -p "$DATA/media_store"

cat > "$DATA/log.config" <<EOF
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: $DATA/homeserver.log
    encoding: utf8
root:
  level: INFO
  handlers: [file]
disable_existing_loggers: false
EOF

{
cat <<EOF
# Throwaway test homeserver written by scripts/synapse-up.sh. Loopback only.
server_name: "$SERVER_NAME"
public_baseurl: "$BASE_URL/"
pid_file: "$PIDFILE"
report_stats: false
listeners:
  - port: $PORT
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]      # client API + /_synapse/admin + media
        compress: false
database:
  name: sqlite3
  args:
    database: "$DATA/homeserver.db"
log_config: "$DATA/log.config"
media_store_path: "$DATA/media_store"
signing_key_path: "$DATA/$SERVER_NAME.signing.key"
registration_shared_secret: "$SECRET"
macaroon_secret_key: "test_macaroon_secret"
form_secret: "test_form_secret"
enable_registration: false
# no federation, no outbound key fetching: nothing leaves loopback
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
url_preview_enabled: false
enable_metrics: false
max_upload_size: 50M
presence:
  enabled: true
app_service_config_files:
EOF
for r in "${REGS[@]}"; do echo "  - \"$r\""; done
cat <<'EOF'
# rate limits relaxed for tests (defaults would throttle a test suite)
rc_message: {per_second: 1000, burst_count: 10000}
rc_registration: {per_second: 1000, burst_count: 10000}
rc_login:
  address: {per_second: 1000, burst_count: 10000}
  account: {per_second: 1000, burst_count: 10000}
  failed_attempts: {per_second: 1000, burst_count: 10000}
rc_joins:
  local: {per_second: 1000, burst_count: 10000}
  remote: {per_second: 1000, burst_count: 10000}
rc_joins_per_room: {per_second: 1000, burst_count: 10000}
rc_invites:
  per_room: {per_second: 1000, burst_count: 10000}
  per_user: {per_second: 1000, burst_count: 10000}
  per_issuer: {per_second: 1000, burst_count: 10000}
rc_presence:
  per_user: {per_second: 1000, burst_count: 10000}
rc_room_creation: {per_second: 1000, burst_count: 10000}
rc_media_create: {per_second: 1000, burst_count: 10000}
rc_profile: {per_second: 1000, burst_count: 10000}
rc_admin_redaction: {per_second: 1000, burst_count: 10000}
rc_3pid_validation: {per_second: 1000, burst_count: 10000}
rc_user_directory: {per_second: 1000, burst_count: 10000}
rc_delayed_event_mgmt: {per_second: 1000, burst_count: 10000}
rc_reports: {per_second: 1000, burst_count: 10000}
EOF
# later top-level keys win (PyYAML keeps the last duplicate), so this can override the above
if [ -n "${SYNAPSE_EXTRA_CONFIG:-}" ]; then
  [ -f "$SYNAPSE_EXTRA_CONFIG" ] || die "SYNAPSE_EXTRA_CONFIG file not found: $SYNAPSE_EXTRA_CONFIG"
  echo "# --- appended from SYNAPSE_EXTRA_CONFIG=$SYNAPSE_EXTRA_CONFIG"
  cat "$SYNAPSE_EXTRA_CONFIG"; echo
fi
} > "$DATA/homeserver.yaml"

# signing key (kept when SYNAPSE_KEEP_DATA=1). Same format as
# `python -m synapse.app.homeserver -c CFG --generate-keys`, but ~3 s faster.
if [ ! -s "$DATA/$SERVER_NAME.signing.key" ]; then
  "$VENV/bin/python" - "$DATA/$SERVER_NAME.signing.key" <<'EOF'
import sys
from signedjson.key import generate_signing_key, write_signing_keys
with open(sys.argv[1], "w") as f:
    write_signing_keys(f, [generate_signing_key("a_test")])
EOF
fi

# --- start ------------------------------------------------------------------
# --daemonize: Synapse forks, detaches (setsid), writes+flocks pid_file, and the
# foreground process exits 0 once config + database setup succeeded (non-zero
# with the reason on stderr otherwise).
t0=$(date +%s.%N)
if ! "$VENV/bin/python" -m synapse.app.homeserver -c "$DATA/homeserver.yaml" --daemonize \
     </dev/null >"$DATA/startup.log" 2>&1; then
  tail -n 15 "$DATA/startup.log" >&2
  die "Synapse failed to start (full trace: $DATA/startup.log, log: $DATA/homeserver.log)"
fi

# --- wait for readiness ------------------------------------------------------
deadline=$(( $(date +%s) + READY_TIMEOUT ))
until curl -sf -o /dev/null "$BASE_URL/_matrix/client/versions"; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    tail -n 30 "$DATA/homeserver.log" >&2 || true
    die "Synapse not ready after ${READY_TIMEOUT}s (stop it with scripts/synapse-down.sh $DIR)"
  fi
  if [ -f "$PIDFILE" ] && ! alive "$(cat "$PIDFILE")"; then
    tail -n 30 "$DATA/homeserver.log" >&2 || true
    die "Synapse (pid $(cat "$PIDFILE")) exited during startup"
  fi
  sleep 0.1
done
log "ready at $BASE_URL in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") s; pid $(cat "$PIDFILE"); log $DATA/homeserver.log"
echo "$BASE_URL"
