#!/usr/bin/env bash
# End-to-end load benchmark behind nginx (issue 9, second half).
#
# Starts one nginx (its own config in a temp dir, foreground master, never
# the system's) in front of, over TCP and over a Unix socket:
#   - each runtime crate's `hello` and `echo` examples (`--profile lean`: fat LTO, one codegen unit),
#   - `bench-minimal`, an SCGI backend with no library (the floor),
# plus nginx's own `return 200` (the ceiling). Then runs wrk (GET hello,
# POST echo with a small body) against every route with the same duration
# and connections; then a streamed POST echo of a large body per runtime and
# transport, straight to the backend (see the stream section for why not
# through nginx), with the backend's peak RSS. Prints markdown tables; the raw wrk
# output is kept in the temp dir only with BENCH_KEEP=1.
#
# Loopback only. Every wait and every wrk/curl run is bounded in time; an
# EXIT trap stops everything the script started (also on Ctrl-C or errors).
# Needs root for apt-get (only when wrk is missing) and for giving nginx's
# workers (www-data) access to the Unix sockets.
#
# Usage: bash bench/load.sh
# Settings (environment): BENCH_DURATION (s, default 10), BENCH_CONNECTIONS
# (32), BENCH_THREADS (2), BENCH_POST_BYTES (1024), BENCH_STREAM_MIB (100),
# BENCH_PORT (nginx, 18080), BENCH_BACKEND_PORT (first backend port, 18100),
# BENCH_RUNTIMES (default "scgi-blocking scgi-tokio scgi-async-std"),
# BENCH_NGINX_WORKERS (2), BENCH_KEEP (1: keep the temp dir), BENCH_ROUNDS
# (1: how many times the whole sequence of wrk runs repeats; with more than
# one, every figure is the median over the rounds, and each ratio is taken
# within a round, then the median and range over the rounds are shown).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh

DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-1}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
POST_BYTES=${BENCH_POST_BYTES:-1024}
STREAM_MIB=${BENCH_STREAM_MIB:-100}
PORT=${BENCH_PORT:-18080}
BPORT=${BENCH_BACKEND_PORT:-18100}
RUNTIMES=${BENCH_RUNTIMES:-scgi-blocking scgi-tokio scgi-async-std}
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-2}
WORKER_USER=www-data

log() { printf '[load] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
pids=()
tmp=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pids "${pids[@]}"
    if [ -n "$tmp" ] && [ -d "$tmp" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# ---------------------------------------------------------------- tools
if ! command -v wrk >/dev/null; then
    [ "$(id -u)" = 0 ] || die "wrk is missing; run as root to install it"
    log "installing wrk from Debian"
    timeout 300 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq wrk >/dev/null
fi
[ -x /usr/sbin/nginx ] || die "nginx is missing: bash .ci/install-webservers.sh"
command -v curl >/dev/null || die "curl is missing"
root=0; [ "$(id -u)" = 0 ] && root=1
if [ "$root" = 1 ]; then getent passwd "$WORKER_USER" >/dev/null || die "no user $WORKER_USER"; fi

for p in "$PORT" $(seq "$BPORT" $((BPORT + 15))); do
    if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is in use (set BENCH_PORT / BENCH_BACKEND_PORT)"; fi
done

tmp=$(mktemp -d /tmp/scgi-bench.XXXXXX)
chmod 0755 "$tmp"   # nginx's workers must reach the sockets inside
mkdir -p "$tmp"/{bin,sock,logs,tmp,wrk}
chmod 0755 "$tmp/sock"
[ "$root" = 1 ] && chown "$WORKER_USER:$WORKER_USER" "$tmp/tmp"

# ---------------------------------------------------------------- build
target=${CARGO_TARGET_DIR:-target}
log "building the examples (--profile lean: fat LTO, one codegen unit)"
# Each crate's examples are built alone and copied: all three crates have
# examples called `hello` and `echo`, which share target/lean/examples/.
for rt in $RUNTIMES; do
    timeout 900 cargo build --profile lean --locked -q -p "$rt" --example hello --example echo
    cp "$target/lean/examples/hello" "$tmp/bin/$rt-hello"
    cp "$target/lean/examples/echo" "$tmp/bin/$rt-echo"
done
timeout 900 cargo build --profile lean --locked -q -p bench-minimal
cp "$target/lean/bench-minimal" "$tmp/bin/minimal"
cp "$target/lean/stream" "$tmp/bin/stream"

# ---------------------------------------------------------------- backends
declare -A PID ADDR
next_port=$BPORT
wait_ready() { # name transport addr
    local name=$1 tr=$2 addr=$3
    for _ in $(seq 100); do
        kill -0 "${PID[$name]}" 2>/dev/null || die "$name exited: $(tail -3 "$tmp/logs/$name.log")"
        if [ "$tr" = tcp ]; then
            ss -Hltn "sport = :${addr##*:}" | grep -q . && return 0
        elif [ -S "${addr#unix:}" ]; then
            if [ "$root" = 1 ]; then
                # As a deployment would: the socket's group is the workers'.
                chgrp "$WORKER_USER" "${addr#unix:}"
                chmod 0660 "${addr#unix:}"
            fi
            return 0
        fi
        sleep 0.1
    done
    die "$name not listening after 10 s"
}
start_backend() { # name binary transport
    local name=$1 bin=$2 tr=$3 addr
    if [ "$tr" = tcp ]; then addr="127.0.0.1:$next_port"; next_port=$((next_port + 1))
    else addr="unix:$tmp/sock/$name.sock"; fi
    "$tmp/bin/$bin" "$addr" >"$tmp/logs/$name.log" 2>&1 &
    PID[$name]=$!
    pids+=("$!")
    ADDR[$name]=$addr
    wait_ready "$name" "$tr" "$addr"
}

routes=""
add_route() { # path backend-name
    routes+="        location = $1 { include /etc/nginx/scgi_params; scgi_pass ${ADDR[$2]}; scgi_read_timeout 60s; }
"
}
for tr in tcp unix; do
    start_backend "minimal-$tr" minimal "$tr"
    add_route "/minimal-$tr/hello" "minimal-$tr"
    add_route "/minimal-$tr/echo" "minimal-$tr"
    for rt in $RUNTIMES; do
        for app in hello echo; do
            start_backend "$rt-$app-$tr" "$rt-$app" "$tr"
            add_route "/$rt-$tr/$app" "$rt-$app-$tr"
        done
    done
done

# ---------------------------------------------------------------- nginx
user_line=""
[ "$root" = 1 ] && user_line="user $WORKER_USER $WORKER_USER;"
cat >"$tmp/nginx.conf" <<EOF
$user_line
daemon off;
worker_processes $NGINX_WORKERS;
pid $tmp/nginx.pid;
error_log $tmp/logs/nginx-error.log warn;
events { worker_connections 4096; }
http {
    default_type text/plain;
    server_tokens off;
    access_log off;
    client_body_temp_path $tmp/tmp/client_body;
    proxy_temp_path       $tmp/tmp/proxy;
    fastcgi_temp_path     $tmp/tmp/fastcgi;
    uwsgi_temp_path       $tmp/tmp/uwsgi;
    scgi_temp_path        $tmp/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT;
        server_name localhost;
        client_max_body_size 64m;
        location = /ceiling { return 200 "Hello for the 1th time"; }
$routes    }
}
EOF
/usr/sbin/nginx -t -q -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/logs/nginx-error.log"
/usr/sbin/nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/logs/nginx-error.log" &
pids+=("$!")
for _ in $(seq 100); do ss -Hltn "sport = :$PORT" | grep -q . && break; sleep 0.1; done
ss -Hltn "sport = :$PORT" | grep -q . || die "nginx not listening after 10 s"
base="http://127.0.0.1:$PORT"

# ---------------------------------------------------------------- checks
head -c "$POST_BYTES" /dev/zero | tr '\0' x >"$tmp/small"
for tr in tcp unix; do
    for rt in minimal $RUNTIMES; do
        body=$(curl -sS --max-time 10 -w ' %{http_code}' "$base/$rt-$tr/hello")
        [[ "$body" == Hello*" 200" ]] || die "$rt-$tr/hello answered: $body"
        curl -sS --max-time 10 -o "$tmp/small.out" -H 'Content-Type: application/octet-stream' \
            --data-binary @"$tmp/small" "$base/$rt-$tr/echo"
        cmp -s "$tmp/small" "$tmp/small.out" || die "$rt-$tr/echo did not echo the body"
    done
done
log "all routes answer; machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- wrk
results="$tmp/results.tsv"
: >"$results"
run_wrk() { # round label workload transport path
    local round=$1 label=$2 workload=$3 tr=$4 path=$5 post=0 line out
    [ "$workload" = echo ] && post=$POST_BYTES
    out="$tmp/wrk/$label-$workload-$tr-$round.txt"
    log "wrk $workload $label $tr (round $round of $ROUNDS)"
    BENCH_POST_BYTES=$post timeout $((DURATION + 30)) \
        wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency \
        -s bench/wrk.lua "$base$path" >"$out" 2>&1 || die "wrk failed: $(tail -3 "$out")"
    line=$(grep '^RESULT ' "$out") || die "no RESULT in $out"
    # label workload transport requests duration_us p50_us p99_us connect read write status timeout
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$label" "$workload" "$tr" "$(echo "${line#RESULT }" | tr ' ' '\t')" >>"$results"
    sleep 1
}
for round in $(seq "$ROUNDS"); do
    for workload in hello echo; do
        run_wrk "$round" ceiling "$workload" - /ceiling
        for tr in unix tcp; do
            for rt in minimal $RUNTIMES; do
                run_wrk "$round" "$rt" "$workload" "$tr" "/$rt-$tr/$workload"
            done
        done
    done
done

# ---------------------------------------------------------------- stream
# Straight to each echo backend with bench-minimal's `stream` client (one
# thread sends, one reads and checks every byte), not through nginx: nginx
# stops sending a request body once the backend's response head arrives, so
# a full-duplex echo larger than the socket buffers stalls behind it (until
# scgi_read_timeout). VmHWM is reset (clear_refs 5) before each run.
log "streamed echo: ${STREAM_MIB} MiB per runtime and transport, straight to the backend"
size=$((STREAM_MIB * 1024 * 1024))
kib() { awk '/^'"$1"':/ {print $2}' "/proc/$2/status"; }
stream="$tmp/stream.tsv"
: >"$stream"
for tr in unix tcp; do
    for rt in minimal $RUNTIMES; do
        name="$rt-echo-$tr"; [ "$rt" = minimal ] && name="minimal-$tr"
        pid=${PID[$name]}
        echo 5 >"/proc/$pid/clear_refs"   # reset VmHWM to the current RSS
        rss_before=$(kib VmRSS "$pid")
        w=$(timeout 120 "$tmp/bin/stream" "${ADDR[$name]}" "$size") || die "streamed echo $rt $tr failed"
        read -r code down secs <<<"$w"
        [ "$code" = 200 ] && [ "$down" = "$size" ] || die "streamed echo $rt $tr: status $code, $down of $size bytes"
        hwm=$(kib VmHWM "$pid")
        printf '%s\t%s\t%s\t%s\t%s\n' "$rt" "$tr" "$secs" "$rss_before" "$hwm" >>"$stream"
    done
done

# ---------------------------------------------------------------- report
log "done; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency; POST echo body $POST_BYTES bytes; nginx $NGINX_WORKERS workers; $ROUNDS round(s), medians over the rounds;"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r), $(/usr/sbin/nginx -v 2>&1 | cut -d' ' -f3), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
awk -F'\t' -v rounds="$ROUNDS" '
function ms(us) { return sprintf("%.2f", us / 1000) }
# The median of v[1..n] (sorts v; mawk has no asort).
function median(v, n,    i, j, t) {
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function range(v, n) { median(v, n); return n > 1 ? sprintf(" (%.3f-%.3f)", v[1], v[n]) : "" }
{
    r = $1; key = $2 SUBSEP $3 SUBSEP $4
    if (!(key in seen)) { seen[key] = 1; n++; order[n] = key; lab[n] = $2; wl[n] = $3; tr[n] = $4 }
    rps[key, r] = $5 / ($6 / 1e6)
    p50[key, r] = $7; p99[key, r] = $8
    sock[key] += $9 + $10 + $11 + $13; bad[key] += $12
}
END {
    print "| workload | backend | transport | req/s | p50 ms | p99 ms | errors (socket / non-2xx) | / ceiling | / minimal |"
    print "|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= n; i++) {
        k = order[i]
        c = "ceiling" SUBSEP wl[i] SUBSEP "-"
        m = "minimal" SUBSEP wl[i] SUBSEP tr[i]
        for (r = 1; r <= rounds; r++) {
            a[r] = rps[k, r]; b[r] = p50[k, r]; d[r] = p99[k, r]
            rc[r] = rps[c, r] ? rps[k, r] / rps[c, r] : 0
            rm[r] = rps[m, r] ? rps[k, r] / rps[m, r] : 0
        }
        cell_c = rps[c, 1] ? sprintf("%.3f", median(rc, rounds)) : "-"
        cell_m = "-"
        if (lab[i] != "ceiling" && rps[m, 1]) cell_m = sprintf("%.3f", median(rm, rounds)) range(rm, rounds)
        printf "| %s | %s | %s | %.0f | %s | %s | %s / %s | %s | %s |\n", wl[i], lab[i], tr[i], median(a, rounds), ms(median(b, rounds)), ms(median(d, rounds)), sock[k], bad[k], cell_c, cell_m
    }
}' "$results"
echo
echo "Streamed echo, ${STREAM_MIB} MiB POST straight to the backend (bench-minimal's stream client, every byte checked):"
echo
echo "| backend | transport | seconds | MB/s | RSS before (MiB) | peak RSS, VmHWM (MiB) |"
echo "|---|---|---|---|---|---|"
awk -F'\t' -v size="$size" '{ printf "| %s | %s | %.3f | %.0f | %.1f | %.1f |\n", $1, $2, $3, size / $3 / 1e6, $4 / 1024, $5 / 1024 }' "$stream"
