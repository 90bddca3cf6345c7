-- dialplan.lua - what happens to every new call.
--
-- The core calls dialplan.route(call) in a fresh coroutine for each inbound
-- call. An external number of the domain (what a trunk delivers, or what a
-- colleague dials) follows its routing rules (cw/routing.lua). Otherwise
-- the number dialled is looked up in the caller's domain: a user's
-- extension rings that user, a call-processing group's extension queues the
-- caller, an IVR's extension runs its flow from ivr-flows/, a conference
-- room's extension enters the room, a ring list's extension rings its
-- members (cw/ringlist.lua); an incoming call to a number with no other
-- selection goes to the domain's default ring list, if it has one. Replace
-- or extend this file to change routing for the whole platform.
require("cw.call") -- collect() and say() on every call
require("cw.recording") -- the domain's recording policy on every bridge and queue
local forward = require("cw.forward")
local routing = require("cw.routing")
local ringlist = require("cw.ringlist")
require("cw.voicemail") -- call:voicemail(box), call:voicemail_menu(box)
require("cw.conference") -- call:conference(room, opts)
require("cw.fax") -- call:fax_receive(box), call:fax_send(tiff)
local features = require("cw.features") -- pickup and park codes

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
  if target.strategy == "not_set" then
    -- a group without distribution: its voicemail, if on (seed 001 §8.0)
    if target.voicemail then return call:group_voicemail(target.id) end
    return call:hangup("unavailable")
  end
  local result = call:queue(target.id)
  if result == "callback" then
    call:play({ "en/callback_registered" })
  elseif result == "no_operators" then
    -- an ACD group with members but no operator ends every call (seed 001 §8.1)
    call:hangup("unavailable")
  elseif (result == "empty" or result == "full" or result == "timeout") and call.alive then
    -- the group's overflow target takes the caller: an extension, a group, an IVR or a number
    if target.overflow and target.overflow ~= target.extension then
      call:log("queue " .. target.name .. ": " .. result .. ", overflow to " .. target.overflow)
      return dialplan.route_number(call, target.overflow)
    end
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

-- *96<extension>: the fax box of a user or call-processing group (a fax machine dials it)
local function fax_code(call)
  local ext = call.dialed:sub(4)
  local box = call:resolve(ext)
  if box and box.kind == "user" then return call:fax_receive(box.id) end
  if box and box.kind == "group" then return call:fax_receive{ group = box.id } end
  call:hangup("no_route")
end

-- Where a number leads inside the domain (also used for overflow targets).
function dialplan.route_number(call, number)
  local target = call:resolve(number)
  if not target and call.direction == "incoming" and number == call.dialed then
    -- a call from outside that selected nothing: the default ring list (seed 002)
    local default = call:ring_list("default")
    if default then return ringlist.run(call, default) end
  end
  if not target then
    -- another domain of the pool (routing number + extension) or the outside world
    if tostring(number):match("^%+?%d+$") then return to_number(call, number) end
    call:log("no route for " .. tostring(number))
    return call:hangup("no_route")
  end
  if target.kind == "user" then return forward.run(call, target) end
  if target.kind == "group" then return to_group(call, target) end
  if target.kind == "ivr" then return to_ivr(call, target) end
  if target.kind == "conference" then return call:conference(target.extension) end
  if target.kind == "ring_list" then return ringlist.run(call, call:ring_list(target.id)) end
  call:hangup("no_route")
end

-- Where a call goes when a tenant's script that had it fails (error, runaway,
-- memory): "personal:<ext>" is that user's own scheme without their script.
function dialplan.fallback(call, to)
  local ext = to:match("^personal:(.+)$")
  if ext then
    local user = call:resolve(ext)
    if user and user.kind == "user" then return forward.run(call, user, { skip_personal = true }) end
  end
  return dialplan.route_number(call, to)
end

function dialplan.route(call)
  local code = dialplan.agent_codes[call.dialed]
  if code then return agent_code(call, code) end
  if call.dialed == "*97" or tostring(call.dialed):match("^%*98") then
    return voicemail_code(call)
  end
  if tostring(call.dialed):match("^%*96%d+$") then return fax_code(call) end
  if features.route(call) then return end
  -- an external number of the domain: its routing rules (seed 001 §9)
  local numbering = routing.lookup(call)
  if numbering then
    local how, extension = routing.run(call, numbering)
    if how == "fallback" then return dialplan.route_number(call, extension) end
    if how == "unrouted" then
      -- a number that selects nothing: the domain's default ring list (seed 002), else busy
      local default = call:ring_list("default")
      if default then return ringlist.run(call, default) end
      call:log("routing: " .. tostring(call.dialed) .. " has no rules; busy")
      return call:hangup("busy")
    end
    return
  end
  return dialplan.route_number(call, call.dialed)
end

return dialplan
