-- dialplan.lua - what happens to every new call.
--
-- The core calls dialplan.route(call) in a fresh coroutine for each inbound
-- call. The number dialled is looked up in the caller's domain: a user's
-- extension rings that user, a call-processing group's extension queues the
-- caller, an IVR's extension runs its flow from ivr-flows/. Replace or
-- extend this file to change routing for the whole platform.
require("cw.call") -- collect() and say() on every call
local forward = require("cw.forward")
require("cw.voicemail") -- call:voicemail(box), call:voicemail_menu(box)

dialplan = dialplan or {}

local function to_number(call, number)
  local outcome = call:bridge(number)
  if outcome == "answered" or outcome == "cancelled" then return end
  -- map what happened to what the caller's phone should show
  local cause = ({ busy = "busy", no_answer = "no_answer", rejected = "rejected",
                   no_route = "unavailable" })[outcome] or "unavailable"
  call:hangup(cause)
end

local function to_group(call, target)
  call:answer()
  local result = call:queue(target.id)
  if result == "empty" or result == "full" or result == "timeout" then
    call:play({ "en/all_operators_busy", "en/goodbye" })
  end
end

local function to_ivr(call, target)
  -- a flow with a script runs that file; otherwise its JSON menu tree
  local flow = callapi.flow((target.script ~= nil and target.script ~= "") and target.script or "menu")
  return flow(call, target)
end

-- Feature codes an operator dials from their own phone.
dialplan.agent_codes = {
  ["*50"] = { state = "available", prompt = "agent_logged_in" },
  ["*51"] = { state = "logged_out", prompt = "agent_logged_out" },
  ["*52"] = { state = "break", prompt = "agent_on_break" },
  ["*53"] = { state = "available", prompt = "agent_available" },
}

local function agent_code(call, code)
  call:answer()
  local ok, why = call:agent_state(code.state)
  local lang = call.vars.lang or "en"
  if ok then
    call:play({ lang .. "/" .. code.prompt })
  else
    call:log("agent feature code refused: " .. tostring(why))
    call:play({ lang .. "/access_denied" })
  end
  call:hangup()
end

-- *97: your own voicemail; *98<extension>: a box by number (PIN required)
local function voicemail_code(call)
  local dialed = call.dialed
  if dialed == "*97" then
    local me = call:resolve(call.caller)
    if me and me.kind == "user" then return call:voicemail_menu(me.id) end
  elseif dialed:match("^%*98%d+$") then
    local box = call:resolve(dialed:sub(4))
    if box and box.kind == "user" then return call:voicemail_menu(box.id, { require_pin = true }) end
  end
  call:hangup("no_route")
end

function dialplan.route(call)
  local code = dialplan.agent_codes[call.dialed]
  if code then return agent_code(call, code) end
  if call.dialed == "*97" or tostring(call.dialed):match("^%*98") then
    return voicemail_code(call)
  end
  local target = call:resolve(call.dialed)
  if not target then
    -- another domain of the pool (routing number + extension) or the outside world
    if tostring(call.dialed):match("^%+?%d+$") then return to_number(call, call.dialed) end
    call:log("no route for " .. tostring(call.dialed))
    return call:hangup("no_route")
  end
  if target.kind == "user" then return forward.run(call, target) end
  if target.kind == "group" then return to_group(call, target) end
  if target.kind == "ivr" then return to_ivr(call, target) end
  call:hangup("no_route")
end

return dialplan
