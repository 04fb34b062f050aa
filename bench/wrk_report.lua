-- wrk script for bench/load.py: counts every response that is not 2xx (a redirect to the
-- login page is a failure too, which wrk's own error count would miss) and prints one line
-- of JSON with the throughput and the latency percentiles (microseconds).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  codes = {}
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local key = tostring(status)
    codes[key] = (codes[key] or 0) + 1
  end
end

function done(summary, latency, requests)
  local bad, seen = 0, {}
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    for code, count in pairs(thread:get("codes")) do
      seen[code] = (seen[code] or 0) + count
    end
  end
  local parts = {}
  for code, count in pairs(seen) do
    table.insert(parts, string.format('"%s": %d', code, count))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "non2xx": %d, ' ..
    '"codes": {%s}, "connect": %d, "read": %d, "write": %d, "timeout": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, bad, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
