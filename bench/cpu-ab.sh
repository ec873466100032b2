#!/usr/bin/env bash
# Two or more builds of a backend (or a backend and its floor) side by
# side: each in turn, ROUNDS times, is started, loaded with `scgi bench`
# for DURATION, and stopped; its CPU time (user + system, from
# /proc/PID/stat, threads included) over the load gives CPU time per
# request beside requests per second. Prints each run, then medians with
# ranges, then each build over the first one within each round (the
# figure to read on a noisy machine: both sides of a ratio ran within
# seconds of each other).
#
# Usage: bash bench/cpu-ab.sh "LABEL=BINARY ARGS..." "LABEL=BINARY ARGS..." ...
# e.g.   bash bench/cpu-ab.sh "before=/tmp/bench-backend.old {} tokio" \
#            "after=target/lean/bench-backend {} tokio" \
#            "floor=target/lean/bench-minimal {} tokio"
# `{}` in ARGS is replaced by the backend's address. Settings
# (environment): ROUNDS (8), CONNECTIONS (64), DURATION (2s), PORT (a TCP
# port on 127.0.0.1; unset: a Unix socket), SCGI (target/lean/scgi),
# BENCH_ARGS (more `scgi bench` options, e.g. "-d @body"), BACKEND_CPUS and
# CLIENT_CPUS (pin each side: bench/common.sh), BACKEND_QUOTA (the backend on
# a CPU quota: bench/common.sh).
# Loopback only; every run is bounded by `timeout`; an EXIT trap stops the
# backend and removes the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
ROUNDS=${ROUNDS:-8}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-2s}
SCGI=${SCGI:-target/lean/scgi}
[ "$#" -ge 2 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
one_backend_at_a_time
for round in $(seq "$ROUNDS"); do
    for spec in "$@"; do
        label=${spec%%=*}
        cmd=${spec#*=}
        rm -f "$tmp/backend.sock"
        # Not under `timeout`: its CPU time is read from its own PID. It
        # is stopped below, or by the EXIT trap.
        # shellcheck disable=SC2086
        "${backend_pin[@]}" ${cmd//\{\}/$addr} >/dev/null 2>&1 &
        pid=$!
        wait_listening "$addr" || true
        sleep 0.3
        before=$(cpu_ticks "$pid")
        ok=$(load_ok "$addr")
        after=$(cpu_ticks "$pid")
        stop_pids "$pid"
        pid=""
        # A backend gone before the load ended reads 0 ticks after it.
        if [ "$ok" = 0 ] || [ "$after" -le "$before" ]; then
            echo "round $round $label: no request answered, or the backend died (did it start?)" >&2
            continue
        fi
        echo "$round $label $ok $((after - before))" | tee -a "$tmp/runs"
    done
done
python3 - "$tmp/runs" "$(getconf CLK_TCK)" "${DURATION%s}" <<'PY'
import statistics, sys
from collections import defaultdict
runs, tck, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rounds = defaultdict(dict)
order = []
for line in open(runs):
    r, label, ok, ticks = line.split()
    rounds[r][label] = (int(ok) / seconds, int(ticks) / tck * 1e6 / int(ok))
    if label not in order:
        order.append(label)
def span(xs, fmt):
    return fmt % statistics.median(xs) + (" [" + fmt + "-" + fmt + "]") % (min(xs), max(xs))
print()
for label in order:
    got = [v[label] for v in rounds.values() if label in v]
    print("%-10s req/s %s  CPU us/request %s  (%d rounds)" % (
        label, span([g[0] for g in got], "%.0f"), span([g[1] for g in got], "%.2f"), len(got)))
base = order[0]
for label in order[1:]:
    pairs = [v for v in rounds.values() if base in v and label in v]
    if pairs:
        print("%-10s over %s, within rounds: req/s %s, CPU/request %s" % (
            label, base, span([v[label][0] / v[base][0] for v in pairs], "%.3f"),
            span([v[label][1] / v[base][1] for v in pairs], "%.3f")))
PY
