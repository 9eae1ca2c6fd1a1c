# shellcheck shell=bash
# Sourced (not run) by the scripts that put a workspace binary into a busybox initramfs:
# images/build-agent.sh (ironbay-agent) and tests/lab/build-talos-standin.sh (talos-standin).
# Run from the workspace root.
#
#   static_build PKG BIN [CRATE...]
#       cargo build --profile agent --locked -p PKG --target x86_64-unknown-linux-gnu, linked
#       statically (glibc, +crt-static); sets STATIC_BIN to the binary BIN's path and exits unless
#       ldd calls it static. CRATE...: the workspace crates the binary is built from (PKG and the
#       workspace crates it uses), rebuilt when the clone changes (below).
#
# RUSTFLAGS with an explicit --target apply to the target's crates only, so build scripts and
# proc-macros build as usual. Cargo's home and the target dir are remapped in Rust and C code alike
# (the workspace's own sources are passed to rustc as relative paths, so nothing names the clone:
# every clone shares the cache with the same flags), symbols are stripped and there is no build id:
# two builds of the same sources give the same binary. CARGO_TARGET_DIR defaults to
# ~/.cache/ironbay/target as in scripts/test.sh.

static_build() {
    local pkg=$1 bin=$2 ch td triple repo mark ldd c
    local -a clean=()
    shift 2
    for c in "$@"; do clean+=(-p "$c"); done
    ch=${CARGO_HOME:-$HOME/.cargo}
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ironbay/target}"
    td=$(mkdir -p "$CARGO_TARGET_DIR" && cd "$CARGO_TARGET_DIR" && pwd -P)
    triple=x86_64-unknown-linux-gnu
    export RUSTFLAGS="-C target-feature=+crt-static -C strip=symbols -C link-arg=-Wl,--build-id=none --remap-path-prefix=$ch=/cargo --remap-path-prefix=$td=/target"
    export CFLAGS_x86_64_unknown_linux_gnu="-ffile-prefix-map=$ch=/cargo -ffile-prefix-map=$td=/target"
    # Cargo decides a workspace crate is fresh by comparing its sources' mtimes with the last
    # build's, wherever that build's sources were: after another clone built the binary into this
    # shared target dir, this clone's older files would pass for built. So when the clone changes,
    # the workspace crates are rebuilt (their dependencies stay cached).
    repo=$(pwd -P)
    mark=$td/$triple/agent/.$bin-clone
    if [[ ${#clean[@]} -gt 0 && -f $mark && $(cat "$mark") != "$repo" ]]; then
        cargo clean --profile agent --target "$triple" "${clean[@]}"
    fi
    # Profile `agent` (Cargo.toml): release without LTO and with more codegen units, so a cold
    # build (which CI's lab tests pay) stays short.
    cargo build --profile agent --locked -p "$pkg" --target "$triple"
    echo "$repo" > "$mark"
    STATIC_BIN=$CARGO_TARGET_DIR/$triple/agent/$bin
    # ldd (libc-bin, always there) says "statically linked" (static-pie) or "not a dynamic
    # executable".
    ldd=$(ldd "$STATIC_BIN" 2>&1 || true)
    if [[ $ldd != *"statically linked"* && $ldd != *"not a dynamic executable"* ]]; then
        echo "$bin is not statically linked:" >&2
        echo "$ldd" >&2
        exit 1
    fi
}
