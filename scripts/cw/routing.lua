-- cw/routing.lua - incoming numbers: the routing rules of seed 001 §9 at call time.
--
-- Each external number has an ordered list of rules; the first whose
-- condition holds takes the call, and no matching rule means busy (or the
-- number's fallback extension, when it has one). A condition is any mix of
-- a weekly schedule (periods of weekdays or day groups, with holidays, in
-- the domain's time zone), caller prefixes and membership of a classifier,
-- all of which must hold. Before the rules, the number's black or white
-- list may refuse the caller (busy).
--
-- This file interprets the rule data as it is stored (read fresh for every
-- call by cwroute.number): nothing is generated, so a saved change applies
-- to the next call, and data that passed the checks on save is all this
-- code ever sees. A target is a step: it runs, its outcome (answered,
-- busy, no_answer, no_route, done) picks the next step from `on`, and an
-- outcome without a next step ends the call the way that outcome should
-- (busy, unavailable...). A rule may hand the decision to the tenant's own
-- Lua (type "script"), which runs sandboxed and answers with a target, or
-- nil to let the next rule decide.
local forward = require("cw.forward")
local M = {}

local function starts(s, p)
  return s ~= nil and p ~= "" and s:sub(1, #p) == p
end

-- The same canonical form as the core's: digits, and an 11-digit 7/8 number without its 7/8.
local function norm(v)
  local d = tostring(v):gsub("%D", "")
  if #d == 11 and (d:sub(1, 1) == "7" or d:sub(1, 1) == "8") then return d:sub(2) end
  return d
end

local function entry_matches(e, caller)
  local v = tostring(e.value):gsub("^%+", "")
  if e.exact then return caller.digits ~= "" and (caller.digits == v or caller.national == norm(v)) end
  return starts(caller.digits, v) or starts(caller.national, v)
end

-- "blacklist" / "whitelist" when the number's filter refuses the caller, else nil.
function M.blocked(cfg)
  local f = cfg.filter or {}
  if f.mode == "blacklist" then
    for _, e in ipairs(f.entries or {}) do
      if entry_matches(e, cfg.caller) then return "blacklist" end
    end
  elseif f.mode == "whitelist" then
    for _, e in ipairs(f.entries or {}) do
      if entry_matches(e, cfg.caller) then return nil end
    end
    return "whitelist" -- an empty white list lets nobody in
  end
  return nil
end

-- Does one of the periods cover the moment `now` (see call:local_time())?
function M.covers(periods, now)
  local md = now.date:sub(6)
  for _, p in ipairs(periods) do
    if not (p.holidays[now.date] or p.holidays[md]) then
      local day = ((p.mask >> now.wday) & 1) == 1 or p.extra[now.date] ~= nil or p.extra[md] ~= nil
      if day and now.minutes >= p.from and now.minutes < p.to then return true end
    end
  end
  return false
end

function M.matches(rule, caller, now)
  if rule.periods and M.covers(rule.periods, now) == rule.outside then return false end
  if rule.prefixes then
    local any = false
    for _, p in ipairs(rule.prefixes) do
      if starts(caller.digits, p) or starts(caller.national, p) then
        any = true
        break
      end
    end
    if not any then return false end
  end
  if rule.classifier and not rule.member then return false end
  return true
end

-- The first rule at or after index `from` that takes the call, and its index.
function M.select(cfg, now, from)
  for i = from or 1, #cfg.rules do
    local r = cfg.rules[i]
    if M.matches(r, cfg.caller, now) then return r, i end
  end
  return nil
end

-- For the API's routing check: the decision without a call.
function M.explain(cfg, now)
  local out = { local_time = ("%s %02d:%02d"):format(now.date, now.hour, now.min),
                weekday = now.wday, zone = now.zone, fallback = cfg.fallback }
  out.blocked = M.blocked(cfg)
  if out.blocked then return out end
  local rule = M.select(cfg, now)
  if rule then
    out.rule_id, out.priority, out.name, out.target = rule.id, rule.priority, rule.name, rule.target
    out.decided_by_script = rule.target.type == "script"
  end
  return out
end

-- ---------------------------------------------------------------- steps

local function prompt(call, name)
  local lang = (call.vars.lang == "ru") and "ru" or "en"
  return lang .. "/" .. name
end

-- Bridge outcomes to step outcomes.
local function bridged(outcome)
  if outcome == "answered" or outcome == "busy" or outcome == "no_answer" then return outcome end
  if outcome == "cancelled" then return "ended" end
  return "no_route" -- no_route, rejected, failed
end

local run_step

local steps = {}

function steps.user(call, t)
  local o = cwroute.lookup(call.domain_id, "user", t.id)
  local user = o and o.active and call:resolve(o.extension)
  if not user or user.kind ~= "user" then return "no_route" end
  t.user_info = user
  if user.greeting then
    call:ring(true)
    call:play(user.greeting)
  end
  return bridged(forward.ring(call, user))
end

local queue_outcomes = { answered = "answered", timeout = "no_answer", full = "busy",
                         empty = "no_route", callback = "ended", hangup = "ended" }

function steps.group(call, t)
  local g = cwroute.lookup(call.domain_id, "group", t.id)
  if not g then return "no_route" end
  call:answer()
  local r = call:queue(g.extension, { max_wait = t.timeout })
  if r == "callback" and call.alive then call:play(prompt(call, "callback_registered")) end
  -- a group whose members include no operator ends every call (seed 001 §8.1)
  if r == "no_operators" then call:hangup("unavailable") return "ended" end
  return queue_outcomes[r] or "no_route"
end

function steps.ivr(call, t)
  local ivr = cwroute.lookup(call.domain_id, "ivr", t.id)
  if not ivr then return "no_route" end
  local flow = callapi.flow(ivr.script or "menu")
  flow(call, ivr)
  return "done"
end

-- A user's box is the call API's (scripts/cw/voicemail.lua); a group's box is kept here.
local MIN_MESSAGE_MS = 700

local function group_voicemail(call, g)
  local lang = (call.vars.lang == "ru") and "ru" or "en"
  call:answer()
  call:play({ lang .. "/vm_unavailable", lang .. "/leave_message" })
  call:tone("beep")
  call:sleep(400)
  call:stop()
  local path = ("voicemail/group-%d/%d-%s.wav"):format(g.id, os.time(), call.uuid)
  local ok, ms = call:record(path, { mono = true, max = 120, silence = 6, wait = true })
  if ok and ms >= MIN_MESSAGE_MS then
    local id, err = cwroute.group_message(call.uuid, g.id, path, ms)
    if not id then call:log("voicemail: group message not stored: " .. tostring(err)) end
  end
  if call.alive then
    call:play(lang .. "/vm_message_saved_bye")
    call:hangup()
  end
end

function steps.voicemail(call, t)
  if t.user then
    local u = cwroute.lookup(call.domain_id, "user", t.user)
    local box = u and call:voicemail_box(t.user)
    if not box or not box.enabled then return "no_route" end
    call:voicemail(t.user)
    return "ended"
  end
  local g = cwroute.lookup(call.domain_id, "group", t.group)
  if not g or not g.voicemail then return "no_route" end
  group_voicemail(call, g)
  return "ended"
end

-- Faxes need the call API's fax receiver (call:fax_receive); without one the step has no route.
-- A user's box is named by the user's id (box =), a group's by its id (group =).
function steps.fax(call, t)
  if call.fax_receive then
    call:fax_receive({ box = t.user, group = t.group })
    return "ended"
  end
  call:log("routing: no fax receiver for " .. tostring(t.user or t.group))
  return "no_route"
end

function steps.busy(call)
  call:hangup("busy")
  return "ended"
end

function steps.external(call, t)
  return bridged(call:bridge(t.number, { timeout = t.timeout }))
end

function steps.private_route(call, t)
  return bridged(call:bridge(("trunk:%d:%s"):format(t.trunk_id, t.number), { timeout = t.timeout }))
end

function steps.message(call, t)
  local file
  if t.sound_id then
    local s = cwroute.lookup(call.domain_id, "sound", t.sound_id)
    file = s and s.path
  else
    file = t.prompt
  end
  call:answer()
  if file then call:play(file) end
  return "done"
end

-- What an outcome means when no next step is configured for it.
local function finish(call, t, outcome)
  if not call.alive or outcome == "answered" or outcome == "done" or outcome == "ended" then
    return outcome
  end
  if t.type == "user" and t.user_info and t.user_info.voicemail then
    call:voicemail(t.user_info.id) -- the user's own scheme ends in their voicemail
    return "voicemail"
  end
  if t.type == "group" and outcome ~= "ended" then
    call:play({ prompt(call, "all_operators_busy"), prompt(call, "goodbye") })
  end
  local cause = ({ busy = "busy", no_answer = "no_answer" })[outcome] or "unavailable"
  if call.alive then call:hangup(cause) end
  return outcome
end

run_step = function(call, t, depth)
  local fn = steps[t.type]
  if not fn or depth > 16 then
    call:log("routing: cannot run a step of type " .. tostring(t.type))
    return finish(call, t, "no_route")
  end
  local outcome = fn(call, t)
  if not call.alive or outcome == "ended" then return outcome end
  local key = outcome == "answered" and "done" or outcome
  local next_step = t.on and t.on[key]
  if next_step then
    call:log(("routing: %s after %s -> %s"):format(key, t.type, next_step.type))
    return run_step(call, next_step, depth + 1)
  end
  return finish(call, t, outcome)
end

-- A rule whose target is the tenant's Lua: its answer, or what to do instead.
local function decide(call, cfg, rule, now)
  local info = { caller = call.caller or "", caller_name = call.caller_name or "",
                 dialed = call.dialed, number = cfg.number, rule = rule.id, time = now }
  local target, why = cwroute.decide(call.domain_id, rule.target.code, info)
  if target then return target end
  if why == "none" then return nil end
  call:log(("routing: rule %d script: %s; taking its fallback"):format(rule.id, why))
  return rule.target.fallback or { type = "busy" }
end

-- The routing of an external number, as cwroute.number() read it, or nil.
function M.lookup(call)
  return cwroute.number(call.domain_id, call.dialed, call.caller or "")
end

-- Route the call. Returns "fallback", extension when the number's fallback should take it,
-- "unrouted" when the number has no rules (the dial plan picks the default ring list or busy).
function M.run(call, cfg)
  local blocked = M.blocked(cfg)
  if blocked then
    call:log(("routing: %s refused by the %s of %s"):format(tostring(call.caller), blocked,
             cfg.number))
    return call:hangup("busy")
  end
  local now = call:local_time()
  local i = 0
  while true do
    local rule, at = M.select(cfg, now, i + 1)
    if not rule then break end
    i = at
    local target = rule.target
    if target.type == "script" then target = decide(call, cfg, rule, now) end
    if target then
      call:log(("routing: %s rule %d (priority %d%s) -> %s"):format(cfg.number, rule.id,
               rule.priority, rule.name ~= "" and (", " .. rule.name) or "", target.type))
      return run_step(call, target, 1)
    end
  end
  if cfg.fallback then
    call:log(("routing: %s no rule matched; fallback %s"):format(cfg.number, cfg.fallback))
    return "fallback", cfg.fallback
  end
  if #cfg.rules == 0 then
    -- a number with no rules at all selects nothing: the caller decides (default ring list)
    return "unrouted"
  end
  call:log(("routing: %s no rule matched; busy"):format(cfg.number))
  return call:hangup("busy")
end

return M
