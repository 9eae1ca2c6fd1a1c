#!/usr/bin/env bash
# Enrollment (certificate issuance) rate: one multi-use enrollment token, many concurrent
# POST /api/v1/devices/enroll over loopback (wrk), on SQLite and on PostgreSQL. Each request
# checks the token, parses the Ed25519 public key, signs an X.509 certificate with the device CA
# (ECDSA P-256), and commits the token use, the device, its certificate, its history event and the
# audit entry in one transaction. Prints a Markdown table.
# Usage: bash bench/enroll.sh [duration_secs] [connections]   (needs wrk, openssl, postgresql)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS="${2:-32}"
THREADS=2
source bench/lib.sh

# One device key for every request: the appliance does not require distinct keys, and the cost
# measured is the appliance's, not the client's key generation.
openssl genpkey -algorithm ED25519 -out "$WORK/device.key" 2>/dev/null
openssl pkey -in "$WORK/device.key" -pubout -out "$WORK/device.pub"

run_backend() {
  local name=$1 url=$2 dir="$WORK/$1" port
  port=$(free_port)
  mkdir -p "$dir"
  IRONBAY_ADMIN_PASSWORD=bench-password-123 IRONBAY_LOG=warn \
    IRONBAY_RATE_LIMIT__API_PER_MINUTE=1000000000 IRONBAY_RATE_LIMIT__API_BURST=1000000000 \
    IRONBAY_RATE_LIMIT__ENROLL_PER_MINUTE=1000000000 IRONBAY_RATE_LIMIT__ENROLL_BURST=1000000000 \
    "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir" --database-url "$url" >"$dir/out" 2>"$dir/err" &
  PIDS+=($!)
  local base="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "$base/api/v1/health" >/dev/null && break; sleep 0.1; done
  local session token_id token
  session=$(curl -sf "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"bench-password-123"}' | json_field token)
  read -r token_id token < <(curl -sf "$base/api/v1/enroll-tokens" -H "Authorization: Bearer $session" \
    -H 'content-type: application/json' -d '{"max_uses": 1000000, "tags": ["bench"]}' |
    python3 -c 'import json,sys; t=json.load(sys.stdin); print(t["id"], t["token"])')
  python3 - "$token" "$WORK/device.pub" >"$dir/body.json" <<'PY'
import json, sys
print(json.dumps({"token": sys.argv[1], "name": "bench-device", "public_key": open(sys.argv[2]).read(),
                  "metadata": {"os": "linux", "arch": "x86_64"}}))
PY
  local out rps p50 p99 non2xx uses
  out=$(ENROLL_BODY="$dir/body.json" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s bench/enroll.lua \
    "$base/api/v1/devices/enroll")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  if [[ -n "$non2xx" ]]; then echo "bench: $non2xx non-2xx answers — figures invalid" >&2; echo "$out" >&2; exit 1; fi
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  ms() { awk -v k="$1" '$1==k {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.2f", v}' <<<"$out"; }
  p50=$(ms "50%"); p99=$(ms "99%")
  # Every answered request is a device: the token's use count says how many were issued.
  uses=$(curl -sf "$base/api/v1/enroll-tokens/$token_id" -H "Authorization: Bearer $session" | json_field uses)
  echo "| $name | $CONNS | $rps | $p50 | $p99 | $uses |"
}

echo "| store | connections | enrollments/s | p50 ms | p99 ms | certificates issued |"
echo "|---|---|---|---|---|---|"
run_backend sqlite "sqlite://$WORK/sqlite/ironbay.db"
run_backend postgres "$(start_postgres)"
echo
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s on $(nproc) cores ($(lscpu | awk -F: '/Model name/ {gsub(/^ +/,"",$2); print $2}')), $(date -u +%F)"
