#!/usr/bin/env bash
# TFTP benchmark (issue: TFTP server): 100 concurrent fetches of ipxe.efi from ironbay and from
# tftpd-hpa, side by side on the same box and the same path: a veth pair (MTU 1500, so blksize
# 1468) between two private namespaces. Each server is pinned to core 0 (taskset), the client
# (examples/tftp_client.rs, one thread per transfer) to core 1. Every copy is compared with the
# original; the script fails if one differs. Run as root, on a quiet machine (see `uptime`).
# Usage: bash bench/tftp.sh [transfers] [rounds]   (needs tftpd-hpa, ipxe: scripts/install-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100}"
ROUNDS="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ironbay/target}"
cargo build --release --locked --bin ironbay --example tftp_client >&2
BIN="$CARGO_TARGET_DIR/release/ironbay"
CLIENT="$CARGO_TARGET_DIR/release/examples/tftp_client"

ID=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-5)
SNS="ib${ID}s" CNS="ib${ID}c"
WORK=$(mktemp -d /tmp/ironbay-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  ip netns del "$SNS" 2>/dev/null || true
  ip netns del "$CNS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$SNS"
ip netns add "$CNS"
ip -n "$SNS" link set lo up
ip -n "$CNS" link set lo up
ip -n "$CNS" link add ibbc0 type veth peer name ibbs0 netns "$SNS"
ip -n "$SNS" addr add 10.214.0.1/24 dev ibbs0
ip -n "$CNS" addr add 10.214.0.2/24 dev ibbc0
ip -n "$SNS" link set ibbs0 up
ip -n "$CNS" link set ibbc0 up

PXE="$WORK/pxe"
mkdir -p "$PXE"
cp -L /usr/lib/ipxe/ipxe.efi "$PXE/ipxe.efi"
chmod -R a+rX "$PXE"

# run_client LABEL WINDOWSIZE: N concurrent fetches; prints the client's summary line.
run_client() {
  local label=$1 ws=$2 out
  for r in $(seq "$ROUNDS"); do
    out=$(ip netns exec "$CNS" taskset -c 1 "$CLIENT" 10.214.0.1 ipxe.efi "$PXE/ipxe.efi" "$N" 1468 "$ws")
    echo "$label round $r: $out"
  done
}

wait_udp69() {
  for _ in $(seq 100); do
    ip netns exec "$SNS" ss -Hlun 'sport = :69' | grep -q 10.214.0.1 && return 0
    sleep 0.1
  done
  echo "nothing listens on 10.214.0.1:69" >&2
  return 1
}

echo "load before: $(uptime)"
echo "# ironbay $(git rev-parse --short HEAD), $N x ipxe.efi ($(stat -c %s "$PXE/ipxe.efi") bytes), blksize 1468"
mkdir -p "$WORK/ironbay"
ip netns exec "$SNS" env IRONBAY_ADMIN_PASSWORD=bench-password-123 IRONBAY_LOG=warn \
  IRONBAY_DHCP__INTERFACES='[{name="ibbs0",mode="proxy"}]' IRONBAY_BOOT__PXE_DIR="$PXE" \
  taskset -c 0 "$BIN" serve --listen 10.214.0.1:8080 --data-dir "$WORK/ironbay" \
  --database-url "sqlite://$WORK/ironbay/ironbay.db" >"$WORK/ironbay/out" 2>"$WORK/ironbay/err" &
PIDS+=($!)
wait_udp69
run_client "ironbay windowsize 16" 16
run_client "ironbay windowsize 1 " 0
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
PIDS=()

ip netns exec "$SNS" taskset -c 0 in.tftpd -L -s "$PXE" --address 10.214.0.1:69 -u tftp &
PIDS+=($!)
wait_udp69
# tftpd-hpa 5.2 does not implement windowsize (it leaves it out of its OACK): lock-step only.
run_client "tftpd-hpa           " 0
echo "load after: $(uptime)"
