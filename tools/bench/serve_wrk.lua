-- wrk script for `weir serve`: POST /score with a transaction per request, cards drawn
-- from 2 000 ids; prints p50/p99/p99.9 and requests/s at the end.
--   wrk -t2 -c32 -d20s -s tools/bench/serve_wrk.lua http://127.0.0.1:8080
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"event_id":"wrk-%d","card_id":"card-%05d","merchant_id":"m-%d","device_id":"d-1","amount":%.2f,' ..
    '"currency":"EUR","country":"FR","channel":"%s","customer_segment":"retail","event_time":%d}',
    n, n % 2000, n % 300, 5 + (n * 37) % 400, (n % 3 == 0) and "ecom" or "pos", 1767225600000 + n * 100)
  return wrk.format(nil, "/score", nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("requests/s %.0f, p50 %.0f us, p99 %.0f us, p99.9 %.0f us, errors %d (non-2xx %d)\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.errors.status))
end
