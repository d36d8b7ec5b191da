#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). Formatting, lints, every Rust test
# (unit and black-box over real sockets), then the official openai Python client against the
# real binary. Needs only cargo and python3; installs the rest itself (a private PostgreSQL
# is started for the store tests; the limiter tests start private redis-servers).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings
echo "== PostgreSQL for the store tests"
source scripts/test-postgres.sh
start_test_postgres
echo "== redis-server for the limiter tests"
if ! command -v "${PORTCULLIS_REDIS_SERVER:-redis-server}" >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing redis-server (Debian package)"
    (apt-get install -y -q redis-server >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; })
  else
    echo "redis-server not found; install it or set PORTCULLIS_REDIS_SERVER" >&2
    exit 1
  fi
fi
echo "== cargo test (gateway black-box suite on PostgreSQL)"
PORTCULLIS_TEST_STORE=postgres cargo test --locked -p portcullis-gateway --tests
echo "== cargo test"
cargo test --workspace --locked
echo "== chromium for the dashboard test"
if [ ! -x "${PORTCULLIS_CHROMIUM:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing chromium (Debian package)"
    (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; })
  else
    echo "chromium not found; install Debian's chromium or set PORTCULLIS_CHROMIUM" >&2
    exit 1
  fi
fi
echo "== openai client, metrics parsers, dashboard in chromium"
PORTCULLIS_REQUIRE_BROWSER=1 bash scripts/openai-client-test.sh
echo "== deployment files (hadolint, kubernetes-validate, compose schema, systemd-analyze, check-config)"
bash scripts/validate-deploy.sh
echo "== brief fuzzing (request parser, stream redactor, prompt screening, response chain, admin API, token counting, watermark, threat detector)"
FUZZ_SEED="${FUZZ_SEED:-1}" FUZZ_SECONDS="${FUZZ_SECONDS:-10}" FUZZ_TARGETS="inference_request stream_redactor prompt_screening response_chain admin_api token_count watermark hunt_features" \
  bash scripts/fuzz.sh
