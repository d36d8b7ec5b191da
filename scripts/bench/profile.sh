#!/usr/bin/env bash
# Where a proxied request's CPU goes: the gateway (embedded defaults, every guard on) alone on
# core 1 with one worker, saturated by the load generator on core 0 in front of the canned
# upstream; `perf record` with DWARF call graphs on the gateway; then CPU per request (from
# /proc ticks over the same load) split into the request path's stages, each the inclusive
# share of the function that does it, and the self time of each component.
#
#   bash scripts/bench/profile.sh            # the benchmark's ~300-byte chat turn
#   PROMPT_CHARS=2000 bash scripts/bench/profile.sh
#   EXTRA_CONFIG='[guard]\nwatermark = "on"' bash scripts/bench/profile.sh   # a variant
#
# Needs perf (Debian's linux-perf); software clock sampling is enough (no hardware counters).
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet --bin portcullis
cargo build --release --quiet -p portcullis-sim --example canned_upstream
bin="$target/release/portcullis"
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
. scripts/bench/common.sh
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
up_port=$(free_port); port=$(free_port); admin_port=$(free_port)
taskset -c 0 "$target/release/examples/canned_upstream" "127.0.0.1:$up_port" 2>/dev/null &
pids+=($!)
{ bench_gateway_config "$port" "$admin_port" "$up_port" "$work/data"; printf '%b\n' "${EXTRA_CONFIG:-}"; } >"$work/gateway.toml"
export PORTCULLIS_WATERMARK_SECRETS="${PORTCULLIS_WATERMARK_SECRETS:-bench:profile watermark secret}"
TOKIO_WORKER_THREADS=1 taskset -c 1 "$bin" serve --config "$work/gateway.toml" 2>"$work/gateway.log" &
gw=$!
pids+=($gw)
PORTCULLIS_LOAD_API_KEY=$(bench_api_key "$admin_port" "$work/data")
export PORTCULLIS_LOAD_API_KEY
load() { TOKIO_WORKER_THREADS=1 taskset -c 0 "$bin" load --url "http://127.0.0.1:$port/v1/chat/completions" \
  --duration "$1" ${PROMPT_CHARS:+--prompt-chars $PROMPT_CHARS} >"$work/$2.json"; }
load 3s warm
# CPU per request from /proc ticks over a run with no profiler attached.
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$gw/stat")
load 8s measured
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$gw/stat")
load 10s profiled &
loader=$!
sleep 2
perf record -q -F 1000 --call-graph dwarf,16384 -p "$gw" -o "$work/perf.data" -- sleep 5 >/dev/null 2>&1
wait $loader
perf report -i "$work/perf.data" --children --sort symbol --stdio -g none --percent-limit 0.05 2>/dev/null >"$work/children.txt"
perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -g none --percent-limit 0.01 2>/dev/null >"$work/self.txt"
[ -n "${KEEP_PROFILE:-}" ] && cp "$work"/*.txt "$work/measured.json" "$KEEP_PROFILE"/
python3 scripts/bench/profile_table.py "$work" "$u0" "$s0" "$u1" "$s1" "$(getconf CLK_TCK)"
