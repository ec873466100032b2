#!/usr/bin/env bash
# Instructions a backend spends per request, counted by callgrind (the
# count does not move with the machine's load): runs the backend under
# valgrind twice, serving N1 and then N2 requests of `scgi bench` over a
# Unix socket, and prints (I(N2) - I(N1)) / (N2 - N1), which cancels the
# start-up and shutdown cost. The backend must take its address as its
# first argument and stop on SIGTERM (every example does).
#
# Usage: bash bench/icount.sh BACKEND_BINARY [SCGI_BINARY]
#        ARGS="async-std" BENCH_ARGS="-d @body" bash bench/icount.sh ...
# e.g.   cargo build --release -p scgi-tokio --example hello -p scgi-cli
#        bash bench/icount.sh target/release/examples/hello target/release/scgi
# Settings (environment): N1 (1000), N2 (4000), CONNECTIONS (4), ARGS
# (more arguments for the backend, after its address), BENCH_ARGS (more
# options for `scgi bench`, e.g. a body).
set -euo pipefail
bin=$1
scgi=${2:-target/release/scgi}
N1=${N1:-1000}
N2=${N2:-4000}
CONNECTIONS=${CONNECTIONS:-4}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { # requests -> total instructions
    local sock="$tmp/backend.sock" out="$tmp/callgrind.out"
    rm -f "$sock" "$out"
    timeout 600 valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "unix:$sock" ${ARGS:-} >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 300); do [ -S "$sock" ] && break; sleep 0.1; done
    timeout 300 "$scgi" bench "unix:$sock" -c "$CONNECTIONS" -t 1 -n "$1" --no-progress ${BENCH_ARGS:-} >/dev/null
    kill -TERM "$pid"
    wait "$pid" || true
    awk '/^(summary|totals):/ { print $2; exit }' "$out"
}
a=$(run "$N1")
b=$(run "$N2")
echo "$(basename "$bin"): $(( (b - a) / (N2 - N1) )) instructions/request ($a at $N1, $b at $N2)"
