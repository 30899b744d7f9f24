#!/usr/bin/env bash
# Local development: run coturn in the foreground with deploy/coturn.conf, next to a dev VoxLink.
#
#   scripts/start-coturn.sh            # then, in another shell:
#   VOXLINK_TURN_URLS='turn:127.0.0.1:3478?transport=udp' npm start
#
# The shared secret comes from VOXLINK_TURN_SECRET if set, else from the dev server's data dir
# (${VOXLINK_DATA_DIR:-./.voxlink}/turn-secret, created here if missing, the same file a dev-mode
# VoxLink reads), so both sides agree without copying secrets around. Knobs (environment):
#   TURN_LISTEN_IP  (127.0.0.1)   address coturn listens and relays on
#   TURN_PORT       (3478)        STUN/TURN port, UDP and TCP
#   TURN_MIN_PORT   (50000)       relay port range, inclusive
#   TURN_MAX_PORT   (50099)
#   TURN_REALM      (voxlink.local)
#   TURN_VERBOSE    (1)           log every allocation and auth failure
# Listening on 127.x adds allow-loopback-peers (the dev VoxLink announces 127.0.0.1 for media);
# that switch is for development only, so on any other address the script leaves it out.
# Production: install deploy/coturn.conf as /etc/turnserver.conf instead (docs/turn.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
template="$root/deploy/coturn.conf"
listen_ip="${TURN_LISTEN_IP:-127.0.0.1}"
port="${TURN_PORT:-3478}"
min_port="${TURN_MIN_PORT:-50000}"
max_port="${TURN_MAX_PORT:-50099}"
realm="${TURN_REALM:-voxlink.local}"
verbose="${TURN_VERBOSE:-1}"

turnserver="$(command -v turnserver || true)"
if [[ -z "$turnserver" ]]; then
  echo "turnserver not found: install coturn (Debian/Ubuntu: apt-get install coturn)" >&2
  exit 1
fi

secret="${VOXLINK_TURN_SECRET:-}"
if [[ -z "$secret" ]]; then
  data_dir="${VOXLINK_DATA_DIR:-$root/.voxlink}"
  secret_file="$data_dir/turn-secret"
  if [[ ! -s "$secret_file" ]]; then
    mkdir -p -m 700 "$data_dir"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$secret_file" && echo >> "$secret_file")
    echo "generated a TURN secret in $secret_file" >&2
  fi
  secret="$(tr -d '\n' < "$secret_file")"
fi
if [[ "$secret" == *CHANGE_ME* || ${#secret} -lt 16 ]]; then
  echo "refusing a placeholder or short TURN secret (need >= 16 characters)" >&2
  exit 1
fi

run_dir="${XDG_RUNTIME_DIR:-/tmp}/voxlink-coturn-$(id -u)"
mkdir -p -m 700 "$run_dir"
conf="$run_dir/turnserver.conf"

# Fill the template: replace each `name=value` line named below, append the dev-only additions.
# The secret goes through ENVIRON, not the awk program text, so no character in it is special.
(
  umask 077
  SECRET="$secret" awk \
    -v realm="$realm" -v port="$port" -v min="$min_port" -v max="$max_port" '
    /^static-auth-secret=/ { print "static-auth-secret=" ENVIRON["SECRET"]; next }
    /^realm=/              { print "realm=" realm; next }
    /^listening-port=/     { print "listening-port=" port; next }
    /^min-port=/           { print "min-port=" min; next }
    /^max-port=/           { print "max-port=" max; next }
    { print }
  ' "$template" > "$conf"
  {
    echo
    echo "# --- scripts/start-coturn.sh: development additions ---"
    echo "listening-ip=$listen_ip"
    echo "relay-ip=$listen_ip"
    echo "userdb=$run_dir/turndb"
    echo "pidfile=$run_dir/turnserver.pid"
    [[ "$verbose" == 1 ]] && echo "verbose"
    case "$listen_ip" in
      127.*) echo "allow-loopback-peers" ;;
    esac
  } >> "$conf"
)
if grep -v '^#' "$conf" | grep -q CHANGE_ME; then
  echo "the rendered config still has a CHANGE_ME placeholder: $conf" >&2
  exit 1
fi

cat >&2 <<EOF
coturn on $listen_ip:$port (udp+tcp), relay ports $min_port-$max_port, realm $realm
config: $conf
VoxLink settings to match:
  VOXLINK_TURN_URLS='turn:$listen_ip:$port?transport=udp'
  VOXLINK_TURN_SECRET  (or the dev data dir's turn-secret, which this script used)
EOF
exec "$turnserver" -c "$conf"
