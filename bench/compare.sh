#!/usr/bin/env bash
# Trapezoid and Kamailio side by side on this machine: the same SIPp REGISTER load at the
# same fixed rate against each, one after the other, and the proxy's CPU time per
# registration (user + system, from /proc, all of the proxy's processes). Loopback only.
#
#   bench/compare.sh [RATE] [SECONDS]      (default 2000/s for 10 s; needs sipp, kamailio)
#
# Prints one line per proxy and case: rate, registrations, failures, CPU µs per registration.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-2000}
SECS=${2:-10}
N=$((RATE * SECS))
PORT=25700
WORK=$(mktemp -d /tmp/trapezoid-bench.XXXXXX)
trap 'kill -KILL -- -$KPID 2>/dev/null || true; kill -KILL $TPID 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet
HZ=$(getconf CLK_TCK)

# Users: name;password, for both proxies.
{ echo SEQUENTIAL; for i in $(seq 0 $((N - 1))); do echo "u$i;pw$i;"; done; } > "$WORK/users.csv"
mkdir -p "$WORK/db"
printf 'table_name(str) table_version(int)\nsubscriber:7\n' > "$WORK/db/version"
{ echo 'id(int,auto) username(str) domain(str) password(str) ha1(str,null) ha1b(str,null)'
  for i in $(seq 0 $((N - 1))); do echo "$((i + 1)):u$i:127.0.0.1:pw$i::"; done; } > "$WORK/db/subscriber"
{ echo "address: 127.0.0.1:$PORT"; echo "domains: [127.0.0.1]"
  echo "auth: { register: true, algorithms: [MD5] }"; echo "users:"
  for i in $(seq 0 $((N - 1))); do echo "  - { name: u$i, password: pw$i }"; done; } > "$WORK/auth.yaml"

cpu_ticks() { # total utime+stime of the given pids
    local t=0
    for p in "$@"; do
        [ -r /proc/$p/stat ] || continue
        t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat)))
    done
    echo $t
}

load() { # scenario -> "ok failed"
    (cd "$WORK" && sipp 127.0.0.1:$PORT -sf "$OLDPWD/tests/sipp/$1" -inf users.csv -i 127.0.0.1 \
        -p $((PORT + 1)) -t u1 -m $N -r $RATE -l $((RATE * 2)) -buff_size 4194304 \
        -timeout $((SECS + 30))s -nostdin -trace_stat -stf stat.csv > /dev/null 2>&1) || true
    local last; last=$(tail -n 1 "$WORK/stat.csv")
    # SuccessfulCall(C) and FailedCall(C) columns of SIPp's statistics file.
    local head; head=$(head -n 1 "$WORK/stat.csv")
    local ok_col fail_col
    ok_col=$(echo "$head" | tr ';' '\n' | grep -n '^SuccessfulCall(C)$' | cut -d: -f1)
    fail_col=$(echo "$head" | tr ';' '\n' | grep -n '^FailedCall(C)$' | cut -d: -f1)
    echo "$(echo "$last" | cut -d';' -f"$ok_col") $(echo "$last" | cut -d';' -f"$fail_col")"
    rm -f "$WORK/stat.csv"
}

report() { # proxy case ticks ok failed
    local us; us=$(awk -v t="$3" -v hz="$HZ" -v n="$4" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "n/a" }')
    printf '%-10s %-16s %6s/s  %7s ok  %5s failed  %8s µs CPU per registration\n' "$1" "$2" "$RATE" "$4" "$5" "$us"
}

run_trapezoid() { # case scenario extra-args...
    local case=$1 scenario=$2; shift 2
    target/release/trapezoid serve --listen udp:127.0.0.1:$PORT --no-dns --seed 1 "$@" 2> "$WORK/t.log" &
    TPID=$!
    sleep 1
    local before; before=$(cpu_ticks $TPID)
    read -r ok failed < <(load "$scenario")
    local after; after=$(cpu_ticks $TPID)
    report trapezoid "$case" $((after - before)) "$ok" "$failed"
    kill -KILL $TPID; wait $TPID 2>/dev/null || true
}

run_kamailio() { # case scenario extra-args...
    local case=$1 scenario=$2; shift 2
    sed "s/__PORT__/$PORT/; s#__DB__#$WORK/db#" bench/kamailio.cfg > "$WORK/k.cfg"
    setsid kamailio -DD -E -m 1024 -M 64 -f "$WORK/k.cfg" -Y "$WORK" -P "$WORK/k.pid" "$@" > /dev/null 2> "$WORK/k.log" &
    KPID=$!
    sleep 2
    local pids; pids=$(pgrep -g $KPID | tr '\n' ' ')
    local before; before=$(cpu_ticks $pids)
    read -r ok failed < <(load "$scenario")
    local after; after=$(cpu_ticks $pids)
    report kamailio "$case" $((after - before)) "$ok" "$failed"
    kill -KILL -- -$KPID; wait $KPID 2>/dev/null || true
    sleep 1
}

run_trapezoid "register" register.xml
run_kamailio "register" register.xml
run_trapezoid "register+db" register.xml --db "$WORK/location.db"
run_trapezoid "register+auth" register_auth.xml --config "$WORK/auth.yaml"
run_kamailio "register+auth" register_auth.xml -A WITH_AUTH
