-- alerts.lua - digest of the period's alerts: how many fired, were
-- acknowledged and resolved, and per rule the mean time to acknowledge
-- (MTTA: firing -> ack) and to resolve (MTTR: firing -> resolved).
--
--   telemetry-engine report alerts --since 7d --format html -o alerts.html
local te = require "te"

local function mean(list)
  if #list == 0 then return nil end
  local s = 0
  for _, v in ipairs(list) do s = s + v end
  return s / #list
end

te.report {
  name = "alerts",
  title = "Alert digest",
  description = "alerts fired, acknowledged and resolved; MTTA and MTTR per rule",
  params = { since = "7d", recent = 20 },
  schedule = nil,
  render = function(q, r, params)
    local alerts = q.alerts { limit = 100000 }
    local rules, names = {}, {}
    local fired, acked, resolved, open = 0, 0, 0, 0
    local tta_all, ttr_all = {}, {}
    for _, a in ipairs(alerts) do
      local rr = rules[a.rule]
      if not rr then
        rr = { rule = a.rule, fired = 0, acked = 0, resolved = 0, open = 0, tta = {}, ttr = {},
               severity = a.severity }
        rules[a.rule] = rr
        names[#names + 1] = a.rule
      end
      -- pending episodes have not fired (yet)
      local did_fire = a.state == "firing" or a.state == "resolved"
      if did_fire then
        fired = fired + 1
        rr.fired = rr.fired + 1
      end
      if a.acked_at_s and a.starts_at_s then
        acked = acked + 1
        rr.acked = rr.acked + 1
        local d = a.acked_at_s - a.starts_at_s
        rr.tta[#rr.tta + 1] = d
        tta_all[#tta_all + 1] = d
      end
      if a.state == "resolved" then
        resolved = resolved + 1
        rr.resolved = rr.resolved + 1
        if a.ends_at_s and a.starts_at_s then
          local d = a.ends_at_s - a.starts_at_s
          rr.ttr[#rr.ttr + 1] = d
          ttr_all[#ttr_all + 1] = d
        end
      else
        open = open + 1
        rr.open = rr.open + 1
      end
    end

    r:heading("Summary", 2)
    r:stat { label = "Fired", value = fired, format = "int" }
    r:stat { label = "Acknowledged", value = acked, format = "int" }
    r:stat { label = "Resolved", value = resolved, format = "int" }
    r:stat { label = "Still open", value = open, format = "int" }
    r:stat { label = "MTTA", value = mean(tta_all), format = "s" }
    r:stat { label = "MTTR", value = mean(ttr_all), format = "s" }
    if #alerts == 0 then
      r:text("No alerts in this period.")
    end

    table.sort(names)
    local rows = {}
    for _, n in ipairs(names) do
      local rr = rules[n]
      rows[#rows + 1] = { rule = n, severity = rr.severity, fired = rr.fired, acked = rr.acked,
                          resolved = rr.resolved, open = rr.open, mtta = mean(rr.tta),
                          mttr = mean(rr.ttr) }
    end
    table.sort(rows, function(a, b) return a.fired > b.fired end)
    r:heading("Per rule", 2)
    r:table(rows, {
      { key = "rule", label = "Rule", format = "text" },
      { key = "severity", label = "Severity", format = "text" },
      { key = "fired", label = "Fired", format = "int" },
      { key = "acked", label = "Acked", format = "int" },
      { key = "resolved", label = "Resolved", format = "int" },
      { key = "open", label = "Open", format = "int" },
      { key = "mtta", label = "MTTA", format = "s" },
      { key = "mttr", label = "MTTR", format = "s" } })

    -- alert episodes per day and severity
    local day = 86400
    local first = math.floor(q.since / day) * day
    local x, idx = {}, {}
    for t = first, q["until"] - 1, day do
      x[#x + 1] = q.time(t)
      idx[t] = #x
    end
    local sev = { critical = {}, warning = {}, info = {} }
    for _, s in pairs(sev) do for i = 1, #x do s[i] = 0 end end
    for _, a in ipairs(alerts) do
      local t = a.starts_at_s or a.active_at_s
      local i = t and idx[math.floor(t / day) * day]
      local s = sev[a.severity or "info"]
      if i and s then s[i] = s[i] + 1 end
    end
    r:chart { type = "stacked", title = "Alert episodes per day", x = x,
              series = { { name = "critical", values = sev.critical },
                         { name = "warning", values = sev.warning },
                         { name = "info", values = sev.info } } }

    r:heading("Open now", 2)
    r:alert_list(q.alerts { state = "firing", limit = 100 })
    local recent = {}
    for _, a in ipairs(alerts) do
      if a.state == "resolved" and #recent < (tonumber(params.recent) or 20) then
        recent[#recent + 1] = a
      end
    end
    r:heading("Recently resolved", 2)
    r:alert_list(recent)
  end,
}
