#!/usr/bin/env bash
# HTTP image serving (issue: boot services): a 1 GiB image fetched whole and as 256 MiB ranges from
# ironbay's /images/* and from nginx (sendfile on) on loopback. Each server is pinned to core 0 with
# taskset, the client (curl -o /dev/null) to core 1. Reports MB/s (10^6 bytes/s) per run, the best and
# median of RUNS, and ironbay / nginx. Target: >= 1 GB/s and >= 0.8x nginx.
# Usage: bash bench/http_images.sh [runs]   (root; needs nginx and curl: scripts/install-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/nginx.sh
RUNS="${1:-5}"
source bench/lib.sh

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: load before start: $LOAD0" >&2
IMAGES="$WORK/images"
mkdir -p "$IMAGES" && chmod 755 "$IMAGES"
# Random bytes (not a sparse file: holes would be served from the zero page and flatter everyone).
head -c $((1 << 30)) /dev/urandom >"$IMAGES/disk.img"
chmod 644 "$IMAGES/disk.img"
SIZE=$(stat -c %s "$IMAGES/disk.img")
# Warm the page cache so both servers read from memory.
cat "$IMAGES/disk.img" >/dev/null

# ironbay, pinned to core 0.
IB_PORT=$(free_port)
mkdir -p "$WORK/ironbay"
IRONBAY_ADMIN_PASSWORD=bench-password-123 IRONBAY_LOG=warn IRONBAY_BOOT__IMAGES_DIR="$IMAGES" \
  taskset -c 0 "$BIN" serve --listen "127.0.0.1:$IB_PORT" --data-dir "$WORK/ironbay" \
  --database-url "sqlite://$WORK/ironbay/ironbay.db" >"$WORK/ironbay/out" 2>"$WORK/ironbay/err" &
PIDS+=($!)
IB="http://127.0.0.1:$IB_PORT/images/disk.img"

# nginx with its own minimal config, pinned to core 0: one worker, sendfile on, no logging.
NG_PORT=$(free_port)
start_nginx "$WORK/nginx" "$NG_PORT" "$IMAGES" taskset -c 0
NG="http://127.0.0.1:$NG_PORT/images/disk.img"

for url in "$IB" "$NG"; do
  for _ in $(seq 100); do curl -sf -o /dev/null -r 0-0 "$url" && break; sleep 0.1; done
  curl -sf -o /dev/null -r 0-0 "$url" || { echo "bench: $url does not answer" >&2; exit 1; }
done

# fetch URL [RANGE]: one download on core 1; prints MB/s after checking the byte count.
fetch() {
  local url=$1 range=${2:-} want out
  if [[ -n "$range" ]]; then
    out=$(taskset -c 1 curl -sf -o /dev/null -r "$range" -w '%{size_download} %{speed_download}' "$url")
    want=$(( ${range#*-} - ${range%-*} + 1 ))
  else
    out=$(taskset -c 1 curl -sf -o /dev/null -w '%{size_download} %{speed_download}' "$url")
    want=$SIZE
  fi
  [[ "${out% *}" == "$want" ]] || { echo "bench: $url $range: got ${out% *} bytes, want $want" >&2; exit 1; }
  awk -v s="${out#* }" 'BEGIN { printf "%.0f", s / 1e6 }'
}

# series NAME URL [RANGE...]: RUNS rounds; each round fetches the whole file, or each range once.
series() {
  local url=$1; shift
  local -a all=()
  for _ in $(seq "$RUNS"); do
    if [[ $# -eq 0 ]]; then all+=("$(fetch "$url")"); else for r in "$@"; do all+=("$(fetch "$url" "$r")"); done; fi
  done
  printf '%s\n' "${all[@]}" | sort -n | awk '{v[NR]=$1} END {printf "%d %d %s", v[int((NR+1)/2)], v[NR], ""}'
  echo " (runs: ${all[*]})"
}

Q=$((256 << 20))
RANGES=("0-$((Q - 1))" "$Q-$((2 * Q - 1))" "$((2 * Q))-$((3 * Q - 1))" "$((3 * Q))-$((4 * Q - 1))")
echo "| request | ironbay MB/s (median / best) | nginx MB/s (median / best) | ironbay / nginx (median) |"
echo "|---|---|---|---|"
for kind in whole range; do
  if [[ $kind == whole ]]; then
    ib=$(series "$IB"); ng=$(series "$NG")
    label="GET 1 GiB whole"
  else
    ib=$(series "$IB" "${RANGES[@]}"); ng=$(series "$NG" "${RANGES[@]}")
    label="GET 256 MiB ranges (4 per round)"
  fi
  read -r ibm ibb _ <<<"$ib"; read -r ngm ngb _ <<<"$ng"
  ratio=$(awk -v a="$ibm" -v b="$ngm" 'BEGIN { printf "%.2f", a / b }')
  echo "| $label | $ibm / $ibb | $ngm / $ngb | $ratio |"
  echo "  ironbay $kind: ${ib#* * }" >&2
  echo "  nginx   $kind: ${ng#* * }" >&2
done
echo
echo "1 GiB random image, page cache warm, servers on core 0, curl on core 1, $RUNS rounds, $(nproc) cores, $(date -u +%F), load average before start $LOAD0"
