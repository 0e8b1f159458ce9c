-- wrk script for bench/identity.sh: refresh-token grants, each refresh token used exactly once.
-- `wrk ... -s bench/refresh.lua URL -- TOKENS_FILE`: TOKENS_FILE holds one refresh token a line
-- (one signed-in session each, at least one per connection). Every 200 answer's rotated token goes
-- back into the pool and the next request takes one out, so each session is a chain of grants
-- (a token is never sent twice: a reuse would revoke the session and show as non-2xx).
-- Run with one thread (-t 1): the pool is per thread.
local pool = {}
local missing = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then pool[#pool + 1] = line end
  end
end

function request()
  local token = table.remove(pool, 1)
  if token == nil then
    missing = missing + 1
    token = "mgr_none" -- refused with 400: counted as non-2xx
  end
  return wrk.format("POST", "/v1/auth/token:refresh", { ["Content-Type"] = "application/json" },
    '{"refreshToken":"' .. token .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    local token = body:match('"refreshToken"%s*:%s*"([^"]+)"')
    if token then pool[#pool + 1] = token end
  end
end
