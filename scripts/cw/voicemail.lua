-- cw/voicemail.lua - leaving and hearing voicemail.
--
-- leave(call, box): the box greeting (or "please leave a message"), a
-- beep, then up to two minutes of message; hanging up or # ends it. The
-- message is stored and its owner told by e-mail with the recording.
-- listen(call, box): the owner's menu from their phone (*97): PIN if the
-- box has one, the count of new messages, then each message with
-- replay / delete / save / next.
local say = require("cw.say")
local M = {}

local MIN_MESSAGE_MS = 700 -- shorter is a hang-up at the beep, not a message

local function lang_of(box)
  return (box and box.language == "ru") and "ru" or "en"
end

local function p(lang, ...)
  local out = {}
  for i, name in ipairs({ ... }) do out[i] = lang .. "/" .. name end
  return out
end

function M.leave(call, box_id)
  local box = call:voicemail_box(box_id)
  if not box then return nil, "no_box" end
  local lang = lang_of(box)
  call:answer()
  if box.greeting then
    call:play(box.greeting)
  else
    call:play(p(lang, "vm_unavailable", "leave_message"))
  end
  call:tone("beep")
  call:sleep(400)
  call:stop()
  local path = ("voicemail/%d/%d-%s.wav"):format(box_id, os.time(), call.uuid)
  local ok, ms = call:record(path, { mono = true, max = 120, silence = 6, wait = true })
  if not ok then
    call:log("voicemail: recording failed: " .. tostring(ms))
    return nil, "error"
  end
  if ms < MIN_MESSAGE_MS then return nil, "empty" end
  local id, err = call:voicemail_store(box_id, path, ms)
  if call.alive then
    call:play(p(lang, "vm_message_saved_bye"))
    call:hangup()
  end
  return id, err
end

local function count_prompt(lang, n)
  if n == 0 then return p(lang, "vm_no_messages") end
  local words = say.words(lang, "number", n) or {}
  local unit = "vm_new_messages_5"
  if lang == "ru" then
    local r100, r10 = n % 100, n % 10
    if r10 == 1 and r100 ~= 11 then unit = "vm_new_message"
    elseif r10 >= 2 and r10 <= 4 and (r100 < 12 or r100 > 14) then unit = "vm_new_messages_2" end
  elseif n == 1 then
    unit = "vm_new_message"
  end
  local out = p(lang, "vm_you_have")
  for _, w in ipairs(words) do out[#out + 1] = w end
  out[#out + 1] = lang .. "/" .. unit
  return out
end

-- opts.require_pin: refuse a box without a PIN (someone else's box, dialled by number)
function M.listen(call, box_id, opts)
  local box = call:voicemail_box(box_id)
  if not box then return call:hangup("rejected") end
  local lang = lang_of(box)
  call:answer()
  if opts and opts.require_pin and not box.has_pin then
    call:play(p(lang, "access_denied", "goodbye"))
    return call:hangup()
  end
  if box.has_pin then
    local granted = false
    for _ = 1, 3 do
      local pin = call:collect{ prompt = p(lang, "vm_enter_pin"), min = 1, max = 12,
                                terminator = "#", timeout = 8 }
      if pin == nil and not call.alive then return end
      if pin and call:voicemail_pin_ok(box_id, pin) then granted = true break end
      call:play(p(lang, "vm_wrong_pin"))
    end
    if not granted then
      call:play(p(lang, "goodbye"))
      return call:hangup()
    end
  end
  local messages = call:voicemail_list(box_id, { new_only = true })
  call:play(count_prompt(lang, #messages))
  local i = 1
  while i <= #messages and call.alive do
    local m = messages[i]
    call:play(p(lang, i == 1 and "vm_first_message" or "vm_next_message"))
    call:play(m.path)
    local key = call:collect{ prompt = p(lang, "vm_message_menu"), timeout = 6 }
    if key == "1" then
      -- replay: same message again
    elseif key == "7" then
      call:voicemail_mark(box_id, m.id, "delete")
      call:play(p(lang, "vm_deleted"))
      i = i + 1
    else
      call:voicemail_mark(box_id, m.id, "heard")
      if key == "9" then call:play(p(lang, "vm_saved")) end
      i = i + 1
    end
  end
  if call.alive then
    call:play(p(lang, "vm_no_more_messages", "goodbye"))
    call:hangup()
  end
end

-- the methods scripts use: call:voicemail(box) and call:voicemail_menu(box)
callapi.methods.voicemail = M.leave
callapi.methods.voicemail_menu = M.listen

return M
