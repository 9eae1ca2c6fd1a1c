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
source bench/lib.sh

# wrk summary line: requests/s and p99 latency (ms).
measure() {
  local out rps p99
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$@")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(p99_ms <<<"$out")
  local non2xx
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  if [[ -n "$non2xx" ]]; then echo "bench: $non2xx non-2xx answers — figures invalid" >&2; echo "$out" >&2; exit 1; fi
  echo "$rps $p99"
}

run_backend() {
  local name=$1 url=$2 base key
  base=$(start_ironbay "$name" "$url")
  key=$(api_key "$base" '["assets:read","assets:write"]')
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
