-- wrk script for B2: POST pre-signed Twilio inbound webhooks, each MessageSid once.
-- Usage: wrk -t2 -c16 -d15s -s bench/wrk_inbound.lua http://127.0.0.1:PORT -- requests.tsv 2
-- (the last argument repeats the thread count: each thread has its own Lua state and cannot count the others)
-- requests.tsv: one "signature<TAB>form-body" per line. Thread k sends lines k, k+T, k+2T, ...
-- so no two threads send the same message; done() prints one JSON line with the figures.
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  reqs = {}
  for line in io.lines(args[1]) do
    local sig, body = line:match("^([^\t]*)\t(.*)$")
    reqs[#reqs + 1] = wrk.format("POST", "/sms/inbound",
      {["Content-Type"] = "application/x-www-form-urlencoded", ["X-Twilio-Signature"] = sig}, body)
  end
  step = tonumber(args[2]) or 1
  cursor = id
  sent = 0
end

function request()
  local r = reqs[(cursor % #reqs) + 1]
  cursor = cursor + step
  sent = sent + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f}\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
