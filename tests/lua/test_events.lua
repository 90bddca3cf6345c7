-- cw.on / cw.emit across the system VM and tenant VMs.

test("system script receives what it subscribed to, in order", function()
  local got = {}
  local h = cw.on("test.order.", function(ev) got[#got + 1] = ev.data.n end)
  for i = 1, 5 do cw.emit("test.order.x", {n = i}) end
  cw.emit("test.other", {n = 99})
  cw.sleep(30)
  h:cancel()
  eq(table.concat(got, ","), "1,2,3,4,5")
end)

test("the event table carries type, id, time and domain", function()
  local ev
  local h = cw.on("test.fields", function(e) ev = e end)
  local before = cw.now()
  cw.emit("test.fields", {a = {b = {1, 2, 3}}, s = "x", yes = true}, 42)
  cw.sleep(20)
  h:cancel()
  eq(ev.type, "test.fields")
  eq(ev.domain_id, 42)
  assert(ev.id > 0 and ev.ts >= before - 1000, "id/ts")
  eq(ev.data.a.b[3], 3)
  eq(ev.data.s, "x")
  eq(ev.data.yes, true)
end)

test("cancelled subscription gets nothing more", function()
  local n = 0
  local h = cw.on("test.cancel", function() n = n + 1 end)
  cw.emit("test.cancel")
  cw.sleep(10)
  h:cancel()
  cw.emit("test.cancel")
  cw.sleep(20)
  eq(n, 1)
end)

test("a tenant sees only its own domain's events", function()
  -- tenant 11 collects for 150 ms
  local results = {}
  cw.after(0, function()
    local st, err, res = host.tenant(11, [[
      local got = {}
      cw.on("", function(ev) got[#got + 1] = ev.type .. "@" .. ev.domain_id end)
      cw.sleep(150)
      return table.concat(got, " ")
    ]])
    results.st, results.err, results.res = st, err, res
  end)
  cw.sleep(30)
  cw.emit("call.started", {uuid = "a"}, 11)
  cw.emit("call.started", {uuid = "b"}, 12)
  cw.emit("config.reloaded", {}, 0)
  cw.emit("agent.state", {state = "ready"}, 11)
  cw.sleep(200)
  eq(results.st, "done", tostring(results.err))
  eq(results.res, "call.started@11 agent.state@11")
end)

test("tenant emits only script.* and custom.* for its own domain", function()
  local seen = {}
  local h = cw.on("custom.", function(ev) seen[#seen + 1] = ev end)
  local st, err = host.tenant(13, [[ cw.emit("custom.crm_sync", {deal = 5}) ]])
  eq(st, "done", tostring(err))
  cw.sleep(20)
  h:cancel()
  eq(#seen, 1)
  eq(seen[1].domain_id, 13)
  eq(seen[1].data.deal, 5)
  st, err = host.tenant(13, [[ cw.emit("call.hangup", {}) ]])
  eq(st, "error")
  assert(err:find("script.%* and custom.%*"), err)
  st, err = host.tenant(13, [[ cw.emit("custom.x", {}, 14) ]])
  eq(st, "error")
  assert(err:find("own domain"), err)
end)

test("bad event data is refused with the path that is wrong", function()
  local ok, err = pcall(cw.emit, "test.bad", {list = {1, 2, function() end}})
  assert(not ok and err:find("data.list%[3%]"), err)
  ok, err = pcall(cw.emit, "test.bad", {1, 2, 3})
  assert(not ok and err:find("named fields"), err)
  ok, err = pcall(cw.emit, "Test Bad", {})
  assert(not ok and err:find("event type"), err)
  local t = {} t.self = t
  ok, err = pcall(cw.emit, "test.bad", t)
  assert(not ok and err:find("nested deeper"), err)
end)

test("a failing handler does not stop the next one", function()
  local n = 0
  local h1 = cw.on("test.fail", function() error("handler fails on purpose") end)
  local h2 = cw.on("test.fail", function() n = n + 1 end)
  cw.emit("test.fail")
  cw.emit("test.fail")
  cw.sleep(30)
  h1:cancel() h2:cancel()
  eq(n, 2)
end)

test("a runaway tenant handler is stopped and others still run", function()
  local st = host.tenant(15, [[
    cw.on("script.spin", function() while true do end end)
    return 1
  ]])
  eq(st, "done")
  local after = 0
  local h = cw.on("script.spin", function() after = after + 1 end)
  cw.emit("script.spin", {}, 15)
  cw.sleep(200)
  h:cancel()
  eq(after, 1)
end)
