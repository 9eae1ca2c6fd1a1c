# shellcheck shell=bash
# Sourced (not run) by the scripts that build a busybox initramfs around Debian's kernel:
# images/build-agent.sh, tests/lab/build-disk-image.sh, tests/lab/build-test-initramfs.sh and
# tests/lab/build-talos-standin.sh.
# One place says where the kernel and its modules are and how an initramfs is packed
# reproducibly, so the images agree on the kernel they boot.
#
#   kernel_find                 sets KVER, KERNEL (/boot/vmlinuz-KVER), MODDIR (/lib/modules/KVER)
#                               from the installed linux-image-amd64 package, or exits
#   busybox_check               exits unless /bin/busybox (busybox-static) is there
#   busybox_install STAGE       STAGE/bin/busybox and a symlink per applet
#   kernel_modules STAGE MOD... the modules and their dependencies (those this kernel lacks are
#                               skipped) under STAGE/lib/modules/KVER, with depmod's indexes
#   initramfs_pack STAGE FILE [xz]
#                               STAGE as a gzip'd newc cpio in FILE (written atomically), the
#                               same bytes for the same tree: fixed mtimes and owners, sorted
#                               names, gzip without name or time; with xz, xz-compressed instead
#                               (single-threaded, so reproducible; CRC32 check, the one the
#                               kernel's decompressor verifies; a 16 MiB dictionary, which the
#                               kernel allocates while unpacking, where -9 would ask 64 MiB)

kernel_find() {
    local pkg
    pkg=$(dpkg-query -W -f='${Depends}' linux-image-amd64 | grep -o 'linux-image-[^ ,]*' | head -n1)
    KVER=${pkg#linux-image-}
    KERNEL=/boot/vmlinuz-$KVER
    MODDIR=/lib/modules/$KVER
    [[ -r $KERNEL && -d $MODDIR ]] || { echo "kernel $KVER not installed (linux-image-amd64)" >&2; exit 1; }
}

busybox_check() {
    [[ -x /bin/busybox ]] || { echo "/bin/busybox missing (busybox-static)" >&2; exit 1; }
}

busybox_install() {
    local stage=$1 a
    busybox_check
    mkdir -p "$stage/bin"
    cp /bin/busybox "$stage/bin/busybox"
    for a in $(/bin/busybox --list); do
        [[ $a == busybox ]] || ln -sf busybox "$stage/bin/$a"
    done
}

kernel_modules() {
    local stage=$1 m ko rel
    shift
    mkdir -p "$stage/lib/modules/$KVER"
    for m in "$@"; do
        modprobe -S "$KVER" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}' || true
    done | LC_ALL=C sort -u | while read -r ko; do
        rel=${ko#"$MODDIR"/}
        mkdir -p "$stage/lib/modules/$KVER/$(dirname "$rel")"
        cp "$ko" "$stage/lib/modules/$KVER/$rel"
    done
    cp "$MODDIR"/modules.order "$MODDIR"/modules.builtin "$MODDIR"/modules.builtin.modinfo "$stage/lib/modules/$KVER/"
    depmod -b "$stage" "$KVER"
}

initramfs_pack() {
    local stage=$1 file=$2 compress=(gzip -9 -n)
    if [[ ${3:-} == xz ]]; then compress=(xz -T1 --check=crc32 "--lzma2=preset=9,dict=16MiB"); fi
    find "$stage" -exec touch -h -d @0 {} +
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet --reproducible | "${compress[@]}") > "$file.tmp"
    mv "$file.tmp" "$file"
}
