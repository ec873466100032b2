#!/usr/bin/env python3
"""A backend's instructions per request, counted by callgrind; given two
backends, where the first one's go against the second's (its floor), by
category: the lifecycle driver, request decoding, the response head, the
allocator, copies, the runtime, system call wrappers.

Runs each backend under callgrind twice, serving N1 and then N2 requests
of `scgi bench` over a Unix socket (as bench/icount.sh does), and divides
each function's difference by N2 - N1, which cancels start-up and
shutdown. Instruction counts do not move with the machine's load, so this
works beside other jobs; callgrind counts each byte `rep movsb`/`rep
stosb` moves as an instruction, so copies and fills weigh more here than
in time (bench/usertime.sh measures time).

Usage: bench/icount_split.py "LABEL=BINARY ARGS..." ["LABEL=BINARY ARGS..."]
e.g.   bench/icount_split.py "scgi-tokio=target/lean/bench-backend {} tokio" \\
           "floor=target/lean/bench-minimal {} tokio"
`{}` in ARGS is replaced by the backend's address (unix:PATH). With one
backend, prints its instructions per request (bench/icount.sh is this);
with two, compares the first with the second. Settings (environment): N1 (1000),
N2 (4000), CONNECTIONS (4), SCGI (target/lean/scgi), BENCH_ARGS (more
`scgi bench` options), TOP (12: the largest single functions listed).
Needs valgrind (callgrind_annotate comes with it).
"""
import collections
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

N1 = int(os.environ.get("N1", "1000"))
N2 = int(os.environ.get("N2", "4000"))
CONNECTIONS = os.environ.get("CONNECTIONS", "4")
SCGI = os.environ.get("SCGI", "target/lean/scgi")
BENCH_ARGS = shlex.split(os.environ.get("BENCH_ARGS", ""))
TOP = int(os.environ.get("TOP", "12"))

# First match wins: the order matters (`scgi_proto::response` before the
# driver, the floor's own code before the runtime).
CATEGORIES = [
    ("memset", r"memset"),
    ("memcpy/memmove", r"memcpy|memmove"),
    ("allocator (glibc malloc, free)",
     r"malloc|_int_free|^free$|cfree|unlink_chunk|calloc|memalign|realloc|tcache"),
    ("request decoding (scgi_proto decoder, headers, lifecycle)",
     r"scgi_proto::(decoder|headers|server|request)|GetAll|Headers"),
    ("response head (scgi_proto::response)", r"scgi_proto::(response|status)"),
    ("text formatting (format!, Display)",
     r"fmt|format|write_str|pad_integral|Display"),
    ("the floor's own code (bench_minimal)", r"bench_minimal"),
    # The connection's future, polled through Pin<Box<..>>, is the
    # driver's (the floor's shows under its own name).
    ("lifecycle driver (scgi_async, scgi_tokio, scgi_async_std, scgi_net)",
     r"scgi_async|scgi_tokio|scgi_net|scgi_blocking|Pin<P> as core::future"),
    ("runtime (tokio, async-io, async-executor, ...)",
     r"tokio|async_io|async_executor|async_std|async_task|concurrent_queue|"
     r"polling|event_listener|futures|parking|crossbeam|smol|blocking::"),
    ("system call wrappers (libc)",
     r"recv|send|write|read|close|accept|epoll|ioctl|setsockopt|syscall|"
     r"futex|clock_gettime|pthread|__GI|__libc"),
]


def category(function):
    for name, pattern in CATEGORIES:
        if re.search(pattern, function):
            return name
    return "other"


def run(tmp, command, requests):
    """Instructions by function for one run of `requests` requests."""
    sock = os.path.join(tmp, "backend.sock")
    out = os.path.join(tmp, "callgrind.out")
    for path in (sock, out):
        if os.path.exists(path):
            os.remove(path)
    argv = [a.replace("{}", "unix:" + sock) for a in shlex.split(command)]
    backend = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        else:
            sys.exit(f"{argv[0]} did not bind {sock} within 30 s")
        subprocess.run(
            [SCGI, "bench", "unix:" + sock, "-c", CONNECTIONS, "-t", "1",
             "-n", str(requests), "--no-progress"] + BENCH_ARGS,
            stdout=subprocess.DEVNULL, check=True, timeout=300)
    finally:
        backend.send_signal(signal.SIGTERM)
        try:
            backend.wait(timeout=120)
        except subprocess.TimeoutExpired:
            backend.kill()
            backend.wait()
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", out],
        capture_output=True, text=True, check=True).stdout
    counts = collections.Counter()
    total = None
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)$", line)
        if not m:
            continue
        if m.group(2).startswith("PROGRAM TOTALS"):
            total = int(m.group(1).replace(",", ""))
            continue
        # "file:function [object]": keep the function.
        where = re.sub(r"\s*\[[^\]]*\]$", "", m.group(2))
        function = where.split(":", 1)[1] if ":" in where.split(" ")[0] else where
        counts[function.strip()] += int(m.group(1).replace(",", ""))
    if total is None:
        sys.exit(f"callgrind_annotate printed no total for {argv[0]}")
    return counts, total


def per_request(tmp, label, command):
    """Instructions per request by function, and the total's line."""
    (a, total_a), (b, total_b) = run(tmp, command, N1), run(tmp, command, N2)
    summary = (f"{label}: {(total_b - total_a) // (N2 - N1)} instructions/request "
               f"({total_a} at {N1}, {total_b} at {N2})")
    return {f: (b[f] - a.get(f, 0)) / (N2 - N1) for f in set(a) | set(b)}, summary


def main():
    if len(sys.argv) not in (2, 3) or any("=" not in s for s in sys.argv[1:]):
        sys.exit(__doc__)
    labels, profiles = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in sys.argv[1:]:
            label, command = spec.split("=", 1)
            labels.append(label)
            profile, summary = per_request(tmp, label, command)
            print(summary, flush=True)
            profiles.append(profile)
    if len(profiles) == 1:
        return
    print()
    ours, floor = profiles
    by = [collections.Counter(), collections.Counter()]
    for i, profile in enumerate(profiles):
        for function, n in profile.items():
            by[i][category(function)] += n
    print(f"| category | {labels[0]} | {labels[1]} | difference |")
    print("|---|---|---|---|")
    for c in sorted(set(by[0]) | set(by[1]), key=lambda c: by[1][c] - by[0][c]):
        print(f"| {c} | {by[0][c]:.0f} | {by[1][c]:.0f} | {by[0][c] - by[1][c]:+.0f} |")
    print(f"\nthe {TOP} functions that differ most:\n")
    functions = sorted(set(ours) | set(floor),
                       key=lambda f: -abs(ours.get(f, 0) - floor.get(f, 0)))
    for f in functions[:TOP]:
        print(f"{ours.get(f, 0):8.0f} {floor.get(f, 0):8.0f}  {f[:110]}")


if __name__ == "__main__":
    main()
