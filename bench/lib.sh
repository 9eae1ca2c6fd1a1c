# Shared by the bench scripts: builds the release binary, starts ironbay and a private PostgreSQL
# on loopback, and cleans everything up on exit. Source it; it sets BIN and WORK.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ironbay/target}"
cargo build --release --locked --bin ironbay >&2
BIN="$CARGO_TARGET_DIR/release/ironbay"

WORK=$(mktemp -d /tmp/ironbay-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
PG_DATA=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  # Appliances started inside $(start_ironbay …) live in a subshell's PIDS: their pid files.
  for f in "$WORK"/*/ironbay.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
  if [[ -n "$PG_DATA" ]]; then runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

# p99 latency in ms from wrk --latency output on stdin.
p99_ms() {
  awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.2f", v}'
}

start_postgres() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PG_DATA="$WORK/pg"
  PG_PORT=$(free_port)
  mkdir -p "$PG_DATA" && chown postgres: "$PG_DATA"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust >/dev/null
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/log" -w \
    -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  runuser -u postgres -- "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE ironbay" >/dev/null
  echo "postgres://postgres@127.0.0.1:$PG_PORT/ironbay"
}

# start_ironbay NAME DATABASE_URL: starts the appliance (rate limits out of the way, admin password
# bench-password-123), waits until it answers, prints its base URL.
start_ironbay() {
  local name=$1 url=$2 dir="$WORK/$1" port
  port=$(free_port)
  mkdir -p "$dir"
  IRONBAY_ADMIN_PASSWORD=bench-password-123 IRONBAY_LOG=warn \
    IRONBAY_RATE_LIMIT__API_PER_MINUTE=1000000000 IRONBAY_RATE_LIMIT__API_BURST=1000000000 \
    IRONBAY_RATE_LIMIT__LOGIN_PER_MINUTE=1000000000 IRONBAY_RATE_LIMIT__LOGIN_BURST=1000000000 \
    "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir" --database-url "$url" >"$dir/out" 2>"$dir/err" &
  PIDS+=($!)
  echo $! >"$dir/ironbay.pid"
  local base="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "$base/api/v1/health" >/dev/null && break; sleep 0.1; done
  echo "$base"
}

# api_key BASE SCOPES_JSON: logs in as admin and prints a new API key with those scopes.
api_key() {
  local base=$1 scopes=$2 token
  token=$(curl -sf "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"bench-password-123"}' | json_field token)
  curl -sf "$base/api/v1/api-keys" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"name\":\"bench\",\"scopes\":$scopes}" | json_field key
}
