#!/usr/bin/env bash
# `scgi bench` straight at each backend's `hello` (no nginx): the floor
# (bench-minimal), scgi-blocking and scgi-tokio, over TCP and a Unix
# socket, ROUNDS times in turn. Prints one line per run: req/s, p50, p99,
# errors. Loopback only; every backend and bench run is bounded by
# `timeout`, and each backend is stopped right after its run.
#
# Usage: bash scgi-cli/bench/direct.sh
# Settings (environment): ROUNDS (2), DURATION (10s), CONNECTIONS (32),
# PORT (24101).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-24101}
target=${CARGO_TARGET_DIR:-target}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

build() { # package example|bin:NAME dest
    if [ "${2%%:*}" = bin ]; then
        timeout 900 cargo build --release --locked -q -p "$1"
        cp "$target/release/${2#bin:}" "$tmp/$3"
    else
        timeout 900 cargo build --release --locked -q -p "$1" --example "$2"
        cp "$target/release/examples/$2" "$tmp/$3"
    fi
}
build scgi-cli bin:scgi scgi
build bench-minimal bin:bench-minimal minimal
build scgi-blocking hello scgi-blocking
build scgi-tokio hello scgi-tokio

echo "round backend transport req/s p50_ms p99_ms errors non_2xx"
for round in $(seq "$ROUNDS"); do
    for backend in minimal scgi-blocking scgi-tokio; do
        for transport in tcp unix; do
            if [ "$transport" = tcp ]; then addr="127.0.0.1:$PORT"; else addr="unix:$tmp/$backend.sock"; fi
            # bench-minimal leaves its socket file behind and will not bind over it.
            rm -f "$tmp/$backend.sock"
            timeout 120 "$tmp/$backend" "$addr" >/dev/null 2>&1 &
            pid=$!
            sleep 0.5
            timeout 120 "$tmp/scgi" bench "$addr" -c "$CONNECTIONS" -z "$DURATION" --json >"$tmp/out.json" || true
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            python3 - "$round" "$backend" "$transport" "$tmp/out.json" <<'PY'
import json, sys
round_, backend, transport, path = sys.argv[1:]
v = json.load(open(path))
l = v["latency_ms"]
print(round_, backend, transport, "%.0f" % v["requests_per_s"], "%.2f" % l["p50"],
      "%.2f" % l["p99"], sum(v["errors"].values()), v["responses"] - v["ok"])
PY
        done
    done
done
