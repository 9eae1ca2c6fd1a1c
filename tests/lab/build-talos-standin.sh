#!/usr/bin/env bash
# Builds the lab's stand-in for Talos release artifacts. A real Talos node can't run in the lab, so
# the lab PXE-boots this instead: Debian's kernel (images/lib/kernel.sh, the one the agent boots)
# and a busybox initramfs whose main program is `talos-standin node` (tests/talos-standin, built
# statically like the agent: images/lib/static-bin.sh). NOT Talos.
#
# Usage: bash tests/lab/build-talos-standin.sh OUT
#   OUT/v1.13.9/vmlinuz-amd64        Debian's kernel
#   OUT/v1.13.9/initramfs-amd64.xz   the initramfs: newc cpio, xz --check=crc32 (what the kernel's
#                                    decompressor verifies)
#   OUT/v1.13.9/sha256sum.txt        sha256sum lines for those two
#     the layout images/fetch-talos.sh makes from a Talos release, so the appliance can take OUT
#     as its Talos artifacts directory (TALOS_VERSION=v1.x.y picks another version directory)
#   OUT/talos-standin-installer.img  a raw bootable disk image (SYSLINUX, images/lib/disk.sh) with
#                                    the same kernel and initramfs and the kernel command line
#                                    `console=ttyS0,115200n8 talos.standin.installed`: what the
#                                    stand-in "installs" to the node's disk, booting it installed
#   OUT/stamp                        the inputs of the last build
#
# The initramfs's /init: proc, sys, devtmpfs; output to /dev/console; the NIC and disk drivers;
# lo up; on a PXE boot (no `talos.standin.installed` on the command line) a DHCP lease on the first
# NIC with busybox udhcpc and tests/lab/udhcpc.script, retried until there is one (Talos's metal
# platform takes one before fetching its config); then `/bin/talos-standin node`. If that exits,
# it prints `TALOS-STANDIN-EXITED <code>` and idles (PID 1 never exits: no kernel panic). busybox
# reboot/halt/poweroff without -f signal PID 1, which does what they ask. The stand-in relies on
# busybox's ip, hostname and reboot applets (checked here).
#
# Reproducible: the same kernel, busybox, syslinux, xz, scripts (this one, udhcpc.script,
# images/lib/{kernel,static-bin,disk}.sh) and talos-standin sources give the same bytes. Cached:
# OUT/stamp records them (the binary by its sha256); when none changed the script exits after the
# (no-op) cargo build. CARGO_TARGET_DIR defaults to ~/.cache/ironbay/target.
# Times on 2 busy cores: the stand-in's cold build 3.5 min (tonic, protox; the agent's aws-lc was
# cached); with it built, the artifacts ~7 s (xz of the initramfs ~4 s); nothing changed, ~1 s.
# Sizes (Debian kernel 6.1, the 1.2 MiB stub stand-in): vmlinuz-amd64 7.9 MiB, initramfs-amd64.xz
# 1.7 MiB (6.8 MiB unpacked), talos-standin-installer.img 13 MiB. Under qemu TCG the PXE boot
# reaches `talos-standin node` with a lease after ~4.5 s, the installed boot after ~5 s (a
# machine with no NIC waits 10 s for one).
set -euo pipefail
SELF=$(realpath "$0")
HERE=$(dirname "$SELF")
usage="usage: build-talos-standin.sh OUT"
OUT=${1:?$usage}
[[ $# -eq 1 ]] || { echo "$usage" >&2; exit 2; }
VERSION=${TALOS_VERSION:-v1.13.9}
VERSION=v${VERSION#v}
[[ $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "TALOS_VERSION=$VERSION: want v1.2.3" >&2; exit 2; }
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
cd "$HERE/../.."
umask 022
export LC_ALL=C TZ=UTC
START=$(date +%s.%N)

LIB=images/lib/kernel.sh
BLIB=images/lib/static-bin.sh
DLIB=images/lib/disk.sh
UDHCPC=tests/lab/udhcpc.script
# shellcheck source=../../images/lib/kernel.sh
. "$LIB"
# shellcheck source=../../images/lib/static-bin.sh
. "$BLIB"
# shellcheck source=../../images/lib/disk.sh
. "$DLIB"
kernel_find
busybox_check
syslinux_check
APPLETS=$(/bin/busybox --list)
for a in ip hostname reboot udhcpc; do
    grep -qx "$a" <<< "$APPLETS" || { echo "/bin/busybox lacks the $a applet" >&2; exit 1; }
done

# The workspace crates talos-standin is built from (rebuilt when another clone built them last),
# from cargo's own dependency tree: path dependencies are the ones listed with "(/path)".
CRATES=$(cargo tree --locked -p talos-standin -e normal,build --prefix none --target x86_64-unknown-linux-gnu |
    sed -n 's/^\([^ ]*\) v[^ ]* (\/.*$/\1/p' | sort -u)
# shellcheck disable=SC2086 # one word per crate
static_build talos-standin talos-standin ${CRATES:-talos-standin}
STANDIN=$STATIC_BIN
BUILT=$(date +%s.%N)

sha() { sha256sum "$1" | cut -d' ' -f1; }
STAMP="$VERSION $KVER $(cat "$SELF" "$LIB" "$BLIB" "$DLIB" "$UDHCPC" | sha256sum | cut -d' ' -f1)"
STAMP+=" $(sha /bin/busybox) $(sha "$SYSLINUX_MBR") $(sha "$(command -v syslinux)")"
STAMP+=" $(xz --version | head -n1 | tr ' ' _) $(sha "$STANDIN")"
VDIR=$OUT/$VERSION
IMG=$OUT/talos-standin-installer.img
if [[ -f $OUT/stamp && $(cat "$OUT/stamp") == "$STAMP" && -s $IMG ]] &&
    (cd "$VDIR" 2> /dev/null && sha256sum --quiet -c sha256sum.txt); then
    echo "talos stand-in $VERSION up to date in $OUT (talos-standin $(sha "$STANDIN" | cut -c1-12))"
    exit 0
fi

WORK=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/root
mkdir -p "$STAGE"/{bin,etc,proc,sys,dev,tmp,run,root,var}
chmod 1777 "$STAGE/tmp"
chmod 0700 "$STAGE/root"
ln -s bin "$STAGE/sbin"
busybox_install "$STAGE"
cp "$STANDIN" "$STAGE/bin/talos-standin"
MODULES="virtio_pci virtio_net virtio_blk virtio_scsi sd_mod ahci ata_piix e1000 e1000e"
# shellcheck disable=SC2086 # one word per module
kernel_modules "$STAGE" $MODULES
install -m 0755 "$UDHCPC" "$STAGE/etc/udhcpc.script"
echo 'root:x:0:0:root:/root:/bin/sh' > "$STAGE/etc/passwd"
echo 'root:x:0:' > "$STAGE/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$STAGE/etc/hosts"

# The module list is substituted here; everything else is for /init's shell.
sed "s/@MODULES@/$MODULES/" > "$STAGE/init" <<'INIT'
#!/bin/sh
# PID 1 of the Talos stand-in, PXE and installed boots alike: drivers, network, then
# `talos-standin node`. Never exits (PID 1 exiting would panic the kernel).
export PATH=/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
exec < /dev/null > /dev/console 2>&1
# busybox reboot, halt and poweroff without -f ask PID 1 by a signal.
trap 'sync; reboot -f' TERM
trap 'sync; halt -f' USR1
trap 'sync; poweroff -f' USR2
up() { cut -d' ' -f1 /proc/uptime; }
MODE=pxe
case " $(cat /proc/cmdline) " in *" talos.standin.installed "*) MODE=installed ;; esac
echo "talos-standin-init: userspace up after $(up)s, kernel $(uname -r), $MODE boot"
for m in @MODULES@; do modprobe -q "$m" 2>/dev/null; done
ip link set lo up
# The first NIC, once its driver has probed it (bounded wait).
IF=
i=0
while [ -z "$IF" ] && [ $i -lt 100 ]; do
  for n in /sys/class/net/*; do [ -e "$n" ] && [ "${n##*/}" != lo ] && IF=${n##*/} && break; done
  [ -z "$IF" ] && sleep 0.1
  i=$((i + 1))
done
if [ -z "$IF" ]; then
  echo "talos-standin-init: no network interface"
else
  ip link set "$IF" up
  # Talos's metal platform takes a DHCP lease before it fetches its config; installed, the
  # stand-in sets its static address itself.
  if [ "$MODE" = pxe ]; then
    until udhcpc -i "$IF" -s /etc/udhcpc.script -n -q -t 5 -T 2; do
      echo "talos-standin-init: no DHCP lease on $IF yet, retrying"
      sleep 1
    done
    echo "talos-standin-init: $IF $(cat /run/dhcp.env) after $(up)s"
  fi
fi
echo "talos-standin-init: starting talos-standin node after $(up)s"
# In the background, so the traps above run while it is up.
/bin/talos-standin node &
wait $!
rc=$?
echo "TALOS-STANDIN-EXITED $rc"
while :; do sleep 3600 & wait $!; done
INIT
chmod 0755 "$STAGE/init"

V=$WORK/$VERSION
mkdir -p "$V"
initramfs_pack "$STAGE" "$V/initramfs-amd64.xz" xz
cp "$KERNEL" "$V/vmlinuz-amd64"
(cd "$V" && sha256sum vmlinuz-amd64 initramfs-amd64.xz > sha256sum.txt)
PACKED=$(date +%s.%N)

FILES=$WORK/files
mkdir -p "$FILES"
cp "$V/vmlinuz-amd64" "$FILES/vmlinuz"
cp "$V/initramfs-amd64.xz" "$FILES/initrd.img"
syslinux_disk "$FILES" "$WORK/installer.img" TALOSSTNDIN 7a105d15 "console=ttyS0,115200n8 talos.standin.installed"

# Self-checks, then everything into place.
xz -t "$V/initramfs-amd64.xz"
LIST=$(xz -dc "$V/initramfs-amd64.xz" | cpio -t --quiet)
for f in init bin/talos-standin bin/busybox bin/ip bin/hostname bin/reboot bin/udhcpc etc/udhcpc.script; do
    grep -qx "$f" <<< "$LIST" || { echo "initramfs lacks /$f" >&2; exit 1; }
done
CFG=$(mtype -i "$WORK/installer.img@@1M" ::syslinux.cfg)
grep -qx '  APPEND console=ttyS0,115200n8 talos.standin.installed' <<< "$CFG" ||
    { echo "installer image: wrong syslinux.cfg: $CFG" >&2; exit 1; }
rm -f "$OUT/stamp"
rm -rf "$VDIR"
mv "$V" "$VDIR"
mv "$WORK/installer.img" "$IMG"
echo "$STAMP" > "$OUT/stamp"
END=$(date +%s.%N)

size() { numfmt --to=iec-i --suffix=B "$(stat -c %s "$1")"; }
echo "talos stand-in $VERSION: kernel $KVER $(size "$VDIR/vmlinuz-amd64"), initramfs $(size "$VDIR/initramfs-amd64.xz")" \
    "(talos-standin $(size "$STANDIN")), installer image $(size "$IMG")"
echo "talos stand-in: initramfs sha256 $(sha "$VDIR/initramfs-amd64.xz" | cut -c1-16), installer image sha256 $(sha "$IMG" | cut -c1-16)"
awk -v s="$START" -v b="$BUILT" -v p="$PACKED" -v e="$END" \
    'BEGIN { printf "talos stand-in: cargo %.1fs, initramfs %.1fs, installer image and checks %.1fs\n", b - s, p - b, e - p }'
