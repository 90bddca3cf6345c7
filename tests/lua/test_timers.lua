-- cw.after, cw.every, cw.sleep: order, timing, cancel, and the same in a tenant VM.

test("sleep waits at least the time asked, and not much longer", function()
  local t0 = host.mono_ms()
  cw.sleep(120)
  local dt = host.mono_ms() - t0
  assert(dt >= 120 and dt < 600, "slept " .. dt .. " ms")
end)

test("after runs once, in time order", function()
  local seen = {}
  cw.after(60, function() seen[#seen + 1] = "b" end)
  cw.after(20, function() seen[#seen + 1] = "a" end)
  cw.after(0, function() seen[#seen + 1] = "now" end)
  cw.sleep(150)
  eq(table.concat(seen, ","), "now,a,b", "order")
end)

test("every repeats until cancelled", function()
  local n = 0
  local h = cw.every(20, function() n = n + 1 end)
  assert(h:active())
  cw.sleep(230)
  h:cancel()
  assert(not h:active())
  assert(n >= 3 and n <= 12, "ticks: " .. n)
  local at_cancel = n
  cw.sleep(80)
  eq(n, at_cancel, "ticks after cancel")
end)

test("a cancelled after never runs", function()
  local ran = false
  local h = cw.after(30, function() ran = true end)
  h:cancel()
  cw.sleep(80)
  assert(not ran)
end)

test("every skips ticks while the previous run still waits", function()
  local starts, active, most = 0, 0, 0
  local h = cw.every(10, function()
    starts = starts + 1
    active = active + 1
    most = math.max(most, active)
    cw.sleep(100)
    active = active - 1
  end)
  cw.sleep(450)
  h:cancel()
  eq(most, 1, "runs at once")
  assert(starts >= 2 and starts <= 5, "runs: " .. starts)
end)

test("a failing timer callback does not stop the others", function()
  local ok = false
  cw.after(10, function() error("callback fails on purpose") end)
  cw.after(30, function() ok = true end)
  cw.sleep(80)
  assert(ok)
end)

test("bad arguments are errors that name the argument", function()
  local ok, err = pcall(cw.after, -5, function() end)
  assert(not ok and err:find("milliseconds"), err)
  ok, err = pcall(cw.every, 0, function() end)
  assert(not ok and err:find("milliseconds"), err)
  ok, err = pcall(cw.after, 10, "not a function")
  assert(not ok and err:find("function expected"), err)
  ok, err = pcall(cw.sleep, "soon")
  assert(not ok, err)
end)

test("timers in a tenant VM", function()
  local st, err, res = host.tenant(7, [[
    local seen = {}
    cw.after(30, function() seen[#seen + 1] = 2 end)
    cw.after(10, function() seen[#seen + 1] = 1 end)
    cw.sleep(60)
    return table.concat(seen, ",")
  ]])
  eq(st, "done", "status " .. tostring(err))
  eq(res, "1,2")
end)

test("a tenant may not start an unbounded number of timers", function()
  local st, err = host.tenant(8, [[
    for i = 1, 5000 do cw.after(60000, function() end) end
  ]])
  eq(st, "error")
  assert(err:find("too many timers"), err)
end)
