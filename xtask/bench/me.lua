-- `cargo xtask bench load`: GET /me with a bearer token, round robin over the
-- benchmark's accounts (one access token a line in the file given after
-- `--`). palisade-server limits each verified subject to 600 requests a
-- minute, so the load is spread over enough accounts that none reaches it.
-- The requests are formatted once, in init, so wrk's Lua adds next to
-- nothing per request (the bare axum and FastAPI runs use this script too).

local threads = 0
function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

local requests = {}
local next_request = 1

function init(args)
  for token in io.lines(args[1]) do
    if token ~= "" then
      requests[#requests + 1] =
        wrk.format("GET", "/me", { ["Authorization"] = "Bearer " .. token })
    end
  end
  if #requests == 0 then
    error("no tokens in " .. tostring(args[1]))
  end
  -- Threads start at different accounts.
  next_request = ((offset or 0) * 7919) % #requests + 1
end

function request()
  local chosen = requests[next_request]
  next_request = next_request % #requests + 1
  return chosen
end
