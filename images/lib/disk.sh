# shellcheck shell=bash
# Sourced (not run) by the scripts that build a bootable raw disk image around Debian's kernel and
# a busybox initramfs: tests/lab/build-disk-image.sh and tests/lab/build-talos-standin.sh.
#
#   syslinux_check      exits unless sfdisk, mkfs.fat, mcopy, syslinux and SYSLINUX's mbr.bin
#                       are there
#   syslinux_disk FILES IMG LABEL ID APPEND
#       FILES: a directory holding vmlinuz and initrd.img; writes FILES/syslinux.cfg, which boots
#       them with the kernel command line APPEND, then the disk image IMG: an MBR (SYSLINUX's
#       mbr.bin) with one active FAT16 partition at 1 MiB holding the three files and SYSLINUX.
#       LABEL: the FAT volume label; ID: 8 hex digits, the MBR disk id and the FAT volume serial.
#
# No loop devices and no mounts: sfdisk, mkfs.fat --offset, mtools and `syslinux --offset` all
# work on the image file, so it runs anywhere. Reproducible: fixed disk id and volume serial,
# mkfs.fat --invariant, SOURCE_DATE_EPOCH (default 2000-01-01T00:00:00Z: FAT cannot date anything
# before 1980) for the files' and mtools' and syslinux's directory entries.

SYSLINUX_MBR=/usr/lib/syslinux/mbr/mbr.bin

syslinux_check() {
    local tool
    for tool in sfdisk mkfs.fat mcopy syslinux; do
        command -v "$tool" > /dev/null || { echo "$tool missing (packages fdisk dosfstools mtools syslinux)" >&2; exit 1; }
    done
    [[ -r $SYSLINUX_MBR ]] || { echo "$SYSLINUX_MBR missing (package syslinux-common)" >&2; exit 1; }
}

syslinux_disk() {
    local files=$1 img=$2 label=$3 id=$4 append=$5 mib=1048576 content part_mib f
    export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-946684800} MTOOLS_SKIP_CHECK=1 TZ=UTC
    # SYSLINUX: no prompt, no menu (nothing past ldlinux.c32 is needed), its own output on the
    # serial port too.
    cat > "$files/syslinux.cfg" <<CFG
SERIAL 0 115200
PROMPT 0
TIMEOUT 0
DEFAULT disk
LABEL disk
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND $append
CFG
    touch -d "@$SOURCE_DATE_EPOCH" "$files"/syslinux.cfg "$files"/initrd.img "$files"/vmlinuz
    # Layout: MBR, the partition at 1 MiB, sized for the files plus 2 MiB (FAT, SYSLINUX, slack),
    # rounded up to whole MiB.
    content=$(cat "$files"/syslinux.cfg "$files"/initrd.img "$files"/vmlinuz | wc -c)
    part_mib=$(( (content + mib - 1) / mib + 2 ))
    truncate -s "$(( (part_mib + 1) * mib ))" "$img"
    sfdisk -q --no-reread --no-tell-kernel "$img" <<SFDISK
label: dos
label-id: 0x$id
unit: sectors
start=2048, size=$(( part_mib * 2048 )), type=e, bootable
SFDISK
    mkfs.fat --invariant -F 16 -n "$label" -i "$id" -h 2048 --offset=2048 "$img" $(( part_mib * 1024 )) > /dev/null
    # Fixed order, so the clusters each file gets are the same on every build.
    for f in syslinux.cfg initrd.img vmlinuz; do
        mcopy -m -i "$img@@$mib" "$files/$f" "::$f"
    done
    syslinux --install --offset "$mib" "$img"
    dd if="$SYSLINUX_MBR" of="$img" bs=440 count=1 conv=notrunc status=none
}
