-- cw/ringlist.lua - ring lists (seed 002): an extension that rings a list of
-- users and outside numbers for the caller.
--
-- Members ring one after another (sequential: the next one after the
-- answer timeout, or at once when one is busy or unreachable) or all at
-- once (simultaneous: the attempt fails after the answer timeout). A member
-- rings only while its schedule covers the domain's local time and while it
-- has a free line (its line count against the calls it is already in).
-- When nobody answers, the whole list is tried again up to `retries` times,
-- the caller hearing the pause melody (or ringing) for `retry_pause`
-- seconds in between. While members ring the caller hears the list's
-- melody (or ringing). With announce_caller, whoever answers first hears
-- "call from" and the caller's number before the two are connected; with
-- record, the conversation is recorded.
--
--   local ringlist = require("cw.ringlist")
--   ringlist.run(call, call:ring_list("6"))   -- by extension, name, id or "default"
local schedule = require("cw.schedule")
local say = require("cw.say")
local M = {}

-- The bridge targets of the members on duty now, in the list's order.
function M.due(call, list)
  local now = call:local_time()
  local targets = {}
  for _, m in ipairs(list.members or {}) do
    if schedule.matches(m.schedule, now) then
      targets[#targets + 1] = { to = m.number, timeout = list.answer_timeout, lines = m.lines }
    end
  end
  return targets
end

-- What the answering party hears: "call from" and the caller's number, digit by digit.
function M.announcement(call, lang)
  lang = lang == "ru" and "ru" or "en" -- the prompt sets there are
  local files = { lang .. "/call_from" }
  local digits = tostring(call.caller or ""):gsub("%D", "")
  if digits ~= "" then
    for _, f in ipairs(say.words(lang, "digits", digits) or {}) do files[#files + 1] = f end
  end
  return files
end

-- Between two attempts: the pause melody, or ringing, for retry_pause seconds.
local function pause(call, list)
  call:ring(true) -- early media, so the caller hears it before anyone answers
  if list.pause_sound then
    call:play({ list.pause_sound }, { loop = true, max = list.retry_pause })
  else
    call:tone("ringback")
    call:sleep(list.retry_pause * 1000)
    call:stop()
  end
end

-- Ring the list; returns the last attempt's outcome ("answered", "cancelled",
-- "no_answer", "busy", "no_route", ...).
function M.ring(call, list)
  local announce = list.announce_caller and M.announcement(call, list.language) or nil
  local attempts = (list.retries or 0) + 1
  local outcome = "no_route"
  for attempt = 1, attempts do
    if attempt > 1 then
      call:log(("ring list %s: %s, pause %d s before attempt %d of %d"):format(
        list.name, outcome, list.retry_pause, attempt, attempts))
      pause(call, list)
      if not call.alive then return "cancelled" end
    end
    local targets = M.due(call, list)
    if #targets == 0 then
      call:log("ring list " .. list.name .. ": no member is on duty now")
      return "no_route"
    end
    call:log(("ring list %s: attempt %d of %d, %d member(s), %s"):format(
      list.name, attempt, attempts, #targets, list.method))
    outcome = call:bridge(targets, {
      sequential = list.method == "sequential",
      timeout = list.answer_timeout,
      ringback = list.ring_sound,
      announce = announce,
      record = list.record and { ring_list = list.id } or nil,
    })
    if outcome == "answered" or outcome == "cancelled" or not call.alive then return outcome end
  end
  return outcome
end

-- The whole treatment of a call to a ring list: ring it; if nobody takes the call, end it
-- with the cause the caller's phone should show.
function M.run(call, list)
  if not list then return call:hangup("no_route") end
  local outcome = M.ring(call, list)
  if outcome ~= "answered" and outcome ~= "cancelled" and call.alive then
    local cause = ({ busy = "busy", no_answer = "no_answer", rejected = "rejected" })[outcome]
    call:hangup(cause or "unavailable")
  end
  return outcome
end

return M
