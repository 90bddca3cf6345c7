-- examples/directory.lua - read the domain model: who has an extension,
-- which operators can take calls, who answers a group.
--
-- In a tenant's script the domain is always its own:
--   local dir = require("examples.directory")
--   local name = dir.name_of("101")              --> "Anna Petrova"
-- The system VM names the domain:
--   dir.name_of("101", "demo.local")
local M = {}

-- Display name for an extension, or nil.
function M.name_of(ext, domain)
  local u = cw.user(ext, domain)
  return u and u.display_name
end

-- Extensions of the domain's operators, sorted.
function M.operator_extensions(domain)
  local list = {}
  for _, u in ipairs(cw.users{ domain = domain, operator = true }) do
    if u.extension then list[#list + 1] = u.extension end
  end
  table.sort(list)
  return list
end

-- "name (ext)" of a group's members in ring order.
function M.group_members(group, domain)
  local g = cw.group(group, domain)
  if not g then return nil, "no group " .. tostring(group) end
  local out = {}
  for i, m in ipairs(g.members) do out[i] = ("%s (%s)"):format(m.display_name, m.extension) end
  return out
end

return M
