#!/usr/bin/env bash
# IPAM benchmark (issue: VNIs): 64 connections allocate next-free addresses from one /16 at once,
# on SQLite and on PostgreSQL. Reports allocations/s and p99, then checks the result: every 201 is
# exactly one allocation row, all distinct (the VNI's allocation count equals the 201s).
# Usage: bash bench/ipam.sh [duration_secs]   (needs wrk and postgresql: scripts/install-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
source bench/lib.sh

run_backend() {
  local name=$1 url=$2 base key vni out p99 created other
  base=$(start_ironbay "$name" "$url")
  key=$(api_key "$base" '["vnis:read","vnis:write"]')
  vni=$(curl -sf "$base/api/v1/vnis" -H "Authorization: Bearer $key" -H 'content-type: application/json' \
    -d '{"name":"bench-16","cidr":"10.200.0.0/16","vni":4000,"gateway":"10.200.0.1"}' | json_field id)
  out=$(wrk -t2 -c64 -d"${DURATION}s" --latency -s bench/allocate.lua -H "Authorization: Bearer $key" "$base" \
    -- "/api/v1/vnis/$vni/allocations")
  p99=$(p99_ms <<<"$out")
  created=$(awk '$1=="status" && $2==201 {print $3}' <<<"$out")
  other=$(awk '$1=="status" && $2!=201 {s=s" "$2":"$3} END {print s}' <<<"$out")
  local held
  held=$(curl -sf "$base/api/v1/vnis/$vni" -H "Authorization: Bearer $key" | json_field allocation_count)
  if [[ "$held" != "$created" ]]; then echo "bench: $created answers 201 but $held allocations held" >&2; exit 1; fi
  echo "| $name | $created | $(python3 -c "print(round($created / $DURATION))") | $p99 | ${other:- none} |"
}

echo "| store | allocations (all distinct) | allocations/s | p99 ms | other answers |"
echo "|---|---|---|---|---|"
run_backend sqlite "sqlite://$WORK/sqlite/ironbay.db"
run_backend postgres "$(start_postgres)"
echo
echo "wrk -t2 -c64 -d${DURATION}s, one 10.200.0.0/16 VNI, on $(nproc) cores, $(date -u +%F)"
