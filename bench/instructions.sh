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
declare -A per
for case in invite ringing answered register; do
    a=$(count "$case" "$N")
    b=$(count "$case" $((2 * N)))
    per[$case]=$(((b - a) / N))
done
printf '%-40s %8s\n' "message" "instructions"
printf '%-40s %8d\n' "INVITE forwarded, with its 100 Trying" "${per[invite]}"
printf '%-40s %8d\n' "180 relayed upstream" $((per[ringing] - per[invite]))
printf '%-40s %8d\n' "200 relayed upstream" $((per[answered] - per[invite]))
printf '%-40s %8d\n' "REGISTER, a new binding" "${per[register]}"
