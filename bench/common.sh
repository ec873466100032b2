# Shared by the benchmark scripts (sourced, not run).

# Optional CPU pinning, so that the load generator and the backend do not
# compete for the same cores: BACKEND_CPUS and CLIENT_CPUS are `taskset -c`
# CPU lists (e.g. BACKEND_CPUS=1 CLIENT_CPUS=0 on two cores). Unset: no
# pinning. A pinned runtime sizes its worker pool to its CPUs (tokio,
# async-std and `scgi bench` read the affinity mask).
backend_pin=()
client_pin=()
if [ -n "${BACKEND_CPUS:-}" ]; then backend_pin=(taskset -c "$BACKEND_CPUS"); fi
if [ -n "${CLIENT_CPUS:-}" ]; then client_pin=(taskset -c "$CLIENT_CPUS"); fi

# Optional CPU quota for the backends, so that the backend, not the load
# generator, is the limit: BACKEND_QUOTA=50 lets the backends together run
# for 50 % of one CPU's time (5 ms in every 10 ms), enforced by the kernel's
# CFS bandwidth control in a cgroup made for the run (cgroup v2's
# `cpu.max`, else v1's `cpu` controller; needs root). The scripts load one
# backend at a time and the others sit idle, so each loaded backend gets
# the whole quota; requests per second then measure how many requests a
# backend serves on that much CPU. Read by capacity.sh, cpu-ab.sh and
# syscalls.sh (where strace runs inside the quota too). Rust runtimes size
# their pools by the quota as well as by the CPU mask (pin the backends
# with BACKEND_CPUS to keep that the same with and without a quota).
# Checked here; the cgroup is made by `make_backend_cgroup`, which the
# scripts call once their exit traps (which call `remove_backend_cgroup`)
# are set, and which adds joining it to `backend_pin`.
backend_cgroup=""
quota_us=""
if [ -n "${BACKEND_QUOTA:-}" ]; then
    case "$BACKEND_QUOTA" in
        *[!0-9]*) echo "BACKEND_QUOTA is a whole percentage of one CPU, not '$BACKEND_QUOTA'" >&2; exit 2 ;;
    esac
    quota=$((10#$BACKEND_QUOTA))
    # The kernel takes no quota below 1 ms of its period (10 ms here).
    if [ "$quota" -lt 10 ]; then
        echo "BACKEND_QUOTA must be at least 10 (% of one CPU), not $BACKEND_QUOTA" >&2
        exit 2
    fi
    if [ "$quota" -ge $((100 * $(nproc))) ]; then
        echo "BACKEND_QUOTA=$BACKEND_QUOTA is all of this machine's $(nproc) CPUs: it limits nothing" >&2
    fi
    quota_us=$((quota * 100))
fi
make_backend_cgroup() {
    [ -n "$quota_us" ] || return 0
    local root=/sys/fs/cgroup
    if [ -f $root/cgroup.controllers ] && grep -qw cpu $root/cgroup.controllers; then
        if ! grep -qw cpu $root/cgroup.subtree_control; then
            # Lasts until reboot (harmless: no limit is set by it).
            echo +cpu 2>/dev/null >$root/cgroup.subtree_control || {
                echo "BACKEND_QUOTA: cannot enable the cpu controller in $root (a container? run where the cgroup tree is delegated)" >&2
                exit 2
            }
        fi
        backend_cgroup=$root/scgi-bench-$$
        mkdir "$backend_cgroup"
        echo "$quota_us 10000" >"$backend_cgroup/cpu.max"
    elif [ -d $root/cpu ]; then
        backend_cgroup=$root/cpu/scgi-bench-$$
        mkdir "$backend_cgroup"
        echo 10000 >"$backend_cgroup/cpu.cfs_period_us"
        echo "$quota_us" >"$backend_cgroup/cpu.cfs_quota_us"
    else
        echo "BACKEND_QUOTA: no cgroup cpu controller under $root" >&2
        exit 2
    fi
    # shellcheck disable=SC2016
    backend_pin+=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$backend_cgroup")
}
# Removes the cgroup once the processes in it are gone (waits up to 5 s).
remove_backend_cgroup() {
    [ -n "$backend_cgroup" ] && [ -d "$backend_cgroup" ] || return 0
    local _
    for _ in $(seq 50); do
        # Read, not `-s`: cgroup files report a size of 0 whatever they hold.
        [ -n "$(cat "$backend_cgroup/cgroup.procs" 2>/dev/null)" ] || break
        sleep 0.1
    done
    rmdir "$backend_cgroup" 2>/dev/null || echo "left $backend_cgroup behind (processes still in it?)" >&2
}

# Stops the processes whose PIDs are given: SIGTERM to all, a bounded wait
# (5 s) for them to exit, then SIGKILL to whatever is left.
stop_pids() {
    local pid alive
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        alive=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
}

# The CPU time (user + system) of process $1, its threads and its
# descendants (a preforking server's children), in clock ticks; 0 once it
# is gone.
cpu_ticks() {
    python3 - "$1" <<'PY'
import os, sys
def ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    except OSError:
        return 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                total += sum(ticks(int(c)) for c in f.read().split())
        except OSError:
            pass
    return total
print(ticks(int(sys.argv[1])))
PY
}

# Waits, for at most 5 s, until something listens at $1 (unix:PATH or
# 127.0.0.1:PORT); then succeeds, else fails.
wait_listening() {
    local _
    for _ in $(seq 100); do
        case "$1" in
            unix:*) [ -S "${1#unix:}" ] && return 0 ;;
            *) (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null && return 0 ;;
        esac
        sleep 0.05
    done
    return 1
}

# Loads the backend at $1 with `scgi bench` ($SCGI) for $DURATION at
# $CONNECTIONS connections (and $BENCH_ARGS) and prints the requests
# answered: 0 when none was, or the load failed.
load_ok() {
    local json
    # `scgi bench` exits non-zero when a request failed; its JSON still
    # counts the answered ones.
    # shellcheck disable=SC2086
    json=$(timeout 120 "${client_pin[@]}" "$SCGI" bench "$1" -c "$CONNECTIONS" -z "$DURATION" --json \
        ${BENCH_ARGS:-} 2>/dev/null) || true
    python3 -c 'import json, sys; print(json.load(sys.stdin)["ok"])' <<<"$json" 2>/dev/null || echo 0
}

# For the scripts that run one backend at a time (cpu-ab.sh, syscalls.sh):
# makes the temp dir $tmp, the backend's PID slot $pid (stopped and the
# dir removed on exit) and the address $addr: 127.0.0.1:$PORT when PORT
# is set, else a Unix socket in $tmp.
one_backend_at_a_time() {
    tmp=$(mktemp -d)
    pid=""
    trap 'if [ -n "$pid" ]; then stop_pids "$pid"; fi; rm -rf "$tmp"; remove_backend_cgroup' EXIT
    make_backend_cgroup
    if [ -n "${PORT:-}" ]; then addr=127.0.0.1:$PORT; else addr=unix:$tmp/backend.sock; fi
}
