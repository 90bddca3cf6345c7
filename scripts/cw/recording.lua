-- cw/recording.lua - the domain's call-recording policy on every call.
--
-- Requiring this module wraps call:bridge() and call:queue(): before
-- either starts, the core is asked (cwrec.begin) whether the domain, the
-- caller, a user being rung or the group being queued for has recording
-- on; if so the call is recorded from then on (stereo: caller left, the
-- other party right). When the call ends the core keeps the recording only
-- if someone whose calls are recorded actually talked (see
-- core/recording/recording.h), so a flow never has to think about it.
-- Flows that want a recording regardless call M.start(call) themselves.
local M = {}
local methods = callapi.methods

function M.start(call, what)
  local path = cwrec.begin(call.uuid, what or {})
  if not path then return false end
  local ok, err = call:record(path)
  if not ok then
    call:log("recording could not start: " .. tostring(err))
    cwrec.abandon(call.uuid)
    return false
  end
  return true
end

-- once per VM: require() runs this file once
local bridge, queue = methods.bridge, methods.queue
methods.bridge = function(call, targets, opts)
  if call.alive then M.start(call, { targets = targets }) end
  return bridge(call, targets, opts)
end
methods.queue = function(call, key, opts)
  if call.alive then M.start(call, { group = key }) end
  return queue(call, key, opts)
end

return M
