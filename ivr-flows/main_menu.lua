-- main_menu.lua - the demo tenant's main menu (extension 500).
--
-- Greets the caller, asks for a choice and sends 1 to the Support queue.
-- Wrong keys or silence repeat the menu; after three failures it says
-- goodbye. Copy it as a starting point for your own flows.
return function(call, ivr)
  call:answer()
  for _ = 1, 3 do
    local choice, why = call:collect{
      prompt = { "en/welcome", "en/for_support", "en/press_1" },
      min = 1, max = 1, timeout = 5,
    }
    if why == "hangup" then return end
    if choice == "1" then
      call:play("en/please_hold")
      local result = call:queue("Support")
      if result == "callback" then
        call:play("en/callback_registered")
      elseif result ~= "answered" and call.alive then
        call:play({ "en/all_operators_busy", "en/goodbye" })
      end
      return
    end
    if choice ~= nil or why == "invalid" then
      call:play("en/invalid_choice")
    end
  end
  call:play("en/goodbye")
end
