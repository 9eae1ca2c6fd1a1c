-- wrk script: POSTs next-free allocations to one VNI (path given as args[1]) and counts the
-- answers by status, so the driver can check that every 201 is one row and nothing else.
local threads = {}
local counter = 0
statuses = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  path = args[1]
end

request = function()
  counter = counter + 1
  local body = string.format('{"holder_type":"other","holder_id":"bench-%s-%d"}', tid, counter)
  local headers = {["Content-Type"] = "application/json"}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  return wrk.format("POST", path, headers, body)
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do totals[status] = (totals[status] or 0) + n end
  end
  for status, n in pairs(totals) do io.write(string.format("status %d %d\n", status, n)) end
end
