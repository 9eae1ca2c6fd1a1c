#!/usr/bin/env bash
# Copies the iPXE binaries ironbay serves (over TFTP and at /pxe/*) from Debian's `ipxe` package
# into pxe/ at the repo root, or into the directory given as $1. No binaries are committed: this
# script is how they arrive. Idempotent: files already identical are left alone.
# Usage: bash scripts/install-pxe.sh [dir]
set -euo pipefail
if [[ $# -ge 1 ]]; then
    DEST="$1"
else
    DEST="$(cd "$(dirname "$0")/.." && pwd)/pxe"
fi
SRC=/usr/lib/ipxe
REQUIRED=(ipxe.efi snponly.efi undionly.kpxe)
OPTIONAL=(ipxe.pxe)

if [[ ! -f "$SRC/ipxe.efi" || ! -f "$SRC/undionly.kpxe" ]]; then
    if [[ $EUID -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
    echo "install-pxe: installing Debian's ipxe package"
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ipxe
fi

mkdir -p "$DEST"
copied=0
for f in "${REQUIRED[@]}" "${OPTIONAL[@]}"; do
    if [[ ! -f "$SRC/$f" ]]; then
        if [[ " ${REQUIRED[*]} " == *" $f "* ]]; then
            echo "install-pxe: $SRC/$f is missing (is the ipxe package complete?)" >&2
            exit 1
        fi
        continue
    fi
    if ! cmp -s "$SRC/$f" "$DEST/$f"; then
        install -m 0644 "$SRC/$f" "$DEST/$f"
        copied=$((copied + 1))
    fi
done
echo "install-pxe: $DEST has ${REQUIRED[*]} (copied $copied)"
