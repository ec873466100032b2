#!/usr/bin/env bash
# Backend capacity straight at the backend, no web server (issue 19):
# `scgi bench` loads every backend in turn, over TCP and a Unix socket, at
# 1, 8, 64 and 512 concurrent connections, with a GET of `hello` and a
# 4 KiB POST echoed back. Backends:
#   - minimal-tokio, minimal-async-std, minimal-smol, minimal-threads: the
#     floor on each runtime (bench/minimal: no library, naive parse, fixed
#     reply with Content-Length);
#   - scgi-tokio, scgi-async-std, scgi-smol, scgi-blocking: the runtime
#     crates (bench/backend: read_body + respond, with Content-Length);
#   - tokio-scgi, async-scgi: the crates.io peers as their READMEs serve
#     (bench/peer-servers); python-scgi: the spec author's `scgi` package
#     from PyPI (bench/peer_scgi.py, in a venv made by bench/peer-python.sh).
# All built with `--profile lean` (fat LTO, one codegen unit). Every
# backend is started once per transport and left idle between its runs;
# each run reads the backend's CPU time (its threads and child processes,
# from /proc) before and after, so the table gives CPU time per request
# beside requests per second. Runs are interleaved: a round is every
# (workload, concurrency, backend, transport) once; ROUNDS rounds; the
# summary (bench/capacity.py) gives medians with ranges and, for each
# backend, the ratio to its own runtime's floor taken within each round.
#
# Loopback only; every run is bounded by `timeout`; an EXIT trap stops
# every backend (SIGTERM, then SIGKILL) and removes the temp dir.
#
# Usage: bash bench/capacity.sh
# Settings (environment): ROUNDS (3), DURATION (3s), CONCURRENCY
# ("1 8 64 512"), TRANSPORTS ("tcp unix"), WORKLOADS ("get post"),
# BACKENDS (all of the above), POST_BYTES (4096), PORT (first TCP port,
# 24200), RESULTS (a path: keep the raw results there), KEEP (1: keep
# the temp dir: the backends' logs), BACKEND_CPUS and CLIENT_CPUS (pin
# the backends and the load generator to separate CPUs: bench/common.sh),
# BACKEND_QUOTA (a percentage of one CPU for the backends, so that they,
# not the load generator, are the limit: bench/common.sh).
# `python3 bench/capacity.py FILE` summarises a kept results file again.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3s}
CONCURRENCY=${CONCURRENCY:-1 8 64 512}
TRANSPORTS=${TRANSPORTS:-tcp unix}
WORKLOADS=${WORKLOADS:-get post}
BACKENDS=${BACKENDS:-minimal-tokio scgi-tokio tokio-scgi minimal-async-std scgi-async-std minimal-smol scgi-smol async-scgi minimal-threads scgi-blocking python-scgi}
POST_BYTES=${POST_BYTES:-4096}
PORT=${PORT:-24200}
target=${CARGO_TARGET_DIR:-target}/lean

log() { printf '[capacity] %s\n' "$*" >&2; }

pids=()
tmp=$(mktemp -d)
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pids "${pids[@]}"
    # python-scgi's preforked children, if any outlived their parent.
    pkill -KILL -f "peer_scgi.py .*$tmp" 2>/dev/null || true
    remove_backend_cgroup
    if [ "${KEEP:-0}" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM
make_backend_cgroup

log "building (--profile lean)"
packages=(-p scgi-cli -p bench-minimal -p bench-backend)
case " $BACKENDS " in *" tokio-scgi "* | *" async-scgi "*) packages+=(-p bench-peer-servers) ;; esac
timeout 1800 cargo build --profile lean --locked -q "${packages[@]}"
python=""
case " $BACKENDS " in *" python-scgi "*)
    python=$(timeout 600 bash bench/peer-python.sh "$tmp/venv") ;;
esac
head -c "$POST_BYTES" /dev/zero | tr '\0' 'x' >"$tmp/body"

command_of() { # backend addr -> the command line
    case "$1" in
        minimal-tokio) echo "$target/bench-minimal $2 tokio" ;;
        minimal-async-std) echo "$target/bench-minimal $2 async-std" ;;
        minimal-smol) echo "$target/bench-minimal $2 smol" ;;
        minimal-threads) echo "$target/bench-minimal $2 threads" ;;
        scgi-tokio) echo "$target/bench-backend $2 tokio" ;;
        scgi-async-std) echo "$target/bench-backend $2 async-std" ;;
        scgi-smol) echo "$target/bench-backend $2 smol" ;;
        scgi-blocking) echo "$target/bench-backend $2 blocking" ;;
        tokio-scgi) echo "$target/peer-tokio-scgi $2" ;;
        async-scgi) echo "$target/peer-async-scgi $2" ;;
        python-scgi) echo "$python bench/peer_scgi.py $2" ;;
        *) log "unknown backend $1"; exit 2 ;;
    esac
}

# Start every backend on every transport; addr[backend/transport].
declare -A addr pid_of
port=$PORT
for b in $BACKENDS; do
    for t in $TRANSPORTS; do
        if [ "$t" = tcp ]; then a="127.0.0.1:$port"; port=$((port + 1)); else a="unix:$tmp/$b.sock"; fi
        # shellcheck disable=SC2046
        "${backend_pin[@]}" $(command_of "$b" "$a") >"$tmp/$b-$t.log" 2>&1 &
        pids+=($!)
        addr[$b/$t]=$a
        pid_of[$b/$t]=$!
    done
done
# Ready when every backend answers a request.
for key in "${!addr[@]}"; do
    ok=0
    for _ in $(seq 100); do
        if timeout 5 "$target/scgi" request "${addr[$key]}" / >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.1
    done
    [ "$ok" = 1 ] || { log "$key did not answer:"; cat "$tmp/${key/\//-}.log" >&2; exit 1; }
done
log "$(echo "${!addr[@]}" | wc -w) backends up; CPUs: backends ${BACKEND_CPUS:-any}${BACKEND_QUOTA:+ at ${BACKEND_QUOTA} % of one}, load generator ${CLIENT_CPUS:-any}; load average $(cut -d' ' -f1-3 /proc/loadavg)"

results="$tmp/results.tsv"
echo -e "round\tworkload\tconnections\tbackend\ttransport\trequests\treq_s\tp50_ms\tp99_ms\terrors\tnon_2xx\tcpu_s" >"$results"
for round in $(seq "$ROUNDS"); do
    log "round $round; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    for w in $WORKLOADS; do
        body=(); [ "$w" = post ] && body=(-d "@$tmp/body")
        for c in $CONCURRENCY; do
            for b in $BACKENDS; do
                for t in $TRANSPORTS; do
                    key=$b/$t
                    before=$(cpu_ticks "${pid_of[$key]}")
                    timeout 120 "${client_pin[@]}" "$target/scgi" bench "${addr[$key]}" -c "$c" -z "$DURATION" \
                        "${body[@]}" --json >"$tmp/out.json" 2>/dev/null || true
                    after=$(cpu_ticks "${pid_of[$key]}")
                    python3 - "$round" "$w" "$c" "$b" "$t" "$tmp/out.json" "$before" "$after" \
                        "$(getconf CLK_TCK)" >>"$results" <<'PY'
import json, sys
round_, w, c, b, t, path, before, after, hz = sys.argv[1:]
try:
    v = json.load(open(path))
except ValueError:
    v = {"responses": 0, "ok": 0, "requests_per_s": 0, "errors": {"no result": 1},
         "latency_ms": {"p50": 0, "p99": 0}}
l = v["latency_ms"]
print("\t".join(map(str, [round_, w, c, b, t, v["ok"], "%.0f" % v["requests_per_s"],
      "%.3f" % l["p50"], "%.3f" % l["p99"], sum(v["errors"].values()),
      v["responses"] - v["ok"], "%.2f" % ((int(after) - int(before)) / int(hz))])))
PY
                    tail -n 1 "$results" >&2
                done
            done
        done
    done
done
log "done; load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${RESULTS:-}" ]; then cp "$results" "$RESULTS"; fi
python3 bench/capacity.py "$results"
