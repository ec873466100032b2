#!/usr/bin/env bash
# Memory per held connection on every runtime (issue 19): bench-backend serves
# hello on each runtime in turn over a Unix socket; bench/idle.py holds N
# connections open (half idle, half stalled mid-head, all within the head
# timeout), reads the backend's VmRSS before and after, and times a fresh
# request meanwhile. One JSON line per runtime. Loopback only; each backend
# is stopped (SIGTERM) right after its run.
#
# Usage: bash bench/idle.sh            Settings: N (10000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
target=${CARGO_TARGET_DIR:-target}
timeout 900 cargo build --release --locked -q -p bench-backend
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ulimit -n $((N + 4096))
for runtime in tokio async-std smol blocking; do
    sock="$tmp/$runtime.sock"
    timeout 300 "$target/release/bench-backend" "unix:$sock" "$runtime" 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    backend=$(pgrep -P "$pid")  # timeout's child: the backend itself
    printf '%s ' "$runtime"
    timeout 240 python3 bench/idle.py "$backend" "unix:$sock" "$N" || echo "failed"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
