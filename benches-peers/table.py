#!/usr/bin/env python3
"""Turns the criterion results of `benches/peers.rs` into BENCHMARKS.md's tables.

Usage (after `cargo bench -p benches-peers -- ...`), from the workspace root:

    python3 benches-peers/table.py [target/criterion]

Reads each benchmark's `new/estimates.json` (the median of criterion's
samples: robust on a machine shared with other work) and `benchmark.json`
(its throughput in bytes) and prints Markdown: ns per request, GB/s
(10^9 bytes per second), and the ratios the issue asks for.
"""

import json
import os
import sys

INPUTS = [
    "nginx_get_root",
    "apache_get_root",
    "lighttpd_get_root",
    "nginx_many_headers",
    "nginx_long_header",
    "apache_post_form",
    "apache_post_json",
    "synthetic_64k_1024",
]
OURS = "scgi-proto"
WALK = "scgi-proto + walk"
PEERS = ["scgi 0.3", "tokio-scgi 0.2", "async-scgi 1.0"]
HTTPARSE = "httparse (HTTP/1.1)"
FLOORS = ["floor: naive split", "floor: count NULs"]
COLUMNS = [OURS, WALK] + PEERS + [HTTPARSE] + FLOORS


def load(root):
    """{(group, function): (median ns, bytes)} for every benchmark found."""
    found = {}
    for group in os.listdir(root):
        gdir = os.path.join(root, group)
        if not os.path.isdir(gdir):
            continue
        for bench in os.listdir(gdir):
            new = os.path.join(gdir, bench, "new")
            try:
                with open(os.path.join(new, "benchmark.json")) as f:
                    meta = json.load(f)
                with open(os.path.join(new, "estimates.json")) as f:
                    est = json.load(f)
            except FileNotFoundError:
                continue
            tp = (meta.get("throughput") or {}).get("Bytes")
            found[(meta["group_id"], meta["function_id"])] = (
                est["median"]["point_estimate"],
                tp,
            )
    return found


def ns(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join("target", "criterion")
    r = load(root)

    def get(inp, col):
        return r.get((inp, col))

    print("ns per request (median):\n")
    print("| input | bytes | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for inp in INPUTS:
        ours = get(inp, OURS)
        http = get(inp, HTTPARSE)
        size = f"{ours[1]:,}" if ours else "?"
        if http:
            size += f" (HTTP {http[1]:,})"
        cells = [ns(get(inp, c)[0]) if get(inp, c) else "-" for c in COLUMNS]
        print(f"| {inp} | {size} | " + " | ".join(cells) + " |")

    print("\nGB/s (bytes of the request per second; httparse: of its HTTP/1.1 text):\n")
    print("| input | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for inp in INPUTS:
        cells = []
        for c in COLUMNS:
            v = get(inp, c)
            cells.append(f"{v[1] / v[0]:.2f}" if v and v[1] else "-")
        print(f"| {inp} | " + " | ".join(cells) + " |")

    print(
        "\nRatios. Peers: how many times faster scgi-proto is (peer ns / ours; "
        "target >= 15). httparse: our GB/s over its GB/s (target >= 1). Floors: "
        "our ns over the floor's (target for the naive split <= 1). Each cell: "
        "decode / decode + walk.\n"
    )
    heads = [f"vs {p}" for p in PEERS] + ["GB/s vs httparse"] + [
        f"cost / {f.split(': ')[1]}" for f in FLOORS
    ]
    print("| input | " + " | ".join(heads) + " |")
    print("|---" * (len(heads) + 1) + "|")
    for inp in INPUTS:
        o, w = get(inp, OURS), get(inp, WALK)
        if not (o and w):
            continue
        cells = []
        for p in PEERS:
            v = get(inp, p)
            cells.append(f"{v[0] / o[0]:.1f} / {v[0] / w[0]:.1f}" if v else "-")
        h = get(inp, HTTPARSE)
        if h:
            hg = h[1] / h[0]
            cells.append(f"{(o[1] / o[0]) / hg:.2f} / {(w[1] / w[0]) / hg:.2f}")
        else:
            cells.append("-")
        for f in FLOORS:
            v = get(inp, f)
            cells.append(f"{o[0] / v[0]:.2f} / {w[0] / v[0]:.2f}" if v else "-")
        print(f"| {inp} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
