#!/usr/bin/env bash
# User-space CPU time a backend spends per request, by sampling: runs each
# backend under `perf record -e cpu-clock:u` (10 000 samples a second of
# its user time, a software event, so it works where hardware counters are
# not supported), loads it with `scgi bench` over a Unix socket for a few
# seconds, and prints samples x 100 us / requests. The backends take turns,
# ROUNDS times, and the medians and ranges are printed last. Compares two
# builds (or a backend and its floor) where callgrind's instruction counts
# mislead: valgrind counts each byte `rep movsb` copies as an instruction,
# so memcpy and memset weigh far more there than in time.
#
# Usage: bash bench/usertime.sh "LABEL=BINARY ARGS..." ...
# e.g.   bash bench/usertime.sh "floor=target/lean/bench-minimal {} tokio" \
#            "ours=target/lean/bench-backend {} tokio"
# `{}` in ARGS is replaced by the backend's address (unix:PATH).
# Settings (environment): ROUNDS (5), CONNECTIONS (16), DURATION (3s),
# SCGI (target/lean/scgi), BENCH_ARGS (more `scgi bench` options, e.g.
# "-d @body"). Needs perf (Debian's linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-3s}
SCGI=${SCGI:-target/lean/scgi}
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 1; }
tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
sock="$tmp/backend.sock"
for round in $(seq "$ROUNDS"); do
    for spec in "$@"; do
        label=${spec%%=*}
        cmd=${spec#*=}
        rm -f "$sock"
        # shellcheck disable=SC2086
        timeout 120 perf record -q -e cpu-clock:u -F 10000 -o "$tmp/perf.data" \
            ${cmd//\{\}/unix:$sock} >/dev/null 2>&1 &
        pid=$!
        wait_listening "unix:$sock" || true
        sleep 0.3
        ok=$(load_ok "unix:$sock")
        kill -INT "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=""
        if [ "$ok" = 0 ]; then
            echo "round $round $label: no request answered (did the backend start?)" >&2
            continue
        fi
        samples=$(perf report -i "$tmp/perf.data" --stats 2>/dev/null | awk '/SAMPLE events:/ { print $3; exit }')
        echo "$label $ok $samples" | tee -a "$tmp/runs" |
            awk '{ printf "round '"$round"' %-12s %8d requests %6.2f us user/request\n", $1, $2, $3 * 100 / $2 }'
    done
done
python3 - "$tmp/runs" <<'PY'
import statistics, sys
from collections import defaultdict
per = defaultdict(list)
for line in open(sys.argv[1]):
    label, ok, samples = line.split()
    per[label].append(int(samples) * 100 / int(ok))
for label, xs in per.items():
    print("%-12s median %.2f us user/request [%.2f-%.2f], %d rounds"
          % (label, statistics.median(xs), min(xs), max(xs), len(xs)))
PY
