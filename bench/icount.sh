#!/usr/bin/env bash
# Instructions a backend spends per request, counted by callgrind (the
# count does not move with the machine's load): runs the backend under
# valgrind twice, serving N1 and then N2 requests of `scgi bench` over a
# Unix socket, and prints (I(N2) - I(N1)) / (N2 - N1), which cancels the
# start-up and shutdown cost. The backend must take its address as its
# first argument and stop on SIGTERM (every example does). The work is
# bench/icount_split.py's with one backend (given two, it also says where
# the instructions go).
#
# Usage: bash bench/icount.sh BACKEND_BINARY [SCGI_BINARY]
#        ARGS="async-std" BENCH_ARGS="-d @body" bash bench/icount.sh ...
# e.g.   cargo build --release -p scgi-tokio --example hello -p scgi-cli
#        bash bench/icount.sh target/release/examples/hello target/release/scgi
# Settings (environment): N1 (1000), N2 (4000), CONNECTIONS (4), ARGS
# (more arguments for the backend, after its address), BENCH_ARGS (more
# options for `scgi bench`, e.g. a body).
set -euo pipefail
[ "$#" -ge 1 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
bin=$1
SCGI=${2:-target/release/scgi} exec python3 "$(dirname "$0")/icount_split.py" \
    "$(basename "$bin")=$bin {} ${ARGS:-}"
