#!/usr/bin/env bash
# Instructions per message through the core, counted by callgrind: what `cargo bench -p
# trapezoid-core` times, without the machine's noise (on a shared machine a time moves by a
# fifth or more between identical runs; an instruction count does not move at all).
#
#   bench/instructions.sh [N]
#
# Runs core/examples/instructions.rs under valgrind for each case at N and 2N messages
# (default 10,000), counting only inside Proxy::handle_input and Proxy::poll_output (not the
# test driver that writes the messages and the answers), and prints the difference divided
# by N: the cost of one more message, without start-up. A 180 or a 200 relayed is its case
# minus the INVITE case. Needs valgrind (installed here when missing, as root).
#
# A second table counts heap allocations per repetition of each case, under valgrind's
# DHAT: the blocks allocated with Proxy::handle_input or Proxy::poll_output on the stack
# (what the driver allocates for its messages is not), over N repetitions. (Callgrind's call counts do not
# serve: it records calls made outside the functions it collects in.)
set -euo pipefail
N=${1:-10000}
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y valgrind >/dev/null
    else
        echo "valgrind is needed: apt-get install valgrind" >&2
        exit 1
    fi
fi
cargo build --release --quiet --example instructions -p trapezoid-core
BIN=${CARGO_TARGET_DIR:-target}/release/examples/instructions
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
count() {
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" \
        '--toggle-collect=*Proxy::handle_input*' '--toggle-collect=*Proxy::poll_output*' \
        "$BIN" "$1" "$2" 2>&1 | sed -n 's/.*Collected : *//p'
}
# Blocks allocated under the element's two entry points, in tenths: DHAT's JSON lists the
# frames once ("ftbl", after the allocation points) and each point's frames by index.
allocations() {
    valgrind --tool=dhat --num-callers=64 --dhat-out-file="$OUT/dhat" "$BIN" "$1" "$2" \
        >/dev/null 2>&1
    awk -v n="$2" '
        NR == FNR {
            if ($0 ~ /^,"ftbl":/) in_table = 1
            else if (in_table && $0 ~ /^ [[,]"/) {
                if ($0 ~ /Proxy::(handle_input|poll_output)/) element[frame] = 1
                frame++
            }
            next
        }
        /"tbk":/ { blocks = $0; sub(/.*"tbk":/, "", blocks); sub(/[^0-9].*/, "", blocks) }
        /^ *,"fs":/ {
            list = $0; sub(/.*\[/, "", list); sub(/\].*/, "", list)
            count = split(list, frames, ",")
            for (i = 1; i <= count; i++) if (frames[i] in element) { total += blocks; break }
        }
        END { printf "%d\n", total * 10 / n + 0.5 }' "$OUT/dhat" "$OUT/dhat"
}
declare -A per allocs
for case in invite ringing answered register; do
    a=$(count "$case" "$N")
    b=$(count "$case" $((2 * N)))
    per[$case]=$(((b - a) / N))
    allocs[$case]=$(allocations "$case" "$N")
done
tenths() { printf '%d.%d' $(($1 / 10)) $(($1 % 10)); }
printf '%-40s %12s\n' "message" "instructions"
row() { printf '%-40s %12d\n' "$1" "$2"; }
row "INVITE forwarded, with its 100 Trying" "${per[invite]}"
row "180 relayed upstream" $((per[ringing] - per[invite]))
row "200 relayed upstream" $((per[answered] - per[invite]))
row "REGISTER, a new binding" "${per[register]}"
# Allocations per case, not per message: a message the element is done with gives its
# buffers to the next one parsed (core/src/message/spare.rs), so a 200 that ends its
# context makes the next INVITE cheaper, and a difference of cases would mislead.
echo
printf '%-40s %12s\n' "case (per repetition)" "allocations"
row() { printf '%-40s %12s\n' "$1" "$(tenths "$2")"; }
row "INVITE, 100 Trying (context stays)" "${allocs[invite]}"
row "INVITE, 100 Trying, 180 relayed" "${allocs[ringing]}"
row "INVITE, 100 Trying, 200 relayed (ends)" "${allocs[answered]}"
row "REGISTER, a new binding" "${allocs[register]}"
