#!/usr/bin/env bash
# Installs the real components the integration tests start: coturn (TURN), Chromium (browser
# peer), Redis and PostgreSQL (coturn's user DB for TURN secrets, its redis-statsdb for TURN
# statistics; test/turn starts private instances); all from Debian's packages. Idempotent; needs root.
set -euo pipefail
need=()
command -v turnserver >/dev/null || need+=(coturn)
command -v redis-server >/dev/null || need+=(redis-server)
# test/turn runs initdb/postgres from PostgreSQL's versioned bin dir as the `postgres` user.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
# Benchmarks only: sox and espeak-ng make the codec bench's speech signal (without them it falls
# back to a synthetic one and says so).
command -v sox >/dev/null || need+=(sox)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
# The Ogg Opus tests validate the files we write with opusinfo and decode them with opusdec.
command -v opusinfo >/dev/null || need+=(opus-tools)
# Offline transcription (recording.transcription, engine pocketsphinx) and its tests: the recognizer
# and its US English model, both from Debian; nothing is downloaded at run time.
command -v pocketsphinx_continuous >/dev/null || need+=(pocketsphinx)
[ -d /usr/share/pocketsphinx/model/en-us/en-us ] || need+=(pocketsphinx-en-us)
# test/web/https.test.ts makes a network namespace (a second host) with ip netns and veth.
command -v ip >/dev/null || need+=(iproute2)
# The deploy tests check deploy/voxlink.service with systemd-analyze verify / security.
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y "${need[@]}"
fi
# Debian starts coturn, redis and postgresql as services when it can; the tests start their own instances
# on private ports, so stopped system services are fine either way.
echo "system deps: coturn $(turnserver --version 2>/dev/null | head -1 || true), $(redis-server --version | cut -d' ' -f3), $(ls -d /usr/lib/postgresql/*/bin/postgres | head -1), $(/usr/bin/chromium --version 2>/dev/null)"
