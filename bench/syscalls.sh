#!/usr/bin/env bash
# System calls a backend makes while serving N requests, counted by
# `strace -c -f`, for two or more backends side by side: each in turn is
# started under strace, loaded with `scgi bench -n N`, and stopped; then
# one table gives each system call's count (and its failures) per backend.
# Counts, unlike times, do not move with the machine's load (strace's own
# times are mostly its overhead: not printed).
#
# Usage: bash bench/syscalls.sh "LABEL=BINARY ARGS..." "LABEL=BINARY ARGS..." ...
# e.g.   bash bench/syscalls.sh "ours=target/lean/bench-backend {} async-std" \
#            "floor=target/lean/bench-minimal {} async-std"
# `{}` in ARGS is replaced by the backend's address. Settings
# (environment): N (20000), CONNECTIONS (64), PORT (a TCP port on
# 127.0.0.1; unset: a Unix socket), SCGI (target/lean/scgi), BENCH_ARGS,
# BACKEND_CPUS, CLIENT_CPUS and BACKEND_QUOTA (bench/common.sh; strace runs
# inside the quota with the backend). Needs strace.
# Loopback only; the load is bounded by `timeout`; an EXIT trap stops the
# backend and removes the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
N=${N:-20000}
CONNECTIONS=${CONNECTIONS:-64}
SCGI=${SCGI:-target/lean/scgi}
[ "$#" -ge 1 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
one_backend_at_a_time
labels=()
for spec in "$@"; do
    label=${spec%%=*}
    cmd=${spec#*=}
    labels+=("$label")
    rm -f "$tmp/backend.sock"
    # shellcheck disable=SC2086
    "${backend_pin[@]}" strace -c -f -o "$tmp/$label.strace" ${cmd//\{\}/$addr} >/dev/null 2>&1 &
    pid=$!
    wait_listening "$addr" || true
    sleep 0.3
    # shellcheck disable=SC2086
    timeout 300 "${client_pin[@]}" "$SCGI" bench "$addr" -c "$CONNECTIONS" -n "$N" --json \
        ${BENCH_ARGS:-} >"$tmp/$label.json" 2>/dev/null || true
    # The backend is strace's child: stopping it ends strace, which then
    # writes its summary.
    stop_pids $(pgrep -P "$pid" || true)
    wait "$pid" 2>/dev/null || true
    pid=""
done
python3 - "$tmp" "$N" "${labels[@]}" <<'PY'
import json, re, sys
tmp, n, labels = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
counts = {}
for label in labels:
    ok = json.load(open(f"{tmp}/{label}.json")).get("ok", 0)
    calls = {}
    for line in open(f"{tmp}/{label}.strace"):
        f = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(f) >= 5 and re.fullmatch(r"[\d.]+", f[0]) and f[-1] != "total":
            calls[f[-1]] = (int(f[3]), int(f[4]) if len(f) == 6 else 0)
    counts[label] = (ok, calls)
print(f"requests answered: " + ", ".join(f"{l} {counts[l][0]}" for l in labels) + f" (of {n})\n")
names = sorted({c for _, calls in counts.values() for c in calls},
               key=lambda c: -max(counts[l][1].get(c, (0, 0))[0] for l in labels))
print("| system call | " + " | ".join(labels) + " |")
print("|---|" + "---|" * len(labels))
for c in names:
    cells = []
    for l in labels:
        calls, errors = counts[l][1].get(c, (0, 0))
        cells.append(f"{calls}" + (f" ({errors} failed)" if errors else ""))
    if max(counts[l][1].get(c, (0, 0))[0] for l in labels) >= n // 100:
        print(f"| `{c}` | " + " | ".join(cells) + " |")
PY
