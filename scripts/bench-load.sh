#!/usr/bin/env bash
# Load benchmark: a direct connection, nginx as a plain reverse proxy, and the gateway in
# several configurations, in front of one upstream that is far faster than any of them, in one
# run. Reports saturation throughput, latency added at a fixed rate, streaming time to first
# byte, CPU time per request and memory, as a table with ratios to nginx. Not part of the test
# suite: speed targets live here, not in tests.
#
# Layout on a 2-core machine: the upstream (crates/portcullis-sim/examples/canned_upstream.rs,
# canned bytes, no JSON parsed) and the load generator share core 0 (one thread each); the
# proxy under test (gateway or nginx) is alone on core 1 with one worker. Only one proxy is
# loaded at a time; every target runs in two alternating rounds so drift on a noisy machine
# touches all alike, and the table gives the mean of the rounds (the JSON files keep each).
#
#   RATE=1000 DURATION=10s CONNECTIONS=32 ROUNDS=2 bash scripts/bench-load.sh
#
# Targets: direct, nginx, gateway (the embedded defaults: every guard on, metrics and the audit
# trail on), gateway_noguard (guards off), gateway_notelemetry (telemetry off), gateway_otlp
# (every request's spans exported to a local OTLP receiver), gateway_redis (limits in a private
# redis-server), gateway_watermark (the forensic watermark on), and with BASELINE_BIN=path/to/older/portcullis that binary with the defaults.
# ONLY="direct nginx gateway" restricts the run to some of them.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${RATE:-1000}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
ROUNDS="${ROUNDS:-2}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet --bin portcullis
cargo build --release --quiet -p portcullis-sim --example canned_upstream
bin="$target/release/portcullis"
upstream_bin="$target/release/examples/canned_upstream"
cores=$(nproc)
core_a=0; core_b=$(( cores > 1 ? 1 : 0 ))
# PIN=0 runs everything unpinned with default worker threads instead.
if [ "${PIN:-1}" = 0 ]; then threads=""; else threads=1; fi
# Prefix that pins a command to a core (nothing when unpinned); expands unquoted on purpose.
pin() { [ -n "$threads" ] && echo "taskset -c $1" || true; }
wanted() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

if ! command -v nginx >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q nginx >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q nginx >/dev/null; }) || true
fi

. scripts/bench/common.sh
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT

up_port=$(free_port)
$(pin $core_a) "$upstream_bin" "127.0.0.1:$up_port" 2>/dev/null &
pids+=($!)

declare -A port_of pid_of idle_rss_of
# Starts one gateway: name, extra TOML, binary.
start_gateway() {
  local name=$1 extra=$2 exe=${3:-$bin} port admin
  port=$(free_port); admin=$(free_port)
  { bench_gateway_config "$port" "$admin" "$up_port" "$work/data"; printf '%b\n' "$extra"; } >"$work/$name.toml"
  ${threads:+env TOKIO_WORKER_THREADS=$threads} $(pin $core_b) "$exe" serve --config "$work/$name.toml" 2>"$work/$name.log" &
  pid_of[$name]=$!
  pids+=($!)
  port_of[$name]=$port
  echo "$admin" >"$work/$name.admin"
}

# The first gateway creates the store (tenant, key, admin token); the others share it.
start_gateway gateway ""
PORTCULLIS_LOAD_API_KEY=$(bench_api_key "$(cat "$work/gateway.admin")" "$work/data")
export PORTCULLIS_LOAD_API_KEY

wanted gateway_noguard && start_gateway gateway_noguard '[guard]\nunicode = "off"\ninjection = "off"\noutput = "off"'
# The watermark's secret (a bench value); only gateway_watermark turns the watermark on.
export PORTCULLIS_WATERMARK_SECRETS="bench:load benchmark watermark secret"
wanted gateway_watermark && start_gateway gateway_watermark '[guard]\nwatermark = "on"'
wanted gateway_notelemetry && start_gateway gateway_notelemetry '[telemetry]\nmetrics = false\naudit = { enabled = false }'
if wanted gateway_otlp; then
  otlp_port=$(free_port)
  $(pin $core_a) python3 scripts/bench/otlp_sink.py "$otlp_port" &
  pids+=($!)
  start_gateway gateway_otlp "[telemetry]\notlp_endpoint = \"http://127.0.0.1:$otlp_port/v1/traces\"\ntrace_sample_ratio = 1.0"
fi
if wanted gateway_redis && command -v redis-server >/dev/null; then
  redis_port=$(free_port)
  $(pin $core_a) redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
  pids+=($!)
  start_gateway gateway_redis "[limits]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:$redis_port/0\""
fi
[ -n "${BASELINE_BIN:-}" ] && start_gateway gateway_baseline "" "$BASELINE_BIN"

if wanted nginx && command -v nginx >/dev/null; then
  mkdir -p "$work/nginx"
  port_of[nginx]=$(free_port)
  cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes ${threads:-auto};
$( [ -n "$threads" ] && echo "worker_cpu_affinity $(python3 -c "print(format(1 << $core_b, 'b'))");" )
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream up { server 127.0.0.1:$up_port; keepalive 256; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:${port_of[nginx]};
    keepalive_requests 10000000;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
  $(pin $core_b) nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>"$work/nginx/stderr" &
  pid_of[nginx]=$!
  pids+=($!)
fi
port_of[direct]=$up_port

# Every gateway must be serving with the key loaded before anything is measured.
for name in "${!pid_of[@]}"; do
  [ "$name" = nginx ] && continue
  ok=""
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null -H "authorization: Bearer $PORTCULLIS_LOAD_API_KEY" "http://127.0.0.1:${port_of[$name]}/v1/models" && { ok=1; break; }
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "$name is not serving; its log:" >&2; tail -20 "$work/$name.log" >&2; exit 1; }
done
sleep 1
# Resident memory before the first measured request (the gateways answered /v1/models once).
for name in "${!pid_of[@]}"; do
  [ "$name" = nginx ] && continue
  idle_rss_of[$name]=$(awk '/VmRSS/ {print $2}' "/proc/${pid_of[$name]}/status")
done

# CPU ticks (user + system) of the given processes, summed.
cpu_ticks() { local t=0 p; for p in $1; do t=$(( t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0) )); done; echo $t; }
# nginx does its work in worker children of the master process.
cpu_pids() { if [ "$1" = nginx ]; then pgrep -P "${pid_of[nginx]}" | tr '\n' ' '; else echo "${pid_of[$1]:-}"; fi; }

load() { # file name extra-args...
  local file=$1 name=$2; shift 2
  local pids_now before after
  pids_now=$(cpu_pids "$name")
  before=$(cpu_ticks "$pids_now")
  ${threads:+env TOKIO_WORKER_THREADS=$threads} $(pin $core_a) "$bin" load --url "http://127.0.0.1:${port_of[$name]}/v1/chat/completions" \
    --connections "$CONNECTIONS" --duration "$DURATION" "$@" >"$work/$file.json"
  after=$(cpu_ticks "$pids_now")
  python3 - "$work/$file.json" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
path, before, after, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = json.load(open(path))
# Ticks are 1/CLK_TCK s: coarse, so short runs at low rates give rough per-request figures.
r["proxy_cpu_us_per_request"] = round((after - before) / hz * 1e6 / max(r["requests"], 1), 1) if after else None
json.dump(r, open(path, "w"))
PY
  python3 - "$work/$file.json" "$file" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency"]
print(f"{sys.argv[2]}: {r['requests_per_s']:.0f} req/s, p50 {l['p50_ms']:.3f} ms, p99 {l['p99_ms']:.3f} ms, errors {r['errors']}, proxy CPU/request {r['proxy_cpu_us_per_request']} us")
PY
}

names=()
for name in direct nginx gateway gateway_baseline gateway_noguard gateway_notelemetry gateway_otlp gateway_redis gateway_watermark; do
  [ -n "${port_of[$name]:-}" ] && wanted "$name" && names+=("$name")
done
for round in $(seq 1 "$ROUNDS"); do
  for name in "${names[@]}"; do
    load "$name-saturate-$round" "$name"
    load "$name-rate-$round" "$name" --rate "$RATE"
    load "$name-stream-$round" "$name" --rate 200 --stream
    # The 2 KB prompt: CPU per request with screening and counting of a longer text.
    case $name in direct|nginx|gateway|gateway_baseline|gateway_noguard) load "$name-prompt2k-$round" "$name" --prompt-chars 2000 ;; esac
  done
done

# Memory after the load: the gateway's peak (VmHWM) and what it holds at rest again.
{
  for name in "${names[@]}"; do
    [ "$name" = direct ] || [ "$name" = nginx ] && continue
    echo "$name ${idle_rss_of[$name]} $(awk '/VmHWM/ {print $2}' "/proc/${pid_of[$name]}/status")"
  done
  if [ -n "${pid_of[nginx]:-}" ]; then
    echo "nginx 0 $(for p in ${pid_of[nginx]} $(pgrep -P "${pid_of[nginx]}"); do awk '/VmHWM/ {print $2}' "/proc/$p/status"; done | sort -n | tail -1)"
  fi
} >"$work/memory.txt"

python3 - "$work" "$RATE" "$ROUNDS" "${names[@]}" <<'PY'
import json, os, sys
work, rate, rounds, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
memory = {}
for line in open(os.path.join(work, "memory.txt")):
    name, idle, peak = line.split()
    memory[name] = (int(idle) / 1024, int(peak) / 1024)

def runs(name, kind):
    out = []
    for r in range(1, rounds + 1):
        p = os.path.join(work, f"{name}-{kind}-{r}.json")
        if os.path.exists(p):
            out.append(json.load(open(p)))
    return out

def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None

def stat(name, kind, pick):
    return mean([pick(r) for r in runs(name, kind)])

sat = {n: stat(n, "saturate", lambda r: r["requests_per_s"]) for n in names}
cpu = {n: stat(n, "saturate", lambda r: r["proxy_cpu_us_per_request"]) for n in names}
cpu2k = {n: stat(n, "prompt2k", lambda r: r["proxy_cpu_us_per_request"]) for n in names}
p50 = {n: stat(n, "rate", lambda r: r["latency"]["p50_ms"]) for n in names}
p99 = {n: stat(n, "rate", lambda r: r["latency"]["p99_ms"]) for n in names}
ttfb = {n: stat(n, "stream", lambda r: r["first_byte"]["p50_ms"]) for n in names}
errors = sum(json.load(open(os.path.join(work, f)))["errors"] for f in os.listdir(work) if f.endswith(".json"))

def cell(v, spec, unit="", width=10):
    return format("-" if v is None else format(v, spec) + unit, f">{width}")

print()
print(f"one run, {rounds} alternating rounds each (mean shown); proxies alone on one pinned core; rate runs at {rate} req/s")
head = f"{'':22} {'saturation req/s':>17} {'vs nginx':>8} {'CPU us/req':>10} {'CPU 2KB':>8} {'p50 added':>10} {'p99 added':>10} {'TTFB p50':>9} {'idle RSS':>9} {'peak RSS':>9}"
print(head)
print("-" * len(head))
direct = "direct" if "direct" in names else None
for n in names:
    proxy = n != "direct"
    added50 = p50[n] - p50[direct] if direct and proxy else None
    added99 = p99[n] - p99[direct] if direct and proxy else None
    ratio = sat[n] / sat["nginx"] if sat.get("nginx") and proxy else None
    idle, peak = memory.get(n, (None, None))
    print(f"{n:22} {cell(sat[n], '.0f', '', 17)} {cell(ratio, '.2f', 'x', 8)} {cell(cpu[n] if proxy else None, '.1f')} "
          f"{cell(cpu2k.get(n) if proxy else None, '.1f', '', 8)} {cell(added50, '+.3f', ' ms')} {cell(added99, '+.3f', ' ms')} "
          f"{cell(ttfb[n], '.3f', ' ms', 9)} {cell(idle or None, '.1f', ' MiB', 9)} {cell(peak or None, '.1f', ' MiB', 9)}")
print(f"errors across all runs: {errors}")
spread = [f"{n} {'/'.join(format(r['requests_per_s'], '.0f') for r in runs(n, 'saturate'))}" for n in names]
print("saturation per round: " + ", ".join(spread))
PY
