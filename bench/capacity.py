#!/usr/bin/env python3
"""Summarises bench/capacity.sh's results (a TSV file): for each workload
and transport, requests per second and the backend's CPU time per request
at each concurrency (medians over the rounds, ranges in brackets), then
each runtime crate against its own runtime's floor and against the best
peer, as ratios taken within each round (median and range): requests
per second over the floor's and the best peer's, then CPU time per request
over the floor's and over the least of the peers' (the steadier figure:
it depends less on how the load generator and the backend share CPUs).
Last, the same ratios pooled over workloads and transports, by
concurrency and over all cells: the median of every round's ratio, with
a 95 % bootstrap interval of that median (a cell alone has too few rounds
to tell 5 % from noise; the pool has sixteen times as many), and each
runtime crate against each peer alone, pooled the same way.

Usage: capacity.py RESULTS.tsv
"""
import csv, random, statistics, sys
from collections import defaultdict

FLOOR = {
    "scgi-tokio": "minimal-tokio", "tokio-scgi": "minimal-tokio",
    "scgi-async-std": "minimal-async-std",
    "scgi-smol": "minimal-smol", "async-scgi": "minimal-smol",
    "scgi-blocking": "minimal-threads",
}
OURS = ["scgi-tokio", "scgi-async-std", "scgi-smol", "scgi-blocking"]
PEERS = ["tokio-scgi", "async-scgi", "python-scgi"]

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
runs = defaultdict(dict)  # (w, t, c, round) -> backend -> row
order, concs = [], []
for r in rows:
    runs[(r["workload"], r["transport"], int(r["connections"]), r["round"])][r["backend"]] = r
    if r["backend"] not in order:
        order.append(r["backend"])
    if int(r["connections"]) not in concs:
        concs.append(int(r["connections"]))
rounds = sorted({r["round"] for r in rows})
groups = []
for r in rows:
    g = (r["workload"], r["transport"])
    if g not in groups:
        groups.append(g)

def rps(r):
    return float(r["req_s"])

def cpu_us(r):
    n = int(r["requests"])
    return float(r["cpu_s"]) * 1e6 / n if n else float("nan")

def med(xs, fmt):
    xs = [x for x in xs if x == x]
    if not xs:
        return "-"
    m = fmt % statistics.median(xs)
    return m if len(xs) == 1 else "%s [%s-%s]" % (m, fmt % min(xs), fmt % max(xs))

def series(w, t, c, b, f):
    return [f(runs[(w, t, c, rd)][b]) for rd in rounds if b in runs[(w, t, c, rd)]]

def ratios(w, t, c, num, den, f=rps):
    """f of num over f of den within each round; den may be a function of
    the round's runs."""
    out = []
    for rd in rounds:
        got = runs[(w, t, c, rd)]
        d = den(got) if callable(den) else (f(got[den]) if den in got else None)
        if num in got and d and d == d:
            out.append(f(got[num]) / d)
    return out

print("Rounds: %d. Cells: median over the rounds [min-max]." % len(rounds))
for w, t in groups:
    print("\n### %s, %s\n" % ("GET hello" if w == "get" else "POST 4 KiB echo", t))
    print("| backend | " + " | ".join("c=%d req/s | c=%d CPU us/req" % (c, c) for c in concs) + " | errors |")
    print("|---|" + "---|---|" * len(concs) + "---|")
    for b in order:
        if not any(b in runs[(w, t, c, rd)] for c in concs for rd in rounds):
            continue
        cells = []
        errs = 0
        for c in concs:
            cells.append(med(series(w, t, c, b, rps), "%.0f"))
            cells.append(med(series(w, t, c, b, cpu_us), "%.1f"))
            errs += sum(int(r["errors"]) + int(r["non_2xx"]) for r in (runs[(w, t, c, rd)].get(b) for rd in rounds) if r)
        print("| %s | %s | %d |" % (b, " | ".join(cells), errs))

def best_peer(f, best):
    """A denominator for `ratios`: the best (`max` or `min`) of the peers'
    f in a round's runs."""
    def of_peers(got):
        ps = [f(got[p]) for p in PEERS if p in got and f(got[p]) == f(got[p])]
        return best(ps) if ps else None
    return of_peers


def table(title, f, best, label):
    print("\n### The runtime crates: %s (within each round)\n" % title)
    print("| workload | transport | runtime | " + " | ".join(
        "c=%d / floor | c=%d / %s" % (c, c, label) for c in concs) + " |")
    print("|---|---|---|" + "---|---|" * len(concs))
    for w, t in groups:
        for b in OURS:
            if not any(b in runs[(w, t, c, rd)] for c in concs for rd in rounds):
                continue
            cells = []
            for c in concs:
                cells.append(med(ratios(w, t, c, b, FLOOR[b], f), "%.2f"))
                cells.append(med(ratios(w, t, c, b, best_peer(f, best), f), "%.2f"))
            print("| %s | %s | %s | %s |" % (w, t, b, " | ".join(cells)))


table("req/s over their own floor's, and over the best peer's", rps, max, "best peer")
table("CPU time per request over their own floor's, and over the least of the peers' "
      "(below 1: less CPU)", cpu_us, min, "least peer")


def interval(xs, n=2000):
    """The median of xs and a 95 % bootstrap interval of it."""
    rng = random.Random(1)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(n))
    return "%.3f [%.3f-%.3f]" % (statistics.median(xs), meds[n // 40], meds[n - 1 - n // 40])


def pool(b, c, den, f):
    """The within-round ratios of `ratios(w, t, cc, b, den, f)` over every
    workload and transport, at concurrency c ("all": at every one), and
    how many cells gave any."""
    xs, cells = [], 0
    for w, t in groups:
        for cc in (concs if c == "all" else [c]):
            got = ratios(w, t, cc, b, den, f)
            xs += got
            cells += bool(got)
    return xs, cells


def pooled():
    print("\n### The runtime crates, pooled over workloads and transports: median of the "
          "within-round ratios [95 % bootstrap interval of the median]\n")
    print("| runtime | cells | ratios | CPU/req over the floor's | req/s over the floor's "
          "| CPU/req over the least peer's | req/s over the best peer's |")
    print("|---|---|---|---|---|---|---|")
    for b in OURS:
        for c in concs + ["all"]:
            cols = [pool(b, c, den, f) for den, f in [(FLOOR[b], cpu_us), (FLOOR[b], rps),
                                                      (best_peer(cpu_us, min), cpu_us),
                                                      (best_peer(rps, max), rps)]]
            xs, cells = cols[0]
            if xs:
                print("| %s | %s | %d | %s |" % (b, "all %d" % cells if c == "all" else "c=%d, %d" % (c, cells),
                                                len(xs), " | ".join(interval(x) if x else "-" for x, _ in cols)))


pooled()


def pooled_peers():
    """Each runtime crate against each peer alone, pooled as above: the
    best of two peers in a round is biased upwards by the noise (the larger
    of two noisy samples), so this is the fairer view of "ahead of every
    peer"."""
    peers = [p for p in PEERS if any(p in got for got in runs.values())]
    if not peers:
        return
    print("\n### The runtime crates against each peer, pooled: median of the within-round "
          "ratios [95 % bootstrap interval of the median]\n")
    print("| runtime | cells | " + " | ".join(
        "req/s over %s's | CPU/req over %s's" % (p, p) for p in peers) + " |")
    print("|---|---|" + "---|---|" * len(peers))
    for b in OURS:
        for c in concs + ["all"]:
            cells = [pool(b, c, p, f)[0] for p in peers for f in (rps, cpu_us)]
            if any(cells):
                print("| %s | %s | %s |" % (b, "all" if c == "all" else "c=%d" % c,
                                           " | ".join(interval(x) if x else "-" for x in cells)))


pooled_peers()
