-- cw.json and cw.null.

test("encode and decode round trip", function()
  local s = cw.json.encode({name = "Анна", n = 3, f = 1.5, list = {1, "two", true}, none = cw.null})
  local v = cw.json.decode(s)
  eq(v.name, "Анна")
  eq(v.n, 3)
  eq(v.f, 1.5)
  eq(v.list[2], "two")
  eq(v.none, cw.null)
  eq(cw.json.encode({}), "{}")
  eq(cw.json.encode({1, 2}), "[1,2]")
  eq(cw.json.encode("x"), '"x"')
end)

test("decode errors are values, not exceptions", function()
  local v, err = cw.json.decode('{"a": ')
  eq(v, nil)
  assert(err:find("line 1"), err)
end)

test("encode refuses what JSON cannot hold", function()
  local ok, err = pcall(cw.json.encode, {f = print})
  assert(not ok and err:find("value.f"), err)
  ok, err = pcall(cw.json.encode, {x = 0/0})
  assert(not ok and err:find("nan"), err)
  ok, err = pcall(cw.json.encode, {["\xff"] = 1})
  assert(not ok, err)
  ok, err = pcall(cw.json.encode, "\xff\xfe")
  assert(not ok and err:find("UTF%-8"), err)
end)

test("decoding a big document inside a small tenant VM fails cleanly", function()
  host.config("lua.memory_cap", "2097152")
  local st, err = host.tenant(21, [[
    local parts = {}
    for i = 1, 40000 do parts[i] = '{"k":' .. i .. ',"v":"xxxxxxxxxxxxxxxxxxxx"}' end
    local doc = "[" .. table.concat(parts, ",") .. "]"
    parts = nil
    collectgarbage()
    return #cw.json.decode(doc)
  ]])
  host.config("lua.memory_cap", "33554432")
  assert(st == "memory" or st == "budget", st .. " " .. tostring(err))
end)
