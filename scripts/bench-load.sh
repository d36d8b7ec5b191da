#!/usr/bin/env bash
# Load benchmark: the simulator direct, through the gateway (limits in memory, and limits in
# Redis; telemetry fully on, with spans to a local OTLP receiver, and fully off), and through
# nginx as a plain reverse proxy, on loopback, in one run. Reports saturation throughput, latency at a fixed
# rate, streaming time to first byte, the proxies' CPU time per request and the gateway's
# peak RSS, with ratios. Not part of the test suite: speed targets live here, not in tests.
#
# Layout on a 2-core machine: the simulator and the load generator share core 0 (one thread
# each); the proxy under test (gateway or nginx) gets core 1 with one worker. The direct run
# uses the same client and simulator, so the ratios isolate what the proxy adds.
#
#   RATE=1000 DURATION=10s CONNECTIONS=32 bash scripts/bench-load.sh
#
# BASELINE_BIN=path/to/older/portcullis adds that binary as a fourth gateway with the same
# configuration, in the same run, and prints it beside this build (before/after a change).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${RATE:-1000}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet --bin portcullis
bin="$target/release/portcullis"
cores=$(nproc)
core_a=0; core_b=$(( cores > 1 ? 1 : 0 ))
# PIN=0 runs everything unpinned with default worker threads instead.
if [ "${PIN:-1}" = 0 ]; then
  threads=""
else
  threads=1
fi
# Prefix that pins a command to a core (nothing when unpinned); expands unquoted on purpose.
pin() { [ -n "$threads" ] && echo "taskset -c $1" || true; }

if ! command -v nginx >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q nginx >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q nginx >/dev/null; }) || true
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT

sim_port=$(free_port); gw_port=$(free_port); admin_port=$(free_port); nginx_port=$(free_port)
gwr_port=$(free_port); gwr_admin_port=$(free_port); redis_port=$(free_port)
gwo_port=$(free_port); gwo_admin_port=$(free_port)
gwt_port=$(free_port); gwt_admin_port=$(free_port); otlp_port=$(free_port)
${threads:+env TOKIO_WORKER_THREADS=$threads} $(pin ${SIM_CORE:-$core_a}) "$bin" sim --listen "127.0.0.1:$sim_port" --no-record 2>/dev/null &
pids+=($!)

# Every request is checked against real limits (high enough never to refuse): a key's
# requests, tokens (prompt counted with the model's tokenizer) and concurrency.
plan='[plans.default.key]
requests_per_minute = 100000000
tokens_per_minute = 100000000000
concurrent_requests = 100000'
cat >"$work/gateway.toml" <<TOML
[listeners]
public = "127.0.0.1:$gw_port"
admin = "127.0.0.1:$admin_port"
$plan
[store]
url = "sqlite://$work/data/portcullis.db"
[log]
level = "warn"
[[upstreams]]
name = "sim"
base_url = "http://127.0.0.1:$sim_port/v1"
health_check_interval = "0s"
max_concurrency = 4096
[[models]]
name = "sim-chat"
upstream = "sim"
TOML
# Telemetry fully on in the measured gateway: metrics, the audit trail, and every request's
# spans exported to a local OTLP receiver (on the load generator's core).
$(pin $core_a) python3 scripts/bench/otlp_sink.py "$otlp_port" &
pids+=($!)
sed -e "s/127.0.0.1:$gw_port/127.0.0.1:$gwt_port/" -e "s/127.0.0.1:$admin_port/127.0.0.1:$gwt_admin_port/" \
  "$work/gateway.toml" >"$work/gateway-notelemetry.toml"
printf '[telemetry]\nmetrics = false\naudit = { enabled = false }\n' >>"$work/gateway-notelemetry.toml"
printf '[telemetry]\notlp_endpoint = "http://127.0.0.1:%s/v1/traces"\ntrace_sample_ratio = 1.0\n' "$otlp_port" >>"$work/gateway.toml"
${threads:+env TOKIO_WORKER_THREADS=$threads} $(pin $core_b) "$bin" serve --config "$work/gateway.toml" 2>"$work/gateway.log" &
gw_pid=$!
pids+=($gw_pid)

# The same gateway with telemetry off (no metrics, no trail, no spans), for its cost.
${threads:+env TOKIO_WORKER_THREADS=$threads} $(pin $core_b) "$bin" serve --config "$work/gateway-notelemetry.toml" 2>"$work/gateway-notelemetry.log" &
gwt_pid=$!
pids+=($gwt_pid)

# The same gateway with the input and output guards off, for what the guards cost in the
# same run (the proxy-side difference between this and `gateway`).
sed -e "s/127.0.0.1:$gw_port/127.0.0.1:$gwo_port/" -e "s/127.0.0.1:$admin_port/127.0.0.1:$gwo_admin_port/" \
  "$work/gateway.toml" >"$work/gateway-noguard.toml"
printf '[guard]\nunicode = "off"\ninjection = "off"\noutput = "off"\n' >>"$work/gateway-noguard.toml"
${threads:+env TOKIO_WORKER_THREADS=$threads} $(pin $core_b) "$bin" serve --config "$work/gateway-noguard.toml" 2>"$work/gateway-noguard.log" &
gwo_pid=$!
pids+=($gwo_pid)

# An older build with the same configuration, for before/after comparisons in one run.
gwb_pid=""
if [ -n "${BASELINE_BIN:-}" ]; then
  gwb_port=$(free_port); gwb_admin_port=$(free_port)
  sed -e "s/127.0.0.1:$gw_port/127.0.0.1:$gwb_port/" -e "s/127.0.0.1:$admin_port/127.0.0.1:$gwb_admin_port/" \
    "$work/gateway.toml" >"$work/gateway-baseline.toml"
  ${threads:+env TOKIO_WORKER_THREADS=$threads} $(pin $core_b) "$BASELINE_BIN" serve --config "$work/gateway-baseline.toml" 2>"$work/gateway-baseline.log" &
  gwb_pid=$!
  pids+=($gwb_pid)
fi

# The same gateway with its limits in Redis (on the load generator's core, like the simulator).
gwr_pid=""
if command -v redis-server >/dev/null; then
  $(pin $core_a) redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
  pids+=($!)
  sed -e "s/127.0.0.1:$gw_port/127.0.0.1:$gwr_port/" -e "s/127.0.0.1:$admin_port/127.0.0.1:$gwr_admin_port/" \
    "$work/gateway.toml" >"$work/gateway-redis.toml"
  printf '[limits]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:%s/0"\n' "$redis_port" >>"$work/gateway-redis.toml"
  ${threads:+env TOKIO_WORKER_THREADS=$threads} $(pin $core_b) "$bin" serve --config "$work/gateway-redis.toml" 2>"$work/gateway-redis.log" &
  gwr_pid=$!
  pids+=($gwr_pid)
fi

nginx_pid=""
if command -v nginx >/dev/null; then
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes ${threads:-auto};
$( [ -n "$threads" ] && echo "worker_cpu_affinity $(python3 -c "print(format(1 << $core_b, 'b'))");" )
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream sim { server 127.0.0.1:$sim_port; keepalive 256; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$nginx_port;
    keepalive_requests 10000000;
    location / {
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
  $(pin $core_b) nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>"$work/nginx/stderr" &
  nginx_pid=$!
  pids+=($nginx_pid)
fi

for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$admin_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.5
# The gateway is measured as callers use it: with an API key, authenticated on every request.
admin_token=$(cat "$work/data/admin-token")
admin() { curl -sf -H "authorization: Bearer $admin_token" -H 'content-type: application/json' "$@"; }
admin -d '{"name":"bench","audience":"customer"}' "http://127.0.0.1:$admin_port/admin/v1/tenants" >/dev/null
export PORTCULLIS_LOAD_API_KEY=$(admin -d '{"tenant":"bench","expires_in":"1h"}' "http://127.0.0.1:$admin_port/admin/v1/keys" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

# CPU ticks (user + system) of the given processes, summed.
cpu_ticks() { local t=0 p; for p in $1; do t=$(( t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0) )); done; echo $t; }
# nginx does its work in worker children of the master process.
nginx_workers() { [ -n "$nginx_pid" ] && pgrep -P "$nginx_pid" | tr '\n' ' ' || true; }

load() { # name url pid-for-cpu extra-args...
  local name=$1 url=$2 pid=$3; shift 3
  local before after
  before=$(cpu_ticks "$pid")
  ${threads:+env TOKIO_WORKER_THREADS=$threads} $(pin $core_a) "$bin" load --url "$url" --connections "$CONNECTIONS" --duration "$DURATION" "$@" >"$work/$name.json"
  after=$(cpu_ticks "$pid")
  python3 - "$work/$name.json" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
path, before, after, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = json.load(open(path))
r["proxy_cpu_us_per_request"] = round((after - before) / hz * 1e6 / max(r["requests"], 1), 1) if after else None
# Ticks are 1/CLK_TCK s: coarse, so short runs at low rates give rough per-request figures.
json.dump(r, open(path, "w"))
PY
  echo "$name: $(cat "$work/$name.json")"
}

path=/v1/chat/completions
targets=("direct http://127.0.0.1:$sim_port$path" "gateway http://127.0.0.1:$gw_port$path")
# The baseline runs right after this build, so drift on a noisy machine touches both alike.
[ -n "$gwb_pid" ] && targets+=("gateway_baseline http://127.0.0.1:$gwb_port$path")
targets+=("gateway_notelemetry http://127.0.0.1:$gwt_port$path")
targets+=("gateway_noguard http://127.0.0.1:$gwo_port$path")
[ -n "$gwr_pid" ] && targets+=("gateway_redis http://127.0.0.1:$gwr_port$path")
[ -n "$nginx_pid" ] && targets+=("nginx http://127.0.0.1:$nginx_port$path")
# The other gateways share the store: wait until they have loaded the key.
for _ in $(seq 1 50); do
  curl -sf -o /dev/null -H "authorization: Bearer $PORTCULLIS_LOAD_API_KEY" "http://127.0.0.1:$gwo_port/v1/models" && break
  sleep 0.1
done
for _ in $(seq 1 50); do
  [ -z "$gwb_pid" ] && break
  curl -sf -o /dev/null -H "authorization: Bearer $PORTCULLIS_LOAD_API_KEY" "http://127.0.0.1:$gwb_port/v1/models" && break
  sleep 0.1
done
for _ in $(seq 1 50); do
  [ -z "$gwr_pid" ] && break
  curl -sf -o /dev/null -H "authorization: Bearer $PORTCULLIS_LOAD_API_KEY" "http://127.0.0.1:$gwr_port/v1/models" && break
  sleep 0.1
done
# A gateway that never loaded the key (it failed to start) would make its runs all errors.
for _ in $(seq 1 50); do
  curl -sf -o /dev/null -H "authorization: Bearer $PORTCULLIS_LOAD_API_KEY" "http://127.0.0.1:$gwt_port/v1/models" && break
  sleep 0.1
done
for port_log in "$gw_port gateway" "$gwo_port gateway-noguard" "$gwt_port gateway-notelemetry" ${gwb_pid:+"$gwb_port gateway-baseline"} ${gwr_pid:+"$gwr_port gateway-redis"}; do
  set -- $port_log
  if ! curl -sf -o /dev/null -H "authorization: Bearer $PORTCULLIS_LOAD_API_KEY" "http://127.0.0.1:$1/v1/models"; then
    echo "$2 is not serving; its log:" >&2; tail -20 "$work/$2.log" >&2; exit 1
  fi
done
for t in "${targets[@]}"; do
  set -- $t
  pid=""; [ "$1" = gateway ] && pid=$gw_pid; [ "$1" = gateway_noguard ] && pid=$gwo_pid; [ "$1" = gateway_notelemetry ] && pid=$gwt_pid; [ "$1" = gateway_redis ] && pid=$gwr_pid; [ "$1" = gateway_baseline ] && pid=$gwb_pid; [ "$1" = nginx ] && pid=$(nginx_workers)
  load "$1-saturate" "$2" "$pid"
  load "$1-rate" "$2" "$pid" --rate "$RATE"
  load "$1-stream" "$2" "$pid" --rate 200 --stream
done
# The same rate run with the dashboard open: a signed-in session polling its summary as the
# page does (every 2 s; here every 0.5 s, four times the page's rate), on the load core.
curl -s -o /dev/null -c "$work/dashboard.cookies" --data-urlencode "token=$admin_token" "http://127.0.0.1:$admin_port/dashboard/login"
( while true; do curl -s -o /dev/null -b "$work/dashboard.cookies" "http://127.0.0.1:$admin_port/dashboard/api/summary?minutes=15"; sleep 0.5; done ) &
poller=$!
load "gateway-rate-dashboard" "http://127.0.0.1:$gw_port$path" "$gw_pid" --rate "$RATE"
kill "$poller" 2>/dev/null || true
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$gw_pid/status")
rss_baseline_kib=0
[ -n "$gwb_pid" ] && rss_baseline_kib=$(awk '/VmHWM/ {print $2}' "/proc/$gwb_pid/status")

python3 - "$work" "$rss_kib" "$RATE" "$rss_baseline_kib" <<'PY'
import json, os, sys
work, rss, rate, rss_baseline = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def get(name):
    p = os.path.join(work, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
d, g, n = get("direct-saturate"), get("gateway-saturate"), get("nginx-saturate")
dr, gr, nr = get("direct-rate"), get("gateway-rate"), get("nginx-rate")
ds, gs = get("direct-stream"), get("gateway-stream")
print()
print(f"saturation req/s   direct {d['requests_per_s']:.0f}   gateway {g['requests_per_s']:.0f}" + (f"   nginx {n['requests_per_s']:.0f}" if n else ""))
print(f"  gateway/direct {g['requests_per_s']/d['requests_per_s']:.2f}" + (f"   gateway/nginx {g['requests_per_s']/n['requests_per_s']:.2f}" if n else ""))
print(f"  proxy CPU per request: gateway {g['proxy_cpu_us_per_request']} us" + (f", nginx {n['proxy_cpu_us_per_request']} us" if n else ""))
for label, key in (("p50", "p50_ms"), ("p99", "p99_ms")):
    line = f"at {rate} req/s {label}: direct {dr['latency'][key]:.3f} ms   gateway {gr['latency'][key]:.3f} ms   added {gr['latency'][key]-dr['latency'][key]:.3f} ms"
    if nr:
        line += f"   nginx {nr['latency'][key]:.3f} ms (added {nr['latency'][key]-dr['latency'][key]:.3f} ms)"
    print(line)
gor, gos = get("gateway_noguard-rate"), get("gateway_noguard-saturate")
if gos:
    print(f"guards (all defaults on vs off, same run): CPU per request {g['proxy_cpu_us_per_request']} vs {gos['proxy_cpu_us_per_request']} us   saturation {g['requests_per_s']:.0f} vs {gos['requests_per_s']:.0f} req/s ({g['requests_per_s']/gos['requests_per_s']:.2f})   at {rate} req/s p50 +{gr['latency']['p50_ms']-gor['latency']['p50_ms']:.3f} ms, p99 +{gr['latency']['p99_ms']-gor['latency']['p99_ms']:.3f} ms")
gtr, gts = get("gateway_notelemetry-rate"), get("gateway_notelemetry-saturate")
if gts:
    print(f"telemetry (metrics, audit trail, spans at 100% to a local OTLP receiver) on vs off, same run: CPU per request {g['proxy_cpu_us_per_request']} vs {gts['proxy_cpu_us_per_request']} us   saturation {g['requests_per_s']:.0f} vs {gts['requests_per_s']:.0f} req/s ({g['requests_per_s']/gts['requests_per_s']:.2f})   at {rate} req/s p99 {gr['latency']['p99_ms']:.3f} vs {gtr['latency']['p99_ms']:.3f} ms (+{gr['latency']['p99_ms']-gtr['latency']['p99_ms']:.3f})")
gdr = get("gateway-rate-dashboard")
if gdr:
    print(f"dashboard open and polling (0.5 s) at {rate} req/s: p50 {gdr['latency']['p50_ms']:.3f} vs {gr['latency']['p50_ms']:.3f} ms   p99 {gdr['latency']['p99_ms']:.3f} vs {gr['latency']['p99_ms']:.3f} ms (without)")
grr = get("gateway_redis-rate"); grs = get("gateway_redis-saturate")
if grr:
    print(f"limits in redis at {rate} req/s: p50 {grr['latency']['p50_ms']:.3f} ms (+{grr['latency']['p50_ms']-gr['latency']['p50_ms']:.3f} over memory)   p99 {grr['latency']['p99_ms']:.3f} ms (+{grr['latency']['p99_ms']-gr['latency']['p99_ms']:.3f} over memory)   saturation {grs['requests_per_s']:.0f} req/s ({grs['requests_per_s']/g['requests_per_s']:.2f} of memory)")
print(f"streaming TTFB p50/p99: direct {ds['first_byte']['p50_ms']:.3f}/{ds['first_byte']['p99_ms']:.3f} ms   gateway {gs['first_byte']['p50_ms']:.3f}/{gs['first_byte']['p99_ms']:.3f} ms")
errors = sum(json.load(open(os.path.join(work, f)))["errors"] for f in os.listdir(work) if f.endswith(".json"))
print(f"errors across all runs: {errors}")
print(f"gateway peak RSS: {rss/1024:.1f} MiB")
b = get("gateway_baseline-saturate")
if b:
    br, bs = get("gateway_baseline-rate"), get("gateway_baseline-stream")
    print()
    print("this build vs BASELINE_BIN (same run, same configuration):")
    print(f"  saturation req/s   {g['requests_per_s']:.0f} vs {b['requests_per_s']:.0f}   ratio {g['requests_per_s']/b['requests_per_s']:.2f}")
    print(f"  proxy CPU per request   {g['proxy_cpu_us_per_request']} vs {b['proxy_cpu_us_per_request']} us")
    for label, key in (("p50", "p50_ms"), ("p99", "p99_ms")):
        print(f"  added at {rate} req/s {label}   {gr['latency'][key]-dr['latency'][key]:.3f} vs {br['latency'][key]-dr['latency'][key]:.3f} ms")
    ttfb = lambda r: r["first_byte"]["p50_ms"]
    if gs and bs:
        print(f"  stream first byte p50   {ttfb(gs):.3f} vs {ttfb(bs):.3f} ms")
    print(f"  peak RSS   {rss/1024:.1f} vs {rss_baseline/1024:.1f} MiB")
PY
