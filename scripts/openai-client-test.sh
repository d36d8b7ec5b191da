#!/usr/bin/env bash
# Runs the official `openai` Python package against the real binary: the simulator and the
# gateway are started on free loopback ports, the client test runs, both are stopped.
# The venv lives in the target directory so repeated runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
bin="$target/debug/portcullis"
venv="${PORTCULLIS_VENV:-$target/openai-venv}"

[ -x "$bin" ] || cargo build --quiet --bin portcullis
. scripts/lib.sh
python_venv "$venv" tests/python/requirements.txt

sim_port=$(free_port); public=$(free_port); admin=$(free_port)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$bin" sim --listen "127.0.0.1:$sim_port" 2>"$work/sim.log" &
pids+=($!)
cat >"$work/portcullis.toml" <<TOML
[listeners]
public = "127.0.0.1:$public"
admin = "127.0.0.1:$admin"

[store]
url = "sqlite://$work/data/portcullis.db"

[[upstreams]]
name = "sim"
base_url = "http://127.0.0.1:$sim_port/v1"
health_check_interval = "200ms"

[[models]]
name = "sim-chat"
upstream = "sim"

[[models]]
name = "sim-embed"
upstream = "sim"

[plans.tight.key]
requests_per_minute = 1
tokens_per_minute = 100000

[plans.metered.key]
tokens_per_day = 60
TOML
"$bin" serve --config "$work/portcullis.toml" 2>"$work/gateway.log" &
pids+=($!)

for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null || { cat "$work/gateway.log"; echo "gateway not ready"; exit 1; }

# A tenant and a key through the admin API, as an operator would make them.
admin_token=$(cat "$work/data/admin-token")
admin() { curl -sf -H "authorization: Bearer $admin_token" -H 'content-type: application/json' "$@"; }
admin -d '{"name":"sdk-test","audience":"customer"}' "http://127.0.0.1:$admin/admin/v1/tenants" >/dev/null
key=$(admin -d '{"tenant":"sdk-test","expires_in":"1h"}' "http://127.0.0.1:$admin/admin/v1/keys" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

key_on_plan() { # tenant plan
  admin -d "{\"name\":\"$1\",\"audience\":\"customer\",\"plan\":\"$2\"}" "http://127.0.0.1:$admin/admin/v1/tenants" >/dev/null
  admin -d "{\"tenant\":\"$1\",\"expires_in\":\"1h\"}" "http://127.0.0.1:$admin/admin/v1/keys" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
export PORTCULLIS_TIGHT_KEY=$(key_on_plan sdk-tight tight)
export PORTCULLIS_METERED_KEY=$(key_on_plan sdk-metered metered)

PORTCULLIS_API_KEY="$key" PORTCULLIS_BASE_URL="http://127.0.0.1:$public/v1" PORTCULLIS_SIM_URL="http://127.0.0.1:$sim_port" \
  "$venv/bin/python" tests/python/openai_client_test.py

# The metrics that traffic left, parsed by the official Prometheus client's parsers.
PORTCULLIS_ADMIN_URL="http://127.0.0.1:$admin" PORTCULLIS_ADMIN_TOKEN="$admin_token" \
  "$venv/bin/python" tests/python/metrics_check.py

# The dashboard in a real browser (Debian's chromium; scripts/test.sh installs it).
if [ -x "${PORTCULLIS_CHROMIUM:-/usr/bin/chromium}" ]; then
  PORTCULLIS_ADMIN_URL="http://127.0.0.1:$admin" PORTCULLIS_ADMIN_TOKEN="$admin_token" \
  PORTCULLIS_API_KEY="$key" PORTCULLIS_BASE_URL="http://127.0.0.1:$public/v1" \
  PORTCULLIS_SCREENSHOTS="$target/dashboard-screenshots" \
    "$venv/bin/python" tests/python/dashboard_test.py
elif [ -n "${CI:-}${PORTCULLIS_REQUIRE_BROWSER:-}" ]; then
  echo "chromium is missing: the dashboard test cannot run" >&2; exit 1
else
  echo "chromium not found: dashboard browser test skipped (scripts/test.sh installs it)"
fi
