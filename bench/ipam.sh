#!/usr/bin/env bash
# IPAM benchmark (issue: VNIs): 64 connections allocate next-free addresses from one /16 at once,
# on SQLite and on PostgreSQL. Reports allocations/s and p99, then checks the result: every 201 is
# one allocation row, all distinct, no request given two.
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
  # wrk stops counting at the deadline while up to 64 requests are still in flight, so the server
  # may hold a few more than the 201s counted; every one must be distinct, and no request may
  # have been given two addresses.
  python3 - "$base" "$key" "$vni" "$created" <<'PY'
import json, sys, urllib.request
base, key, vni, created = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
addresses, holders, page = [], [], 1
while True:
    req = urllib.request.Request(f"{base}/api/v1/vnis/{vni}/allocations?per_page=100&page={page}", headers={"Authorization": "Bearer " + key})
    body = json.load(urllib.request.urlopen(req))
    addresses += [a["address"] for a in body["data"]]
    holders += [a["holder_id"] for a in body["data"]]
    if page * 100 >= body["meta"]["total"]:
        break
    page += 1
assert len(set(addresses)) == len(addresses), "an address was handed out twice"
assert len(set(holders)) == len(holders), "a request got two addresses"
assert created <= len(addresses) <= created + 64, f"{created} answers 201 but {len(addresses)} held"
PY
  echo "| $name | $created | $(python3 -c "print(round($created / $DURATION))") | $p99 | ${other:- none} |"
}

echo "| store | allocations (all distinct) | allocations/s | p99 ms | other answers |"
echo "|---|---|---|---|---|"
run_backend sqlite "sqlite://$WORK/sqlite/ironbay.db"
run_backend postgres "$(start_postgres)"
echo
echo "wrk -t2 -c64 -d${DURATION}s, one 10.200.0.0/16 VNI, on $(nproc) cores, $(date -u +%F)"
