#!/usr/bin/env bash
# BMC power benchmark (issue: BMC driver): `ironbay bmc` against FreeIPMI's ipmipower, side by side
# on the same N simulated BMCs: N OpenIPMI ipmi_sim processes, one address each in one private
# namespace (ib<id>s, bridge ibbr0), whose chassis is a script that starts/kills a `sleep` per
# "machine". Both clients use IPMI 2.0 / RMCP+ with cipher suite 3 and a fresh session per host
# and call, all hosts at once. Rounds of: power status of all N, power on of all N, power off of
# all N; every answer is checked (N lines of on/off/ok, else the script fails). The BMCs are pinned
# to core 0, the clients to core 1. Run as root on a quiet machine (see `uptime`).
# Usage: bash bench/bmc_power.sh [N=50] [rounds=5]   (needs openipmi, freeipmi-tools: scripts/install-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-50}"
ROUNDS="${2:-5}"
source bench/lib.sh

ID=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-5)
NS="ib${ID}s"
PASSWORD=bench-bmc-pass
# Everything in the namespace (the BMCs and the machines they powered) goes with it.
cleanup_ns() {
  ip netns list | awk '{print $1}' | grep -qx "$NS" || return 0
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
}
trap 'cleanup_ns; cleanup' EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add ibbr0 type bridge
ip -n "$NS" addr add 10.215.0.1/16 dev ibbr0
ip -n "$NS" link set ibbr0 up

# chassis.sh DIR get|set ...: ipmi_sim's chassis_control program (see tests/support/bmc.rs).
cat >"$WORK/chassis.sh" <<'EOF'
#!/bin/sh
D=$1; op=$2; shift 2
# Alive and not a zombie (a killed machine is reaped by whoever inherited it, maybe late).
alive() { read -r st 2>/dev/null <"/proc/$1/stat" || return 1; st=${st##*) }; [ "${st%% *}" != Z ]; }
running() { [ -f "$D/pid" ] && alive "$(cat "$D/pid")"; }
case $op in
get) for p in "$@"; do case $p in
       power) running && echo "power:1" || echo "power:0" ;;
       boot) echo "boot:$(cat "$D/boot" 2>/dev/null || echo default)" ;;
       *) echo "Invalid parameter: $p"; exit 1 ;; esac; done ;;
set) while [ $# -gt 0 ]; do p=$1; v=$2; shift 2; case $p in
       power) if [ "$v" = 1 ]; then running || { setsid sleep 100000 </dev/null >/dev/null 2>&1 & echo $! > "$D/pid"; }
              else running && kill -9 "$(cat "$D/pid")"; rm -f "$D/pid"; fi ;;
       reset|shutdown) ;;
       boot) echo "$v" > "$D/boot" ;;
       identify) shift ;;
       *) echo "Invalid parameter: $p"; exit 1 ;; esac; done ;;
check) exit 1 ;;
esac
exit 0
EOF
chmod +x "$WORK/chassis.sh"
cat >"$WORK/bmc.emu" <<'EOF'
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
EOF

HOSTS=()
for i in $(seq 0 $((N - 1))); do
  addr="10.215.$((1 + i / 250)).$((1 + i % 250))"
  HOSTS+=("$addr")
  d="$WORK/bmc$i"
  mkdir -p "$d/state"
  cat >"$d/lan.conf" <<EOF
name "bench$i"
set_working_mc 0x20
  startlan 1
    addr $addr 623
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "$WORK/chassis.sh $d"
  user 1 false "" "" user 1 md5
  user 2 true "admin" "$PASSWORD" admin 10 md5
EOF
  ip -n "$NS" addr add "$addr/32" dev ibbr0
  # In a subshell: not a job of this shell, so the final kill is not reported.
  (ip netns exec "$NS" taskset -c 0 ipmi_sim -n -c "$d/lan.conf" -f "$WORK/bmc.emu" -s "$d/state" \
    </dev/null >"$d/log" 2>&1 &)
done
for _ in $(seq 200); do
  [[ $(ip netns exec "$NS" ss -Hlun 'sport = :623' | wc -l) -ge $N ]] && break
  sleep 0.05
done
[[ $(ip netns exec "$NS" ss -Hlun 'sport = :623' | wc -l) -ge $N ]] || { echo "not all $N BMCs listen" >&2; exit 1; }

IRONBAY_HOSTS=()
for h in "${HOSTS[@]}"; do IRONBAY_HOSTS+=(--host "$h"); done
IPMIPOWER_HOSTS=$(IFS=,; echo "${HOSTS[*]}")

# timed LABEL EXPECT CMD...: runs CMD in the namespace on core 1; checks N lines end in ": EXPECT";
# prints the wall time in ms.
timed() {
  local label=$1 expect=$2 out t0 t1 good
  shift 2
  t0=$(date +%s%N)
  out=$(ip netns exec "$NS" taskset -c 1 "$@" 2>&1) || true
  t1=$(date +%s%N)
  good=$(grep -c ": $expect\$" <<<"$out" || true)
  if [[ $good -ne $N ]]; then
    echo "$label: $good of $N answered '$expect':" >&2
    grep -v ": $expect\$" <<<"$out" | head -5 >&2
    exit 1
  fi
  echo $(((t1 - t0) / 1000000))
}

IRONBAY=(env IRONBAY_BMC_PASSWORD="$PASSWORD" "$BIN" bmc --username admin "${IRONBAY_HOSTS[@]}")
IPMIPOWER=(ipmipower -D LAN_2_0 -I 3 -W opensesspriv -u admin -p "$PASSWORD" -h "$IPMIPOWER_HOSTS")

declare -A T
# Warm-up, not timed: the first session of every BMC costs more (whoever goes first pays it).
timed "warm-up ironbay" off "${IRONBAY[@]}" status >/dev/null
timed "warm-up ipmipower" off "${IPMIPOWER[@]}" --stat >/dev/null
echo "load before: $(uptime)"
echo "# ironbay $(git rev-parse --short HEAD), $N ipmi_sim BMCs, $ROUNDS rounds, ms per round (all $N hosts)"
for r in $(seq "$ROUNDS"); do
  T[ib_status]+="$(timed "ironbay status" off "${IRONBAY[@]}" status) "
  T[ip_status]+="$(timed "ipmipower --stat" off "${IPMIPOWER[@]}" --stat) "
  T[ib_on]+="$(timed "ironbay on" ok "${IRONBAY[@]}" on) "
  T[ib_off]+="$(timed "ironbay off" ok "${IRONBAY[@]}" off) "
  T[ip_on]+="$(timed "ipmipower --on" ok "${IPMIPOWER[@]}" --on) "
  T[ip_off]+="$(timed "ipmipower --off" ok "${IPMIPOWER[@]}" --off) "
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf "%-8s %-22s %-22s\n" action "ironbay ms (median)" "ipmipower ms (median)"
for a in status on off; do
  printf "%-8s %-22s %-22s\n" "$a" "$(median "${T[ib_$a]}") [${T[ib_$a]% }]" "$(median "${T[ip_$a]}") [${T[ip_$a]% }]"
done
echo "load after: $(uptime)"
