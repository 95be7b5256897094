-- `cargo xtask bench load`: the login flood. Every connection posts JSON
-- credentials of the benchmark's accounts (a line `username password` each,
-- in the file given after `--`) to /auth/login as fast as it can, from one
-- of 4096 addresses in `X-Forwarded-For` (the run trusts loopback as a
-- proxy). The run raises the server's login limit, so every attempt reaches
-- the hashing pool and the login throttle: the pool verifies what it can
-- (200) and refuses the rest (503 past its queue, held 250 ms before it is
-- sent, and answered before the throttle counts the attempt). The throttle
-- charges each attempt it lets through to its address and account and
-- refunds it only on success: from one address the address's daily budget
-- (100) would be gone within seconds, hence the 4096 addresses; an account
-- whose attempts wait their turn past its budget slows down (429
-- account_slowdown), the throttle doing its job. The answers are counted by
-- status.

local ADDRESSES = 4096

local threads = {}
function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end

local requests = {}
local next_request = 1
statuses = {}

function init(args)
  local bodies = {}
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
  for address = 0, ADDRESSES - 1 do
    local headers = {
      ["Content-Type"] = "application/json",
      ["X-Forwarded-For"] = string.format(
        "10.77.%d.%d", math.floor(address / 256), address % 256),
    }
    requests[#requests + 1] = wrk.format(
      "POST", "/auth/login", headers, bodies[address % #bodies + 1])
  end
  next_request = ((offset or 0) * 7919) % #requests + 1
end

function request()
  local chosen = requests[next_request]
  next_request = next_request % #requests + 1
  return chosen
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
