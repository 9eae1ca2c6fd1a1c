#!/usr/bin/env bash
# Builds a small bootable raw disk image for the end-to-end tests: the agent writes it to a VM's
# disk, the VM reboots from that disk and must show it did. An MBR (SYSLINUX's mbr.bin) with one
# active FAT16 partition holding SYSLINUX, Debian's kernel (the one the agent boots:
# images/lib/kernel.sh) and a busybox initramfs whose /init loads virtio_net, takes a DHCP lease
# with udhcpc, prints IRONBAY-DISK-BOOTED on the console and POSTs to REPORT_URL, retrying for up
# to 120 s, a body of three lines:
#   booted from disk
#   mac <the NIC's MAC>
#   cmdline <contents of /proc/cmdline>
# then stays up (it never powers off).
#
# Usage: build-disk-image.sh OUT.img REPORT_URL    (REPORT_URL: http://..., no spaces)
#   COMPRESS=zst  also writes OUT.img.zst (zstd -9: -19 saves 0.2% of the 9 MiB for 20x the time)
# The last line on stdout is `sha256 <hex of OUT.img>`.
#
# No loop devices and no mounts: sfdisk, mkfs.fat --offset, mtools and `syslinux --offset` all
# work on the image file, so it runs anywhere (images/lib/disk.sh). Reproducible: the same
# kernel, busybox, syslinux, scripts (this one, udhcpc.script, images/lib/{kernel,disk}.sh) and
# URL give the same bytes (fixed disk id and volume serial, mkfs.fat --invariant,
# SOURCE_DATE_EPOCH for mtools' and syslinux's directory entries, a sorted cpio, gzip -n). ~2 s; the image is 13 MiB (9 MiB zstd).
set -euo pipefail
usage="usage: build-disk-image.sh OUT.img REPORT_URL"
OUT=${1:?$usage}
URL=${2:?$usage}
[[ $URL =~ ^http://[^[:space:]]+$ ]] || { echo "REPORT_URL must be http://... without spaces: $URL" >&2; exit 2; }
[[ -z ${COMPRESS:-} || $COMPRESS == zst ]] || { echo "COMPRESS=$COMPRESS: only zst is supported" >&2; exit 2; }
umask 022
export LC_ALL=C TZ=UTC
# 2000-01-01T00:00:00Z: FAT cannot date anything before 1980.
export SOURCE_DATE_EPOCH=946684800
LIB=$(dirname "$0")/../../images/lib/kernel.sh
# shellcheck source=../../images/lib/kernel.sh
. "$LIB"
DLIB=$(dirname "$0")/../../images/lib/disk.sh
# shellcheck source=../../images/lib/disk.sh
. "$DLIB"
kernel_find
syslinux_check
START=$(date +%s.%N)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/root
mkdir -p "$STAGE"/{bin,etc,proc,sys,dev,tmp,run}
busybox_install "$STAGE"
kernel_modules "$STAGE" virtio_pci virtio_net

install -m 0755 "$(dirname "$0")/udhcpc.script" "$STAGE/etc/udhcpc.script"

cat > "$STAGE/init" <<'INIT'
#!/bin/sh
# PID 1 of the disk image: network up, one report, then idle for ever (PID 1 must not exit).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The initramfs has no /dev/console node: output goes there once devtmpfs is mounted.
exec < /dev/null > /dev/console 2>&1
up() { cut -d' ' -f1 /proc/uptime; }
echo "ironbay-disk: userspace up after $(up)s"
URL=
for a in $(cat /proc/cmdline); do
  case "$a" in ironbay.report=*) URL=${a#ironbay.report=} ;; esac
done
modprobe virtio_pci 2>/dev/null
modprobe virtio_net
ip link set lo up
# The NIC appears once the driver has probed it; wait for it, bounded.
IF=
for i in $(seq 1 100); do
  for n in /sys/class/net/*; do n=${n##*/}; [ "$n" != lo ] && IF=$n && break; done
  [ -n "$IF" ] && break
  sleep 0.1
done
MAC=$(cat "/sys/class/net/$IF/address" 2>/dev/null)
ip link set "$IF" up
echo "IRONBAY-DISK-BOOTED mac=$MAC if=$IF"
BODY=$(printf 'booted from disk\nmac %s\ncmdline %s\n' "$MAC" "$(cat /proc/cmdline)")
# DHCP and the report, retried until one POST succeeds, for at most 120 s.
deadline=$(( $(up | cut -d. -f1) + 120 ))
while :; do
  [ -s /run/dhcp.env ] || udhcpc -i "$IF" -s /etc/udhcpc.script -n -q -t 5 -T 2
  if [ -s /run/dhcp.env ] && wget -q -O /dev/null --post-data="$BODY" "$URL"; then
    echo "ironbay-disk: reported to $URL after $(up)s"
    break
  fi
  if [ "$(up | cut -d. -f1)" -ge "$deadline" ]; then
    echo "ironbay-disk: report to $URL FAILED"
    break
  fi
  sleep 2
done
while :; do sleep 3600; done
INIT
chmod 0755 "$STAGE/init"

FILES=$WORK/files
mkdir -p "$FILES"
initramfs_pack "$STAGE" "$FILES/initrd.img"
cp "$KERNEL" "$FILES/vmlinuz"
IMG=$WORK/disk.img
syslinux_disk "$FILES" "$IMG" IRONBAYDISK 1b0a7d15 "console=ttyS0,115200 ironbay.report=$URL"

mkdir -p "$(dirname "$OUT")"
mv "$IMG" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
if [[ ${COMPRESS:-} == zst ]]; then
    zstd -q -f -9 "$OUT" -o "$OUT.zst.tmp"
    mv "$OUT.zst.tmp" "$OUT.zst"
fi
END=$(date +%s.%N)
awk -v s="$START" -v e="$END" -v b="$(stat -c %s "$OUT")" -v k="$KVER" \
    'BEGIN { printf "disk image: kernel %s, %.1f MiB, built in %.1fs\n", k, b / 1048576, e - s }'
echo "sha256 $(sha256sum "$OUT" | cut -d' ' -f1)"
