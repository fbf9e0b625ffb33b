#!/usr/bin/env bash
# Trapezoid (`serve`, release build) and Kamailio 5.6 (bench/kamailio.cfg) doing the same job
# on this machine, under the same SIPp load, one after the other, over UDP on 127.0.0.1:
# registrar with the location in memory, record-routing stateful proxy to the registered
# contacts, and digest authentication (qop=auth, MD5) of REGISTER and initial INVITEs.
#
#   bench/run.sh [--quick] [--rounds=N] [--keep]
#
# For each case (REGISTER; REGISTER with the bindings persisted in SQLite, Trapezoid's
# `--db` and Kamailio's usrloc db_mode 1; REGISTER with digest, 401 then 200; a call
# INVITE/100/180/200/ACK/BYE/200 through the proxy to a SIPp UAS registered as `callee`; the
# same call with a 407 on the INVITE) and each proxy:
#   - CPU µs per operation at a fixed rate, the same for both (user + system time of all the
#     proxy's processes and threads, from /proc), and SIPp's p50/p99 response time there;
#   - the highest rate with no failed operation: the fixed rate, then ×2 steps until one
#     fails (or a cap near SIPp's own ceiling), then bisections. A step passes when SIPp
#     exits 0, every operation succeeds, retransmissions are at most 1 % of the operations
#     and the step takes at most 10 % (+1.5 s) longer than planned (the rate was achieved).
# Kamailio also answers REGISTER the way Trapezoid does, from a transaction (t_newtran before
# save: the 200 goes out through tm and answers retransmissions, RFC 3261 §8.2.7), case
# `regtx`; Trapezoid's figures there are its plain REGISTER's. The two Kamailio variants
# (`regtx`, and `regdb`) are measured at the fixed rates only: no highest-rate search, which
# would take the run past 10 minutes.
# Then the memory per binding: PSS and RSS growth (/proc/PID/smaps_rollup, summed over the
# proxy's processes) after registering 100,000 and 1,000,000 distinct users at 20,000/s:
# Kamailio over UDP (it answers REGISTER statelessly, so only bindings remain); Trapezoid
# over TCP (its REGISTER transaction ends with the 200, so only bindings remain), also with
# --db (SQLite, 100,000 only), and over UDP (100,000 only), where every REGISTER's server
# transaction is also kept 32 s (Timer J) and the allocator keeps that memory for reuse.
# Then the memory per call/s: PSS and RSS growth while calls run at a fixed rate (1,000/s)
# through the proxy, sampled once the transactions of the first calls have ended (their
# lifetime plus a margin: Trapezoid 32 s, Timers L, M and J over UDP; Kamailio 5 s, its
# wt_timer), so that the population of live transactions is stable, divided by the rate.
#
# The proxy runs pinned to CPU 0 (Kamailio: children=1, so one SIP worker, with its timer
# processes on the same core; Trapezoid: its single-threaded runtime), every SIPp on CPU 1,
# all at nice -20 when run as root. Trapezoid logs at RUST_LOG=warn (Kamailio logs nothing
# per request either); TRAPEZOID_LOG=info measures it with its per-transaction log lines.
# Trapezoid runs with --max-transactions 10000000: with its default cap (100,000 live
# transactions, each kept 32 s after its final response over UDP) the steps would be
# refused with 503 once the transactions of earlier steps add up; that cap sustains about
# 3,000 REGISTER/s (1,500 with digest) or 1,000 calls/s whatever the CPU.
#
# --quick: 2 s steps, two ramp steps and no bisection, memory at 20,000 users only, and no
# memory per call/s (its 32 s wait alone would take the run past 2 minutes; CALL_MEM=1 adds
# it, at 200 calls/s). Under 2 minutes on a quiet machine; the full run under 10.
# --rounds=N: CPU per operation only, more robust: the fixed-rate steps alone (no highest-rate
# search, no memory), N rounds, each round every case on one proxy then the other, each in a
# fresh process; prints each round's figure and the medians. The figures of one fixed-rate
# step move between runs by 10 to 30 % on this machine, for both proxies. In the steady
# state (STEADY=1, the default here; see `step`) and at the first fixed rate only (HIGH=1
# adds the second): a round of the six cases takes about 6 minutes.
# STEADY=1 (default 0, but 1 with --rounds): each fixed-rate step first runs for the proxy's
# transaction lifetime plus 2 s and measures the seconds after (Trapezoid 34 s + 8 s).
# Without it the full run measures Trapezoid before any of its transactions has ended
# (Kamailio, whose transactions end after 5 s, partly after); with it the full run takes
# about 16 minutes.
# --keep: leave the work directory (SIPp statistics, logs) under /tmp.
# Also the CPU µs per operation at a second, higher fixed rate (32,000 REGISTER/s, 10,000
# with digest, 2,500 calls/s; HIGH=0 skips it, --quick does too).
# Environment: PROXIES="trapezoid kamailio", CASES="reg regtx regdb regauth call callauth"
# (regtx is Kamailio's only; regdb is compared with both Kamailio's SQLite and its in-memory
# REGISTER), MEM=0 to
# skip the memory part, RATE_REG / RATE_REGAUTH / RATE_CALL / RATE_CALLAUTH for the fixed
# rates (10000, 5000, 1000, 1000), RATE_REG_HIGH / RATE_REGAUTH_HIGH / RATE_CALL_HIGH /
# RATE_CALLAUTH_HIGH for the second ones (32000, 10000, 2500, 2500), USERS (2000),
# TRAPEZOID_MAX_TX, MEM_RATE (20000),
# CALL_MEM=0 to skip the memory per call/s, CALL_MEM_RATE (1000; 200 with --quick),
# BENCH_PORT (25700; the next 40 ports are used too), BENCH_DB_DIR (where the regdb case's
# SQLite files go; default a directory on /dev/shm).
# CASES= (empty) runs no case, only the memory part.
#
# Installs what it needs when run as root on Debian (sip-tester, kamailio and its SQLite
# module, sqlite3), else names what is missing.
#
# Prints one line per SIPp step as it goes and the tables at the end, ready for the README.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SCEN=$ROOT/tests/sipp

QUICK=0
KEEP=0
ROUNDS=0
for a in "$@"; do
    case $a in
        --quick) QUICK=1 ;;
        --keep) KEEP=1 ;;
        --rounds=*) ROUNDS=${a#--rounds=} ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $a (try --help)" >&2; exit 2 ;;
    esac
done


[[ $ROUNDS =~ ^[0-9]+$ ]] || { echo "--rounds takes a number" >&2; exit 2; }
PROXIES=${PROXIES:-trapezoid kamailio}
KAMAILIO_SQLITE=/usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so
missing() {
    local tool
    for tool in sipp taskset awk python3 $([[ $PROXIES == *kamailio* ]] && echo kamailio sqlite3); do
        command -v "$tool" > /dev/null || echo "$tool"
    done
    [[ $PROXIES != *kamailio* ]] || [ -e "$KAMAILIO_SQLITE" ] || echo "kamailio-sqlite-modules"
}
if [ -n "$(missing)" ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "installing sip-tester kamailio kamailio-sqlite-modules sqlite3..."
    apt-get install -y -qq sip-tester kamailio kamailio-sqlite-modules sqlite3 > /dev/null ||
        { apt-get update -qq && apt-get install -y -qq sip-tester kamailio kamailio-sqlite-modules sqlite3 > /dev/null; }
fi
if [ -n "$(missing)" ]; then
    echo "needs $(missing | tr '\n' ' ')(Debian: apt-get install -y sip-tester kamailio kamailio-sqlite-modules sqlite3)" >&2
    exit 2
fi

IP=127.0.0.1
PORT=${BENCH_PORT:-25700}
UAS_PORT=$((PORT + 10))
UAC_PORT=$((PORT + 20))
REG_PORT=$((PORT + 30))
CASES=${CASES-reg regtx regdb regauth call callauth}
MEM=${MEM:-1}
TRAPEZOID_LOG=${TRAPEZOID_LOG:-warn}
TRAPEZOID_MAX_TX=${TRAPEZOID_MAX_TX:-10000000}

if [ "$QUICK" = 1 ]; then
    FIXED_SECS=2 STEP_SECS=2 RAMP_MAX=2 BISECT=0 MEM_SIZES="20000" CALL_MEM=${CALL_MEM:-0}
    HIGH=${HIGH:-0} HIGH_SECS=2
    CALL_MEM_RATE=${CALL_MEM_RATE:-200}
else
    FIXED_SECS=8 STEP_SECS=4 RAMP_MAX=4 BISECT=3 MEM_SIZES="100000 1000000" HIGH_SECS=5
fi
CALL_MEM=${CALL_MEM:-1}
# --rounds: CPU per operation only, in the steady state, at the first fixed rate (HIGH=1 adds
# the second).
if [ "$ROUNDS" -gt 0 ]; then
    MEM=0 STEADY=${STEADY:-1} HIGH=${HIGH:-0}
fi
STEADY=${STEADY:-0}
CALL_MEM_RATE=${CALL_MEM_RATE:-1000}
# How long a call's transactions live after it ends: Trapezoid over UDP keeps them 64*T1 =
# 32 s (Timers L and M after the INVITE's 2xx, J after the BYE's 200); Kamailio 5 s (wt_timer
# in bench/kamailio.cfg). The call memory is sampled this long after the load starts plus a
# margin for the calls themselves and for the ends of transactions to be processed.
declare -A TX_LIFETIME=([trapezoid]=32 [kamailio]=5)
CALL_MEM_MARGIN=6
# Users with credentials, registered before the cases and cycled through by them. Kamailio's
# auth_db over db_text scans the whole subscriber table per request (no index), so its digest
# cost grows with this number; Trapezoid looks users up in a hash index.
USERS=${USERS:-2000}
# REGISTER with SQLite: 5,000/s, within what Kamailio's write-through sustains here (about
# 6,000/s), and 10,000/s as the second rate (its figures against Kamailio's in-memory
# REGISTER at the same rate: the row "Trapezoid's bindings in SQLite, Kamailio's in memory").
declare -A FIXED=([reg]=${RATE_REG:-10000} [regtx]=${RATE_REG:-10000} [regdb]=${RATE_REGDB:-5000} [regauth]=${RATE_REGAUTH:-5000}
    [call]=${RATE_CALL:-1000} [callauth]=${RATE_CALLAUTH:-1000})
# A second fixed rate, nearer the load a proxy is bought for (the issue's "REGISTER 32k/s,
# calls 2,500/s"), within what Kamailio sustains here (REGISTER + digest about 12,000/s):
# CPU per operation falls as load rises (fewer wake-ups per message), not by the same amount
# for both, so both rates are reported. HIGH=0 leaves it out.
declare -A FIXED_HIGH=([reg]=${RATE_REG_HIGH:-32000} [regtx]=${RATE_REG_HIGH:-32000} [regdb]=${RATE_REG:-10000}
    [regauth]=${RATE_REGAUTH_HIGH:-10000} [call]=${RATE_CALL_HIGH:-2500} [callauth]=${RATE_CALLAUTH_HIGH:-2500})
HIGH=${HIGH:-1}
# Above these one SIPp on one core of this machine is the bottleneck (Kamailio baseline).
declare -A CAP=([reg]=80000 [regtx]=80000 [regdb]=80000 [regauth]=40000 [call]=10000 [callauth]=8000)
declare -A LABEL=([reg]="REGISTER" [regtx]="REGISTER, Kamailio's answered from a transaction as Trapezoid's"
    [regdb]="REGISTER, bindings in SQLite (Trapezoid \`--db\`, Kamailio db_mode 1)"
    [regdbmem]="REGISTER, Trapezoid's bindings in SQLite, Kamailio's in memory"
    [regauth]="REGISTER + digest (401, 200)"
    [call]="call (INVITE…BYE, Record-Route)" [callauth]="call + digest (407 on INVITE)")
MEM_RATE=${MEM_RATE:-20000}

PIN_PROXY=(taskset -c 0)
PIN_SIPP=(taskset -c 1)
if [ "$(id -u)" = 0 ]; then
    PIN_PROXY=(nice -n -20 "${PIN_PROXY[@]}")
    PIN_SIPP=(nice -n -20 "${PIN_SIPP[@]}")
fi
HZ=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/trapezoid-bench.XXXXXX)
# The SQLite files of the regdb case: tmpfs where there is one (see run_cases).
# BENCH_DB_DIR puts them elsewhere (a directory on disk, to see the disk's cost).
if [ -n "${BENCH_DB_DIR:-}" ]; then DB_DIR=$(mktemp -d "$BENCH_DB_DIR/trapezoid-bench.XXXXXX")
elif [ -d /dev/shm ] && [ -w /dev/shm ]; then DB_DIR=$(mktemp -d /dev/shm/trapezoid-bench.XXXXXX)
else DB_DIR=$WORK; fi
PROXY_PID=
PROXY_KIND=
UAS_PID=
SIPP_PID=
cleanup() {
    [ -n "$SIPP_PID" ] && pkill -KILL -P "$SIPP_PID" 2> /dev/null
    [ -n "$UAS_PID" ] && kill -KILL "$UAS_PID" 2> /dev/null
    stop_proxy
    [ "$DB_DIR" = "$WORK" ] || rm -rf "$DB_DIR"
    if [ "$KEEP" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "$*" | tee -a "$WORK/steps.log"; }

echo "building the release binary..."
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/trapezoid
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 2; }

# ---- inputs -------------------------------------------------------------------------------

# users.csv: name;password for both proxies; callee.csv: the UAS's own registration.
awk -v n="$USERS" 'BEGIN { print "SEQUENTIAL"; for (i = 0; i < n; i++) print "u" i ";pw" i ";" }' \
    > "$WORK/users.csv"
printf 'SEQUENTIAL\ncallee;pwcallee;\n' > "$WORK/callee.csv"
# Trapezoid: the users in its element settings (YAML).
{
    echo "address: $IP:$PORT"
    echo "domains: [$IP]"
    echo "auth: { register: true, algorithms: [MD5] }"
    echo "proxy: { authenticate: true }"
    echo "users:"
    echo "  - { name: callee, password: pwcallee }"
    awk -v n="$USERS" 'BEGIN { for (i = 0; i < n; i++) print "  - { name: u" i ", password: pw" i " }" }'
} > "$WORK/auth.yaml"
# Kamailio: the same users in a db_text subscriber table (HA1 computed from the password).
mkdir -p "$WORK/db" "$WORK/krun"
printf 'table_name(str) table_version(int)\nsubscriber:7\n' > "$WORK/db/version"
{
    echo 'id(int,auto) username(str) domain(str) password(str) ha1(str,null) ha1b(str,null)'
    echo "1:callee:$IP:pwcallee::"
    awk -v n="$USERS" -v ip="$IP" 'BEGIN { for (i = 0; i < n; i++) print i + 2 ":u" i ":" ip ":pw" i "::" }'
} > "$WORK/db/subscriber"
sed "s/__PORT__/$PORT/; s#__DB__#$WORK/db#; s#__LOCATION_DB__#$DB_DIR/klocation.db#g" bench/kamailio.cfg > "$WORK/kamailio.cfg"
# Memory: distinct users, the first batch then the rest.
prev=0
for size in $MEM_SIZES; do
    awk -v a="$prev" -v b="$size" 'BEGIN { print "SEQUENTIAL"; for (i = a; i < b; i++) print "m" i ";" }' \
        > "$WORK/mem-$size.csv"
    prev=$size
done

# ---- processes ----------------------------------------------------------------------------

proxy_pids() { # the proxy's processes (Kamailio: the main one and its children)
    [ -n "$PROXY_PID" ] || return 0
    echo "$PROXY_PID"
    if [ "$PROXY_KIND" = kamailio ]; then pgrep -P "$PROXY_PID" || true; fi
}

proxy_ticks() { # utime + stime of the proxy's processes, all threads, in clock ticks
    local t=0 p
    for p in $(proxy_pids); do
        [ -r "/proc/$p/stat" ] || continue
        # Fields after the command name, which is in parentheses: utime is the 12th, stime 13th.
        t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
    done
    echo "$t"
}

proxy_mem() { # "PSS RSS" in kB summed over the proxy's processes
    local p
    for p in $(proxy_pids); do cat "/proc/$p/smaps_rollup" 2> /dev/null || true; done |
        awk '$1 == "Pss:" { pss += $2 } $1 == "Rss:" { rss += $2 } END { print pss + 0, rss + 0 }'
}

wait_ready() { # until the proxy answers an OPTIONS (any response)
    local i
    for i in $(seq 1 100); do
        kill -0 "$PROXY_PID" 2> /dev/null || { echo "$PROXY_KIND did not start:" >&2; tail -n 20 "$WORK/$PROXY_KIND.log" >&2; exit 1; }
        if python3 - "$IP" "$PORT" << 'EOF' 2> /dev/null; then return 0; fi
import socket, sys
ip, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ip, 0))
s.settimeout(0.2)
me = "%s:%d" % s.getsockname()
s.sendto(("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKready\r\n"
          "Max-Forwards: 70\r\nFrom: <sip:probe@%s>;tag=p\r\nTo: <sip:%s:%d>\r\n"
          "Call-ID: ready-%s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
          % (ip, port, me, ip, ip, port, me)).encode(), (ip, port))
s.recv(65535)
EOF
        sleep 0.1
    done
    echo "$PROXY_KIND does not answer on $IP:$PORT" >&2
    exit 1
}

start_trapezoid() { # extra serve flags...
    RUST_LOG=$TRAPEZOID_LOG "${PIN_PROXY[@]}" "$BIN" serve --listen "udp:$IP:$PORT" --no-dns \
        --seed 1 --max-transactions "$TRAPEZOID_MAX_TX" "$@" 2>> "$WORK/trapezoid.log" &
    PROXY_PID=$!
    PROXY_KIND=trapezoid
    wait_ready
}

start_kamailio() { # extra kamailio flags...
    rm -f "$WORK/krun/kamailio.pid"
    "${PIN_PROXY[@]}" kamailio -DD -E -m 4096 -M 64 -f "$WORK/kamailio.cfg" -Y "$WORK/krun" \
        -P "$WORK/krun/kamailio.pid" "$@" > /dev/null 2>> "$WORK/kamailio.log" &
    PROXY_PID=$!
    PROXY_KIND=kamailio
    wait_ready
}

stop_proxy() {
    [ -n "$PROXY_PID" ] || return 0
    local pids
    pids=$(proxy_pids)
    kill -KILL $pids 2> /dev/null || true
    wait "$PROXY_PID" 2> /dev/null || true
    PROXY_PID=
    sleep 0.5
}

start_uas() {
    local dir=$1
    (cd "$dir" && exec "${PIN_SIPP[@]}" sipp -sf "$SCEN/uas.xml" -i "$IP" -p "$UAS_PORT" -t u1 \
        -buff_size 4194304 -nostdin > uas.out 2>&1) &
    UAS_PID=$!
    sleep 0.3
}

stop_uas() {
    [ -n "$UAS_PID" ] || return 0
    kill -KILL "$UAS_PID" 2> /dev/null || true
    wait "$UAS_PID" 2> /dev/null || true
    UAS_PID=
}

# One SIPp client run in its own directory. Sets the globals R_* below. With `watch`, the run
# is stopped as soon as it has failed: a failed call, retransmissions over 1 % of `count`,
# or `max` seconds gone (the rate was not achieved); otherwise `max` only bounds it.
STEPNO=0
sipp_run() { # scenario rate count local-port limit transport max-seconds watch extra-args...
    local scenario=$1 rate=$2 count=$3 lport=$4 limit=$5 transport=$6 max=$7 watch=$8
    shift 8
    STEPNO=$((STEPNO + 1))
    R_DIR=$WORK/steps/$STEPNO
    mkdir -p "$R_DIR"
    local t0 t1 pid now
    t0=$(date +%s%N)
    R_RC=0 R_ABORT=
    # SIPp runs under a subshell of its own, which reports its end (SIPp sometimes aborts
    # when stopped) to /dev/null instead of this script's output.
    (
        cd "$R_DIR" || exit 1
        "${PIN_SIPP[@]}" sipp "$IP:$PORT" -sf "$SCEN/$scenario" "$@" -i "$IP" \
            -p "$lport" -t "$transport" -m "$count" -r "$rate" -rp 1000 -l "$limit" \
            -buff_size 4194304 -timeout "$((${max%.*} + 5))s" -nostdin -trace_stat -stf stat.csv \
            -fd 1 -trace_rtt -rtt_freq 100 -trace_err > sipp.out 2>&1
        exit $?
    ) 2> /dev/null &
    pid=$!
    SIPP_PID=$pid
    while kill -0 "$pid" 2> /dev/null; do
        sleep 0.2
        now=$(date +%s%N)
        if awk -v a="$t0" -v b="$now" -v m="$max" 'BEGIN { exit !((b - a) / 1e9 > m) }'; then
            R_ABORT="too slow"
        elif [ "$watch" = 1 ]; then
            R_ABORT=$(tail -n 1 "$R_DIR/stat.csv" 2> /dev/null | awk -F';' -v n="$count" -v h="$(head -n 1 "$R_DIR/stat.csv" 2> /dev/null)" '
                BEGIN { k = split(h, c, ";"); for (i = 1; i <= k; i++) col[c[i]] = i }
                (col["FailedCall(C)"] && $col["FailedCall(C)"] ~ /^[0-9]+$/) {
                    if ($col["FailedCall(C)"] > 0) print "failed calls"
                    else if ($col["Retransmissions(C)"] * 100 > n) print "retransmissions" }')
        fi
        if [ -n "$R_ABORT" ]; then
            pkill -TERM -P "$pid" 2> /dev/null || true
            sleep 0.5
            pkill -KILL -P "$pid" 2> /dev/null || true
            break
        fi
    done
    wait "$pid" 2> /dev/null || R_RC=$?
    SIPP_PID=
    t1=$(date +%s%N)
    R_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    # Cumulative counters from the last line of SIPp's statistics file.
    read -r R_OK R_FAIL R_RETR < <(awk -F';' '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $col["SuccessfulCall(C)"] ~ /^[0-9]+$/ { ok = $col["SuccessfulCall(C)"]; f = $col["FailedCall(C)"]; r = $col["Retransmissions(C)"] }
        END { print ok + 0, f + 0, r + 0 }' "$R_DIR/stat.csv" 2> /dev/null || echo "0 0 0")
    # Response times (ms, SIPp's millisecond clock): p50 and p99.
    read -r R_P50 R_P99 < <(cat "$R_DIR"/*_rtt.csv 2> /dev/null | awk -F';' '$3 ~ /^[0-9]+$/ { print $2 }' |
        sort -n | awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "- -"; exit }
            i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++; i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
            printf "%.0f %.0f\n", v[i50], v[i99] }')
}

udp_drops() { # "proxy-socket all": datagrams dropped for a full receive buffer, so far
    local port
    port=$(printf '%04X' "$PORT")
    echo "$(awk -v p="0100007F:$port" '$2 == p { d += $NF } END { print d + 0 }' /proc/net/udp) $(awk '$1 == "Udp:" && $6 ~ /^[0-9]+$/ { print $6 }' /proc/net/snmp)"
}

# One step of a case at a rate for some seconds. Sets S_PASS, S_US (CPU µs per operation),
# S_P50, S_P99 and logs a line.
#
# With STEADY=1 a fixed-rate step first runs its load for as long as the proxy keeps a
# transaction after its final response, plus 2 s (Trapezoid over UDP 32 s, Kamailio 5 s),
# and measures the CPU over the `seconds` after that: the population of live transactions
# is then stable, and every new transaction is paid for with one that ends. Without it, a
# step of a fresh process measures Trapezoid before its first transaction has ended.
step() { # case rate seconds [warm]
    local case=$1 rate=$2 secs=$3 warm=${4:-0}
    local count=$((rate * (secs + warm))) limit max scenario args=()
    case $case in
        reg | regtx | regdb) scenario=register.xml args=(-inf "$WORK/users.csv") limit=$rate ;;
        regauth) scenario=register_auth.xml args=(-inf "$WORK/users.csv") limit=$rate ;;
        call) scenario=uac.xml args=(-s callee) limit=$((rate * 3)) ;;
        callauth) scenario=uac_auth.xml args=(-s callee -inf "$WORK/users.csv") limit=$((rate * 3)) ;;
    esac
    [ "$limit" -ge 100 ] || limit=100
    # The rate counts as achieved when the step ends within 10 % + 1.5 s of plan.
    max=$(awk -v s=$((secs + warm)) 'BEGIN { print s * 1.1 + 1.5 }')
    local lport=$REG_PORT
    case $case in call*) lport=$UAC_PORT ;; esac
    case $case in call*) start_uas "$WORK" ;; esac
    local ticks0 ticks1 drops0 drops1 sampler= ops wall
    ticks0=$(proxy_ticks)
    drops0=$(udp_drops)
    if [ "$warm" -gt 0 ]; then
        rm -f "$WORK/ticks-a" "$WORK/ticks-b"
        (sleep "$warm"; proxy_ticks > "$WORK/ticks-a"; sleep "$secs"; proxy_ticks > "$WORK/ticks-b") &
        sampler=$!
    fi
    sipp_run "$scenario" "$rate" "$count" "$lport" "$limit" u1 "$max" 1 "${args[@]}"
    ticks1=$(proxy_ticks)
    drops1=$(udp_drops)
    stop_uas
    ops=$R_OK wall=$R_WALL
    if [ -n "$sampler" ]; then
        kill "$sampler" 2> /dev/null || true
        wait "$sampler" 2> /dev/null || true
        # The window after the warm-up; a step stopped before its end is measured whole.
        if [ -s "$WORK/ticks-a" ] && [ -s "$WORK/ticks-b" ]; then
            ticks0=$(cat "$WORK/ticks-a") ticks1=$(cat "$WORK/ticks-b") ops=$((rate * secs)) wall=$secs
        fi
    fi
    S_US=$(awk -v t=$((ticks1 - ticks0)) -v hz="$HZ" -v n="$ops" \
        'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-" }')
    # The proxy's share of its core over the step (the measured window).
    local pc pss rss
    pc=$(awk -v t=$((ticks1 - ticks0)) -v hz="$HZ" -v w="$wall" 'BEGIN { printf "%.0f", t / hz / w * 100 }')
    # UDP datagrams lost to full receive buffers: at the proxy's socket, and at any socket
    # (SIPp's included).
    local drops
    drops=$(echo "$drops0 $drops1" | awk '{ printf "%d/%d", $3 - $1, $4 - $2 }')
    read -r pss rss < <(proxy_mem)
    S_P50=$R_P50 S_P99=$R_P99
    S_PASS=0
    if [ -z "$R_ABORT" ] && [ "$R_RC" = 0 ] && [ "$R_OK" = "$count" ] && [ "$R_FAIL" = 0 ] &&
        [ $((R_RETR * 100)) -le "$count" ]; then
        S_PASS=1
    fi
    local verdict=pass
    [ $S_PASS = 1 ] || verdict="FAIL${R_ABORT:+ (stopped: $R_ABORT)}"
    log "$(printf '  %-9s %-8s %6s/s x %2ss%s: %s  ok %7s  failed %5s  retrans %6s  %6.2fs  %6s µs/op  p50/p99 %s/%s ms  proxy CPU %s%%  PSS %s MB  UDP drops proxy/all %s' \
        "$PROXY_KIND" "$case" "$rate" "$secs" "$([ "$warm" -gt 0 ] && echo " after ${warm}s")" "$verdict" \
        "$R_OK" "$R_FAIL" "$R_RETR" "$R_WALL" "$S_US" "$S_P50" "$S_P99" "$pc" $((pss / 1024)) "$drops")"
    # Let the proxy finish what a failed step left behind.
    if [ $S_PASS = 1 ]; then sleep 0.5; else sleep 1.5; fi
}

round2() { # to two significant digits
    awk -v x="$1" 'BEGIN { if (x < 100) { printf "%d", x; exit } m = 1; while (x >= 100) { x /= 10; m *= 10 } printf "%d", int(x + 0.5) * m }'
}

# The warm-up of a fixed-rate step: none, or with STEADY=1 the proxy's transaction lifetime
# plus 2 s.
warm() {
    if [ "$STEADY" = 1 ]; then echo $((TX_LIFETIME[$PROXY_KIND] + 2)); else echo 0; fi
}

# Results, by "proxy case".
declare -A US P50 P99 MAX MAXP FAIL US_HIGH US_ALL US_HIGH_ALL

measure_case() { # case
    local case=$1 key="$PROXY_KIND $1"
    local rate=${FIXED[$case]}
    measure_fixed "$case"
    # Highest rate without failures: the fixed rate counts as the first step.
    # (Its pass, not the second rate's: that step came after it.)
    local lo=0 hi=0 lop="-" n=0
    if [ "$FIXED_PASS" = 1 ]; then lo=$rate lop="${P50[$key]}/${P99[$key]}" rate=$((rate * 2)); else hi=$rate rate=$((rate / 2)); fi
    while [ $n -lt "$RAMP_MAX" ] && { [ $lo = 0 ] || [ $hi = 0 ]; }; do
        if [ "$rate" -gt "${CAP[$case]}" ]; then
            rate=${CAP[$case]}
            [ "$lo" -lt "$rate" ] || break
        fi
        [ "$rate" -ge 10 ] || break
        step "$case" "$rate" "$STEP_SECS"
        n=$((n + 1))
        if [ $S_PASS = 1 ]; then
            lo=$rate lop="$S_P50/$S_P99"
            [ "$rate" -lt "${CAP[$case]}" ] || break
            rate=$((rate * 2))
        else
            hi=$rate rate=$((rate / 2))
        fi
    done
    local b=0 mid
    while [ $b -lt "$BISECT" ] && [ "$lo" -gt 0 ] && [ "$hi" -gt 0 ]; do
        mid=$(round2 $(((lo + hi) / 2)))
        { [ "$mid" -gt "$lo" ] && [ "$mid" -lt "$hi" ]; } || break
        step "$case" "$mid" "$STEP_SECS"
        if [ $S_PASS = 1 ]; then lo=$mid lop="$S_P50/$S_P99"; else hi=$mid; fi
        b=$((b + 1))
    done
    MAX[$key]=$lo MAXP[$key]=$lop FAIL[$key]=$hi
}

# The steps at the fixed rates: all of a case in --rounds and for Kamailio's variants of
# Trapezoid's REGISTER, the start of `measure_case` otherwise. Sets FIXED_PASS, whether the
# first rate passed. Each figure is also added to the case's list, from which --rounds takes
# medians.
measure_fixed() { # case
    local case=$1 key="$PROXY_KIND $1"
    step "$case" "${FIXED[$case]}" "$FIXED_SECS" "$(warm)"
    FIXED_PASS=$S_PASS
    US[$key]=$S_US P50[$key]=$S_P50 P99[$key]=$S_P99
    # A fixed-rate step that failed: its figures are marked as from an overload.
    [ $S_PASS = 1 ] || US[$key]="$S_US ✗"
    US_ALL[$key]="${US_ALL[$key]:-} $S_US$([ $S_PASS = 1 ] || echo ✗)"
    # regdb's second rate is compared with the in-memory REGISTER's first: always measured.
    if [ "$HIGH" = 1 ] || [ "$case" = regdb ]; then
        step "$case" "${FIXED_HIGH[$case]}" "$HIGH_SECS" "$(warm)"
        US_HIGH[$key]=$S_US
        [ $S_PASS = 1 ] || US_HIGH[$key]="$S_US ✗"
        US_HIGH_ALL[$key]="${US_HIGH_ALL[$key]:-} $S_US$([ $S_PASS = 1 ] || echo ✗)"
    fi
}

register_callee() { # scenario
    sipp_run "$1" 10 1 "$UAS_PORT" 10 u1 10 0 -inf "$WORK/callee.csv"
    [ "$R_OK" = 1 ] || { echo "$PROXY_KIND: the callee's registration failed (see $R_DIR)" >&2; KEEP=1; exit 1; }
}

warm_up() { # scenario rate: register the whole population once
    sipp_run "$1" "$2" "$USERS" "$REG_PORT" "$2" u1 60 0 -inf "$WORK/users.csv"
    log "  $PROXY_KIND warm-up: $R_OK of $USERS users registered, $R_FAIL failed, ${R_WALL}s"
}

# A fresh proxy process set up for a case: the callee and the users registered. Returns 1
# for a case the proxy does not run. Each case gets a process of its own: Trapezoid keeps
# every UDP transaction 32 s after its final response (Timer J), so the transactions of one
# case's fastest steps would otherwise expire, at the CPU's expense, during the next case's
# measurement (hundreds of thousands after REGISTER at 80,000/s).
start_for() { # proxy case
    case $2 in
        reg | call)
            if [ "$1" = trapezoid ]; then start_trapezoid; else start_kamailio; fi
            register_callee register.xml
            warm_up register.xml 5000
            ;;
        regtx)
            [ "$1" = kamailio ] || return 1
            start_kamailio -A REGISTER_TRANSACTION
            register_callee register.xml
            warm_up register.xml 5000
            ;;
        # Bindings persisted, each written before the 200 leaves: Trapezoid's WAL with
        # synchronous=NORMAL and a commit per batch of requests; Kamailio's WAL with SQLite's
        # default synchronous (FULL: a sync of the log per commit) and a commit per statement
        # (db_sqlite has no setting for either). Both files are on tmpfs ($DB_DIR), where a
        # sync costs nothing: the rows compare the work of keeping the database, not the disk.
        regdb)
            rm -f "$DB_DIR"/location.db* "$DB_DIR"/klocation.db*
            if [ "$1" = trapezoid ]; then
                start_trapezoid --db "$DB_DIR/location.db"
            else
                sqlite3 "$DB_DIR/klocation.db" < /usr/share/kamailio/db_sqlite/standard-create.sql
                sqlite3 "$DB_DIR/klocation.db" < /usr/share/kamailio/db_sqlite/usrloc-create.sql
                start_kamailio -A WITH_DB
            fi
            register_callee register.xml
            warm_up register.xml 5000
            ;;
        regauth | callauth)
            if [ "$1" = trapezoid ]; then start_trapezoid --config "$WORK/auth.yaml"; else start_kamailio -A WITH_AUTH; fi
            register_callee register_auth.xml
            warm_up register_auth.xml 2500
            ;;
        *) return 1 ;;
    esac
}

run_cases() { # proxy
    local c
    for c in $CASES; do
        start_for "$1" "$c" || continue
        # Kamailio's variants of Trapezoid's REGISTER: the fixed rates only.
        if [ "$1" = kamailio ] && { [ "$c" = regtx ] || [ "$c" = regdb ]; }; then
            measure_fixed "$c"
        else
            measure_case "$c"
        fi
        stop_proxy
    done
}

# --rounds N: the fixed-rate steps only, N rounds, each round every case on one proxy then
# the other, so that a slow spell of the machine falls on both; the medians are reported.
run_rounds() {
    local r c p
    for r in $(seq 1 "$ROUNDS"); do
        log "round $r of $ROUNDS:"
        for c in $CASES; do
            for p in $PROXIES; do
                start_for "$p" "$c" || continue
                measure_fixed "$c"
                stop_proxy
            done
        done
    done
    local key
    for key in "${!US_ALL[@]}"; do US[$key]=$(median ${US_ALL[$key]}); done
    for key in "${!US_HIGH_ALL[@]}"; do US_HIGH[$key]=$(median ${US_HIGH_ALL[$key]}); done
}

median() { # values, "✗" appended to those of failed steps -> the median, "✗" if any failed
    local bad=
    case "$*" in *✗*) bad=" ✗" ;; esac
    printf '%s\n' "$@" | sed 's/✗//' | sort -g | awk -v bad="$bad" '$1 ~ /^[0-9]/ { v[++n] = $1 + 0 }
        END { if (n == 0) { printf "-"; exit } m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
              printf "%.1f%s", m, bad }'
}

# Memory per binding, by "label size": "PSS RSS" growth in bytes per binding.
declare -A MEMB
measure_memory() { # label transport sizes...
    local label=$1 transport=$2 base prev=0 size pss rss okn=0
    shift 2
    sleep 0.5
    read -r pss rss < <(proxy_mem)
    base="$pss $rss"
    log "  $label: idle PSS ${pss} kB, RSS ${rss} kB"
    for size in "$@"; do
        local n=$((size - prev)) ticks0 ticks1 us
        ticks0=$(proxy_ticks)
        sipp_run register.xml "$MEM_RATE" "$n" "$REG_PORT" "$MEM_RATE" "$transport" \
            $((n / MEM_RATE * 4 + 30)) 0 -inf "$WORK/mem-$size.csv"
        ticks1=$(proxy_ticks)
        us=$(awk -v t=$((ticks1 - ticks0)) -v hz="$HZ" -v n="$R_OK" \
            'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-" }')
        sleep 1
        read -r pss rss < <(proxy_mem)
        local ok=$R_OK
        [ "$R_FAIL" = 0 ] && [ "$R_OK" = "$n" ] || ok="$R_OK (of $n; $R_FAIL failed${R_ABORT:+, stopped: $R_ABORT})"
        # Per registration that succeeded (a failed one may or may not have left a binding).
        okn=$((okn + R_OK))
        MEMB[$label $size]=$(echo "$base $pss $rss" | awk -v n="$okn" '{ if (n > 0) printf "%.0f %.0f", ($3 - $1) * 1024 / n, ($4 - $2) * 1024 / n }')
        [ "$okn" = "$size" ] || MEMB[$label $size]="${MEMB[$label $size]} ✗"
        log "  $label: +$ok registrations in ${R_WALL}s, $us µs CPU each, PSS ${pss} kB, RSS ${rss} kB: $(echo "${MEMB[$label $size]}" | awk '{ print $1 " / " $2 }') B per binding (PSS / RSS)"
        prev=$size
    done
}

# Memory per call/s, by proxy: "PSS RSS" growth in kB per call/s of load.
declare -A MEMC
measure_calls() { # (a proxy running, the callee registered)
    local secs=$((TX_LIFETIME[$PROXY_KIND] + CALL_MEM_MARGIN)) pss0 rss0 pss rss
    start_uas "$WORK"
    sleep 0.5
    read -r pss0 rss0 < <(proxy_mem)
    # Sampled while the calls still run: the calls of the last lifetime are all live, and
    # those before them have ended and given their memory back.
    (sleep "$secs"; proxy_mem > "$WORK/call-mem") &
    local sampler=$!
    sipp_run uac.xml "$CALL_MEM_RATE" $((CALL_MEM_RATE * (secs + 2))) "$UAC_PORT" \
        $((CALL_MEM_RATE * 3)) u1 $((secs + 20)) 0 -s callee
    wait "$sampler" 2> /dev/null || true
    stop_uas
    read -r pss rss < "$WORK/call-mem"
    MEMC[$PROXY_KIND]=$(awk -v a="$pss0" -v b="$rss0" -v c="$pss" -v d="$rss" -v r="$CALL_MEM_RATE" \
        'BEGIN { printf "%.1f %.1f", (c - a) / r, (d - b) / r }')
    local n=$((CALL_MEM_RATE * (secs + 2)))
    [ "$R_FAIL" = 0 ] && [ "$R_OK" = "$n" ] || MEMC[$PROXY_KIND]="${MEMC[$PROXY_KIND]} ✗"
    log "  $PROXY_KIND calls: $R_OK of $n at $CALL_MEM_RATE/s ($R_FAIL failed, $R_RETR retransmissions), PSS ${pss0} → ${pss} kB after ${secs}s: $(echo "${MEMC[$PROXY_KIND]}" | awk '{ print $1 " / " $2 }') kB per call/s (PSS / RSS)"
}

# ---- the run ------------------------------------------------------------------------------

START=$SECONDS
log "bench/run.sh$([ $QUICK = 1 ] && echo ' --quick'): $(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); proxy on CPU 0, SIPp on CPU 1"
log "  $USERS users; fixed-rate steps ${FIXED_SECS}s, search steps ${STEP_SECS}s; Trapezoid RUST_LOG=$TRAPEZOID_LOG --max-transactions $TRAPEZOID_MAX_TX"
if [ "$ROUNDS" -gt 0 ]; then
    run_rounds
else
    for p in $PROXIES; do
        log "$p:"
        run_cases "$p"
    done
fi
FIRST=${MEM_SIZES%% *}
if [ "$MEM" = 1 ]; then
    log "memory (distinct users at $MEM_RATE REGISTER/s):"
    for p in $PROXIES; do
        if [ "$p" = trapezoid ]; then
            # Over TCP a REGISTER's transaction ends with its 200 (Timer J = 0): what grows
            # is the bindings. Over UDP each one is also kept 32 s (Timer J = 64*T1).
            start_trapezoid --listen "tcp:$IP:$PORT"
            measure_memory trapezoid t1 $MEM_SIZES
            stop_proxy
            rm -f "$WORK"/location.db*
            start_trapezoid --listen "tcp:$IP:$PORT" --db "$WORK/location.db"
            measure_memory trapezoid-db t1 "$FIRST"
            log "  trapezoid-db: SQLite file $(($(stat -c %s "$WORK/location.db") / 1024)) kB"
            stop_proxy
            start_trapezoid
            measure_memory trapezoid-udp u1 "$FIRST"
            stop_proxy
        else
            start_kamailio
            measure_memory kamailio u1 $MEM_SIZES
            stop_proxy
        fi
        [ "$CALL_MEM" = 1 ] || continue
        # A fresh proxy for the calls: only the callee's binding.
        log "memory per call/s ($p, calls at $CALL_MEM_RATE/s):"
        if [ "$p" = trapezoid ]; then start_trapezoid; else start_kamailio; fi
        register_callee register.xml
        measure_calls
        stop_proxy
    done
fi
ELAPSED=$((SECONDS - START))

# ---- tables -------------------------------------------------------------------------------

ratio() { # a b -> a/b or blank
    awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "" }'
}
val() { if [ -n "${1:-}" ]; then echo "$1"; else echo "-"; fi; }
maxrate() { # key: highest rate passed, and the lowest failed ("≥" when none failed)
    local m=${MAX[$1]:-} f=${FAIL[$1]:-0}
    if [ -z "$m" ]; then echo "-"
    elif [ "$m" = 0 ]; then echo "< $f"
    elif [ "$f" = 0 ]; then echo "≥ $m"
    else echo "$m (✗ $f)"; fi
}
mem() { # "PSS RSS" -> "PSS / RSS"
    if [ -n "${1:-}" ]; then echo "${1/ / \/ }"; else echo "-"; fi
}

rows() { # "label rate trapezoid-case kamailio-case" per row of the first table
    local c
    for c in $CASES; do
        case $c in
            regtx) echo "regtx ${FIXED[reg]} reg regtx" ;;
            regdb) echo "regdb ${FIXED[regdb]} regdb regdb"; echo "regdbmem ${FIXED[reg]} regdb reg" ;;
            *) echo "$c ${FIXED[$c]} $c $c" ;;
        esac
    done
}

# The table of the second fixed rates, when measured: `runs` shows every round's figure and
# the median, `single` the one figure.
high_table() { # runs|single trapezoid-heading kamailio-heading ratio-heading
    [ "$HIGH" = 1 ] || return 0
    local form=$1
    echo
    echo "| case | higher rate | $2 | $3 | $4 |"
    echo "|---|---|---|---|---|"
    rows | while read -r l rate tc kc; do
        [ "$l" != regdbmem ] || continue
        t="trapezoid $tc" k="kamailio $kc"
        printf '| %s | %s/s | %s | %s | %s |\n' "${LABEL[$l]}" "${FIXED_HIGH[$tc]}" \
            "$(cell "$form" "${US_HIGH[$t]:-}" "${US_HIGH_ALL[$t]:-}")" \
            "$(cell "$form" "${US_HIGH[$k]:-}" "${US_HIGH_ALL[$k]:-}")" \
            "$(ratio "${US_HIGH[$t]:-}" "${US_HIGH[$k]:-}")"
    done
}
cell() { # runs|single value all-values
    if [ "$1" = runs ]; then runs "$2" "$3"; else val "$2"; fi
}
runs() { # median, every round's figure -> "median (round 1, round 2, ...)"
    local v=$1 all=$2
    [ -n "$all" ] || { echo "-"; return; }
    echo "$v ($(echo $all | sed 's/ /, /g'))"
}

echo
echo "Results of bench/run.sh$([ $QUICK = 1 ] && echo ' --quick')$([ "$ROUNDS" -gt 0 ] && echo " --rounds=$ROUNDS") on $(date -u +%F) (${ELAPSED}s):"
echo
if [ "$ROUNDS" -gt 0 ]; then
    echo "| case | rate | Trapezoid µs/op: median (each round) | Kamailio µs/op: median (each round) | ratio of medians |"
    echo "|---|---|---|---|---|"
    rows | while read -r l rate tc kc; do
        t="trapezoid $tc" k="kamailio $kc"
        tus=${US[$t]:-} tall=${US_ALL[$t]:-}
        if [ "$l" = regdbmem ]; then tus=${US_HIGH[$t]:-} tall=${US_HIGH_ALL[$t]:-}; fi
        printf '| %s | %s/s | %s | %s | %s |\n' "${LABEL[$l]}" "$rate" "$(runs "$tus" "$tall")" \
            "$(runs "${US[$k]:-}" "${US_ALL[$k]:-}")" "$(ratio "$tus" "${US[$k]:-}")"
    done
    high_table runs "Trapezoid µs/op: median (each round)" "Kamailio µs/op: median (each round)" "ratio of medians"
    echo
    echo "µs/op: CPU time (user + system) of all the proxy's processes per registration or per call"
    echo "at the same fixed rate for both, in each of $ROUNDS rounds (✗: a step failed: overload"
    echo "figures). Each round ran every case on one proxy then the other, in a fresh process."
    exit 0
fi
echo "| case | rate | Trapezoid µs/op | Kamailio µs/op | ratio | p50/p99 ms T / K | max rate T | max rate K | ratio | p50/p99 ms at max T / K |"
echo "|---|---|---|---|---|---|---|---|---|---|"
rows | while read -r l rate tc kc; do
    t="trapezoid $tc" k="kamailio $kc"
    tus=${US[$t]:-}
    # Trapezoid with SQLite against Kamailio in memory: at the in-memory REGISTER's rate.
    [ "$l" = regdbmem ] && tus=${US_HIGH[$t]:-}
    printf '| %s | %s/s | %s | %s | %s | %s / %s | %s | %s | %s | %s / %s |\n' "${LABEL[$l]}" "$rate" \
        "$(val "$tus")" "$(val "${US[$k]:-}")" "$(ratio "$tus" "${US[$k]:-}")" \
        "$(val "${P50[$t]:-}")/$(val "${P99[$t]:-}")" "$(val "${P50[$k]:-}")/$(val "${P99[$k]:-}")" \
        "$(maxrate "$t")" "$(maxrate "$k")" "$(ratio "${MAX[$t]:-}" "${MAX[$k]:-}")" \
        "$(val "${MAXP[$t]:-}")" "$(val "${MAXP[$k]:-}")"
done
high_table single "Trapezoid µs/op" "Kamailio µs/op" "ratio"
if [ "$MEM" = 1 ]; then
    echo
    echo "| bindings | Trapezoid B/binding, PSS / RSS | Trapezoid --db | Trapezoid over UDP | Kamailio | ratio (PSS) |"
    echo "|---|---|---|---|---|---|"
    for size in $MEM_SIZES; do
        t=${MEMB[trapezoid $size]:-} k=${MEMB[kamailio $size]:-}
        printf '| %s | %s | %s | %s | %s | %s |\n' "$size" "$(mem "$t")" "$(mem "${MEMB[trapezoid-db $size]:-}")" \
            "$(mem "${MEMB[trapezoid-udp $size]:-}")" "$(mem "$k")" "$(ratio "${t%% *}" "${k%% *}")"
    done
fi
if [ "$MEM" = 1 ] && [ "$CALL_MEM" = 1 ]; then
    echo
    echo "| calls | Trapezoid kB per call/s, PSS / RSS | Kamailio | ratio (PSS) |"
    echo "|---|---|---|---|"
    t=${MEMC[trapezoid]:-} k=${MEMC[kamailio]:-}
    printf '| %s/s | %s | %s | %s |\n' "$CALL_MEM_RATE" "$(mem "$t")" "$(mem "$k")" "$(ratio "${t%% *}" "${k%% *}")"
fi
cat << EOF

µs/op: CPU time (user + system) of all the proxy's processes per registration or per call,
at the same fixed rate for both. max rate: highest rate passed (no failed operation,
retransmissions ≤ 1 %, rate achieved), ✗ the lowest that failed, ≥ when no step failed (the
cap near SIPp's own ceiling, or the last step of --quick). µs/op with ✗: the fixed rate
failed (overload figures). p50/p99: SIPp's response times (first REGISTER to 200; first
INVITE to 200 for calls), on its millisecond clock. Trapezoid ran with --max-transactions
$TRAPEZOID_MAX_TX (the default, 100000, sustains about 3,000 REGISTER/s or 1,000 calls/s).
Memory: PSS / RSS growth (all processes) per distinct user registered at $MEM_RATE/s (✗: some
registrations failed; per successful one).
Trapezoid over TCP (its REGISTER transactions end with the 200), also with --db (SQLite);
over UDP it also keeps each REGISTER's transaction 32 s (Timer J), and the allocator keeps
that memory for reuse. Kamailio over UDP (REGISTER answered statelessly). REGISTER rows:
Kamailio answers statelessly unless the row says it keeps a transaction (t_newtran before
save, its transactions kept 5 s); with SQLite, Kamailio writes each binding through (usrloc
db_mode 1, a commit per statement, synchronous FULL), Trapezoid commits once per batch
(synchronous NORMAL), both files on tmpfs; Trapezoid's SQLite row against Kamailio in
memory is at the in-memory row's rate. Memory per call/s:
PSS / RSS growth while calls run at $CALL_MEM_RATE/s over UDP, once the transactions of the
first calls have ended (Trapezoid keeps them 32 s, Kamailio 5 s), divided by the rate.
Digest: $USERS
users; Kamailio's auth_db over db_text scans them all per request.
EOF
