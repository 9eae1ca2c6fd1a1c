#!/usr/bin/env bash
# Workflow engine benchmark: 1, then N wipe workflows at once against stand-in agents that speak
# the real SSH protocol on loopback (examples/workflow_bench.rs), on SQLite and PostgreSQL.
# Each workflow: 7 steps (power-up skipped after one SSH probe: the agent runs; inventory; wipe
# with its history check; the agent's poweroff). Figures: wall time to all succeeded, throughput,
# engine overhead per step (end of a step to the start of the next), time per workflow.
# Usage: bash bench/workflows.sh [N=500]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-500}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ironbay/target}"
cargo build --release --locked --example workflow_bench >&2
source bench/lib.sh
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

run_backend() {
  local name=$1 url=$2 dir="$WORK/$1" port
  port=$(free_port)
  mkdir -p "$dir"
  IRONBAY_ADMIN_PASSWORD=bench-password-123 IRONBAY_LOG=warn \
    IRONBAY_RATE_LIMIT__API_PER_MINUTE=1000000000 IRONBAY_RATE_LIMIT__API_BURST=1000000000 \
    IRONBAY_RATE_LIMIT__ENROLL_PER_MINUTE=1000000000 IRONBAY_RATE_LIMIT__ENROLL_BURST=1000000000 \
    IRONBAY_WORKFLOWS__POLL_MS=100 \
    "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir" --database-url "$url" >"$dir/out" 2>"$dir/err" &
  PIDS+=($!)
  local base="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "$base/api/v1/health" >/dev/null && break; sleep 0.1; done
  for n in 1 "$N"; do
    # A fresh appliance per size: the N run must not count the first run's workflows.
    if [[ $n != 1 ]]; then
      kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
      rm -rf "$dir" && mkdir -p "$dir"
      if [[ $name == postgres ]]; then url=$(start_postgres_db "$n"); fi
      IRONBAY_ADMIN_PASSWORD=bench-password-123 IRONBAY_LOG=warn \
        IRONBAY_RATE_LIMIT__API_PER_MINUTE=1000000000 IRONBAY_RATE_LIMIT__API_BURST=1000000000 \
        IRONBAY_RATE_LIMIT__ENROLL_PER_MINUTE=1000000000 IRONBAY_RATE_LIMIT__ENROLL_BURST=1000000000 \
        IRONBAY_WORKFLOWS__POLL_MS=100 \
        "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir" --database-url "$url" >"$dir/out" 2>"$dir/err" &
      PIDS+=($!)
      for _ in $(seq 100); do curl -sf "$base/api/v1/health" >/dev/null && break; sleep 0.1; done
    fi
    echo -n "| $name "
    "$CARGO_TARGET_DIR/release/examples/workflow_bench" "$base" bench-password-123 "$n"
  done
}

start_postgres_db() {
  runuser -u postgres -- "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE ironbay_$1" >/dev/null
  echo "postgres://postgres@127.0.0.1:$PG_PORT/ironbay_$1"
}

echo "| store | workflows | wall s | workflows/s | steps/s | all accepted ms | step gap p50 ms | p99 ms | per workflow p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|---|"
[[ ${SKIP_SQLITE:-} ]] || run_backend sqlite "sqlite://$WORK/sqlite/ironbay.db"
# Not in a subshell: start_postgres sets PG_BIN/PG_PORT/PG_DATA, used later and by the cleanup.
start_postgres >"$WORK/pg_url"
run_backend postgres "$(cat "$WORK/pg_url")"
echo
echo "$(nproc) cores ($(lscpu | awk -F: '/Model name/ {gsub(/^ +/,"",$2); print $2}')), $(date -u +%F)"
