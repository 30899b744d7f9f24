#!/usr/bin/env bash
# Rebuilds wasm/opus.wasm (standalone WebAssembly SIMD build of Opus 1.5.2) from the pinned
# Debian source tarball. Maintainers only: deployers use the committed wasm/opus.wasm.
#
#   ./emsdk-build.sh                 fetch + verify the source, build into wasm/ (opus.wasm, build-info.json)
#   ./emsdk-build.sh --fetch         only fetch + verify the tarball, print its path
#   ./emsdk-build.sh --check         rebuild in a temp dir, fail unless the bytes equal wasm/opus.wasm
#   ./emsdk-build.sh --conformance   build Opus's own tests with the same flags to wasm, run them under Node
#
# See wasm/README.md for why each flag and patch is there (with measurements) and wasm/ABI.md
# for the module's contract.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="$ROOT/.cache"
WASM_DIR="$ROOT/wasm"

OPUS_VERSION=1.5.2
OPUS_TARBALL_NAME="opus_${OPUS_VERSION}.orig.tar.gz"
OPUS_SHA256=65c1d2f78b9f2fb20082c38cbe47c951ad5839345876e46941612ee87f9a7ce1
TARBALL="$CACHE/$OPUS_TARBALL_NAME"
DEBIAN_SUITE=trixie
DEBIAN_MIRROR=http://deb.debian.org/debian
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

JOBS="${JOBS:-2}"

# --- the recipe (kept in sync with wasm/README.md) -------------------------------------------
# Opus's SSE/SSE4.1 intrinsics are translated to wasm SIMD by emscripten; the x86 host triple
# makes configure pick them, --disable-rtcd because there is no cpuid in wasm.
CONFIGURE_FLAGS=(
  --host=x86_64-unknown-linux-gnu
  --enable-static --disable-shared
  --disable-doc
  --enable-dred --enable-deep-plc
  --enable-intrinsics --disable-rtcd
  --enable-float-approx
  --disable-stack-protector --disable-hardening
)
OPT_FLAGS=(-O3 -msimd128 -msse4.1 -mnontrapping-fptoint -mbulk-memory -msign-ext)
# Library only: the C assert()s in dnn/burg.c and dnn/freq.c are the one path to stdio in the
# release build; without them the module imports nothing but emscripten_notify_memory_growth.
# (Opus's own checks are celt_assert, already off without --enable-assertions.)
LIB_DEFINES=(-DNDEBUG)
# The build directory is mapped to a fixed name so no absolute path can reach the output.
prefix_map_flags() { echo "-ffile-prefix-map=$1=/opus-build"; }
STACK_SIZE=$((2 * 1024 * 1024))
LINK_FLAGS=(
  --no-entry
  -sSTANDALONE_WASM=1
  -sALLOW_MEMORY_GROWTH=1
  -sTOTAL_STACK=$STACK_SIZE
  -sINITIAL_MEMORY=$((16 * 1024 * 1024))
  -sFILESYSTEM=0
  -sERROR_ON_UNDEFINED_SYMBOLS=1
)
# wasm export names (C names); emcc wants them with a leading underscore.
EXPORTS=(
  malloc free
  opus_encoder_create opus_encoder_destroy opus_encode opus_encode_float
  opus_decoder_create opus_decoder_destroy opus_decode opus_decode_float
  opus_packet_get_nb_samples opus_packet_get_nb_frames opus_packet_get_nb_channels
  opus_packet_get_bandwidth opus_decoder_get_nb_samples opus_packet_has_lbrr
  opus_strerror opus_get_version_string
  opus_dred_decoder_create opus_dred_decoder_destroy opus_dred_alloc opus_dred_free
  opus_dred_parse opus_dred_process opus_decoder_dred_decode_float
  vx_encoder_ctl_set vx_encoder_ctl_get vx_decoder_ctl_set vx_decoder_ctl_get
  vx_encoder_reset vx_decoder_reset
  vx_mix_add vx_mix_sub vx_mix_scale
)
# Imports the module is allowed to have (wasm/ABI.md); the build fails on anything else.
ALLOWED_IMPORTS=(
  wasi_snapshot_preview1.proc_exit
  wasi_snapshot_preview1.fd_write
  wasi_snapshot_preview1.fd_close
  wasi_snapshot_preview1.fd_seek
  env.emscripten_notify_memory_growth
)

log() { printf '[emsdk-build] %s\n' "$*" >&2; }
die() { printf '[emsdk-build] ERROR: %s\n' "$*" >&2; exit 1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# --- source --------------------------------------------------------------------------------
# Private apt configuration under .cache/apt: the system's /etc/apt is never touched.
# apt_private apt-get|apt-cache ARGS...
apt_private() {
  local tool="$1" d="$CACHE/apt"; shift
  mkdir -p "$d/etc/sources.list.d" "$d/lists/partial" "$d/cache/archives/partial"
  printf 'deb-src [signed-by=%s] %s %s main\n' "$DEBIAN_KEYRING" "$DEBIAN_MIRROR" "$DEBIAN_SUITE" \
    >"$d/etc/sources.list"
  "$tool" \
    -o Dir::Etc::SourceList="$d/etc/sources.list" \
    -o Dir::Etc::SourceParts="$d/etc/sources.list.d" \
    -o Dir::State::Lists="$d/lists" \
    -o Dir::Cache="$d/cache" \
    -o Debug::NoLocking=1 \
    -o APT::Sandbox::User="$(id -un)" \
    "$@"
}

fetch_source() {
  mkdir -p "$CACHE"
  if [[ -f "$TARBALL" ]]; then
    if [[ "$(sha256_of "$TARBALL")" == "$OPUS_SHA256" ]]; then
      return 0
    fi
    log "cached $TARBALL has the wrong sha256; fetching again"
    rm -f "$TARBALL"
  fi
  [[ -f "$DEBIAN_KEYRING" ]] || die "missing $DEBIAN_KEYRING (apt-get install debian-archive-keyring)"
  log "fetching opus $OPUS_VERSION source from Debian $DEBIAN_SUITE (private apt config in .cache/apt)"
  apt_private apt-get -qq update >&2
  # apt-get source takes an exact version, so resolve 1.5.2* (e.g. 1.5.2-2) first.
  local version
  version="$(apt_private apt-cache showsrc opus 2>/dev/null |
    sed -n "s/^Version: \(${OPUS_VERSION//./\\.}[-+~].*\)$/\1/p" | head -n1 || true)"
  [[ -n "$version" ]] || die "Debian $DEBIAN_SUITE has no opus source package version $OPUS_VERSION*"
  local dl
  dl="$(mktemp -d "$CACHE/fetch.XXXXXX")"
  (cd "$dl" && apt_private apt-get -qq source --download-only "opus=$version" >&2)
  [[ -f "$dl/$OPUS_TARBALL_NAME" ]] || die "apt-get source did not produce $OPUS_TARBALL_NAME"
  local got
  got="$(sha256_of "$dl/$OPUS_TARBALL_NAME")"
  if [[ "$got" != "$OPUS_SHA256" ]]; then
    rm -rf "$dl"
    die "sha256 mismatch for $OPUS_TARBALL_NAME: expected $OPUS_SHA256, got $got"
  fi
  mv "$dl/$OPUS_TARBALL_NAME" "$TARBALL"
  rm -rf "$dl"
  log "verified $TARBALL"
}

# --- toolchain ----------------------------------------------------------------------------
ensure_emcc() {
  local missing=()
  command -v emcc >/dev/null 2>&1 || missing+=(emscripten binaryen)
  command -v make >/dev/null 2>&1 || missing+=(make)
  command -v patch >/dev/null 2>&1 || missing+=(patch)
  if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing Debian packages: ${missing[*]}"
    [[ "$(id -u)" == 0 ]] || die "missing ${missing[*]} and not root: apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -qq update >&2
    DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends "${missing[@]}" >&2
  fi
  command -v node >/dev/null 2>&1 || die "node is required"
  # emcc -O2/-O3 runs its JS optimizer, which needs acorn from Debian's node-acorn.
  export NODE_PATH="/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}"
  # Debian's emscripten ships a prebuilt, frozen system-library cache; keep emcc from
  # writing anywhere else and keep its output free of the caller's locale and time.
  export LC_ALL=C TZ=UTC SOURCE_DATE_EPOCH=0
  EMCC_VERSION="$(emcc --version 2>/dev/null | head -n1)"
}

# --- build ---------------------------------------------------------------------------------
# clang in emscripten 3.1.6 miscompiles filter_df2t() in dnn/dred_encoder.c (the 48/24 kHz → 16 kHz
# IIR in front of the DRED encoder) with its SLP vectoriser under -msimd128: DRED from 48 kHz and
# 24 kHz encoders became NaN (energy kept on lost frames 0.019, native 0.585). This one file is
# compiled with -fno-slp-vectorize (then 0.588); the rest keeps the full flags. See wasm/README.md.
SLP_OFF_OBJECTS=(dnn/dred_encoder.lo)

# make_libopus SRC CFLAGS: libopus.la with the shipped flags, the SLP_OFF_OBJECTS first without SLP
make_libopus() {
  local src="$1" cflags="$2"
  log "make ${SLP_OFF_OBJECTS[*]} (-fno-slp-vectorize), then make -j$JOBS libopus.la"
  (cd "$src" && emmake make "${SLP_OFF_OBJECTS[@]}" CFLAGS="$cflags -fno-slp-vectorize" >make.out 2>&1 &&
    emmake make -j"$JOBS" libopus.la >>make.out 2>&1) ||
    { tail -n 40 "$src/make.out" >&2; die "make failed"; }
}

# unpack_patched DIR: fresh, patched Opus source tree at DIR/opus-$OPUS_VERSION
unpack_patched() {
  local dir="$1"
  rm -rf "$dir/opus-$OPUS_VERSION"
  mkdir -p "$dir"
  tar -xzf "$TARBALL" -C "$dir"
  local p
  for p in "$WASM_DIR"/patches/*.patch; do
    [[ -e "$p" ]] || continue
    patch -d "$dir/opus-$OPUS_VERSION" -p1 --quiet --forward --no-backup-if-mismatch <"$p" ||
      die "patch $(basename "$p") does not apply"
  done
}

# configure_opus SRC EXTRA_CONFIGURE_FLAGS...
configure_opus() {
  local src="$1"; shift
  local cflags="${OPT_FLAGS[*]} ${LIB_DEFINES[*]} $(prefix_map_flags "$(dirname "$src")")"
  log "configure: ${CONFIGURE_FLAGS[*]} $*"
  log "CFLAGS: $cflags"
  (cd "$src" && emconfigure ./configure "${CONFIGURE_FLAGS[@]}" "$@" \
    CFLAGS="$cflags" LDFLAGS="${OPT_FLAGS[*]}" >configure.out 2>&1) ||
    { tail -n 40 "$src/config.log" >&2; die "configure failed (see $src/config.log)"; }
}

# build_wasm BUILD_DIR OUT_WASM
build_wasm() {
  local dir="$1" out="$2"
  unpack_patched "$dir"
  local src="$dir/opus-$OPUS_VERSION"
  configure_opus "$src" --disable-extra-programs
  make_libopus "$src" "${OPT_FLAGS[*]} ${LIB_DEFINES[*]} $(prefix_map_flags "$dir")"
  link_module "$dir" "$out"
}

# link_module BUILD_DIR OUT_WASM: glue.c + the built libopus.a -> standalone module
link_module() {
  local dir="$1" out="$2"
  local src="$dir/opus-$OPUS_VERSION"
  local exported
  exported="$(printf '_%s,' "${EXPORTS[@]}")"
  exported="${exported%,}"
  log "link: ${OPT_FLAGS[*]} ${LINK_FLAGS[*]}"
  # glue.c is copied into the build tree so the prefix map covers it like the Opus sources.
  cp "$WASM_DIR/glue.c" "$src/vx_glue.c"
  (cd "$src" && emcc "${OPT_FLAGS[@]}" "${LIB_DEFINES[@]}" $(prefix_map_flags "$dir") -I include -c vx_glue.c -o vx_glue.o) ||
    die "glue.c does not compile"
  (cd "$src" && emcc "${OPT_FLAGS[@]}" vx_glue.o .libs/libopus.a -lm \
    "${LINK_FLAGS[@]}" -sEXPORTED_FUNCTIONS="$exported" \
    -o "$out") || die "link failed"
}

# wasm_info FILE: prints one JSON object {exports:[...], imports:[...]} (names as module.name)
wasm_info() {
  node --input-type=module -e '
    import { readFileSync } from "node:fs";
    const m = new WebAssembly.Module(readFileSync(process.argv[1]));
    const exports = WebAssembly.Module.exports(m).map((e) => e.name).sort();
    const imports = WebAssembly.Module.imports(m).map((i) => `${i.module}.${i.name}`).sort();
    process.stdout.write(JSON.stringify({ exports, imports }));
  ' "$1"
}

# verify_wasm FILE: every ABI export present, no import outside ALLOWED_IMPORTS
verify_wasm() {
  local file="$1" info
  info="$(wasm_info "$file")"
  node --input-type=module -e '
    const [info, want, allowed] = process.argv.slice(1).map((a, i) => i ? a.split(" ") : JSON.parse(a));
    const missing = want.filter((e) => !info.exports.includes(e));
    const extra = info.imports.filter((i) => !allowed.includes(i));
    if (!info.exports.includes("memory")) missing.push("memory");
    if (missing.length || extra.length) {
      console.error(`missing exports: ${missing.join(", ") || "-"}; unexpected imports: ${extra.join(", ") || "-"}`);
      process.exit(1);
    }
  ' "$info" "${EXPORTS[*]}" "${ALLOWED_IMPORTS[*]}" || die "$file does not match the ABI"
}

write_build_info() {
  local wasm="$1" out="$2" info
  info="$(wasm_info "$wasm")"
  node --input-type=module -e '
    import { writeFileSync } from "node:fs";
    const [out, info, ...kv] = process.argv.slice(1);
    const o = Object.fromEntries(kv.map((s) => { const i = s.indexOf("="); return [s.slice(0, i), s.slice(i + 1)]; }));
    const split = (s) => s.split(" ").filter(Boolean);
    const { exports, imports } = JSON.parse(info);
    const doc = {
      opus: { version: o.version, source: o.source, sha256: o.source_sha256, patches: split(o.patches) },
      emcc: o.emcc,
      configure_flags: split(o.configure),
      cflags: split(o.cflags),
      ldflags: split(o.ldflags),
      exports,
      imports,
      stack_size: Number(o.stack),
      output: { file: "wasm/opus.wasm", sha256: o.out_sha256, size: Number(o.size) },
    };
    writeFileSync(out, JSON.stringify(doc, null, 2) + "\n");
  ' "$out" "$info" \
    "version=$OPUS_VERSION" \
    "source=$OPUS_TARBALL_NAME (Debian $DEBIAN_SUITE)" \
    "source_sha256=$OPUS_SHA256" \
    "patches=$(cd "$WASM_DIR" && ls patches/*.patch 2>/dev/null | tr '\n' ' ')" \
    "emcc=$EMCC_VERSION" \
    "configure=${CONFIGURE_FLAGS[*]}" \
    "cflags=${OPT_FLAGS[*]} ${LIB_DEFINES[*]} -ffile-prefix-map=<build>=/opus-build (${SLP_OFF_OBJECTS[*]}: -fno-slp-vectorize)" \
    "ldflags=${OPT_FLAGS[*]} ${LINK_FLAGS[*]}" \
    "stack=$STACK_SIZE" \
    "out_sha256=$(sha256_of "$wasm")" \
    "size=$(stat -c %s "$wasm")"
}

mode_build() {
  fetch_source
  ensure_emcc
  local dir="$CACHE/build"
  build_wasm "$dir" "$dir/opus.wasm"
  verify_wasm "$dir/opus.wasm"
  cp "$dir/opus.wasm" "$WASM_DIR/opus.wasm"
  write_build_info "$WASM_DIR/opus.wasm" "$WASM_DIR/build-info.json"
  log "wrote wasm/opus.wasm ($(stat -c %s "$WASM_DIR/opus.wasm") bytes, sha256 $(sha256_of "$WASM_DIR/opus.wasm"))"
}

mode_check() {
  [[ -f "$WASM_DIR/opus.wasm" ]] || die "no committed wasm/opus.wasm to check against"
  fetch_source
  ensure_emcc
  local want_emcc
  want_emcc="$(node -e 'console.log(require(process.argv[1]).emcc)' "$WASM_DIR/build-info.json")"
  [[ "$want_emcc" == "$EMCC_VERSION" ]] ||
    die "emcc differs from the one that built wasm/opus.wasm ('$EMCC_VERSION' vs '$want_emcc'): bytes cannot match"
  # global, not local: the EXIT trap runs after this function has returned
  CHECK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/voxlink-opus-check.XXXXXX")"
  trap 'rm -rf "$CHECK_DIR"' EXIT
  build_wasm "$CHECK_DIR" "$CHECK_DIR/opus.wasm"
  local got want
  got="$(sha256_of "$CHECK_DIR/opus.wasm")"
  want="$(sha256_of "$WASM_DIR/opus.wasm")"
  if [[ "$got" != "$want" ]]; then
    die "rebuilt opus.wasm differs from wasm/opus.wasm (rebuilt $got, committed $want)"
  fi
  log "OK: rebuilt opus.wasm is byte-identical to wasm/opus.wasm ($want)"
}

mode_conformance() {
  fetch_source
  ensure_emcc
  local dir="$CACHE/conformance"
  unpack_patched "$dir"
  local src="$dir/opus-$OPUS_VERSION"
  # Test programs are executables with main(): standalone WASI modules, run by wasi-run.mjs.
  local test_ldflags="${OPT_FLAGS[*]} -sSTANDALONE_WASM=1 -sALLOW_MEMORY_GROWTH=1 -sTOTAL_STACK=$STACK_SIZE"
  local lib_cflags="${OPT_FLAGS[*]} ${LIB_DEFINES[*]} $(prefix_map_flags "$dir")"
  local test_cflags="${OPT_FLAGS[*]} $(prefix_map_flags "$dir")"
  log "configure (tests): ${CONFIGURE_FLAGS[*]}"
  (cd "$src" && emconfigure ./configure "${CONFIGURE_FLAGS[@]}" \
    CFLAGS="$lib_cflags" LDFLAGS="$test_ldflags" >configure.out 2>&1) ||
    { tail -n 40 "$src/config.log" >&2; die "configure failed"; }
  # The library objects get exactly the shipped flags; the test programs' own sources are
  # then compiled without -DNDEBUG so that their assert()s still check.
  make_libopus "$src" "$lib_cflags"
  log "make -j$JOBS check (tests run under node via wasm/tools/wasi-run.mjs)"
  local rc=0
  # noinst_PROGRAMS= skips the demos (opus_demo, fargan_demo, ...): the tests are still built,
  # as prerequisites of their logs.
  (cd "$src" && emmake make -j"$JOBS" check CFLAGS="$test_cflags" noinst_PROGRAMS= \
    LOG_COMPILER=node LOG_FLAGS="$WASM_DIR/tools/wasi-run.mjs" >make-check.out 2>&1) || rc=$?
  # automake writes one .log per test and a summary in test-suite.log
  grep -E '^(PASS|FAIL|XFAIL|XPASS|SKIP|ERROR):' "$src/make-check.out" >&2 || true
  if [[ $rc -ne 0 ]]; then
    [[ -f "$src/test-suite.log" ]] && tail -n 60 "$src/test-suite.log" >&2 || tail -n 60 "$src/make-check.out" >&2
    die "conformance failed"
  fi
  local pass fail
  pass="$(grep -c '^PASS:' "$src/make-check.out" || true)"
  fail="$(grep -Ec '^(FAIL|ERROR|XPASS):' "$src/make-check.out" || true)"
  [[ "$pass" -gt 0 && "$fail" -eq 0 ]] || die "conformance: $pass passed, $fail failed"
  # The wasm SIMD noise-shaping quantiser (patch 0003) against Opus's C one: rebuild that unit
  # with -DOPUS_CHECK_ASM (each call also runs silk_NSQ_del_dec_c on a copy and aborts on any
  # difference), link a module and drive it through random encoder configurations.
  log "NSQ check: silk/NSQ_del_dec.lo with -DOPUS_CHECK_ASM, then wasm/tools/nsq-check.mjs"
  (cd "$src" && rm -f silk/NSQ_del_dec.lo silk/NSQ_del_dec.o silk/.libs/NSQ_del_dec.o &&
    emmake make silk/NSQ_del_dec.lo CFLAGS="$lib_cflags -DOPUS_CHECK_ASM" >make-nsq-check.out 2>&1 &&
    emmake make libopus.la >>make-nsq-check.out 2>&1) ||
    { tail -n 40 "$src/make-nsq-check.out" >&2; die "NSQ check build failed"; }
  link_module "$dir" "$dir/opus-nsq-check.wasm"
  node "$WASM_DIR/tools/nsq-check.mjs" "$dir/opus-nsq-check.wasm" 300 >&2 || die "NSQ check failed"
  echo "$pass passed, $fail failed; NSQ check passed"
}

main() {
  case "${1:-}" in
    "") mode_build ;;
    --fetch) fetch_source; echo "$TARBALL" ;;
    --check) mode_check ;;
    --conformance) mode_conformance ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown option '$1' (try --help)" ;;
  esac
}

# One line, so that bash has read all of it before running: editing this file while it runs
# cannot change what it does next.
main "$@"; exit $?
