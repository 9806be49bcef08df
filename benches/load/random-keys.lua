-- wrk script for rss.sh: each request asks for one random subject among the $BENCH_COUNT
-- synthetic verdicts written by verdict-bench-fill (registry $BENCH_REGISTRY), so lookups spread
-- over the whole store instead of one hot key. Prints a WRKRESULT line at the end.
local registry = os.getenv("BENCH_REGISTRY")
local count = tonumber(os.getenv("BENCH_COUNT") or "")
if registry == nil or count == nil or count < 1 then
  error("set BENCH_REGISTRY (host:port) and BENCH_COUNT (number of filled verdicts)")
end

local thread_id = 0
setup = function(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
end

init = function(args)
  math.randomseed(os.time() * 1000 + (id or 0))
end

-- Must match verdict-bench-fill's subject(): <registry>/bench/fill-<n % 100>@sha256:<n, 64 digits>.
request = function()
  local n = math.random(0, count - 1)
  local body = string.format(
    '{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["%s/bench/fill-%d@sha256:%064d"]}}',
    registry, n % 100, n)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKRESULT requests=%d duration_us=%d bytes=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
