# Shared by the benchmark scripts (sourced, not run).

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
