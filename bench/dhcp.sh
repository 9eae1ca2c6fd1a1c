#!/usr/bin/env bash
# DHCP benchmark (issue: boot services): perfdhcp DORA rate and latency against ironbay (full mode,
# every lease group-committed to SQLite with synchronous=FULL before its ACK), Kea kea-dhcp4
# (memfile, persisted) and dnsmasq (--no-ping, lease file on), side by side on this machine.
# Each server runs in its own network namespace pair (server + client, joined by a veth over a
# bridge; names ib*, deleted on exit), pinned to core 0; perfdhcp is pinned to core 1.
# For each server, perfdhcp runs at increasing request rates; the figure is the highest rate whose
# 4-way exchanges completed with < 1% drops, with the average DORA latency at that rate.
# Usage: bash bench/dhcp.sh [seconds_per_step]   (root; packages from scripts/install-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
STEP_SECS="${1:-10}"
RATES=(250 500 1000 2000 4000 6000 8000 10000 11000 12000 15000)
source bench/lib.sh

SRV_IP=10.208.0.1
CLI_IP=10.208.0.2
# Every namespace this script may create (runs happen in $(...) subshells, so no list is kept).
TAGS=(bi bf bk bd)
cleanup_ns() {
  for tag in "${TAGS[@]}"; do
    for ns in "ib${tag}s" "ib${tag}c"; do
      ip netns list | awk '{print $1}' | grep -qx "$ns" || continue
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    done
  done
}
trap 'cleanup_ns; cleanup' EXIT

# topology NAME: namespaces ib<NAME>s (bridge ibbr0 = SRV_IP/12) and ib<NAME>c (ibc0 = CLI_IP/12).
topology() {
  local s="ib${1}s" c="ib${1}c"
  ip netns add "$s"; ip netns add "$c"
  ip -n "$s" link set lo up; ip -n "$c" link set lo up
  ip -n "$s" link add ibbr0 type bridge stp_state 0 forward_delay 0
  ip -n "$s" addr add "$SRV_IP/12" dev ibbr0
  ip -n "$s" link set ibbr0 up
  ip -n "$c" link add ibc0 type veth peer name ibp0 netns "$s"
  ip -n "$s" link set ibp0 master ibbr0 up
  ip -n "$c" addr add "$CLI_IP/12" dev ibc0
  ip -n "$c" link set ibc0 up
}

# perfdhcp_step NS RATE: prints "<exchanges/s> <drops%> <avg DORA ms>" for one step.
perfdhcp_step() {
  local ns=$1 rate=$2 out
  out=$(ip netns exec "$ns" taskset -c 1 perfdhcp -4 -l ibc0 -r "$rate" -R 10000000 -p "$STEP_SECS" \
        -W 2000000 "$SRV_IP" 2>&1 || true)
  python3 - "$out" "$STEP_SECS" <<'PY'
import re, sys
out = sys.argv[1]
rate = re.search(r"Rate: ([0-9.]+) 4-way", out)
secs = float(sys.argv[2])
sent = [int(x) for x in re.findall(r"sent packets: (\d+)", out)]
recv = [int(x) for x in re.findall(r"received packets: (\d+)", out)]
avg = [float(x) for x in re.findall(r"avg delay: ([0-9.]+) ms", out)]
if not rate or len(sent) < 2:
    print("0 100 0"); sys.exit()
# Drops over the whole exchange: DISCOVERs not ending in an ACK.
drops = 100.0 * (1 - recv[1] / sent[0]) if sent[0] else 100.0
# perfdhcp's own "Rate" divides by the run including the -W wait: count ACKs over the period.
print(f"{recv[1] / secs:.0f} {max(drops, 0):.2f} {sum(avg[:2]):.2f}")
PY
}

# sweep NAME NS: runs the rates until drops reach 1%, prints the best step.
sweep() {
  local name=$1 ns=$2 best="0 0 0" line
  for r in "${RATES[@]}"; do
    line=$(perfdhcp_step "$ns" "$r")
    echo "  $name @ $r/s -> exchanges/s, drops %, avg DORA ms: $line" >&2
    if awk -v d="$(cut -d' ' -f2 <<<"$line")" 'BEGIN{exit !(d < 1.0)}'; then best=$line; else break; fi
  done
  echo "$best"
}

# --- ironbay ---------------------------------------------------------------------------------
# run_ironbay TAG FSYNC: full mode on SQLite; FSYNC=true also fsyncs each commit group.
run_ironbay() {
  local tag=$1 fsync=$2 dir="$WORK/ironbay-$1" token result leases
  topology "$tag"
  mkdir -p "$dir"
  ip netns exec "ib${tag}s" env IRONBAY_ADMIN_PASSWORD=bench-password-123 IRONBAY_LOG=warn \
    IRONBAY_RATE_LIMIT__API_PER_MINUTE=1000000 IRONBAY_RATE_LIMIT__LOGIN_PER_MINUTE=1000000 \
    IRONBAY_DHCP__INTERFACES='[{name="ibbr0",mode="full",vni="bench"}]' IRONBAY_DHCP__LEASE_FSYNC="$fsync" \
    taskset -c 0 "$BIN" serve --listen "$SRV_IP:8080" --data-dir "$dir" \
    --database-url "sqlite://$dir/ironbay.db" >"$dir/out" 2>"$dir/err" &
  PIDS+=($!)
  for _ in $(seq 100); do ip netns exec "ib${tag}s" curl -sf "http://$SRV_IP:8080/api/v1/health" >/dev/null && break; sleep 0.1; done
  token=$(ip netns exec "ib${tag}s" curl -sf "http://$SRV_IP:8080/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"bench-password-123"}' | json_field token)
  ip netns exec "ib${tag}s" curl -sf "http://$SRV_IP:8080/api/v1/vnis" -H "Authorization: Bearer $token" \
    -H 'content-type: application/json' \
    -d '{"name":"bench","cidr":"10.208.0.0/12","vni":4001,"gateway":"10.208.0.1","dhcp":{"start":"10.208.1.0","end":"10.223.255.250"}}' >/dev/null
  result=$(sweep "ironbay-fsync-$fsync" "ib${tag}c")
  leases=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from dhcp_leases where state='active'\").fetchone()[0])" "$dir/ironbay.db")
  echo "  ironbay (lease_fsync=$fsync) persisted $leases active leases" >&2
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
  echo "$result"
}
echo "ironbay (full mode, SQLite, group commit before every ACK):" >&2
IB=$(run_ironbay bi false)
echo "ironbay (same, every commit group fsynced):" >&2
IBF=$(run_ironbay bf true)

# --- Kea (memfile, persisted) ---------------------------------------------------------------
topology bk
KEA_DIR="$WORK/kea"; mkdir -p "$KEA_DIR"
cat > "$KEA_DIR/kea.json" <<EOF
{ "Dhcp4": {
    "interfaces-config": { "interfaces": ["ibbr0"], "dhcp-socket-type": "udp" },
    "lease-database": { "type": "memfile", "persist": true, "name": "$KEA_DIR/leases.csv", "lfc-interval": 0 },
    "valid-lifetime": 3600,
    "subnet4": [ { "id": 1, "subnet": "10.208.0.0/12", "pools": [ { "pool": "10.208.1.0 - 10.223.255.250" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "WARN", "output_options": [ { "output": "$KEA_DIR/kea.log" } ] } ]
} }
EOF
KEA_PIDFILE_DIR="$KEA_DIR" KEA_LOCKFILE_DIR="$KEA_DIR" ip netns exec ibbks taskset -c 0 kea-dhcp4 -c "$KEA_DIR/kea.json" >"$KEA_DIR/out" 2>&1 &
PIDS+=($!)
sleep 1
echo "Kea kea-dhcp4 (memfile):" >&2
KEA=$(sweep kea ibbkc)
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

# --- dnsmasq ---------------------------------------------------------------------------------
topology bd
DM_DIR="$WORK/dnsmasq"; mkdir -p "$DM_DIR"
ip netns exec ibbds taskset -c 0 dnsmasq --no-daemon --port=0 --no-resolv --no-hosts --no-ping \
  --interface=ibbr0 --bind-interfaces --dhcp-range=10.208.1.0,10.223.255.250,255.240.0.0,1h \
  --dhcp-lease-max=10000000 --dhcp-leasefile="$DM_DIR/leases" --pid-file="$DM_DIR/pid" \
  --log-facility="$DM_DIR/log" >"$DM_DIR/out" 2>&1 &
PIDS+=($!)
sleep 1
echo "dnsmasq (--no-ping, lease file):" >&2
DM=$(sweep dnsmasq ibbdc)
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

printf '\n| server | DORA/s at <1%% drops | drops %% | avg DORA latency (ms) |\n|---|---|---|---|\n'
for row in "ironbay:$IB" "ironbay, lease_fsync:$IBF" "Kea memfile:$KEA" "dnsmasq:$DM"; do
  name=${row%%:*}; read -r rate drops lat <<<"${row##*:}"
  printf '| %s | %s | %s | %s |\n' "$name" "$rate" "$drops" "$lat"
done
