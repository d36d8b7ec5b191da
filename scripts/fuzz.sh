#!/usr/bin/env bash
# Runs cargo-fuzz targets (FUZZ_TARGETS, default all) for FUZZ_SECONDS (default 30) each.
# FUZZ_SEED fixes libFuzzer's seed: the test script's brief run walks the same inputs every
# time (a gate that does not turn red on a new random walk), while a run here without it
# explores anew; what a long run finds becomes a regression test.
# Needs a nightly toolchain and cargo-fuzz (installed from crates.io if missing); without
# nightly it says so and exits 0. scripts/test.sh runs three targets briefly (10 s each). The
# build directory is kept under ~/.cache so repeated runs do not rebuild.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-30}"
rustup toolchain list | grep -q nightly || { echo "fuzz: no nightly toolchain; skipped"; exit 0; }
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/portcullis/fuzz-target}"
# The bundled SQLite amalgamation defines two file-static arrays of one name, which ASan's
# one-definition-rule check reports at start-up (a C false positive; Rust has no ODR).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Built first, with progress shown: with ASan the first build takes minutes, and a silent
# stage looks hung. (A build error shows again, whole, in the run below.)
echo "== building the fuzz targets (ASan; several minutes the first time)"
cargo +nightly fuzz build --target-dir "$target_dir" 2>&1 | awk '/^ *(Compiling|Finished)/ { sub(/^ */, "  "); print; fflush() }' || true
for target in ${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}; do
  echo "== fuzz $target for ${seconds}s"
  seed_flag=()
  [ -n "${FUZZ_SEED:-}" ] && seed_flag=(-seed="$FUZZ_SEED")
  if ! cargo +nightly fuzz run --target-dir "$target_dir" "$target" -- \
    -max_total_time="$seconds" -max_len=65536 "${seed_flag[@]}" >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $target failed; any crashing input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
  grep -E "^Done" "$log" || true
done
