#!/usr/bin/env bash
# Installs the Debian packages ironbay's tests and appliance need.
# Idempotent: when everything is already installed it never touches apt, so a
# re-run costs well under a second.
set -euo pipefail

# Extend this list when the project needs more system packages.
PACKAGES=(
    postgresql
    wrk
    curl
    openssl
    ca-certificates
    # The network lab (tests/support/lab.rs): iproute2 for namespaces, ping to prove the bridge.
    iproute2
    iputils-ping
    procps
    # iPXE binaries served over TFTP and HTTP (scripts/install-pxe.sh copies them into pxe/).
    ipxe
    # The HTTP image-serving benchmark's peer (bench/http_images.sh).
    nginx
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    # "install ok installed" distinguishes a real install from a removed
    # package whose config files are still present (dpkg -s succeeds for both).
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

if [[ $EUID -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi

echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"

# Debian's postgresql package creates and starts a "main" cluster on 5432.
# The test harness and the appliance launch their own servers, so stop any
# packaged cluster and keep it from starting at boot: it would only hold a
# port and memory, and nothing may come to depend on it by accident.
if command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r ver name _port status _rest; do
        [[ -n "$ver" && -n "$name" ]] || continue
        if [[ "$status" == online* ]]; then
            $SUDO pg_ctlcluster "$ver" "$name" stop || true
        fi
        conf="/etc/postgresql/$ver/$name/start.conf"
        if [[ -f "$conf" ]]; then
            echo manual | $SUDO tee "$conf" >/dev/null
        fi
    done < <(pg_lsclusters --no-header 2>/dev/null || true)
fi

echo "install-deps: done"
