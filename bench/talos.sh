#!/usr/bin/env bash
# Talos cluster benchmark.
# 1. Generation (examples/talos_bench.rs, release): the secrets bundle (the RSA-4096 service-account
#    key dominates: its keygen is timed apart), all 53 machine configs of a 3+50-node cluster, and
#    the admin kubeconfig + talosconfig. Median of ROUNDS.
# 2. Config serving: `GET /talos/config?uuid=` for a member being installed (the lookup by UUID,
#    the membership check, rendering from sealed secrets, the served-at mark and its audit entry)
#    with wrk, beside nginx serving the same config as a static file — what Matchbox-style
#    static serving costs. Same machine, loopback, 1 connection (one node asks once per boot) and 16.
# Usage: bash bench/talos.sh [ROUNDS=5] [SECONDS=10]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-5}"
SECS="${2:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ironbay/target}"
cargo build --release --locked --example talos_bench >&2
source bench/lib.sh
source bench/nginx.sh

echo "== generation (3 control planes + 50 workers, median of $ROUNDS)"
"$CARGO_TARGET_DIR/release/examples/talos_bench" "$ROUNDS" | tee "$WORK/gen.json"

# An appliance with (fake, checksummed) Talos artifacts and one cluster whose member is installing.
IMAGES="$WORK/images"
mkdir -p "$IMAGES/talos/v1.13.9"
(cd "$IMAGES/talos/v1.13.9" && echo kernel >vmlinuz-amd64 && echo initramfs >initramfs-amd64.xz &&
  sha256sum vmlinuz-amd64 initramfs-amd64.xz >sha256sum.txt)
export IRONBAY_BOOT__IMAGES_DIR="$IMAGES"
BASE=$(start_ironbay sqlite "sqlite://$WORK/ironbay.db")
KEY=$(api_key "$BASE" '["assets:write","assets:read","clusters:write","clusters:read"]')
UUID=6b1e0c4a-1111-4222-8333-444455556666
ASSET=$(curl -sf "$BASE/api/v1/assets" -H "X-API-Key: $KEY" -H 'content-type: application/json' \
  -d "{\"hostname\":\"bench-cp\",\"macs\":[\"52:54:00:40:01:01\"],\"smbios_uuid\":\"$UUID\"}" | json_field id)
curl -sf "$BASE/api/v1/clusters" -H "X-API-Key: $KEY" -H 'content-type: application/json' \
  -d "{\"name\":\"bench\",\"type\":\"bare_metal\",\"gateway\":\"10.40.0.1\",\"installDisk\":\"/dev/sda\",
       \"controlPlanes\":[{\"assetId\":\"$ASSET\",\"ip\":\"10.40.0.10\",\"subnet\":\"24\"}]}" >/dev/null
URL="$BASE/talos/config?uuid=$UUID"
mkdir -p "$WORK/static"
curl -sf "$URL" >"$WORK/static/config.yaml"
echo "config: $(wc -c <"$WORK/static/config.yaml") bytes"
NG_PORT=$(free_port)
start_nginx "$WORK/nginx" "$NG_PORT" "$WORK/static"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$NG_PORT/images/config.yaml" >/dev/null && break; sleep 0.1; done

echo "| server | connections | requests/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|"
for c in 1 16; do
  for server in ironbay nginx; do
    if [[ $server == ironbay ]]; then u="$URL"; else u="http://127.0.0.1:$NG_PORT/images/config.yaml"; fi
    out=$(wrk -t1 -c"$c" -d"${SECS}s" --latency "$u")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.2f", v}' <<<"$out")
    p99=$(p99_ms <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    [[ -z $non2xx ]] || { echo "$server: $non2xx non-2xx answers" >&2; exit 1; }
    echo "| $server | $c | $rps | $p50 | $p99 |"
  done
done
