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
#   TURN_TLS_PORT   (5349)        TURN over TLS (turns:); 0 turns TLS off
#   TURN_TLS_CERT, TURN_TLS_KEY   PEM files; unset: a self-signed certificate made once in the run dir
#   TURN_STORE      (static)      static: the secret below; redis / postgres: coturn reads the secrets
#                                 from that user DB (deploy/coturn-<store>.conf), which VoxLink writes
#                                 and rotates (turn.store; docs/turn.md)
#   TURN_REDIS_USERDB  (ip=127.0.0.1 dbname=2 port=6379 connect_timeout=30)   with TURN_STORE=redis
#   TURN_PSQL_USERDB   (host=127.0.0.1 dbname=coturn user=coturn connect_timeout=30) with TURN_STORE=postgres
#   TURN_STATSDB    (unset)       coturn's redis-statsdb for VoxLink's /metrics, e.g.
#                                 "ip=127.0.0.1 dbname=3 port=6379 connect_timeout=30"
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
tls_port="${TURN_TLS_PORT:-5349}"
store="${TURN_STORE:-static}"
redis_userdb="${TURN_REDIS_USERDB:-ip=127.0.0.1 dbname=2 port=6379 connect_timeout=30}"
psql_userdb="${TURN_PSQL_USERDB:-host=127.0.0.1 dbname=coturn user=coturn connect_timeout=30}"
statsdb="${TURN_STATSDB:-}"
case "$store" in
  static | redis | postgres) ;;
  *) echo "TURN_STORE must be static, redis or postgres (got $store)" >&2; exit 1 ;;
esac

turnserver="$(command -v turnserver || true)"
if [[ -z "$turnserver" ]]; then
  echo "turnserver not found: install coturn (Debian/Ubuntu: apt-get install coturn)" >&2
  exit 1
fi

secret=""
if [[ "$store" == static ]]; then
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
fi

run_dir="${XDG_RUNTIME_DIR:-/tmp}/voxlink-coturn-$(id -u)"
mkdir -p -m 700 "$run_dir"
conf="$run_dir/turnserver.conf"

tls_cert="${TURN_TLS_CERT:-}"
tls_key="${TURN_TLS_KEY:-}"
if [[ "$tls_port" != 0 && -z "$tls_cert" ]]; then
  # Development only: a self-signed certificate for the listening address, made once. Browsers
  # refuse it for turns: unless told to (chromium --ignore-certificate-errors); use a real one.
  tls_cert="$run_dir/turn-cert.pem"
  tls_key="$run_dir/turn-key.pem"
  if [[ ! -s "$tls_cert" ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj "/CN=$listen_ip" \
      -addext "subjectAltName=IP:$listen_ip,DNS:localhost" -keyout "$tls_key" -out "$tls_cert" 2>/dev/null
    chmod 600 "$tls_key"
    echo "generated a self-signed TURN TLS certificate in $tls_cert" >&2
  fi
fi

# Fill the template: replace each `name=value` line named below, append the store variant and the
# dev-only additions. The secret goes through ENVIRON, not the awk program text, so no character
# in it is special. A store variant drops static-auth-secret (it would win over the database).
(
  umask 077
  SECRET="$secret" TLS_CERT="$tls_cert" TLS_KEY="$tls_key" awk \
    -v realm="$realm" -v port="$port" -v min="$min_port" -v max="$max_port" -v store="$store" -v tls_port="$tls_port" '
    /^static-auth-secret=/ { if (store == "static") print "static-auth-secret=" ENVIRON["SECRET"]; next }
    /^realm=/              { print "realm=" realm; next }
    /^listening-port=/     { print "listening-port=" port; next }
    /^min-port=/           { print "min-port=" min; next }
    /^max-port=/           { print "max-port=" max; next }
    /^tls-listening-port=/ { if (tls_port == 0) print "no-tls"; else print "tls-listening-port=" tls_port; next }
    /^cert=/               { if (tls_port != 0) print "cert=" ENVIRON["TLS_CERT"]; next }
    /^pkey=/               { if (tls_port != 0) print "pkey=" ENVIRON["TLS_KEY"]; next }
    { print }
  ' "$template" > "$conf"
  if [[ "$store" != static ]]; then
    echo >> "$conf"
    REDIS_USERDB="$redis_userdb" PSQL_USERDB="$psql_userdb" awk '
      /^redis-userdb=/  { print "redis-userdb=\"" ENVIRON["REDIS_USERDB"] "\""; next }
      /^psql-userdb=/   { print "psql-userdb=\"" ENVIRON["PSQL_USERDB"] "\""; next }
      /^redis-statsdb=/ { next }
      { print }
    ' "$root/deploy/coturn-$store.conf" >> "$conf"
  fi
  {
    echo
    echo "# --- scripts/start-coturn.sh: development additions ---"
    echo "listening-ip=$listen_ip"
    echo "relay-ip=$listen_ip"
    if [[ "$store" == static ]]; then echo "userdb=$run_dir/turndb"; fi
    if [[ -n "$statsdb" ]]; then echo "redis-statsdb=\"$statsdb\""; fi
    echo "pidfile=$run_dir/turnserver.pid"
    if [[ "$verbose" == 1 ]]; then echo "verbose"; fi
    case "$listen_ip" in
      127.*) echo "allow-loopback-peers" ;;
    esac
  } >> "$conf"
)
if grep -v '^#' "$conf" | grep -q CHANGE_ME; then
  echo "the rendered config still has a CHANGE_ME placeholder: $conf" >&2
  exit 1
fi

urls="turn:$listen_ip:$port?transport=udp,turn:$listen_ip:$port?transport=tcp"
tls_note="no TLS"
if [[ "$tls_port" != 0 ]]; then
  urls="$urls,turns:$listen_ip:$tls_port?transport=tcp"
  tls_note="TLS on $tls_port"
fi
{
  echo "coturn on $listen_ip:$port (udp+tcp), $tls_note, relay ports $min_port-$max_port, realm $realm, secrets: $store"
  echo "config: $conf"
  echo "VoxLink settings to match:"
  echo "  VOXLINK_TURN_URLS='$urls'"
  case "$store" in
    static) echo "  VOXLINK_TURN_SECRET  (or the dev data dir's turn-secret, which this script used)" ;;
    redis) echo "  VOXLINK_TURN_STORE=redis VOXLINK_TURN_REALM=$realm VOXLINK_TURN_REDIS_URL=redis://HOST:PORT/DB (the same as: $redis_userdb)" ;;
    postgres) echo "  VOXLINK_TURN_STORE=postgres VOXLINK_TURN_REALM=$realm VOXLINK_TURN_POSTGRES_URL=postgres://USER@HOST/DB (the same as: $psql_userdb)" ;;
  esac
  if [[ -n "$statsdb" ]]; then echo "  VOXLINK_TURN_STATS_REDIS_URL=redis://HOST:PORT/DB (the same as: $statsdb)"; fi
} >&2
exec "$turnserver" -c "$conf"
