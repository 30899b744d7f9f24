#!/usr/bin/env bash
# Builds native libopus with gcc from the same pinned tarball (into .cache/native, once) and
# runs wasm/tools/time-native.c: the native baseline for wasm/tools/time-codec.mjs.
#   wasm/tools/time-native.sh [passes]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NATIVE="$ROOT/.cache/native"
TARBALL="$("$ROOT/emsdk-build.sh" --fetch)"
if [[ ! -f "$NATIVE/lib/libopus.a" ]]; then
  rm -rf "$NATIVE/src" && mkdir -p "$NATIVE/src"
  tar -xzf "$TARBALL" -C "$NATIVE/src"
  # Same features as the wasm build; Opus's default native flags (-O2, run-time CPU detection
  # picks SSE4.1/AVX2 code), as a distribution would ship it.
  (cd "$NATIVE/src/opus-1.5.2" && ./configure --prefix="$NATIVE" --enable-static --disable-shared \
    --disable-doc --disable-extra-programs --enable-dred --enable-deep-plc >/dev/null &&
    make -j2 >/dev/null && make install >/dev/null)
fi
gcc -O2 -I"$NATIVE/include/opus" "$ROOT/wasm/tools/time-native.c" "$NATIVE/lib/libopus.a" -lm \
  -o "$NATIVE/time-native"
"$NATIVE/time-native" "${1:-7}"
