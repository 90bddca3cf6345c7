-- examples/heartbeat.lua - timers: a periodic event, and a reminder once.
--
--   local hb = require("examples.heartbeat").start{ every_ms = 60000 }
--
-- Emits custom.heartbeat {n, at} every every_ms; after remind_ms (if given)
-- logs a reminder once. hb.beats() is the count so far; hb.stop() ends it.
local M = {}

function M.start(o)
  o = o or {}
  local beats = 0
  local tick = cw.every(o.every_ms or 60000, function()
    beats = beats + 1
    cw.emit("custom.heartbeat", { n = beats, at = cw.now() })
  end)
  local reminder
  if o.remind_ms then
    reminder = cw.after(o.remind_ms, function()
      cw.log("info", "heartbeat: still beating after", beats, "beats")
    end)
  end
  return {
    beats = function() return beats end,
    stop = function()
      tick:cancel()
      if reminder then reminder:cancel() end
    end,
  }
end

return M
