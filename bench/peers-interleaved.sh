#!/usr/bin/env bash
# Times two builds of the decoder benchmark (benches-peers' `peers`) in
# turns, ROUNDS times each (before, after, before, after, ...), so a
# shared machine's load falls on both alike; prints each benchmark's
# criterion point estimate per run, the median over the rounds, and
# after / before. The load average is printed at the start and the end.
#
# Usage: bash bench/peers-interleaved.sh BEFORE_BINARY AFTER_BINARY [FILTER]
# e.g.   cargo bench -p benches-peers --bench peers --no-run   # in each tree
#        bash bench/peers-interleaved.sh /tmp/peers-before target/release/deps/peers-<hash> /scgi-proto
# Settings (environment): ROUNDS (3), WARM_UP (1), MEASURE (2) seconds.
set -euo pipefail
before=$1
after=$2
filter=${3:-}
ROUNDS=${ROUNDS:-3}
WARM_UP=${WARM_UP:-1}
MEASURE=${MEASURE:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
    for which in before after; do
        bin=$before
        [ "$which" = after ] && bin=$after
        (cd "$tmp" && CARGO_TARGET_DIR="$tmp/target" "$bin" --bench --noplot \
            --warm-up-time "$WARM_UP" --measurement-time "$MEASURE" ${filter:+"$filter"}) \
            > "$tmp/$which.$r" 2>/dev/null
    done
done
echo "end   $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp" "$ROUNDS" <<'PY'
import re, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
unit = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
def parse(path):
    out, name = {}, None
    for line in open(path, encoding="utf-8"):
        if line[:1].strip() and not line.startswith(("Benchmarking", "Found", "Gnuplot", "  ")):
            name = line.split("time:")[0].strip() or name
        t = re.search(r"time:\s*\[\S+ \S+ (\S+) (\S+)", line)
        if t and name:
            # The first `time:` after the name; a `change:` block follows.
            out[name] = float(t.group(1)) * unit[t.group(2)]
            name = None
    return out
runs = {w: [parse(f"{tmp}/{w}.{r}") for r in range(1, rounds + 1)] for w in ("before", "after")}
names = [n for n in runs["after"][0]]
print(f"{'benchmark':45} {'before (ns, each round)':>28} {'after (ns, each round)':>28} {'median b':>9} {'median a':>9} {'a/b':>6}")
for n in names:
    b = [r.get(n) for r in runs["before"] if n in r]
    a = [r.get(n) for r in runs["after"] if n in r]
    if not a or not b:
        continue
    mb, ma = statistics.median(b), statistics.median(a)
    fmt = lambda xs: " ".join(f"{x:.1f}" for x in xs)
    print(f"{n:45} {fmt(b):>28} {fmt(a):>28} {mb:9.1f} {ma:9.1f} {ma/mb:6.2f}")
PY
