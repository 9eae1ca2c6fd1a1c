#!/usr/bin/env bash
# Policy evaluation benchmark (issue 4): the example policy
# (policies/examples/production-maintenance-window.rego) decided
#   1. in process: `cargo run --release --example policy_bench` (engine alone, and AppState::guard
#      on SQLite with its revision check), p50/p99 per decision;
#   2. over HTTP: POST /api/v1/policies/evaluate with wrk (1 connection: latency per decision;
#      16 connections: throughput), on SQLite and on PostgreSQL.
# Usage: bash bench/policies.sh [duration_secs] [decisions]   (needs wrk and postgresql)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
DECISIONS="${2:-20000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ironbay/target}"
cargo build --release --locked --example policy_bench >&2
source bench/lib.sh

echo "In process:"
echo
"$CARGO_TARGET_DIR/release/examples/policy_bench" "$DECISIONS"
echo

# wrk: requests/s, p50 and p99 latency (ms).
measure() {
  local conns=$1; shift
  local out
  out=$(wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s bench/evaluate.lua "$@")
  if grep -q Non-2xx <<<"$out"; then echo "bench: non-2xx answers — figures invalid" >&2; echo "$out" >&2; exit 1; fi
  local ms='{v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.3f", v}'
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="50%" '"$ms" <<<"$out") $(awk '$1=="99%" '"$ms" <<<"$out")"
}

run_backend() {
  local name=$1 url=$2 dir="$WORK/$1" port
  port=$(free_port)
  mkdir -p "$dir"
  IRONBAY_ADMIN_PASSWORD=bench-password-123 IRONBAY_LOG=warn \
    IRONBAY_RATE_LIMIT__API_PER_MINUTE=1000000000 IRONBAY_RATE_LIMIT__API_BURST=1000000000 \
    "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir" --database-url "$url" >"$dir/out" 2>"$dir/err" &
  PIDS+=($!)
  local base="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "$base/api/v1/health" >/dev/null && break; sleep 0.1; done
  local token key
  token=$(curl -sf "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"bench-password-123"}' | json_field token)
  python3 -c 'import json,sys; print(json.dumps({"name": "production-maintenance-window", "rego": open(sys.argv[1]).read()}))' \
    policies/examples/production-maintenance-window.rego |
    curl -sf "$base/api/v1/policies" -H "Authorization: Bearer $token" -H 'content-type: application/json' --data-binary @- >/dev/null
  key=$(curl -sf "$base/api/v1/api-keys" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"bench","scopes":["policies:read"]}' | json_field key)
  local result
  result=$(curl -sf "$base/api/v1/policies/evaluate" -H "Authorization: Bearer $key" -H 'content-type: application/json' \
    -d "$(sed -n '/^wrk.body = \[\[/,/\]\]$/p' bench/evaluate.lua | sed 's/^wrk.body = \[\[//; s/\]\]$//')" | json_field result)
  if [[ "$result" != "deny" ]]; then echo "bench: expected a deny, got $result" >&2; exit 1; fi
  read -r rps1 p50_1 p99_1 < <(measure 1 -H "Authorization: Bearer $key" "$base/api/v1/policies/evaluate")
  read -r rps16 p50_16 p99_16 < <(measure 16 -H "Authorization: Bearer $key" "$base/api/v1/policies/evaluate")
  echo "| $name | $rps1 | $p50_1 | $p99_1 | $rps16 | $p50_16 | $p99_16 |"
}

echo "POST /api/v1/policies/evaluate (example policy, a deny), wrk -t1 -d${DURATION}s:"
echo
echo "| store | 1 conn req/s | p50 ms | p99 ms | 16 conns req/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|"
run_backend sqlite "sqlite://$WORK/sqlite/ironbay.db"
run_backend postgres "$(start_postgres)"
echo
echo "$(nproc) cores ($(lscpu | awk -F: '/Model name/ {gsub(/^ +/,"",$2); print $2}')), $(date -u +%F)"
