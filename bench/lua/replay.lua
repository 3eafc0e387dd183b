-- Replays raw HTTP/1.1 requests from a NUL-separated file (bench/common.py write_requests), in a cycle,
-- and reports in one line that bench/common.py reads.
local requests = {}
local index = 0

local function load(path)
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  local list = {}
  local start = 1
  while true do
    local stop = string.find(data, "\0", start, true)
    if not stop then
      list[#list + 1] = string.sub(data, start)
      return list
    end
    list[#list + 1] = string.sub(data, start, stop - 1)
    start = stop + 1
  end
end

init = function(args)
  requests = load(args[1])
end

request = function()
  index = index % #requests + 1
  return requests[index]
end

done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
