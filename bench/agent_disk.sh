#!/usr/bin/env bash
# Agent disk benchmark (issue: agent disk wipe and image write): on a 2 GiB loop device over a
# sparse file (direct-io=on, so neither side is helped by the backing file's page cache),
#   (1) write-image of a 1 GiB random raw image served by nginx on 127.0.0.1, vs
#       `curl -s URL | dd of=DEV oflag=direct bs=4M` (and the same with iflag=fullblock, which is
#       how dd should read a pipe);
#   (2) wipe --method zero, vs `dd if=/dev/zero of=DEV oflag=direct bs=4M`.
# Same machine, same server, same device; the device is discarded (holes punched) before every
# run so each run allocates the same way. Wall-clock time of each whole command; MB/s = 10^6
# bytes/s, median of RUNS. The agent side also checks the SHA-256 and fdatasyncs (write) and reads
# back 66 samples (zero); dd does neither. Target: agent >= 0.9x the dd baseline in both.
# Runs the real agent binary's local CLI (the same code the appliance drives over SSH). Usage: bash bench/agent_disk.sh [runs]   (root; needs nginx, curl, losetup, blkdiscard)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/nginx.sh
RUNS="${1:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ironbay/target}"
cargo build --release --locked -p ironbay-agent --bin ironbay-agent >&2
AGENT="$CARGO_TARGET_DIR/release/ironbay-agent"

WORK=$(mktemp -d /var/tmp/ironbay-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
LOOP=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [[ -n "$LOOP" ]]; then losetup -d "$LOOP" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: load before start: $LOAD0; agent: $AGENT" >&2
IMAGES="$WORK/images"
mkdir -p "$IMAGES" && chmod 755 "$IMAGES"
head -c $((1 << 30)) /dev/urandom >"$IMAGES/disk.img"
chmod 644 "$IMAGES/disk.img"
SIZE=$(stat -c %s "$IMAGES/disk.img")
SHA=$(sha256sum "$IMAGES/disk.img" | cut -d' ' -f1)
cat "$IMAGES/disk.img" >/dev/null

truncate -s 2G "$WORK/disk.raw"
LOOP=$(losetup --find --show --direct-io=on "$WORK/disk.raw")
DEV_SIZE=$(blockdev --getsize64 "$LOOP")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
start_nginx "$WORK/nginx" "$PORT" "$IMAGES"
URL="http://127.0.0.1:$PORT/images/disk.img"
for _ in $(seq 100); do curl -sf -o /dev/null -r 0-0 "$URL" && break; sleep 0.1; done
curl -sf -o /dev/null -r 0-0 "$URL" || { echo "bench: $URL does not answer" >&2; exit 1; }

# timed BYTES CMD...: runs CMD on a freshly discarded device, prints MB/s of its wall time.
timed() {
  local bytes=$1; shift
  blkdiscard "$LOOP"
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >"$WORK/out" 2>"$WORK/err" || { [[ "${ALLOW_FAIL:-}" == 1 ]] || { cat "$WORK/err" "$WORK/out" >&2; exit 1; }; }
  t1=$(date +%s.%N)
  awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.0f", b / (z - a) / 1e6 }'
}

# The image on the device must be the image (first and last MiB compared).
check_image() {
  cmp -n $((1 << 20)) "$IMAGES/disk.img" "$LOOP" >/dev/null
  cmp -n $((1 << 20)) <(tail -c $((1 << 20)) "$IMAGES/disk.img") <(dd if="$LOOP" bs=1M skip=1023 count=1 status=none) >/dev/null
}

agent_write() { "$AGENT" write-image --url "$URL" --sha256 "$SHA" --disk "$LOOP"; }
dd_write() { curl -s "$URL" | dd of="$LOOP" oflag=direct bs=4M status=none; }
dd_write_full() { curl -s "$URL" | dd of="$LOOP" oflag=direct bs=4M iflag=fullblock status=none; }
agent_zero() { "$AGENT" wipe --method zero --disk "$LOOP"; }
# dd stops with ENOSPC at the device's end: that is its way of finishing.
dd_zero() { dd if=/dev/zero of="$LOOP" oflag=direct bs=4M status=none; }

check_zero() { cmp -n $((64 << 20)) /dev/zero "$LOOP" >/dev/null; }

# Rounds interleave the two sides, so load that comes and goes (a shared machine) hits both.
AW=() DW=() DF=() AZ=() DZ=()
for r in $(seq "$RUNS"); do
  AW+=("$(timed "$SIZE" agent_write)")
  grep -q '"result":"ok"' "$WORK/out" || { echo "bench: the agent's write-image did not succeed" >&2; exit 1; }
  check_image
  DW+=("$(timed "$SIZE" dd_write)")
  check_image
  DF+=("$(timed "$SIZE" dd_write_full)")
  check_image
  AZ+=("$(timed "$DEV_SIZE" agent_zero)")
  grep -q '"result":"ok"' "$WORK/out" || { echo "bench: the agent's zero wipe did not succeed" >&2; exit 1; }
  check_zero
  DZ+=("$(ALLOW_FAIL=1 timed "$DEV_SIZE" dd_zero)")
  check_zero
  echo "bench: round $r: write agent ${AW[-1]} dd ${DW[-1]} dd-fullblock ${DF[-1]}; zero agent ${AZ[-1]} dd ${DZ[-1]} MB/s" >&2
done
# stats VALUES...: "median / best (runs: ...)".
stats() {
  printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "%d / %d", v[int((NR+1)/2)], v[NR]}'
  echo " (runs: $*)"
}
aw=$(stats "${AW[@]}") dw=$(stats "${DW[@]}") df=$(stats "${DF[@]}") az=$(stats "${AZ[@]}") dz=$(stats "${DZ[@]}")

ratio() { awk -v a="${1%% *}" -v b="${2%% *}" 'BEGIN { printf "%.2f", a / b }'; }
echo "| operation | agent MB/s (median / best) | dd baseline MB/s (median / best) | agent / baseline (median) |"
echo "|---|---|---|---|"
echo "| write-image, 1 GiB raw over HTTP vs \`curl \| dd oflag=direct bs=4M\` | ${aw%% (*} | ${dw%% (*} | $(ratio "$aw" "$dw") |"
echo "| (same, baseline with \`iflag=fullblock\`) | ${aw%% (*} | ${df%% (*} | $(ratio "$aw" "$df") |"
echo "| wipe zero, 2 GiB vs \`dd if=/dev/zero oflag=direct bs=4M\` | ${az%% (*} | ${dz%% (*} | $(ratio "$az" "$dz") |"
echo
echo "loop device over a sparse file (direct-io=on), nginx on 127.0.0.1, $RUNS runs, $(nproc) cores, $(date -u +%F), load average before start $LOAD0"
