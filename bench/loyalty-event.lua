-- One new partner event per request (bench/loyalty.sh): ids unique per run and per connection.
-- args: run-prefix user-id occur-time batch-size (1: POST /v1/loyalty/events; n: a batch of n)
local counter, prefix, user, occur, size = 0, "", "", "", 1
function init(args)
  prefix, user, occur, size = args[1], args[2], args[3], tonumber(args[4])
end
local function event()
  counter = counter + 1
  return string.format('{"partnerEventId":"%s-%d","eventType":"purchase","userId":"%s","occurTime":"%s",'
    .. '"amount":{"amountMinor":"100","currency":"GHS"}}', prefix, counter, user, occur)
end
function request()
  if size == 1 then
    return wrk.format("POST", "/v1/loyalty/events", nil, event())
  end
  local events = {}
  for i = 1, size do events[i] = event() end
  return wrk.format("POST", "/v1/loyalty/events:batchIngest", nil, '{"events":[' .. table.concat(events, ",") .. ']}')
end
