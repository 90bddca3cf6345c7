-- recorded_line.lua - a line whose calls are recorded (seed 001 §C.3 recording).
--
-- The caller hears that the call may be recorded; the call is recorded in
-- stereo (the caller on the left channel, whoever they talk to on the right)
-- into var_dir/recordings/<domain>/<call uuid>.wav, linked to the call's CDR;
-- then the caller is put through to the flow's target. The flow's JSON:
--   { "target": "102", "language": "en" }
-- target: an extension, a user's login, or an outside number.
return function(call, ivr)
  local flow = ivr.flow or {}
  local lang = flow.language or (ivr.settings and ivr.settings.language) or "en"
  call:answer()
  call:play(lang .. "/call_recorded")
  local ok, why = call:record(("recordings/%d/%s.wav"):format(call.domain_id, call.uuid))
  if not ok then call:log("recording did not start: " .. tostring(why)) end
  local outcome = call:bridge(tostring(flow.target or ""))
  if outcome ~= "answered" and call.alive then
    local msg = ({ busy = "extension_busy", no_answer = "no_answer" })[outcome]
      or "extension_unavailable"
    call:play({ lang .. "/" .. msg, lang .. "/goodbye" })
  end
end
