-- cw/schedule.lua - does a weekly schedule cover a moment?
--
-- A schedule is {periods = {{days = {1, 2, 3, 4, 5}, from = "10:00", to = "19:00"}, ...}}
-- with 1 = Monday and times in the domain's time zone; `to` includes its
-- whole minute (00:00-23:59 is the full day). No schedule means always.
-- `now` is what call:local_time() returns.
local M = {}

local function minutes(hhmm)
  local h, m = hhmm:match("^(%d%d):(%d%d)$")
  return tonumber(h) * 60 + tonumber(m)
end

function M.matches(schedule, now)
  if schedule == nil or schedule.periods == nil then return true end
  for _, p in ipairs(schedule.periods) do
    for _, d in ipairs(p.days) do
      if d == now.wday and now.minutes >= minutes(p.from) and now.minutes <= minutes(p.to) then
        return true
      end
    end
  end
  return false
end

return M
