#!/usr/bin/env bash
# Installs the real components the integration tests start: coturn (TURN) and Chromium (browser
# peer); Redis for the multi-node registry DESIGN.md plans (no test uses it yet); all from Debian's
# packages. Idempotent; needs root.
set -euo pipefail
need=()
command -v turnserver >/dev/null || need+=(coturn)
command -v redis-server >/dev/null || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
# Benchmarks only: sox and espeak-ng make the codec bench's speech signal (without them it falls
# back to a synthetic one and says so).
command -v sox >/dev/null || need+=(sox)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
# The Ogg Opus tests validate the files we write with opusinfo and decode them with opusdec.
command -v opusinfo >/dev/null || need+=(opus-tools)
# The deploy tests check deploy/voxlink.service with systemd-analyze verify / security.
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y "${need[@]}"
fi
# Debian starts coturn and redis as services when it can; the tests start their own instances
# on private ports, so stopped system services are fine either way.
echo "system deps: coturn $(turnserver --version 2>/dev/null | head -1 || true), $(redis-server --version | cut -d' ' -f3), $(/usr/bin/chromium --version 2>/dev/null)"
