#!/usr/bin/env bash
# Builds the agent image the appliance serves at /images/agent/{vmlinuz,initrd.img}:
# - vmlinuz: Debian's kernel, from the installed linux-image-amd64 package;
# - initrd.img: busybox-static, the NIC/disk/IPMI driver modules of that kernel, an /init, and
#   the ironbay-agent binary, linked statically (glibc, +crt-static; checked with ldd). Every
#   dependency links statically as is: aws-lc-sys (russh's crypto), zstd-sys and liblzma-sys
#   (feature "static") build their C code into the binary, and glibc >= 2.34 has its "files" and
#   "dns" NSS modules inside libc, so name resolution works with no libnss_*.so in the initramfs.
#
# Usage: bash images/build-agent.sh [OUT]   -> OUT/vmlinuz, OUT/initrd.img (OUT: images/agent)
#
# Reproducible: the same kernel, busybox, script and agent sources give the same bytes (fixed
# timestamps and owners, a sorted cpio, gzip -n: images/lib/kernel.sh, shared with the lab's
# images; the agent is built with its paths remapped, symbols stripped and no build id:
# images/lib/static-bin.sh). Cached: images/agent/stamp records the kernel version and the sha256
# of this script, images/lib/kernel.sh, images/lib/static-bin.sh, busybox and the agent binary;
# when none changed the script exits after the (no-op) cargo build. CARGO_TARGET_DIR defaults to
# ~/.cache/ironbay/target as in scripts/test.sh.
# Times on 2 busy cores: the agent's first (cold) release build ~8 min; with it built, the image
# ~10 s; nothing changed, ~1 s.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
umask 022
export LC_ALL=C
START=$(date +%s.%N)
OUT=${1:-images/agent}
mkdir -p "$OUT"

LIB=$(dirname "$0")/lib/kernel.sh
# shellcheck source=lib/kernel.sh
. "$LIB"
kernel_find
busybox_check

# The agent, static, reproducible (images/lib/static-bin.sh).
BLIB=$(dirname "$SELF")/lib/static-bin.sh
# shellcheck source=lib/static-bin.sh
. "$BLIB"
static_build ironbay-agent ironbay-agent ironbay-agent ironbay-wire
AGENT=$STATIC_BIN
BUILT=$(date +%s.%N)

sha() { sha256sum "$1" | cut -d' ' -f1; }
STAMP="$KVER $(sha "$SELF") $(sha "$LIB") $(sha "$BLIB") $(sha /bin/busybox) $(sha "$AGENT")"
if [[ -f $OUT/stamp && $(cat "$OUT/stamp") == "$STAMP" && -s $OUT/initrd.img && -s $OUT/vmlinuz ]]; then
    echo "agent image up to date (kernel $KVER, agent $(sha "$AGENT" | cut -c1-12))"
    exit 0
fi

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,etc,proc,sys,dev,tmp,run,root,var,usr}
chmod 1777 "$STAGE/tmp"
chmod 0700 "$STAGE/root"
ln -s bin "$STAGE/sbin"
ln -s ../bin "$STAGE/usr/bin"
ln -s ../bin "$STAGE/usr/sbin"
ln -s ../run "$STAGE/var/run"
busybox_install "$STAGE"
cp "$AGENT" "$STAGE/bin/ironbay-agent"

# Drivers Debian builds as modules, with their dependencies; the ones this kernel lacks are
# skipped. USB host controllers and storage are there so a BMC's virtual media shows up (and is
# protected), IPMI so the agent can read the BMC.
MODULES="virtio_pci virtio_net virtio_blk virtio_scsi sd_mod sr_mod nvme ahci ata_piix
  e1000 e1000e igb ixgbe i40e bnxt_en mlx5_core ipmi_si ipmi_devintf
  xhci_pci ehci_pci usb_storage uas"
# shellcheck disable=SC2086 # one word per module
kernel_modules "$STAGE" $MODULES

cat > "$STAGE/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
EOF
cat > "$STAGE/etc/group" <<'EOF'
root:x:0:
EOF
cat > "$STAGE/etc/hosts" <<'EOF'
127.0.0.1 localhost
::1 localhost
EOF
ln -s /proc/mounts "$STAGE/etc/mtab"

cat > "$STAGE/etc/udhcpc.script" <<'SCRIPT'
#!/bin/sh
# busybox udhcpc's hook. The agent runs
#   udhcpc -i IF -s /etc/udhcpc.script -n -q -t 10 -T 2
# and, when that exits 0, reads /run/dhcp.env: one key=value per line, no quoting:
#   interface=<IF>   ip=<address>   mask=<prefix length, e.g. 24>   router=<first router or empty>
#   dns=<space-separated servers or empty> (also written to /etc/resolv.conf)
# The file is replaced atomically when a lease is bound or renewed and removed on deconfig.
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    rm -f /run/dhcp.env ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip -4 addr add "$ip/${mask:-24}" dev "$interface"
    gw=${router%% *}
    [ -n "$gw" ] && ip -4 route replace default via "$gw" dev "$interface"
    : > /etc/resolv.conf
    for s in $dns; do echo "nameserver $s" >> /etc/resolv.conf; done
    printf 'interface=%s\nip=%s\nmask=%s\nrouter=%s\ndns=%s\n' \
      "$interface" "$ip" "${mask:-24}" "$gw" "$dns" > /run/dhcp.env.tmp
    mv /run/dhcp.env.tmp /run/dhcp.env ;;
esac
exit 0
SCRIPT
chmod 0755 "$STAGE/etc/udhcpc.script"

cat > "$STAGE/init" <<'INIT'
#!/bin/sh
# PID 1: mounts, drivers, then ironbay-agent, restarted whenever it exits. Never exits itself.
export PATH=/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
# Output on the serial console (ttyS0, where the appliance's boot script puts a console and where
# a BMC's serial-over-LAN reads) when the machine has one, else on /dev/console. Serial ports
# open without waiting for carrier (CLOCAL); a port without a UART fails to open.
if (: > /dev/ttyS0) 2>/dev/null; then
  stty -F /dev/ttyS0 115200 2>/dev/null
  exec < /dev/null > /dev/ttyS0 2>&1
else
  exec < /dev/null > /dev/console 2>&1
fi
echo "ironbay-init: userspace up after $(cut -d' ' -f1 /proc/uptime)s, kernel $(uname -r)"
# Drivers for the devices present, by modalias; twice, as loading a bus driver reveals devices.
for pass in 1 2; do
  for f in /sys/bus/*/devices/*/modalias; do modprobe -q "$(cat "$f")" 2>/dev/null; done
done
modprobe -q ipmi_si 2>/dev/null
modprobe -q ipmi_devintf 2>/dev/null
ip link set lo up
echo "ironbay-init: drivers loaded after $(cut -d' ' -f1 /proc/uptime)s"
while :; do
  /bin/ironbay-agent boot
  echo "ironbay-init: ironbay-agent exited with status $?; restarting in 5s"
  sleep 5
done
INIT
chmod 0755 "$STAGE/init"

initramfs_pack "$STAGE" "$OUT/initrd.img"
cp "$KERNEL" "$OUT/vmlinuz.tmp"
mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
echo "$STAMP" > "$OUT/stamp"
END=$(date +%s.%N)
size() { numfmt --to=iec-i --suffix=B "$(stat -c %s "$1")"; }
echo "agent image: kernel $KVER $(size "$OUT/vmlinuz"), initrd $(size "$OUT/initrd.img") (agent $(size "$AGENT"))," \
    "initrd sha256 $(sha "$OUT/initrd.img" | cut -c1-16)"
awk -v s="$START" -v b="$BUILT" -v e="$END" 'BEGIN { printf "agent image: cargo %.1fs, image %.1fs\n", b - s, e - b }'
