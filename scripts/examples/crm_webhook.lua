-- examples/crm_webhook.lua - post events to a CRM or any web hook.
--
-- Turn it on with a system script of your own, e.g. scripts/crm.lua:
--
--   require("examples.crm_webhook").start{
--     url = "https://crm.example.com/hooks/callwright",
--     events = "call.",          -- event types starting with this
--     token = "secret",          -- sent as "Authorization: Bearer secret"
--   }
--
-- Every matching event goes out as one JSON POST {type, id, ts, domain_id,
-- data}. A failure (no answer, or a status of 300 or more) is retried
-- (tries, default 3) after retry_ms (default 1000). The returned handle
-- has the counts and stop().
local M = {}

function M.start(o)
  assert(type(o) == "table" and type(o.url) == "string", "crm_webhook.start{url = ...}")
  local tries, retry_ms = o.tries or 3, o.retry_ms or 1000
  local stats = { sent = 0, failed = 0 }
  local headers = { ["Content-Type"] = "application/json" }
  if o.token then headers["Authorization"] = "Bearer " .. o.token end

  local sub = cw.on(o.events or "call.", function(ev)
    local body = cw.json.encode({ type = ev.type, id = ev.id, ts = ev.ts,
                                  domain_id = ev.domain_id, data = ev.data })
    for attempt = 1, tries do
      local res, err = cw.http{ method = "POST", url = o.url, headers = headers, body = body,
                                timeout = o.timeout or 5000 }
      if res and res.status < 300 then
        stats.sent = stats.sent + 1
        return
      end
      cw.log("warn", "crm_webhook:", ev.type, "attempt", attempt, "failed:",
             err or ("HTTP " .. res.status))
      if attempt < tries then cw.sleep(retry_ms) end
    end
    stats.failed = stats.failed + 1
  end)

  return { stats = stats, stop = function() sub:cancel() end }
end

return M
