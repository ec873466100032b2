#!/usr/bin/env python3
"""Memory per held connection: opens N connections to an SCGI backend (half
idle, half stalled after part of a head), reads the backend's resident
memory (VmRSS) before and after, checks a fresh request is still served and
times it, then closes everything. One JSON line on stdout.

Usage: idle.py PID ADDR N      (ADDR: unix:/path or host:port)
"""
import json, resource, socket, sys, time

pid, addr, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1024), hard))

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def threads():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])

def connect():
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(addr[5:])
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)))
    return s

def request():
    body = b""
    headers = b"CONTENT_LENGTH\x000\x00SCGI\x001\x00REQUEST_METHOD\x00GET\x00REQUEST_URI\x00/\x00"
    s = connect()
    s.settimeout(30)
    start = time.monotonic()
    s.sendall(str(len(headers)).encode() + b":" + headers + b"," + body)
    out = b""
    while True:
        piece = s.recv(65536)
        if not piece:
            break
        out += piece
    s.close()
    return out, time.monotonic() - start

# Warm up (the runtime's threads, buffers of a first request), then settle.
for _ in range(20):
    request()
time.sleep(1)
before = rss_kib()
held = []
for i in range(n):
    s = connect()
    if i % 2:
        s.sendall(b"70:CONTENT_LENGTH\x00")  # part of a head, then nothing
    held.append(s)
# Let the backend accept and read all of them: wait until its memory
# stops growing (two readings a second apart within 0.5 %; at most 60 s).
# A fixed wait was too short for scgi-blocking on a loaded machine, which
# starts a thread for each connection: memory read too early, and the fresh
# request queued behind connections still being accepted.
after = rss_kib()
settled = False
for _ in range(60):
    time.sleep(1)
    now = rss_kib()
    if abs(now - after) <= after * 0.005:
        settled = True
        break
    after = now
after = rss_kib()
reply, took = request()
served = reply.startswith(b"Status: 200")
result = {
    "connections": n,
    "rss_before_kib": before,
    "rss_after_kib": after,
    "kib_per_connection": round((after - before) / n, 2),
    "threads": threads(),
    "fresh_request_served": served,
    "fresh_request_ms": round(took * 1000, 2),
    "settled": settled,
}
for s in held:
    s.close()
print(json.dumps(result))
