-- cw/features.lua - feature codes dialled from a phone: call pickup and park.
--
--   <pickup code>   (the domain's, *8 by default) answer the call that has
--                   rung longest on a member of your pickup group
--   **<extension>   answer the call ringing that extension (directed pickup)
--   <slot>          (701-709 by default, call.park_slots) take the call parked there
--   <park code>     (*70 by default, call.park_code) park yourself in the first
--                   free slot: you hear its number, then music
--
-- A call is parked from a conversation by transferring the other party to
-- the park code or a slot (a phone's transfer key, or ##<code> in the call);
-- see core/call/park.c. A slot number a user, group or IVR of the domain
-- also uses stays theirs.
local M = {}

local function lang_of(call)
  return call.vars.lang or "en"
end

local function pickup(call, extension)
  local ok, why = call:pickup(extension)
  if ok then return end
  call:log("pickup: " .. tostring(why))
  call:hangup("no_route")
end

local function unpark(call, slot)
  local ok, why = call:unpark(slot)
  if ok then return end
  call:log("unpark " .. slot .. ": " .. tostring(why))
  call:answer()
  call:play({ lang_of(call) .. "/park_empty" })
  call:hangup()
end

local function park(call)
  call:answer()
  local slot, why = call:park()
  if not slot then
    call:log("park: " .. tostring(why))
    call:play({ lang_of(call) .. "/park_empty" })
    call:hangup()
  end
end

-- Run the feature the dialled number names; false when it names none.
function M.route(call)
  local codes = call:feature_codes()
  local dialed = tostring(call.dialed)
  if dialed == codes.pickup then
    pickup(call)
    return true
  end
  local dp = codes.directed_pickup
  if dialed:sub(1, #dp) == dp and dialed:sub(#dp + 1):match("^%d+$") then
    pickup(call, dialed:sub(#dp + 1))
    return true
  end
  if dialed == codes.park then
    park(call)
    return true
  end
  local n = dialed:match("^%d+$") and tonumber(dialed)
  if n and codes.park_first and n >= codes.park_first and n <= codes.park_last
      and not call:resolve(dialed) then
    unpark(call, dialed)
    return true
  end
  return false
end

return M
