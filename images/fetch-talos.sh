#!/usr/bin/env bash
# Mirrors the PXE artifacts of a Talos release into images/talos/<vVERSION>/ for the appliance to
# serve: vmlinuz-amd64, initramfs-amd64.xz and sha256sum.txt (the release's lines for those two
# files only), checked with `sha256sum -c`.
#
# Usage: bash images/fetch-talos.sh [VERSION] [--from DIR]
#   VERSION     1.13.9 or v1.13.9 (default v1.13.9)
#   --from DIR  an offline mirror: take the files from the local directory DIR, which must hold
#               vmlinuz-amd64, initramfs-amd64.xz and a sha256sum.txt listing both
#   without --from, download them (curl -fL, retried) with the release's sha256sum.txt from
#   https://github.com/siderolabs/talos/releases/download/<vVERSION>/ (TALOS_RELEASE_URL=<base>
#   replaces https://github.com/siderolabs/talos/releases/download, for a site's own mirror laid
#   out as <base>/<vVERSION>/<file>)
#
# IRONBAY_TALOS_DIR=<dir> mirrors into <dir>/<vVERSION>/ instead (an appliance whose
# boot.images_dir is elsewhere serves <images_dir>/talos/).
#
# Idempotent: when images/talos/<vVERSION>/ is there and verifies, it says so and exits 0. The
# files land in a temporary directory next to the target and move into place only once verified,
# so there is never a half-mirrored version directory; on a checksum mismatch they are deleted and
# the script fails. Exit status: 0 done (or already there), 1 failed, 2 usage.
# images/talos/ is git-ignored (.gitignore: /images/* except the scripts and images/lib/).
set -euo pipefail
umask 022
SELF=$(realpath "$0")
usage="usage: fetch-talos.sh [VERSION] [--from DIR]   (VERSION: 1.13.9 or v1.13.9, default v1.13.9)"
die() { echo "fetch-talos: $*" >&2; exit 1; }
VERSION=
FROM=
while [[ $# -gt 0 ]]; do
    case $1 in
        --from) [[ $# -ge 2 && -n $2 ]] || { echo "$usage" >&2; exit 2; }; FROM=$2; shift 2 ;;
        --from=*) FROM=${1#--from=}; shift ;;
        -h | --help) echo "$usage"; exit 0 ;;
        -*) echo "fetch-talos: unknown option $1" >&2; echo "$usage" >&2; exit 2 ;;
        *) [[ -z $VERSION ]] || { echo "$usage" >&2; exit 2; }; VERSION=$1; shift ;;
    esac
done
VERSION=${VERSION:-v1.13.9}
VERSION=v${VERSION#v}
[[ $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] ||
    { echo "fetch-talos: not a Talos version: ${VERSION#v}" >&2; echo "$usage" >&2; exit 2; }
if [[ -n $FROM ]]; then
    [[ -d $FROM ]] || die "--from $FROM: no such directory"
    FROM=$(realpath "$FROM")
fi
FILES=(vmlinuz-amd64 initramfs-amd64.xz)
BASE=${IRONBAY_TALOS_DIR:-$(dirname "$SELF")/talos}
TARGET=$BASE/$VERSION

# verify DIR: DIR holds both files and a sha256sum.txt with exactly their two lines, which match.
verify() {
    [[ -f $1/sha256sum.txt && -f $1/${FILES[0]} && -f $1/${FILES[1]} ]] || return 1
    [[ $(wc -l < "$1/sha256sum.txt") -eq 2 ]] || return 1
    (cd "$1" && sha256sum --quiet --strict -c sha256sum.txt > /dev/null 2>&1)
}

if [[ -d $TARGET ]]; then
    if verify "$TARGET"; then
        echo "Talos $VERSION already in $TARGET (sha256 verified)"
        exit 0
    fi
    echo "fetch-talos: $TARGET exists but does not verify: fetching it again" >&2
fi

mkdir -p "$BASE"
TMP=$(mktemp -d "$BASE/.$VERSION.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
chmod 0755 "$TMP"
START=$(date +%s.%N)
if [[ -n $FROM ]]; then
    [[ -f $FROM/sha256sum.txt ]] ||
        die "$FROM has no sha256sum.txt: cannot verify the files (copy the release's sha256sum.txt next to them)"
    for f in "${FILES[@]}"; do
        [[ -f $FROM/$f ]] || die "$FROM has no $f"
    done
    echo "fetch-talos: copying Talos $VERSION from $FROM"
    for f in sha256sum.txt "${FILES[@]}"; do
        cp "$FROM/$f" "$TMP/$f.part"
        mv "$TMP/$f.part" "$TMP/$f"
    done
else
    URL=${TALOS_RELEASE_URL:-https://github.com/siderolabs/talos/releases/download}/$VERSION
    progress=(-sS)
    [[ -t 2 ]] && progress=(--progress-bar)
    for f in sha256sum.txt "${FILES[@]}"; do
        echo "fetch-talos: downloading $URL/$f"
        curl -fL "${progress[@]}" --retry 5 --retry-delay 3 --retry-connrefused --connect-timeout 30 \
            -o "$TMP/$f.part" "$URL/$f" || die "download of $URL/$f failed"
        mv "$TMP/$f.part" "$TMP/$f"
    done
fi

# Only the two files' lines (the release lists every artifact), as "<sha256>  <name>": a "*"
# (binary mode) or a directory before the name is dropped.
mv "$TMP/sha256sum.txt" "$TMP/sha256sum.all"
awk -v a="${FILES[0]}" -v b="${FILES[1]}" '
    NF == 2 && length($1) == 64 && $1 ~ /^[0-9A-Fa-f]+$/ {
        n = $2; sub(/^\*/, "", n); sub(/^.*\//, "", n)
        if ((n == a || n == b) && !seen[n]++) print tolower($1) "  " n
    }' "$TMP/sha256sum.all" > "$TMP/sha256sum.txt"
rm "$TMP/sha256sum.all"
for f in "${FILES[@]}"; do
    grep -q "  $f\$" "$TMP/sha256sum.txt" || die "sha256sum.txt${FROM:+ in $FROM} has no line for $f"
done
if ! (cd "$TMP" && sha256sum --strict -c sha256sum.txt); then
    rm -f "$TMP"/*
    die "checksum mismatch for Talos $VERSION${FROM:+ from $FROM}: the files were deleted"
fi

# Into place: a directory that did not verify is replaced.
if [[ -e $TARGET ]]; then
    OLD=$(mktemp -d "$BASE/.$VERSION.old.XXXXXX")
    mv "$TARGET" "$OLD/"
    mv "$TMP" "$TARGET"
    rm -rf "$OLD"
else
    mv "$TMP" "$TARGET"
fi
END=$(date +%s.%N)
size() { numfmt --to=iec-i --suffix=B "$(stat -c %s "$TARGET/$1")"; }
awk -v s="$START" -v e="$END" -v m="Talos $VERSION in $TARGET: ${FILES[0]} $(size "${FILES[0]}"), ${FILES[1]} $(size "${FILES[1]}")" \
    'BEGIN { printf "%s (%.1fs)\n", m, e - s }'
