#!/usr/bin/env bash
# measure-idle.sh: the bridge's memory with one user logged in and idle, measured as a
# user would see it: scripts/run-local.sh (the release binary, a local Synapse, the
# demo MSN server), the Matrix user opening a DM with the bot and sending `login`, then
# nothing for IDLE_SECONDS (default 20). Prints VmRSS, RssAnon and RssFile of the bridge
# process and the binary's size, then stops everything.
#
# Usage: scripts/measure-idle.sh            (state in a fresh temporary directory)
# Environment: MSN_BIN (a bridge binary; default: run-local builds the release one),
# IDLE_SECONDS, SYNAPSE_PORT (default 18458), MSN_AS_PORT (default 29458).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
log() { echo "measure-idle: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

STATE=$(mktemp -d /tmp/matrix-msn-idle.XXXXXX)
export MSN_LOCAL_DIR=$STATE SYNAPSE_PORT=${SYNAPSE_PORT:-18458} MSN_AS_PORT=${MSN_AS_PORT:-29458}
IDLE=${IDLE_SECONDS:-20}
HS=http://127.0.0.1:$SYNAPSE_PORT

scripts/run-local.sh >"$STATE/run-local.out" 2>&1 &
RUN_PID=$!
cleanup() {
  # TERM: a background job ignores INT in a script; run-local stops everything on TERM.
  kill -TERM "$RUN_PID" 2>/dev/null || true
  wait "$RUN_PID" 2>/dev/null || true
  rm -rf "$STATE"
}
trap cleanup EXIT

# Wait for the bridge to be ready.
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$MSN_AS_PORT/health/ready" >/dev/null 2>&1 && break
  kill -0 "$RUN_PID" 2>/dev/null || { tail -20 "$STATE/run-local.out" >&2; die "run-local.sh stopped"; }
  sleep 1
done
curl -sf "http://127.0.0.1:$MSN_AS_PORT/health/ready" >/dev/null || die "the bridge never became ready"
BRIDGE_PID=$(pgrep -f -n -- "-c $STATE/config.yaml") || die "no bridge process"

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
USER=$(sed -n 1p "$STATE/credentials"); PASSWORD=$(sed -n 2p "$STATE/credentials")
MSN_PASSWORD=$(sed -n 2p "$STATE/msn_credentials")
TOKEN=$(curl -sf -X POST "$HS/_matrix/client/v3/login" -H 'Content-Type: application/json' \
  -d "{\"type\":\"m.login.password\",\"identifier\":{\"type\":\"m.id.user\",\"user\":\"$USER\"},\"password\":\"$PASSWORD\"}" | json '["access_token"]')
AUTH="Authorization: Bearer $TOKEN"
ROOM=$(curl -sf -X POST "$HS/_matrix/client/v3/createRoom" -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"is_direct":true,"invite":["@msnbot:localhost"],"preset":"trusted_private_chat"}' | json '["room_id"]')
# Wait for the bot to join (its greeting), then log in.
for _ in $(seq 1 60); do
  MEMBERS=$(curl -sf "$HS/_matrix/client/v3/rooms/$ROOM/joined_members" -H "$AUTH" || true)
  case $MEMBERS in *msnbot*) break ;; esac
  sleep 1
done
curl -sf -X PUT "$HS/_matrix/client/v3/rooms/$ROOM/send/m.room.message/login1" -H "$AUTH" \
  -H 'Content-Type: application/json' \
  -d "{\"msgtype\":\"m.text\",\"body\":\"login me@example.com $MSN_PASSWORD\"}" >/dev/null
for _ in $(seq 1 60); do
  MESSAGES=$(curl -sf "$HS/_matrix/client/v3/rooms/$ROOM/messages?dir=b&limit=20" -H "$AUTH" || true)
  case $MESSAGES in *"Logged in to MSN"*) break ;; esac
  sleep 1
done
case $MESSAGES in *"Logged in to MSN"*) ;; *) die "the login did not complete" ;; esac
log "logged in; idle for $IDLE s"
sleep "$IDLE"
field() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$BRIDGE_PID/status"; }
BIN_PATH=$(readlink "/proc/$BRIDGE_PID/exe")
echo "bridge with one user logged in, idle ${IDLE} s: VmRSS $(field VmRSS) kB (RssAnon $(field RssAnon) kB, RssFile $(field RssFile) kB), threads $(field Threads), binary $(stat -c %s "$BIN_PATH") bytes"
# Where the resident memory is: each mapping's resident kB (smaps), largest first, summed
# by what is mapped (the binary, a shared library, the heap, anonymous memory: thread
# stacks, the allocator's arenas).
echo "resident kB by mapping (smaps):"
awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anonymous]" : $6) }
     $1 == "Rss:" { rss[name] += $2 }
     END { for (n in rss) if (rss[n] > 0) printf "  %8d  %s\n", rss[n], n }' "/proc/$BRIDGE_PID/smaps" | sort -rn
