-- A GET per request from its own client address: argument (after `--`) an address
-- block (0-255); each request carries X-Forwarded-For 10.<block + thread>.x.y, for a
-- server that trusts one proxy, so that the default read limit (per address) is at
-- work without refusing the load. Counts the answers by status.

local counter, block = 0, 0
statuses = {}

function init(args)
  block = tonumber(args[1]) or 0
end

function request()
  counter = counter + 1
  local address = string.format(
    "10.%d.%d.%d", (block + id) % 256, math.floor(counter / 256) % 256, counter % 256)
  return wrk.format("GET", nil, { ["X-Forwarded-For"] = address }, nil)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
