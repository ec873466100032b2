#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time. Any crash, timeout
# or out-of-memory fails the script and prints the reproducer (path, size,
# hex and base64) to the log. Works from a fresh clone.
#
#   bash .ci/fuzz.sh                      # 60 s per target
#   FUZZ_SECONDS=600 bash .ci/fuzz.sh     # a longer campaign
#   FUZZ_TARGETS="decode response" bash .ci/fuzz.sh
#
# Settings (environment):
#   FUZZ_SECONDS    time per target, default 60
#   FUZZ_TARGETS    targets to run, default every target `cargo fuzz list` shows
#   FUZZ_SANITIZER  cargo fuzz -s value, default none (scgi-proto forbids
#                   unsafe code and the build keeps debug assertions and
#                   overflow checks on, so ASan adds little but halves the
#                   executions; set "address" to use it)
#   FUZZ_TIMEOUT    libFuzzer -timeout per input in seconds, default 10
#   CARGO_BUILD_JOBS  (cargo's own) limits the build's parallelism
#   CARGO_FUZZ_VERSION  version to install when cargo-fuzz is missing
#
# cargo-fuzz needs nightly compiler flags: `cargo +nightly fuzz` when a nightly
# toolchain is installed, else the stable compiler with RUSTC_BOOTSTRAP=1.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

secs=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-none}
per_input=${FUZZ_TIMEOUT:-10}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install --locked "cargo-fuzz${CARGO_FUZZ_VERSION:+@$CARGO_FUZZ_VERSION}"
fi

if command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
fi
echo "fuzz: using '${fuzz[*]}', sanitizer $sanitizer, ${secs}s per target"

targets=${FUZZ_TARGETS:-$("${fuzz[@]}" list)}

# One build for all targets; a build failure fails the script here.
"${fuzz[@]}" build -s "$sanitizer"

logs=$(mktemp -d)
marker="$logs/start"
touch "$marker"
failed=()
passed=()
summary=()

# Prints every artifact libFuzzer wrote for target $1 during this run.
report_artifacts() {
    local t=$1 found=0 f
    [[ -d "fuzz/artifacts/$t" ]] || return 1
    while IFS= read -r -d '' f; do
        found=1
        echo "fuzz: REPRODUCER for $t: $f ($(wc -c <"$f") bytes)"
        echo "fuzz:   hex (first 4 KiB):"
        head -c 4096 "$f" | od -An -tx1 -v | sed 's/^/fuzz:     /'
        echo "fuzz:   base64: $(base64 -w0 <"$f")"
        echo "fuzz:   replay: ${fuzz[*]} run -s $sanitizer $t $f"
        echo "fuzz:   as Rust: ${fuzz[*]} fmt -s $sanitizer $t $f"
        "${fuzz[@]}" fmt -s "$sanitizer" "$t" "$f" 2>&1 | tail -n 40 | sed 's/^/fuzz:     /' || true
    done < <(find "fuzz/artifacts/$t" -type f -newer "$marker" -print0)
    ((found))
}

for t in $targets; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    seeds=()
    [[ -d "fuzz/seeds/$t" ]] && seeds=("fuzz/seeds/$t")
    log="$logs/$t.log"
    echo "fuzz: running $t for ${secs}s"
    rc=0
    # The outer timeout is a safety net for a hang libFuzzer cannot see.
    timeout --kill-after=30 $((secs + 600)) \
        "${fuzz[@]}" run -s "$sanitizer" "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -timeout="$per_input" -rss_limit_mb=2048 \
        -dict=fuzz/scgi.dict -print_final_stats=1 >"$log" 2>&1 || rc=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    summary+=("$t: ${done_line:-no DONE line} execs=${execs:-?} rc=$rc")
    if ((rc != 0)) || report_artifacts "$t" >/dev/null 2>&1; then
        echo "fuzz: $t FAILED (exit $rc); last lines of its log:"
        tail -n 80 "$log" | sed 's/^/fuzz:   /'
        report_artifacts "$t" || echo "fuzz: (no artifact file written)"
        failed+=("$t")
    else
        echo "fuzz: $t ok: $done_line"
        passed+=("$t")
    fi
done

echo "fuzz: summary"
printf 'fuzz:   %s\n' "${summary[@]}"
rm -rf "$logs"
echo "fuzz: ${#passed[@]} passed, ${#failed[@]} failed"
((${#failed[@]} == 0))
