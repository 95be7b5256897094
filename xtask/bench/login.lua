-- `cargo xtask bench load`: the login flood. Every connection posts JSON
-- credentials of the benchmark's accounts (a line `username password` each,
-- in the file given after `--`) to /auth/login, from one of 4096 addresses
-- in `X-Forwarded-For` (the server trusts 127.0.0.1 as a proxy for this
-- run). One address gets 5 logins a minute; 4096 of them refill about 340 a
-- second, more than the hashing pool verifies, so the pool stays saturated
-- for the whole run while most attempts are refused (429 by the limit, 503
-- when the pool's queue is full). The answers are counted by status.

local threads = {}
function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end

local bodies = {}
local counter = 0
statuses = {}

function init(args)
  for line in io.lines(args[1]) do
    local username, password = line:match("^(%S+) (.+)$")
    if username then
      bodies[#bodies + 1] = string.format(
        '{"username":"%s","password":"%s"}', username, password)
    end
  end
  if #bodies == 0 then
    error("no credentials in " .. tostring(args[1]))
  end
  counter = (offset or 0) * 100003
end

function request()
  counter = counter + 1
  local address = counter % 4096
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = string.format("10.77.%d.%d", math.floor(address / 256), address % 256),
  }
  return wrk.format("POST", "/auth/login", headers, bodies[counter % #bodies + 1])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, count in pairs(counts) do
      total[status] = (total[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(total) do
    parts[#parts + 1] = string.format("%d=%d", status, count)
  end
  table.sort(parts)
  io.write("login statuses: " .. table.concat(parts, " ") .. "\n")
end
