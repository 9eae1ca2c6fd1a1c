-- wrk script: POSTs unique assets (hostname and MAC from a per-thread counter).
local counter = 0
local thread_id = 0
local run = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- args[1]: the run number, so repeated wrk runs never repeat a hostname or MAC.
function init(args)
  thread_id = tonumber(tid)
  run = tonumber(args[1] or "0")
end

request = function()
  counter = counter + 1
  local n = run * 1000000 + thread_id * 100000 + counter
  local mac = string.format("02:%02x:%02x:%02x:%02x:%02x", thread_id, math.floor(n / 16777216) % 256,
    math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  local body = string.format('{"hostname":"bench-%d-%d-%d","macs":["%s"],"tags":["bench","rack-%d"]}',
    run, thread_id, counter, mac, counter % 10)
  -- wrk.format uses only the headers it is given: carry over the -H ones (Authorization).
  local headers = {["Content-Type"] = "application/json"}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  return wrk.format("POST", "/api/v1/assets", headers, body)
end
