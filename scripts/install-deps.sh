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
    # Boot services' real clients and peers (tests and bench/): DHCP clients, perfdhcp, Kea,
    # dnsmasq (binary only: dnsmasq-base has no service), TFTP client and server, nginx, iPXE
    # binaries, qemu with SeaBIOS/OVMF, busybox for the test initramfs, a kernel to boot.
    isc-dhcp-client
    udhcpc
    kea-admin
    kea-dhcp4-server
    dnsmasq-base
    tftp-hpa
    tftpd-hpa
    nginx-light
    ipxe
    qemu-system-x86
    qemu-utils
    ovmf
    busybox-static
    cpio
    linux-image-amd64
    openipmi
    ipmitool
    # FreeIPMI's ipmipower: the peer of bench/bmc_power.sh.
    freeipmi-tools
    # nftables: the TFTP packet-loss test drops datagrams on arrival.
    nftables
    # The agent's disk tests (crates/agent/tests/disk.rs): loop devices and the tools that put
    # real partition tables and filesystems on them, and the compressors of the test images.
    util-linux
    fdisk
    e2fsprogs
    gzip
    zstd
    xz-utils
    # The lab's bootable disk image (tests/lab/build-disk-image.sh): an MBR with SYSLINUX and a
    # FAT partition, built in a file without loop devices.
    syslinux
    syslinux-common
    mtools
    dosfstools
    # The console's browser tests (tests/browser.rs): headless Chromium driven over WebDriver.
    chromium
    chromium-driver
    fonts-dejavu-core
)

missing=()
# kubectl: the Talos cluster tests load the kubeconfig ironbay issues. Any kubectl on the PATH will
# do (some images ship Google's); otherwise Debian's kubernetes-client.
if ! command -v kubectl >/dev/null; then
    missing+=(kubernetes-client)
fi
# npm installs axe-core for the accessibility check; any Node.js with npm will do.
if ! command -v npm >/dev/null; then
    missing+=(npm)
fi
for pkg in "${PACKAGES[@]}"; do
    # "install ok installed" distinguishes a real install from a removed
    # package whose config files are still present (dpkg -s succeeds for both).
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

# axe-core (npm, version pinned by tests/browser/package-lock.json), loaded into the page by the
# browser tests. Skipped when the installed copy already matches the lock file.
browser_test_packages() {
    local dir
    dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
    if [[ -f "$dir/node_modules/.package-lock.json" ]] && cmp -s <(grep -v '"name"' "$dir/package-lock.json" | grep '"version"' | sort) \
        <(grep -v '"name"' "$dir/node_modules/.package-lock.json" | grep '"version"' | sort); then
        return 0
    fi
    echo "install-deps: npm ci in tests/browser"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

if [[ ${#missing[@]} -eq 0 ]]; then
    browser_test_packages
    echo "install-deps: all ${#PACKAGES[@]} packages (and kubectl, npm) already installed"
    exit 0
fi

if [[ $EUID -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi

echo "install-deps: installing ${missing[*]}"
# Packages with services (kea, tftpd-hpa, nginx) must not start them: a DHCP or TFTP server on
# the machine's real interfaces is exactly what must never happen. policy-rc.d tells
# invoke-rc.d/deb-systemd-invoke to start nothing while we install.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    for unit in kea-dhcp4-server kea-ctrl-agent kea-dhcp6-server kea-dhcp-ddns-server tftpd-hpa nginx openipmi; do
        $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
fi

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

browser_test_packages
echo "install-deps: done"
