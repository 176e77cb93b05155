#!/usr/bin/env bash
# scripts/test.sh [cargo test args...]
#
# The whole test suite, on a fresh machine too: starts a throwaway PostgreSQL (installing
# Debian's package on first use) and a throwaway Synapse (installing the pinned
# matrix-synapse from PyPI into a cached venv on first use), runs every test with
# MSN_TEST_FULL=1 (so tests needing those services fail rather than skip), then stops both.
# The tests that need Synapse or PostgreSQL are `#[ignore]`d, so a plain `cargo test`
# lists them as ignored; this script runs them too (`--include-ignored`).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test.sh: $*" >&2; }

STATE=$(mktemp -d /tmp/msn-test.XXXXXX)
cleanup() {
  scripts/synapse-down.sh "$STATE/synapse" >/dev/null 2>&1 || true
  scripts/postgres-down.sh "$STATE/pg" --purge >/dev/null 2>&1 || true
  rm -rf "$STATE"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

log "starting PostgreSQL"
PG_URL=$(scripts/postgres-up.sh "$STATE/pg")
log "starting Synapse"
HS_URL=$(SYNAPSE_PORT=$(free_port) scripts/synapse-up.sh "$STATE/synapse" \
  tests/fixtures/e2e-registration.yaml tests/fixtures/e2e-double-puppet.yaml)
log "PostgreSQL at ${PG_URL%%@*}@..., Synapse at $HS_URL"

# The test binaries' own arguments follow `--`; add `--include-ignored` to them.
args=("$@")
case " $* " in
  *" -- "*) args+=(--include-ignored) ;;
  *) args+=(-- --include-ignored) ;;
esac
MSN_TEST_FULL=1 MSN_TEST_POSTGRES_URL=$PG_URL MSN_TEST_HOMESERVER=$HS_URL \
  cargo test --workspace --locked "${args[@]}"
