#!/usr/bin/env bash
# API benchmark (issue: foundation): with 10,000 assets in the store, drive
#   1. an authenticated GET /api/v1/assets/{id}        (wrk, 64 connections)
#   2. a 100-item list page GET /api/v1/assets?page=50&per_page=100
# against ironbay on SQLite and on PostgreSQL, on loopback, and print a Markdown table.
# Usage: bash bench/api.sh [duration_secs]   (needs wrk and postgresql: scripts/install-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS=64
THREADS=2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ironbay/target}"
cargo build --release --locked --bin ironbay >&2
BIN="$CARGO_TARGET_DIR/release/ironbay"

WORK=$(mktemp -d /tmp/ironbay-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
PG_DATA=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [[ -n "$PG_DATA" ]]; then runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

start_postgres() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PG_DATA="$WORK/pg"
  PG_PORT=$(free_port)
  mkdir -p "$PG_DATA" && chown postgres: "$PG_DATA"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust >/dev/null
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/log" -w \
    -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  runuser -u postgres -- "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE ironbay" >/dev/null
  echo "postgres://postgres@127.0.0.1:$PG_PORT/ironbay"
}

# wrk summary line: requests/s and p99 latency (ms).
measure() {
  local out rps p99
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$@")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.2f", v}' <<<"$out")
  local non2xx
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  if [[ -n "$non2xx" ]]; then echo "bench: $non2xx non-2xx answers — figures invalid" >&2; echo "$out" >&2; exit 1; fi
  echo "$rps $p99"
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
  local token key id
  token=$(curl -sf "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"bench-password-123"}' | json_field token)
  key=$(curl -sf "$base/api/v1/api-keys" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"bench","scopes":["assets:read","assets:write"]}' | json_field key)
  # Seed exactly 10,000 assets through the API (each one audited, as in production).
  local seeded=0 run=0
  count() { curl -sf "$base/api/v1/assets?per_page=1" -H "Authorization: Bearer $key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta"]["total"])'; }
  # Bulk with wrk up to ~8,000, then one by one to exactly 10,000.
  while (( seeded < 8000 )); do
    run=$((run + 1))
    wrk -t2 -c16 -d1s -s bench/seed-assets.lua -H "Authorization: Bearer $key" "$base" -- "$run" >/dev/null
    seeded=$(count)
  done
  python3 - "$base" "$key" "$((10000 - seeded))" <<'PY'
import json, sys, urllib.request
base, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    body = json.dumps({"hostname": f"fill-{i}", "macs": [f"06:00:00:00:{i // 256:02x}:{i % 256:02x}"]}).encode()
    req = urllib.request.Request(base + "/api/v1/assets", body, {"Content-Type": "application/json", "Authorization": "Bearer " + key})
    urllib.request.urlopen(req).read()
PY
  seeded=$(count)
  id=$(curl -sf "$base/api/v1/assets?page=77&per_page=1" -H "Authorization: Bearer $key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
  read -r get_rps get_p99 < <(measure -H "Authorization: Bearer $key" "$base/api/v1/assets/$id")
  read -r list_rps list_p99 < <(measure -H "Authorization: Bearer $key" "$base/api/v1/assets?page=50&per_page=100")
  echo "| $name | $seeded | $get_rps | $get_p99 | $list_rps | $list_p99 |"
}

echo "| store | assets | GET /assets/{id} req/s | p99 ms | list 100/page req/s | p99 ms |"
echo "|---|---|---|---|---|---|"
run_backend sqlite "sqlite://$WORK/sqlite/ironbay.db"
run_backend postgres "$(start_postgres)"
echo
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s on $(nproc) cores ($(lscpu | awk -F: '/Model name/ {gsub(/^ +/,"",$2); print $2}')), $(date -u +%F)"
