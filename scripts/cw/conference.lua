-- cw/conference.lua - call:conference(room, opts): a party enters a
-- conference room and stays until they hang up, press the exit key, are
-- removed by a moderator, or the room ends.
--
-- Built on the core's primitives (scripts/README.md): conference_room()
-- reads the room's settings, collect() asks for the PIN, conference_join()
-- waits in the mixer, conference_result() says how the party left.
local M = callapi.methods

-- call:conference(room, { pin=, moderator=, mute=, deaf=, max=, exit_key=, language=,
--                         record=, announce= })
-- room: a conference room's extension or name (or "room:<id>"), or any other name for an
-- ad-hoc room of the domain. The room's PIN (or opts.pin) is asked for, three tries; its
-- moderator PIN makes the party a moderator, as does owning the room or opts.moderator.
-- Returns "left", "kicked", "ended", "full", "bad_pin", or nil and "hangup".
function M.conference(call, room, o)
  o = o or {}
  local info = call:conference_room(room)
  local lang = o.language or (info and info.language) or call.vars.lang or "en"
  local ok, why = call:answer()
  if not ok then return nil, why end
  local pin = o.pin
  if pin == nil and info then pin = info.pin end
  local moderator = o.moderator
  if moderator == nil and info and info.owner then moderator = true end
  if pin and pin ~= "" and not moderator then
    local entered = false
    for try = 1, 3 do
      local digits, how = call:collect{ prompt = lang .. "/conf_enter_pin", max = 12,
                                        terminator = "#", timeout = 10 }
      if how == "hangup" then return nil, "hangup" end
      if digits == pin then entered = true break end
      if info and info.moderator_pin and digits == info.moderator_pin then
        entered, moderator = true, true
        break
      end
      call:play(lang .. "/conf_wrong_pin")
      call:flush_digits()
    end
    if not entered then
      call:play(lang .. "/goodbye")
      return "bad_pin"
    end
  end
  local res, err = call:conference_join(info and info.name or room, {
    mute = o.mute, deaf = o.deaf, moderator = moderator, max = o.max, exit_key = o.exit_key,
    language = lang, record = o.record, announce = o.announce })
  if res == nil then
    if err == "full" then
      call:play({ lang .. "/conf_full", lang .. "/goodbye" })
      return "full"
    end
    return nil, err
  end
  return call:conference_result()
end

return M
