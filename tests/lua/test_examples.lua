-- The examples of scripts/README.md, run as they are shipped.
-- the shipped scripts folder, for require in the system VM and in tenant VMs
local scripts = os.getenv("CW_SOURCE_DIR") .. "/scripts"
package.path = scripts .. "/?.lua;" .. package.path
host.config("scripts_dir", scripts)

local base = host.http_server()

test("crm_webhook posts each event once and retries failures", function()
  local hook = require("examples.crm_webhook").start{ url = base .. "/record", events = "test.crm.",
                                                      token = "t0k" }
  cw.emit("test.crm.answered", { uuid = "c-1", number = "+74951234567" }, 3)
  cw.emit("test.other", { uuid = "c-2" })
  cw.emit("test.crm.hangup", { uuid = "c-1" }, 3)
  local t0 = host.mono_ms()
  while hook.stats.sent < 2 and host.mono_ms() - t0 < 3000 do cw.sleep(10) end
  hook.stop()
  eq(hook.stats.sent, 2)
  local got = cw.json.decode(assert(cw.http{ url = base .. "/recorded" }).body)
  eq(#got, 2)
  local first = cw.json.decode(got[1])
  eq(first.type, "test.crm.answered")
  eq(first.domain_id, 3)
  eq(first.data.number, "+74951234567")

  local failing = require("examples.crm_webhook").start{ url = base .. "/record?status=500",
    events = "test.crm2.", tries = 2, retry_ms = 10 }
  cw.emit("test.crm2.x", {})
  t0 = host.mono_ms()
  while failing.stats.failed < 1 and host.mono_ms() - t0 < 3000 do cw.sleep(10) end
  failing.stop()
  eq(failing.stats.failed, 1)
  eq(#cw.json.decode(assert(cw.http{ url = base .. "/recorded" }).body), 4) -- 2 tries
end)

test("heartbeat beats and stops", function()
  local seen = 0
  local sub = cw.on("custom.heartbeat", function() seen = seen + 1 end)
  local hb = require("examples.heartbeat").start{ every_ms = 20, remind_ms = 30 }
  cw.sleep(130)
  hb.stop()
  local beats = hb.beats()
  assert(beats >= 3, "beats " .. beats)
  cw.sleep(60)
  eq(hb.beats(), beats, "beats after stop")
  sub:cancel()
  eq(seen, beats)
end)

test("directory reads users and groups, in the system VM and a tenant's", function()
  local now = os.time()
  local d = tonumber(host.sql("INSERT INTO domains (name, created_at) VALUES ('dir.test', ?) " ..
                              "RETURNING id", now)[1].id)
  local function user(login, ext, name, op)
    return tonumber(host.sql("INSERT INTO users (domain_id, login, display_name, extension, " ..
      "role, is_operator, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, " ..
      "'operator', ?, 'x', ?, ?) RETURNING id", d, login, name, ext, op and 1 or 0, now, now)[1].id)
  end
  local a = user("anna", "101", "Anna Petrova", true)
  user("ivan", "103", "Ivan Sidorov", true)
  user("boss", "200", "The Boss", false)
  local g = tonumber(host.sql("INSERT INTO call_groups (domain_id, name, extension, created_at) " ..
                              "VALUES (?, 'sales', '500', ?) RETURNING id", d, now)[1].id)
  host.sql("INSERT INTO call_group_members (group_id, user_id, priority) VALUES (?, ?, 1)", g, a)
  local dir = require("examples.directory")
  eq(dir.name_of("101", "dir.test"), "Anna Petrova")
  eq(table.concat(dir.operator_extensions("dir.test"), ","), "101,103")
  eq(dir.group_members("sales", "dir.test")[1], "Anna Petrova (101)")
  local st, err, res = host.tenant(d, [[
    local dir = require("examples.directory")
    return dir.name_of("200") .. "|" .. table.concat(dir.operator_extensions(), ",")
  ]])
  eq(st, "done", tostring(err))
  eq(res, "The Boss|101,103")
end)
