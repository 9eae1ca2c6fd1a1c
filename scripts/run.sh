#!/usr/bin/env bash
# Runs the appliance on the embedded SQLite default: API and HTTP boot on http://127.0.0.1:8080,
# data in ./ironbay-data, iPXE binaries in ./pxe (installed from Debian's ipxe package), the agent image
# in ./images/agent (built by images/build-agent.sh), no DHCP.
# Extra arguments go to `ironbay serve` (e.g. --listen 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# The iPXE binaries served at /pxe/* and over TFTP, unless pxe/ already has them.
if [[ ! -f pxe/ipxe.efi || ! -f pxe/snponly.efi || ! -f pxe/undionly.kpxe ]]; then
    bash scripts/install-pxe.sh pxe
fi
# The agent image served at /images/agent/* (boot.images_dir defaults to ./images), unless
# images/agent/ already has it; `bash images/build-agent.sh` rebuilds it after agent changes.
if [[ ! -f images/agent/vmlinuz || ! -f images/agent/initrd.img ]]; then
    bash images/build-agent.sh
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ironbay/target}"
cargo build --release --locked --bin ironbay
exec "$CARGO_TARGET_DIR/release/ironbay" serve "$@"
