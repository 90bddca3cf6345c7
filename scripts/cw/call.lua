-- cw/call.lua - call methods composed from the core's primitives.
--
-- The core gives every call play, read_digits, tone, bridge, queue and
-- friends (see scripts/README.md). This file adds the ones written in Lua:
--   call:collect{...}  play a prompt and gather digits, with retries
--   call:say(kind, value, lang)  speak a number, digits, a date or a duration
local M = callapi.methods
local say = require("cw.say")

local function as_list(v)
  if v == nil then return {} end
  if type(v) == "string" then return { v } end
  return v
end

-- call:collect{ prompt=, min=1, max=1, timeout=5, interdigit=3, terminator="#",
--               tries=1, invalid=, valid= (a Lua pattern the digits must match) }
-- Returns the digits, or nil and why ("timeout", "invalid", "hangup").
function M.collect(call, o)
  o = o or {}
  local min, max = o.min or 1, o.max or o.min or 1
  local timeout = math.floor((o.timeout or 5) * 1000)
  local inter = math.floor((o.interdigit or 3) * 1000)
  local term = o.terminator or (max > 1 and "#" or "")
  local why = "timeout"
  for _ = 1, (o.tries or 1) do
    local ok, r = call:play(as_list(o.prompt), { interrupt = true })
    if not ok and r == "hangup" then return nil, "hangup" end
    local digits, how = call:read_digits(max, timeout, inter, term)
    if digits == nil then return nil, "hangup" end
    if #digits >= min and (not o.valid or digits:match("^" .. o.valid .. "$")) then
      return digits
    end
    why = (#digits == 0 and how == "timeout") and "timeout" or "invalid"
    if o.invalid and why == "invalid" then
      if not call:play(as_list(o.invalid)) then return nil, "hangup" end
    end
    call:flush_digits()
  end
  return nil, why
end

-- call:say(kind, value, lang): kind is number, digits, date, time or duration.
function M.say(call, kind, value, lang, opts)
  local files, err = say.words(lang or "en", kind, value, opts)
  if not files then return nil, err end
  return call:play(files)
end

return M
