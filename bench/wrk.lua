-- wrk script for bench/load.sh. GET by default; with BENCH_POST_BYTES=N a
-- POST of N bytes (application/octet-stream). At the end it prints one
-- machine-readable line:
--   RESULT requests duration_us p50_us p99_us connect read write status timeout
-- (status: responses with a status >= 400; the others are socket errors).
local n = tonumber(os.getenv("BENCH_POST_BYTES") or "0")
if n > 0 then
  wrk.method = "POST"
  wrk.body = string.rep("x", n)
  wrk.headers["Content-Type"] = "application/octet-stream"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
