-- cw-test: both-stores
-- Read access to the domain model: the system VM sees every domain, a
-- tenant only its own.

local now = os.time()
local function domain(name)
  return tonumber(host.sql("INSERT INTO domains (name, display_name, timezone, created_at) " ..
    "VALUES (?, ?, 'Europe/Moscow', ?) RETURNING id", name, "Domain " .. name, now)[1].id)
end
local function user(d, login, ext, role, op)
  return tonumber(host.sql("INSERT INTO users (domain_id, login, display_name, extension, role, " ..
    "is_operator, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, " ..
    "'$pbkdf2$secret-hash', ?, ?) RETURNING id",
    d, login, "User " .. ext, ext, role, op and 1 or 0, login .. "@example.org", now, now)[1].id)
end

local a = domain("a.test")
local b = domain("b.test")
local a1 = user(a, "anna", "101", "operator", true)
local a2 = user(a, "boris", "102", "operator", true)
user(a, "chief", "200", "supervisor", false)
user(b, "other", "101", "operator", true)
local g = tonumber(host.sql("INSERT INTO call_groups (domain_id, name, extension, strategy, " ..
  "created_at) VALUES (?, 'support', '500', 'longest_idle', ?) RETURNING id", a, now)[1].id)
host.sql("INSERT INTO call_group_members (group_id, user_id, priority) VALUES (?, ?, 1)", g, a2)
host.sql("INSERT INTO call_group_members (group_id, user_id, priority) VALUES (?, ?, 2)", g, a1)

test("system VM reads any domain by id or name", function()
  local d = cw.domain("a.test")
  eq(d.id, a)
  eq(d.display_name, "Domain a.test")
  eq(d.timezone, "Europe/Moscow")
  eq(cw.domain(b).name, "b.test")
  eq(cw.domain("missing.test"), nil)
  local ok, err = pcall(cw.domain)
  assert(not ok and err:find("which domain"), err)
end)

test("users with filters, no secrets", function()
  local us = cw.users{domain = "a.test"}
  eq(#us, 3)
  eq(us[1].extension, "101")
  eq(us[1].login, "anna")
  eq(us[1].is_operator, true)
  eq(us[1].password_hash, nil)
  local ops = cw.users{domain = a, operator = true}
  eq(#ops, 2)
  eq(#cw.users{domain = a, role = "supervisor"}, 1)
  eq(#cw.users{domain = a, limit = 1, offset = 1}, 1)
  eq(cw.users{domain = a, limit = 1, offset = 1}[1].login, "boris")
  for _, u in ipairs(us) do
    for k in pairs(u) do assert(not k:find("password") and not k:find("ha1"), k) end
  end
end)

test("one user by extension, id or login", function()
  eq(cw.user("102", "a.test").login, "boris")
  eq(cw.user({id = a1}, a).extension, "101")
  eq(cw.user({login = "other"}, b).extension, "101")
  eq(cw.user("999", a), nil)
end)

test("a group with its members in priority order", function()
  local grp = cw.group("support", "a.test")
  eq(grp.extension, "500")
  eq(grp.strategy, "longest_idle")
  eq(#grp.members, 2)
  eq(grp.members[1].login, "boris")
  eq(grp.members[2].priority, 2)
  eq(cw.group("500", a).name, "support")
  eq(cw.group({id = g}, a).name, "support")
end)

test("a tenant sees its own domain and nothing else", function()
  local st, err, res = host.tenant(a, [[
    local mine = cw.domain()
    return {
      name = mine.name,
      id = cw.domain_id,
      users = #cw.users(),
      other = cw.domain("b.test") == nil,
      other_users = #cw.users{domain = "b.test"},
      other_user = cw.user("101", "b.test") == nil,
      me = cw.user("101").login,
      group = #cw.group("support").members,
    }
  ]])
  eq(st, "done", tostring(err))
  eq(res.name, "a.test")
  eq(res.id, a)
  eq(res.users, 3)
  eq(res.other, true)
  eq(res.other_users, 0)
  eq(res.other_user, true)
  eq(res.me, "anna")
  eq(res.group, 2)
end)
