-- cw.http against a local HTTP server; the loop runs while requests wait.

local base = host.http_server()

test("GET returns status, headers and body", function()
  local res, err = cw.http{url = base .. "/echo?x=1"}
  assert(res, err)
  eq(res.status, 200)
  eq(res.headers["content-type"], "application/json")
  eq(res.headers["x-test"], "one, two")
  local echo = cw.json.decode(res.body)
  eq(echo.method, "GET")
  eq(echo.uri, "/echo?x=1")
end)

test("POST sends the body and headers", function()
  local res = assert(cw.http{method = "post", url = base .. "/echo",
    headers = {["Content-Type"] = "application/json", ["X-Token"] = "abc"},
    body = cw.json.encode({deal = 7})})
  local echo = cw.json.decode(res.body)
  eq(echo.method, "POST")
  eq(echo.headers["x-token"], "abc")
  eq(cw.json.decode(echo.body).deal, 7)
end)

test("other methods", function()
  for _, m in ipairs({"PUT", "DELETE", "PATCH"}) do
    local res = assert(cw.http{method = m, url = base .. "/echo", body = "b"})
    eq(cw.json.decode(res.body).method, m)
  end
end)

test("HTTP error statuses are results, not failures", function()
  local res = assert(cw.http{url = base .. "/status/503"})
  eq(res.status, 503)
  eq(res.body, "status 503")
  res = assert(cw.http{url = base .. "/nothing-here"})
  eq(res.status, 404)
end)

test("redirects are followed", function()
  local res = assert(cw.http{url = base .. "/redirect"})
  eq(res.status, 200)
  eq(cw.json.decode(res.body).uri, "/echo?from=redirect")
end)

test("the loop keeps running while a request waits", function()
  local ticks = 0
  local h = cw.every(10, function() ticks = ticks + 1 end)
  local t0 = host.mono_ms()
  local res = assert(cw.http{url = base .. "/slow?ms=300"})
  h:cancel()
  eq(res.status, 200)
  assert(host.mono_ms() - t0 >= 290, "too fast")
  assert(ticks >= 15, "ticks while waiting: " .. ticks)
end)

test("requests run side by side", function()
  local done = 0
  local t0 = host.mono_ms()
  for i = 1, 4 do
    cw.after(0, function()
      assert(cw.http{url = base .. "/slow?ms=200"})
      done = done + 1
    end)
  end
  while done < 4 and host.mono_ms() - t0 < 3000 do cw.sleep(10) end
  eq(done, 4)
  assert(host.mono_ms() - t0 < 600, "took " .. (host.mono_ms() - t0) .. " ms")
end)

test("timeout, refused connection and bad input return nil and a message", function()
  local res, err = cw.http{url = base .. "/slow?ms=2000", timeout = 150}
  eq(res, nil)
  assert(err:lower():find("time"), err)
  res, err = cw.http{url = "http://127.0.0.1:1/"}
  eq(res, nil)
  assert(err, "no message")
  res, err = cw.http{url = "file:///etc/passwd"}
  eq(res, nil)
  assert(err:find("http://"), err)
  res, err = cw.http{url = base .. "/echo", headers = {["X-Bad"] = "a\r\nInjected: 1"}}
  eq(res, nil)
  assert(err:find("header"), err)
  local ok, e = pcall(cw.http, {url = base, timeout = -1})
  assert(not ok and e:find("timeout"), e)
  ok, e = pcall(cw.http, {})
  assert(not ok and e:find("url"), e)
end)

test("a response over the size limit fails", function()
  host.config("lua.http_max_body", "10000")
  local res, err = cw.http{url = base .. "/big?n=50000"}
  host.config("lua.http_max_body", "4194304")
  eq(res, nil)
  assert(err:find("larger than 10000"), err)
  res = assert(cw.http{url = base .. "/big?n=50000"})
  eq(#res.body, 50000)
end)

test("tenant scripts may not reach loopback or private addresses", function()
  local function try(url)
    local st, err, res = host.tenant(40, ([[
      local r, e = cw.http{url = "%s", timeout = 2000}
      return {ok = r ~= nil, err = e}
    ]]):format(url))
    eq(st, "done", tostring(err))
    return res
  end
  local res = try(base .. "/echo")
  eq(res.ok, false)
  assert(res.err:find("127.0.0.1 is a loopback or private address"), res.err)
  for _, url in ipairs({"http://10.1.2.3:9/", "http://[::1]:9/", "http://169.254.169.254/",
                        "http://0.0.0.0:9/", "http://192.168.0.1:9/", "http://[fe80::1]:9/"}) do
    res = try(url)
    eq(res.ok, false)
    assert(res.err:find("private address"), url .. ": " .. tostring(res.err))
  end
  -- the system VM is trusted
  assert(cw.http{url = base .. "/echo"})
end)

-- the rest of the file talks to the local test server from tenant VMs too
host.config("lua.tenant_http_private", "true")

test("tenant scripts use cw.http too", function()
  local st, err, res = host.tenant(41, ([[
    local r = assert(cw.http{url = "%s/echo", method = "POST", body = "hi"})
    return cw.json.decode(r.body).body
  ]]):format(base))
  eq(st, "done", tostring(err))
  eq(res, "hi")
end)

test("a tenant request still in flight when its script is stopped is dropped", function()
  local before = host.stats().http_active
  local st = host.tenant(42, ([[
    cw.after(0, function() cw.http{url = "%s/slow?ms=400"} end)
    cw.sleep(50)
    while true do end
  ]]):format(base))
  eq(st, "budget")
  eq(host.stats().http_active, before + 1)
  -- a reload retires the VM: its timer-started coroutine is killed, its request dropped
  assert(host.reload())
  eq(host.stats().http_active, before)
  cw.sleep(450)
end)
