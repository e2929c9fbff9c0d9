-- post_bodies.lua: wrk script for `make bench`. POSTs JSON bodies to one path,
-- cycling through the lines of a file (one JSON document per line).
--   BENCH_PATH          request path, e.g. /v1/models/cls/classify
--   BENCH_BODIES        file with one request body per line; a line "OIP <n> <hex>" is a
--                       binary tensor data request (Open Inference Protocol): the body is
--                       the hex decoded, sent with Inference-Header-Content-Length: n
--   BENCH_MAX_REQUESTS  optional: each wrk thread stops after this many responses
-- done() prints one line "BENCH_RESULT {json}" with the latency percentiles
-- (microseconds), requests, duration and errors, for run_bench.py to parse.

local path = os.getenv("BENCH_PATH")
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do
    if #line > 0 then
        bodies[#bodies + 1] = line
    end
end
local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")
local headers = { ["Content-Type"] = "application/json" }

local threads = {}

function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end

local counter = 0
local responses = 0
-- Requests are formatted once per thread (init), so that the load generator
-- spends as little as possible of the cores it shares with the server.
local requests = {}

function init(args)
    -- Threads start at different bodies so they do not send the same one in step.
    counter = id * 7919
    for i, b in ipairs(bodies) do
        local n, hex = b:match("^OIP (%d+) (%x+)$")
        if n then
            local body = hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
            requests[i] = wrk.format("POST", path, {
                ["Content-Type"] = "application/octet-stream",
                ["Inference-Header-Content-Length"] = n }, body)
        else
            requests[i] = wrk.format("POST", path, headers, b)
        end
    end
end

function request()
    counter = counter + 1
    return requests[(counter % #requests) + 1]
end

-- Only when a request cap is set: with a response() callback wrk hands every
-- response's headers and body to Lua, which costs client CPU on every request.
if max_requests > 0 then
    function response(status, hdrs, body)
        responses = responses + 1
        if responses >= max_requests then
            wrk.thread:stop()
        end
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
        '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
        '"connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
        '"status_errors": %d, "timeouts": %d}\n',
        summary.requests, summary.duration, summary.bytes,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
