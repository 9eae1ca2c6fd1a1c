#!/usr/bin/env bash
# Console benchmark.
# 1. The assets page with 10,000 assets (seeded through the API, each audited): time to first
#    byte and total time over HTTP (curl, median and p90 of ROUNDS) for the first page, a deep page,
#    a filtered and a sorted page; requests/s with wrk (4 connections) beside nginx serving the
#    same rendered HTML as a static file — the floor for a page that must be rendered per user.
# 2. Full render in headless Chromium (examples/console_bench.rs render): the browser's own
#    navigation timing (first byte, DOM ready, load with CSS and JS) for the same pages.
# 3. Live updates fanned out to 200 open consoles (examples/console_bench.rs fanout): 200 sessions
#    each with /console/events open; EVENTS changes made through the API; delivery latency from
#    the API call to each console, and the appliance's memory before and with the 200 streams.
# Usage: bash bench/console.sh [ROUNDS=20] [CLIENTS=200] [EVENTS=20]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-20}"
CLIENTS="${2:-200}"
EVENTS="${3:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ironbay/target}"
cargo build --release --locked --example console_bench >&2
source bench/lib.sh
source bench/nginx.sh
BENCH="$CARGO_TARGET_DIR/release/examples/console_bench"

BASE=$(start_ironbay sqlite "sqlite://$WORK/ironbay.db")
APP_PID=$(cat "$WORK/sqlite/ironbay.pid")
KEY=$(api_key "$BASE" '["assets:read","assets:write"]')
count() { curl -sf "$BASE/api/v1/assets?per_page=1" -H "Authorization: Bearer $KEY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta"]["total"])'; }
seeded=0 run=0
while (( seeded < 9000 )); do
  run=$((run + 1))
  wrk -t2 -c16 -d1s -s bench/seed-assets.lua -H "Authorization: Bearer $KEY" "$BASE" -- "$run" >/dev/null
  seeded=$(count)
done
python3 - "$BASE" "$KEY" "$((10000 - seeded))" <<'PY'
import json, sys, urllib.request
base, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    body = json.dumps({"hostname": f"fill-{i}", "macs": [f"06:00:00:00:{i // 256:02x}:{i % 256:02x}"]}).encode()
    req = urllib.request.Request(base + "/api/v1/assets", body, {"Content-Type": "application/json", "Authorization": "Bearer " + key})
    urllib.request.urlopen(req).read()
PY
seeded=$(count)
echo "assets: $seeded"

# A console session (cookie jar) for curl and wrk.
JAR="$WORK/jar"
TOKEN=$(curl -sf -c "$JAR" -b "$JAR" "$BASE/login" | grep -o 'name="_csrf" value="[^"]*"' | head -1 | sed 's/.*value="//;s/"//')
curl -sf -o /dev/null -c "$JAR" -b "$JAR" --data-urlencode "_csrf=$TOKEN" --data "username=admin" \
  --data-urlencode "password=bench-password-123" "$BASE/login"
SESSION=$(awk '$6=="ironbay_session" {print $7}' "$JAR")
[[ -n $SESSION ]] || { echo "console login failed" >&2; exit 1; }

PAGES=("/assets" "/assets?page=150" "/assets?state=available&tag=rack-3" "/assets?sort=hostname&order=desc&page=20")
stats() { python3 -c 'import sys,statistics as s; v=sorted(float(x)*1000 for x in sys.stdin.read().split()); print("%.2f %.2f" % (s.median(v), v[int(0.9*(len(v)-1))]))'; }

echo
echo "== HTTP: time to first byte and total (curl, $ROUNDS rounds each)"
echo "| page | bytes | TTFB p50 ms | TTFB p90 ms | total p50 ms | total p90 ms |"
echo "|---|---|---|---|---|---|"
for p in "${PAGES[@]}"; do
  code=$(curl -s -o "$WORK/page.html" -w '%{http_code}' -H "Cookie: ironbay_session=$SESSION" "$BASE$p")
  [[ $code == 200 ]] || { echo "$p answered $code" >&2; exit 1; }
  grep -q '<table' "$WORK/page.html" || { echo "$p has no table" >&2; exit 1; }
  : >"$WORK/ttfb"; : >"$WORK/total"
  for _ in $(seq "$ROUNDS"); do
    read -r t1 t2 < <(curl -s -o /dev/null -w '%{time_starttransfer} %{time_total}\n' -H "Cookie: ironbay_session=$SESSION" "$BASE$p")
    echo "$t1" >>"$WORK/ttfb"; echo "$t2" >>"$WORK/total"
  done
  read -r f50 f90 < <(stats <"$WORK/ttfb")
  read -r a50 a90 < <(stats <"$WORK/total")
  echo "| \`$p\` | $(wc -c <"$WORK/page.html") | $f50 | $f90 | $a50 | $a90 |"
done

echo
echo "== throughput of the first page (wrk, 10 s, 4 connections) beside nginx serving its HTML statically"
mkdir -p "$WORK/static"
curl -sf -H "Cookie: ironbay_session=$SESSION" "$BASE/assets" >"$WORK/static/assets.img"
NG_PORT=$(free_port)
start_nginx "$WORK/nginx" "$NG_PORT" "$WORK/static"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$NG_PORT/images/assets.img" >/dev/null && break; sleep 0.1; done
echo "| server | requests/s | p50 ms | p99 ms |"
echo "|---|---|---|---|"
for server in ironbay nginx; do
  if [[ $server == ironbay ]]; then
    out=$(wrk -t1 -c4 -d10s --latency -H "Cookie: ironbay_session=$SESSION" "$BASE/assets")
  else
    out=$(wrk -t1 -c4 -d10s --latency "http://127.0.0.1:$NG_PORT/images/assets.img")
  fi
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [[ -z $non2xx ]] || { echo "$server: $non2xx non-2xx answers" >&2; exit 1; }
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.2f", v}' <<<"$out")
  echo "| $server | $rps | $p50 | $(p99_ms <<<"$out") |"
done

echo
echo "== full render in headless Chromium (navigation timing, $ROUNDS loads each)"
CD_PORT=$(free_port)
chromedriver --port="$CD_PORT" --allowed-ips=127.0.0.1 >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$CD_PORT/status" >/dev/null && break; sleep 0.1; done
for p in "/assets" "/assets?page=150"; do
  "$BENCH" render "$BASE" admin bench-password-123 "$p" "$ROUNDS" "http://127.0.0.1:$CD_PORT"
done

echo
echo "== live updates to $CLIENTS open consoles ($EVENTS changes)"
rss() { awk '/VmRSS/ {print $2}' "/proc/$APP_PID/status"; }
echo "appliance RSS before: $(( $(rss) / 1024 )) MiB"
"$BENCH" fanout "$BASE" admin bench-password-123 "$CLIENTS" "$EVENTS" &
FAN=$!
# The memory with every stream open, read while the changes are being delivered.
peak=0
while kill -0 "$FAN" 2>/dev/null; do r=$(rss); (( r > peak )) && peak=$r; sleep 0.2; done
wait "$FAN"
echo "appliance RSS peak with $CLIENTS streams: $(( peak / 1024 )) MiB"
echo
echo "$(nproc) cores ($(lscpu | awk -F: '/Model name/ {gsub(/^ +/,"",$2); print $2}')), $(date -u +%F)"
