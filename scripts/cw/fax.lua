-- cw/fax.lua - fax on a call: the core's fax_receive / fax_send wait for the
-- end of the T.30 session; these add the fax's record to what they return.
--
--   local ok, fax = call:fax_receive{ box = user.id }
--   -- fax = { id, direction, status, pages, resolution, bit_rate, ecm, remote_ident,
--   --         result, reason }  (status: received | partial | failed)
--   local ok, fax = call:fax_send("faxes/price-list.tiff")
--   -- status: delivered | not_delivered
-- ok is true when the whole document went through; nil and "hangup" (or another
-- reason) when no fax could start.
local M = callapi.methods
local raw_receive, raw_send = M.fax_receive, M.fax_send

local function finish(call, ok, r)
  if ok == nil and r ~= nil and type(r) ~= "table" then
    local last = call:fax_last()
    if not last then return nil, r end
    return false, last
  end
  local last = call:fax_last() or {}
  if type(r) == "table" then last.hungup = r.hungup end
  return ok == true, last
end

function M.fax_receive(call, box)
  return finish(call, raw_receive(call, box))
end

function M.fax_send(call, tiff, opts)
  return finish(call, raw_send(call, tiff, opts))
end

return M
