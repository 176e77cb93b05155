#!/bin/sh
# Container entrypoint for matrix-msn. Three stages, one per start:
#   1. no /data/config.yaml:        copy the annotated example there (with the
#      container-specific values filled in, see below), ask the operator to edit it, exit 0
#   2. config but no registration:  run -g (fills the tokens into config.yaml, writes
#      /data/registration.yaml), ask the operator to register it with Synapse, exit 0
#   3. both present:                run the bridge (exec, so it gets SIGTERM directly)
# Any arguments are passed to the bridge in stage 3 (e.g. extra flags); a first
# argument that is not an option runs that command instead (e.g. `sh`).
#
# Optional environment, used only when stage 1 writes config.yaml:
#   MSN_HOMESERVER_ADDRESS   homeserver.address   (e.g. http://synapse:8008)
#   MSN_DOMAIN               homeserver.domain and the "user" permission for that server
#   MSN_ADMIN                a Matrix ID given the admin permission (e.g. @you:example.org)
#   MSN_APPSERVICE_ADDRESS   appservice.address, how Synapse reaches the bridge
#                            (e.g. http://msn-bridge:29320)
#   MSN_DATABASE_URI         database.uri (default sqlite:/data/matrix-msn.db)
#   MSN_SERVER               msn.server, the MSN dispatch server host:port
#   MSN_NEXUS_URL            msn.nexus_url, the Passport 1.4 nexus URL
# Always: appservice.hostname 0.0.0.0 (listen on the container's interfaces).
set -eu

DATA=${MSN_DATA_DIR:-/data}
CONFIG=$DATA/config.yaml
REG=$DATA/registration.yaml
BIN=${MSN_BIN:-/usr/local/bin/matrix-msn}
EXAMPLE=${MSN_CONFIG_EXAMPLE:-/usr/share/matrix-msn/config.example.yaml}

say() { echo "entrypoint: $*" >&2; }

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

if [ ! -w "$DATA" ]; then
  say "ERROR: $DATA is not writable by uid $(id -u); chown the volume to $(id -u):$(id -g)"
  exit 1
fi

# sed replacement text: escape \, | and &
esc() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }
# a YAML double-quoted string's content (escape \ and "), ready for sed
qesc() { esc "$(printf '%s' "$1" | sed -e 's/[\\"]/\\&/g')"; }

if [ ! -f "$CONFIG" ]; then
  set -- -e "/^appservice:/,/^[a-z]/ s|^  hostname: .*|  hostname: 0.0.0.0|" \
         -e "s|^  uri: sqlite:.*|  uri: $(esc "${MSN_DATABASE_URI:-sqlite:$DATA/matrix-msn.db}")|"
  if [ -n "${MSN_HOMESERVER_ADDRESS:-}" ]; then
    set -- "$@" -e "/^homeserver:/,/^[a-z]/ s|^  address: .*|  address: $(esc "$MSN_HOMESERVER_ADDRESS")|"
  fi
  if [ -n "${MSN_APPSERVICE_ADDRESS:-}" ]; then
    set -- "$@" -e "/^appservice:/,/^[a-z]/ s|^  address: .*|  address: $(esc "$MSN_APPSERVICE_ADDRESS")|"
  fi
  if [ -n "${MSN_DOMAIN:-}" ]; then
    set -- "$@" -e "s|^  domain: example\\.com.*|  domain: $(esc "$MSN_DOMAIN")|" \
                -e "s|^    \"example\\.com\": user|    \"$(esc "$MSN_DOMAIN")\": user|"
  fi
  if [ -n "${MSN_ADMIN:-}" ]; then
    set -- "$@" -e "s|^    \"@admin:example\\.com\": admin|    \"$(qesc "$MSN_ADMIN")\": admin|"
  fi
  if [ -n "${MSN_SERVER:-}" ]; then
    set -- "$@" -e "/^msn:/,/^[a-z]/ s|^  server: .*|  server: \"$(qesc "$MSN_SERVER")\"|"
  fi
  if [ -n "${MSN_NEXUS_URL:-}" ]; then
    set -- "$@" -e "/^msn:/,/^[a-z]/ s|^  nexus_url: .*|  nexus_url: \"$(qesc "$MSN_NEXUS_URL")\"|"
  fi
  sed "$@" "$EXAMPLE" > "$CONFIG.tmp"
  mv "$CONFIG.tmp" "$CONFIG"
  say "wrote $CONFIG from the annotated example."
  say "Edit it (every key is documented there), at least:"
  say "  homeserver.address, homeserver.domain, appservice.address, bridge.permissions,"
  say "  msn.server, msn.nexus_url (docs/configuration.md describes every key)"
  say "The tokens and bridge.credentials_key are generated on the next start; leave them."
  if grep -q 'example\.com' "$CONFIG"; then
    say "Still placeholders (lines mentioning example.com):"
    grep -n 'example\.com' "$CONFIG" | grep -v '^[0-9]*: *#' >&2 || true
  fi
  say "then start the container again: it will generate the registration."
  exit 0
fi

if [ ! -f "$REG" ]; then
  if ! "$BIN" -c "$CONFIG" -g -r "$REG"; then
    say "ERROR: generating the registration failed (see above); fix $CONFIG and start again"
    exit 1
  fi
  say "wrote $REG (and the tokens into $CONFIG)."
  say "Register it with Synapse: add its path, as Synapse sees it, to homeserver.yaml"
  say "  app_service_config_files:"
  say "    - /msn/registration.yaml     # docker-compose.yml mounts /data there"
  say "restart Synapse, then start this container again to run the bridge."
  exit 0
fi

exec "$BIN" -c "$CONFIG" -r "$REG" "$@"
