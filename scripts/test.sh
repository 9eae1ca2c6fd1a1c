#!/usr/bin/env bash
# The whole test suite, exactly what CI runs: system packages, formatting, lints, every test
# (unit and integration, on SQLite and on a PostgreSQL the harness starts itself).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# A target dir outside the clone survives between runs (a cache only: the suite passes without it).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ironbay/target}"

cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace --all-targets
