# Shared by the load benchmark and the profile: sourced, not run.

. scripts/lib.sh

# The benchmark gateway's configuration: public-port admin-port upstream-port data-dir.
# Every request is checked against real limits (high enough never to refuse): a key's
# requests, tokens (prompt counted with the model's tokenizer) and concurrency.
bench_gateway_config() {
  cat <<TOML
[listeners]
public = "127.0.0.1:$1"
admin = "127.0.0.1:$2"
[plans.default.key]
requests_per_minute = 100000000
tokens_per_minute = 100000000000
concurrent_requests = 100000
[store]
url = "sqlite://$4/portcullis.db"
[log]
level = "warn"
[[upstreams]]
name = "up"
base_url = "http://127.0.0.1:$3/v1"
health_check_interval = "0s"
max_concurrency = 4096
[[models]]
name = "sim-chat"
upstream = "up"
TOML
}

# Waits for the gateway's admin listener, creates a tenant and an API key through the admin
# API (so requests are authenticated as in production) and prints the key:
# admin-port data-dir.
bench_api_key() {
  local admin_port=$1 data=$2 token
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$admin_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  token=$(cat "$data/admin-token")
  curl -sf -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"bench","audience":"customer"}' "http://127.0.0.1:$admin_port/admin/v1/tenants" >/dev/null
  curl -sf -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"tenant":"bench","expires_in":"2h"}' "http://127.0.0.1:$admin_port/admin/v1/keys" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
