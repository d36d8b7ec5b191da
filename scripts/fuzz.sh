#!/usr/bin/env bash
# Runs every cargo-fuzz target for FUZZ_SECONDS (default 30) each. Needs a nightly toolchain;
# installs cargo-fuzz from crates.io if it is missing. Not part of scripts/test.sh: the
# required test path must not depend on nightly.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-30}"
rustup toolchain list | grep -q nightly || { echo "fuzz: no nightly toolchain; skipped"; exit 0; }
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
for target in $(cargo +nightly fuzz list); do
  echo "== fuzz $target for ${seconds}s"
  cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -max_len=65536
done
