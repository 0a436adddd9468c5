-- wrk script: check every response of smtp_exporter and count them.
-- Environment:
--   WRK_EXPECT      text a 200 body must contain (e.g. a success sample)
--   WRK_ALLOW_503   1: a 503 whose body names the probe slots is valid
--   WRK_SCRAPE_TIMEOUT  sent as X-Prometheus-Scrape-Timeout-Seconds
-- done() prints one VALIDATED line (ok200, ok503, bad), one LATENCY line
-- and one ERRORS line (wrk's socket errors) for the calling script.

local expect = os.getenv("WRK_EXPECT") or ""
local allow503 = os.getenv("WRK_ALLOW_503") == "1"
local scrape = os.getenv("WRK_SCRAPE_TIMEOUT")
if scrape ~= nil and scrape ~= "" then
  wrk.headers["X-Prometheus-Scrape-Timeout-Seconds"] = scrape
end

local threads = {}

-- Remember each thread so done() can add up its counters.
function setup(thread)
  table.insert(threads, thread)
end

-- Per-thread counters.
function init(args)
  ok200 = 0
  ok503 = 0
  bad = 0
end

-- Classify one response; print the first few bad ones.
function response(status, headers, body)
  if status == 200 and body:find(expect, 1, true) and body:sub(-1) == "\n" then
    ok200 = ok200 + 1
  elseif status == 503 and allow503 and body:find("no probe slot", 1, true) then
    ok503 = ok503 + 1
  else
    bad = bad + 1
    if bad <= 3 then
      io.stderr:write(string.format("bad response: HTTP %d, %d bytes: %s\n",
        status, #body, body:sub(1, 200)))
    end
  end
end

-- Sum the threads' counters and print the summary lines.
function done(summary, latency, requests)
  local t200, t503, tbad = 0, 0, 0
  for _, t in ipairs(threads) do
    t200 = t200 + t:get("ok200")
    t503 = t503 + t:get("ok503")
    tbad = tbad + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format("VALIDATED ok200=%d ok503=%d bad=%d\n", t200, t503, tbad))
  io.write(string.format("LATENCY p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("ERRORS connect=%d read=%d write=%d status=%d timeout=%d\n",
    e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("RATE requests=%d duration_s=%.2f rps=%.1f\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6)))
end
