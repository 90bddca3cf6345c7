-- cw/forward.lua - a user's incoming-call forwarding scheme (seed 001 §7.5.2).
--
-- The user's enabled rules whose schedule covers now ring in ascending
-- priority; equal priorities ring together, each number for its own ring
-- time. No answer moves on to the next priority; a busy number ends the
-- sequence. When every number has been tried the call goes to voicemail if
-- the user has it on, else it ends.
--
-- Equal priorities and schedules (the seed's example E3): within one
-- priority, a rule whose schedule covers now takes precedence over rules
-- without a schedule, so a scheduled mobile replaces the desk phone during
-- its hours; with no schedules in play, equal priorities ring together.
local schedule = require("cw.schedule")
local M = {}

-- The rule groups to ring now, lowest priority first.
function M.plan(call, user)
  local rules = call:forwarding(user.id)
  if #rules == 0 then -- a user created before schemes existed: the default main rule
    rules = { { kind = "sip", number = user.login or user.extension, priority = 10,
                ring_time = 40, enabled = true, is_main = true } }
  end
  local now = call:local_time()
  local by_prio, order = {}, {}
  for _, r in ipairs(rules) do
    if r.enabled and schedule.matches(r.schedule, now) then
      local g = by_prio[r.priority]
      if not g then
        g = { scheduled = {}, always = {} }
        by_prio[r.priority] = g
        order[#order + 1] = r.priority
      end
      table.insert(r.schedule and g.scheduled or g.always, r)
    end
  end
  table.sort(order)
  local plan = {}
  for _, p in ipairs(order) do
    local g = by_prio[p]
    plan[#plan + 1] = #g.scheduled > 0 and g.scheduled or g.always
  end
  return plan
end

local function target_of(rule, user)
  if rule.kind == "sip" then
    if rule.is_main then return "user:" .. user.id end
    return "ext:" .. (rule.number:match("^([^@]+)") or rule.number)
  end
  return rule.number -- an outside number: through a trunk, within the user's restriction
end

-- Ring the scheme; returns the last outcome ("answered", "busy", "no_answer", ...).
function M.ring(call, user)
  local outcome = "no_route"
  for _, group in ipairs(M.plan(call, user)) do
    local targets = {}
    for _, r in ipairs(group) do
      targets[#targets + 1] = { to = target_of(r, user), timeout = r.ring_time }
    end
    call:log(("forwarding %s: %d number(s) at priority %d"):format(user.extension or "?",
             #targets, group[1].priority))
    outcome = call:bridge(targets, { ringback = user.ringback })
    call:log(("forwarding %s: %s"):format(user.extension or "?", outcome))
    if outcome == "answered" or outcome == "cancelled" or outcome == "busy" then
      return outcome
    end
  end
  return outcome
end

-- The whole treatment of a call to a user: their personal IVR if they wrote one
-- (seed 000: it runs sandboxed in the tenant's VM; if it fails the call comes
-- back here through dialplan.fallback), else greeting, scheme, voicemail or the end.
function M.run(call, user, opts)
  if user.personal_ivr and not (opts and opts.skip_personal) then
    return call:handover{ code = user.personal_ivr, name = "personal IVR of " .. user.login,
                          fallback = "personal:" .. user.extension }
  end
  if user.greeting then
    call:ring(true) -- early media: the caller hears the greeting before anyone answers
    call:play(user.greeting)
  end
  local outcome = M.ring(call, user)
  if outcome == "answered" or outcome == "cancelled" then return outcome end
  if user.voicemail and call.alive and call.voicemail then
    call:voicemail(user.id)
    return "voicemail"
  end
  if call.alive then
    local cause = ({ busy = "busy", no_answer = "no_answer", rejected = "rejected" })[outcome]
    call:hangup(cause or "unavailable")
  end
  return outcome
end

return M
