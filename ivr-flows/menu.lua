-- menu.lua - runs an IVR menu tree (the JSON format of ivr-flows/README.md).
--
-- A flow has a start menu and any number of menus. Each menu plays its
-- prompt and waits for one key; keys 0-9 * # map to actions, and two more
-- actions cover a key the menu does not define ("default") and silence
-- ("timeout"). Every invalid key or timeout counts as an error; after the
-- domain's maximum the caller hears goodbye and the call ends.
local M = {}

local DEFAULT_ACTION = { action = "dial_extension" }
local TIMEOUT_ACTION = { action = "repeat" }

local function prompt_files(p, lang, call)
  if p == nil then return {} end
  if type(p) == "string" then p = { p } end
  local out = {}
  for _, name in ipairs(p) do
    local id = name:match("^sound:(%d+)$")
    if id then
      -- an uploaded sound file of the tenant
      local path = call and call:sound_path(tonumber(id))
      if path then out[#out + 1] = path end
    else
      -- bare names come from the language's prompt set
      out[#out + 1] = name:find("/", 1, true) and name or (lang .. "/" .. name)
    end
  end
  return out
end

-- Forward to a user, group, voicemail, fax or outside number.
local function forward(call, t, lang)
  if type(t) ~= "table" then return "invalid" end
  if t.type == "group" then
    local r = call:queue(tostring(t.id))
    if r == nil then return "invalid" end
    if r == "callback" then
      call:play(prompt_files("callback_registered", lang))
    elseif r ~= "answered" and call.alive then
      call:play(prompt_files({ "all_operators_busy", "goodbye" }, lang))
    end
    return "done"
  end
  if t.type == "user" or t.type == "number" then
    call:play(prompt_files("transferring", lang))
    local target = t.type == "user" and ("ext:" .. tostring(t.id)) or tostring(t.id)
    local outcome = call:bridge(target)
    if outcome ~= "answered" and call.alive then
      local msg = ({ busy = "extension_busy", no_answer = "no_answer" })[outcome]
        or "extension_unavailable"
      call:play(prompt_files({ msg, "goodbye" }, lang))
    end
    return "done"
  end
  if t.type == "voicemail" or t.type == "fax" then
    -- the box is named by a user's extension or login, or a group's extension or name
    local box = call:resolve(tostring(t.id))
    if not box or (box.kind ~= "user" and box.kind ~= "group") then
      local g = cw.group(tostring(t.id), call.domain_id)
      box = g and { kind = "group", id = g.id }
    end
    if not box then return "invalid" end
    if t.type == "fax" then
      call:fax_receive(box.kind == "user" and box.id or { group = box.id })
    elseif box.kind == "user" then
      call:voicemail(box.id)
    else
      call:group_voicemail(box.id, lang)
    end
    return "done"
  end
  return "invalid"
end

-- The caller started dialling an extension with `first`; gather the rest.
local function dial_extension(call, first, lang, timeout)
  local rest = call:read_digits(4, timeout * 1000, 3000, "#")
  if rest == nil then return "done" end
  local ext = first .. rest
  local target = call:resolve(ext)
  if not target or (target.kind ~= "user" and target.kind ~= "group") then return "invalid" end
  return forward(call, { type = target.kind, id = ext }, lang)
end

function M.run(call, flow, settings)
  settings = settings or {}
  local lang = flow.language or settings.language or "en"
  local timeout = flow.timeout or settings.timeout or 5
  local max_errors = flow.max_errors or settings.max_errors or 3
  local menus = flow.menus or {}
  local current = flow.start or "main"
  local stack = {}
  local errors = 0
  call:answer()
  call:flush_digits()
  while call.alive do
    local menu = menus[current]
    if not menu then
      call:log("ivr: menu '" .. tostring(current) .. "' does not exist")
      break
    end
    local key, why = call:collect{ prompt = prompt_files(menu.prompt, lang, call), min = 1, max = 1,
                                   timeout = timeout }
    if why == "hangup" then return end
    local act, first
    if key == nil then
      act = menu.timeout or TIMEOUT_ACTION
      errors = errors + 1
    elseif menu.keys and menu.keys[key] then
      act = menu.keys[key]
    else
      act = menu.default or DEFAULT_ACTION
      first = key
      if act.action ~= "dial_extension" then
        -- a key the menu does not have: an error the caller is told about
        errors = errors + 1
        if errors < max_errors then call:play(prompt_files("invalid_choice", lang)) end
      end
    end
    call:log("ivr: menu " .. current .. " key " .. tostring(key) .. " -> " .. tostring(act.action))
    local result = "ok"
    local a = act.action
    if a == "forward" then
      result = forward(call, act.target, lang)
    elseif a == "message" then
      call:play(prompt_files(act.prompt, lang, call))
      if act["then"] == "hangup" then result = "done" end
    elseif a == "menu" then
      if menus[act.menu] then
        stack[#stack + 1] = current
        current = act.menu
      else
        result = "invalid"
      end
    elseif a == "back" then
      if #stack > 0 then
        current = table.remove(stack)
      end
    elseif a == "dial_extension" then
      if first then
        result = dial_extension(call, first, lang, timeout)
      end
    elseif a == "hangup" then
      result = "done"
    elseif a == "repeat" then
      -- the loop plays the same menu again
    else
      call:log("ivr: unknown action " .. tostring(a))
      result = "invalid"
    end
    if result == "done" then break end
    if result == "invalid" then
      errors = errors + 1
      if errors < max_errors then call:play(prompt_files("invalid_choice", lang)) end
    end
    if errors >= max_errors then
      call:play(prompt_files({ "too_many_errors", "goodbye" }, lang))
      break
    end
  end
  if call.alive then call:hangup() end
end

-- As a flow file: callapi.flow("menu") returns this function.
return function(call, ivr)
  return M.run(call, ivr.flow or {}, ivr.settings)
end
