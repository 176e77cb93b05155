#!/usr/bin/env bash
# run-local.sh: try the bridge on this machine, no docker.
#
# Builds the bridge, starts a demo MSN server (msn-test-server: your MSN account
# me@example.com and a friend echo@example.com, a bot that repeats what you say),
# writes a config for a throwaway local Synapse (server name "localhost",
# 127.0.0.1 only), generates the appservice registration, starts Synapse with it
# (scripts/synapse-up.sh), creates a Matrix account for you, prints how to log
# in, then runs the bridge in the foreground. Ctrl-C (or the bridge exiting)
# stops the bridge, Synapse and the demo MSN server.
#
# Idempotent: a second run reuses the config, registration, Synapse database,
# signing key, accounts and MSN login kept in the state directory (the demo MSN
# server gets new ports each run; the config's msn section follows). Start over with
#   rm -rf ./data/local      (or your MSN_LOCAL_DIR)
#
# Environment knobs (all optional):
#   MSN_BIN          use this bridge binary instead of `cargo build --release`
#   MSN_TEST_SERVER_BIN  the demo MSN server binary; default msn-test-server next to
#                    the bridge binary (built with cargo if missing)
#   MSN_SERVER, MSN_NEXUS_URL  use this MSN service (host:port and Passport nexus
#                    URL) instead of starting the demo server; set both or neither
#   MSN_LOCAL_DIR    state directory; default ./data/local (relative to the repo)
#   MSN_USER         your Matrix username (localpart); default alice
#   MSN_PASSWORD     its password on first creation; default random (kept in
#                    MSN_LOCAL_DIR/credentials and printed on every run)
#   MSN_AS_PORT      port the bridge listens on (127.0.0.1); default 29320
#   SYNAPSE_PORT     Synapse port (127.0.0.1); default 8008
#   (relative paths in MSN_BIN and MSN_LOCAL_DIR are taken from the repository root)
#   plus the SYNAPSE_* knobs of scripts/synapse-up.sh (SYNAPSE_VERSION, SYNAPSE_VENV, ...)
#
# Needs: cargo (unless MSN_BIN), python3 with venv (Synapse is pip-installed into
# ~/.cache/matrix-msn on first run), curl, openssl, flock.
#
# Layout of the state directory:
#   config.yaml, registration.yaml   the bridge's config and appservice registration
#   matrix-msn.db                    the bridge's SQLite database
#   synapse/                         Synapse's data (database, log: synapse/data/homeserver.log)
#   credentials, shared_secret       your account's password, Synapse's registration secret
#   msn_credentials                  the demo MSN account (me@example.com) and its password
#   msn-server.log                   the demo MSN server's log
set -euo pipefail

log() { echo "run-local: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

SERVER_NAME=${SYNAPSE_SERVER_NAME:-localhost}
SYNAPSE_PORT=${SYNAPSE_PORT:-8008}
AS_PORT=${MSN_AS_PORT:-29320}
MSN_USER=${MSN_USER:-alice}
export SYNAPSE_PORT SYNAPSE_SERVER_NAME=$SERVER_NAME

for tool in curl openssl flock; do
  command -v "$tool" >/dev/null || die "$tool is required (apt-get install curl openssl util-linux)"
done
case $MSN_USER in
  *[!a-z0-9._=-]*|"") die "MSN_USER must be lowercase letters, digits and ._=- (got '$MSN_USER')" ;;
esac

DEMO=1
if [ -n "${MSN_SERVER:-}${MSN_NEXUS_URL:-}" ]; then
  if [ -z "${MSN_SERVER:-}" ] || [ -z "${MSN_NEXUS_URL:-}" ]; then
    die "set both MSN_SERVER (host:port) and MSN_NEXUS_URL, or neither (to use the demo server)"
  fi
  DEMO=0
fi

# --- state dir, one run at a time ------------------------------------------------
STATE=${MSN_LOCAL_DIR:-./data/local}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
exec 8>"$STATE/.run.lock"
flock -n 8 || die "another run-local.sh is already using $STATE"
CONFIG=$STATE/config.yaml
REG=$STATE/registration.yaml
SYN_DIR=$STATE/synapse

# --- the bridge binary --------------------------------------------------------------
if [ -n "${MSN_BIN:-}" ]; then
  BIN=$(cd "$(dirname "$MSN_BIN")" && pwd)/$(basename "$MSN_BIN")
  [ -x "$BIN" ] || die "MSN_BIN=$MSN_BIN is not an executable file"
  log "using the bridge binary $BIN"
else
  command -v cargo >/dev/null || die "cargo not found: install Rust from https://rustup.rs (or set MSN_BIN)"
  log "building the bridge (cargo build --release; the first build takes a few minutes)"
  cargo build --release 8>&- >&2 || die "cargo build failed"
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/matrix-msn
  case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
  [ -x "$BIN" ] || die "build succeeded but $BIN is missing"
fi

# --- the MSN service: ours (MSN_SERVER + MSN_NEXUS_URL) or the demo server ---------------
if [ "$DEMO" = 1 ]; then
  if [ -n "${MSN_TEST_SERVER_BIN:-}" ]; then
    SRV_BIN=$(cd "$(dirname "$MSN_TEST_SERVER_BIN")" && pwd)/$(basename "$MSN_TEST_SERVER_BIN")
  else
    SRV_BIN=$(dirname "$BIN")/msn-test-server
  fi
  if [ ! -x "$SRV_BIN" ] && [ -z "${MSN_TEST_SERVER_BIN:-}" ]; then
    command -v cargo >/dev/null || die "$SRV_BIN is missing and cargo is not found (set MSN_TEST_SERVER_BIN)"
    log "building the demo MSN server (cargo build --release -p msn-tools --bin msn-test-server)"
    cargo build --release -p msn-tools --bin msn-test-server 8>&- >&2 || die "cargo build failed"
    SRV_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/msn-test-server
    case $SRV_BIN in /*) ;; *) SRV_BIN=$ROOT/$SRV_BIN ;; esac
  fi
  [ -x "$SRV_BIN" ] || die "the demo MSN server $SRV_BIN is not an executable file"
fi

# --- secrets and your password (made once, kept) -------------------------------------
umask 077
if [ ! -s "$STATE/shared_secret" ]; then openssl rand -hex 24 > "$STATE/shared_secret"; fi
SYNAPSE_SHARED_SECRET=$(cat "$STATE/shared_secret")
export SYNAPSE_SHARED_SECRET
if [ -s "$STATE/credentials" ] && [ "$(sed -n 1p "$STATE/credentials")" = "$MSN_USER" ]; then
  PASSWORD=$(sed -n 2p "$STATE/credentials")
  [ -z "${MSN_PASSWORD:-}" ] || [ "$MSN_PASSWORD" = "$PASSWORD" ] ||
    log "WARNING: $MSN_USER already exists; MSN_PASSWORD is ignored, the password stays the one in $STATE/credentials"
else
  PASSWORD=${MSN_PASSWORD:-$(openssl rand -hex 9)}
  printf '%s\n%s\n' "$MSN_USER" "$PASSWORD" > "$STATE/credentials"
fi
MSN_ME=me@example.com
MSN_ECHO=echo@example.com
if [ "$DEMO" = 1 ]; then
  if [ ! -s "$STATE/msn_credentials" ]; then
    printf '%s\n%s\n' "$MSN_ME" "$(openssl rand -hex 9)" > "$STATE/msn_credentials"
  fi
  MSN_ME_PASSWORD=$(sed -n 2p "$STATE/msn_credentials")
fi
umask 022

# --- ports ------------------------------------------------------------------------------
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_busy "$AS_PORT" && die "port $AS_PORT (the bridge's) is busy on 127.0.0.1; set MSN_AS_PORT"

# --- stopping everything on exit ----------------------------------------------------------
SYNAPSE_STARTED=0
BRIDGE_PID=
MSN_SERVER_PID=
# shellcheck disable=SC2317  # invoked by the traps below
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$BRIDGE_PID" ] && kill -0 "$BRIDGE_PID" 2>/dev/null; then
    log "stopping the bridge (pid $BRIDGE_PID)"
    kill -TERM "$BRIDGE_PID" 2>/dev/null || true
    ( sleep 15; kill -KILL "$BRIDGE_PID" 2>/dev/null ) 8>&- &
    local watchdog=$!
    wait "$BRIDGE_PID" 2>/dev/null || true
    kill "$watchdog" 2>/dev/null || true
  fi
  if [ -n "$MSN_SERVER_PID" ] && kill -0 "$MSN_SERVER_PID" 2>/dev/null; then
    log "stopping the demo MSN server (pid $MSN_SERVER_PID)"
    kill -TERM "$MSN_SERVER_PID" 2>/dev/null || true
    wait "$MSN_SERVER_PID" 2>/dev/null || true
  fi
  if [ "$SYNAPSE_STARTED" = 1 ]; then
    log "stopping Synapse"
    "$ROOT/scripts/synapse-down.sh" "$SYN_DIR" 8>&- || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the demo MSN server ----------------------------------------------------------------
if [ "$DEMO" = 1 ]; then
  log "starting the demo MSN server (log: $STATE/msn-server.log)"
  rm -f "$STATE/msn-server.addr"
  "$SRV_BIN" --account "$MSN_ME:$MSN_ME_PASSWORD:Me" \
    --account "$MSN_ECHO:$(openssl rand -hex 9):Echo Bot" \
    --friends "$MSN_ME,$MSN_ECHO" --echo-bot "$MSN_ECHO" \
    8>&- >"$STATE/msn-server.addr" 2>"$STATE/msn-server.log" &
  MSN_SERVER_PID=$!
  for _ in $(seq 1 150); do
    [ -s "$STATE/msn-server.addr" ] && break
    kill -0 "$MSN_SERVER_PID" 2>/dev/null || { tail -n 20 "$STATE/msn-server.log" >&2; die "the demo MSN server exited"; }
    sleep 0.2
  done
  read -r DISPATCH NEXUS < "$STATE/msn-server.addr" || true
  MSN_SERVER=${DISPATCH#dispatch=}
  MSN_NEXUS_URL=${NEXUS#nexus=}
  case $MSN_SERVER:$MSN_NEXUS_URL in
    127.0.0.1:*:http://*) log "demo MSN server: $MSN_SERVER, nexus $MSN_NEXUS_URL" ;;
    *) die "the demo MSN server did not print its addresses (see $STATE/msn-server.log)" ;;
  esac
fi

# --- config.yaml (written once from the template) -----------------------------------
HS_URL=http://127.0.0.1:$SYNAPSE_PORT
if [ ! -f "$CONFIG" ]; then
  log "writing $CONFIG from config.example.yaml"
  sed -e "/^homeserver:/,/^[a-z]/ s|^  address: .*|  address: $HS_URL|" \
      -e "s|^  domain: example\.com.*|  domain: $SERVER_NAME|" \
      -e "/^appservice:/,/^[a-z]/ s|^  address: .*|  address: http://127.0.0.1:$AS_PORT|" \
      -e "/^appservice:/,/^[a-z]/ s|^  port: .*|  port: $AS_PORT|" \
      -e "s|^  uri: sqlite:.*|  uri: sqlite:$STATE/matrix-msn.db|" \
      -e "s|^    \"example\.com\": user|    \"$SERVER_NAME\": user|" \
      -e "s|^    \"@admin:example\.com\": admin|    \"@$MSN_USER:$SERVER_NAME\": admin|" \
      -e "/^msn:/,/^[a-z]/ s|^  server: .*|  server: \"$MSN_SERVER\"|" \
      -e "/^msn:/,/^[a-z]/ s|^  nexus_url: .*|  nexus_url: \"$MSN_NEXUS_URL\"|" \
      "$ROOT/config.example.yaml" > "$CONFIG.tmp"
  if grep -n 'example\.com' "$CONFIG.tmp" | grep -v '^[0-9]*: *#' >&2; then
    rm -f "$CONFIG.tmp"
    die "config.example.yaml changed shape; the lines above were not rewritten"
  fi
  mv "$CONFIG.tmp" "$CONFIG"
else
  log "reusing $CONFIG"
  # keep the homeserver address in step with SYNAPSE_PORT and the MSN service in step
  # with this run's (this file is ours)
  sed -i -e "/^homeserver:/,/^[a-z]/ s|^  address: .*|  address: $HS_URL|" \
         -e "/^msn:/,/^[a-z]/ s|^  server: .*|  server: \"$MSN_SERVER\"|" \
         -e "/^msn:/,/^[a-z]/ s|^  nexus_url: .*|  nexus_url: \"$MSN_NEXUS_URL\"|" "$CONFIG"
  # a config written before the msn section and the credentials key existed: add them
  if ! grep -q '^msn:' "$CONFIG"; then
    log "adding the msn section to $CONFIG"
    printf '\nmsn:\n  server: "%s"\n  nexus_url: "%s"\n' "$MSN_SERVER" "$MSN_NEXUS_URL" >> "$CONFIG"
  fi
  if ! grep -q '^  credentials_key:' "$CONFIG"; then
    log "adding bridge.credentials_key to $CONFIG (and regenerating the registration to fill it)"
    sed -i 's|^bridge:.*|&\n  credentials_key: ""|' "$CONFIG"
    rm -f "$REG"
  fi
fi

# --- registration.yaml -------------------------------------------------------------------
if [ ! -s "$REG" ]; then
  log "generating the appservice registration (fills the tokens into config.yaml)"
  "$BIN" -c "$CONFIG" -g -r "$REG" 8>&- >&2 || die "generating the registration failed"
  [ -s "$REG" ] || die "$BIN -g did not write $REG"
else
  log "reusing $REG"
fi

# --- Synapse ---------------------------------------------------------------------------
# we hold the lock, so a Synapse still running from this state dir is a leftover
# of a run that was killed without cleanup (kill -9): stop it
OLD_PID=$(cat "$SYN_DIR/synapse.pid" 2>/dev/null || true)
if [ -n "$OLD_PID" ] && tr '\0' ' ' < "/proc/$OLD_PID/cmdline" 2>/dev/null | grep -q synapse.app.homeserver; then
  log "a Synapse from an earlier run is still running; stopping it"
  "$ROOT/scripts/synapse-down.sh" "$SYN_DIR" 8>&- || die "cannot stop it"
fi
if [ -f "$SYN_DIR/data/homeserver.db" ]; then
  export SYNAPSE_KEEP_DATA=1
  log "starting Synapse on port $SYNAPSE_PORT (keeping its data)"
else
  log "starting Synapse on port $SYNAPSE_PORT (first run: installs it if needed)"
fi
SYNAPSE_STARTED=1
"$ROOT/scripts/synapse-up.sh" "$SYN_DIR" "$REG" 8>&- >/dev/null || die "Synapse did not start"

# --- your Matrix account -------------------------------------------------------------------
ADMIN_API=$HS_URL/_synapse/admin/v1/register
NONCE=$(curl -sf "$ADMIN_API" | sed -n 's/.*"nonce" *: *"\([^"]*\)".*/\1/p') || true
[ -n "$NONCE" ] || die "no nonce from $ADMIN_API"
MAC=$(printf '%s\0%s\0%s\0%s' "$NONCE" "$MSN_USER" "$PASSWORD" notadmin |
      openssl dgst -sha1 -hmac "$SYNAPSE_SHARED_SECRET" | awk '{print $NF}')
RESP=$(curl -s -X POST "$ADMIN_API" -H 'Content-Type: application/json' \
  -d "{\"nonce\":\"$NONCE\",\"username\":\"$MSN_USER\",\"password\":\"$PASSWORD\",\"admin\":false,\"mac\":\"$MAC\"}")
case $RESP in
  *'"user_id"'*)      log "created the Matrix user @$MSN_USER:$SERVER_NAME" ;;
  *M_USER_IN_USE*)    log "the Matrix user @$MSN_USER:$SERVER_NAME already exists" ;;
  *) die "registering @$MSN_USER:$SERVER_NAME failed: $RESP" ;;
esac

# --- go --------------------------------------------------------------------------------------
if [ "$DEMO" = 1 ]; then
  MSN_HELP="
 MSN (demo server $MSN_SERVER):
   your account  $MSN_ME   password  $MSN_ME_PASSWORD
 In the DM with the bot send
   login $MSN_ME $MSN_ME_PASSWORD
 then  start-chat $MSN_ECHO  (contacts  lists your contacts), accept the invite to the
 new room and write to Echo Bot: it answers \"You said: ...\" (and nudges back).
"
  MSN_LOG="
          demo MSN server: $STATE/msn-server.log"
  MSN_STOP=" and the demo MSN server"
else
  MSN_HELP="
 MSN: $MSN_SERVER (nexus $MSN_NEXUS_URL); in the DM send  login <email>
"
  MSN_LOG=''
  MSN_STOP=''
fi
BOT=$(sed -n '/^  bot:/,/^  [a-z]/ s/^    username: *"\{0,1\}\([^" ]*\)"\{0,1\}.*/\1/p' "$CONFIG")
PREFIX=$(sed -n 's/^  command_prefix: *"\(.*\)".*/\1/p' "$CONFIG")
cat >&2 <<EOF

======================================================================
 matrix-msn is starting against a local Synapse.

   Homeserver:  $HS_URL   (Element: "Edit" the homeserver, enter this URL)
   Username:    $MSN_USER   (@$MSN_USER:$SERVER_NAME)
   Password:    $PASSWORD

 Log in with any Matrix client, start a direct chat with
   @${BOT:-msnbot}:$SERVER_NAME
 (invite it to a DM) and send:  help
 Elsewhere, prefix commands with ${PREFIX:-!msn}.
$MSN_HELP
 State:   $STATE  (config.yaml, registration.yaml, matrix-msn.db)
 Logs:    the bridge logs below; Synapse: $SYN_DIR/data/homeserver.log$MSN_LOG
 Health:  http://127.0.0.1:$AS_PORT/health/ready
 Stop:    Ctrl-C (stops the bridge, Synapse$MSN_STOP)
======================================================================

EOF
cd "$STATE"
"$BIN" -c "$CONFIG" -r "$REG" 8>&- &
BRIDGE_PID=$!
rc=0
wait "$BRIDGE_PID" || rc=$?
BRIDGE_PID=
log "the bridge exited with status $rc"
exit "$rc"
