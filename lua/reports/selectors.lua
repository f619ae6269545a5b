-- selectors.lua - UI-automation selector performance (kind selector_op:
-- tags strategy, selector, page, app, outcome = found|fallback|failed;
-- fields duration_ms, confidence, retries), with the trend against the
-- previous period of the same length.
--
--   telemetry-engine report selectors --since 7d --format html -o selectors.html
local te = require "te"

local function step_for(seconds)
  if seconds <= 6 * 3600 then return "15m", 900 end
  if seconds <= 2 * 86400 then return "1h", 3600 end
  if seconds <= 14 * 86400 then return "6h", 6 * 3600 end
  if seconds <= 90 * 86400 then return "1d", 86400 end
  return "1w", 7 * 86400
end

local function change(now, before)
  if not now or not before or before == 0 then return nil end
  return (now - before) / before
end

-- Per strategy: ops, found/fallback/failed counts, latency and confidence.
local function by_strategy(q, since, till)
  local stats = {}
  local order = {}
  for _, row in ipairs(q.query { kind = "selector_op", since = since, ["until"] = till,
      group_by = { "strategy" },
      aggs = { ops = "count", p50 = "p50:duration_ms", p95 = "p95:duration_ms",
               conf = "avg:confidence", retries = "avg:retries" } }) do
    local k = row.strategy or "(none)"
    row.strategy = k
    row.fallback, row.failed = 0, 0
    stats[k] = row
    order[#order + 1] = k
  end
  for _, row in ipairs(q.query { kind = "selector_op", since = since, ["until"] = till,
      group_by = { "strategy", "outcome" }, aggs = { n = "count" } }) do
    local s = stats[row.strategy or "(none)"]
    if s and row.outcome == "fallback" then s.fallback = row.n end
    if s and row.outcome == "failed" then s.failed = row.n end
  end
  for _, k in ipairs(order) do
    local s = stats[k]
    s.fallback_rate = s.ops > 0 and s.fallback / s.ops or nil
    s.failure_rate = s.ops > 0 and s.failed / s.ops or nil
  end
  table.sort(order)
  return stats, order
end

te.report {
  name = "selectors",
  title = "Selector performance",
  description = "latency and confidence by strategy, fallback and retry rates, degradations",
  params = { since = "7d", slowest = 10, min_ops = 3 },
  render = function(q, r, params)
    local span = q["until"] - q.since
    local now, order = by_strategy(q, q.since, q["until"])
    local before = by_strategy(q, q.since - span, q.since)
    local total = q.query { kind = "selector_op",
      aggs = { ops = "count", p95 = "p95:duration_ms", conf = "avg:confidence",
               retries = "avg:retries" } }[1] or {}
    local prev = q.query { kind = "selector_op", since = q.since - span, ["until"] = q.since,
      aggs = { ops = "count", p95 = "p95:duration_ms" } }[1] or {}
    local fallback, failed = 0, 0
    for _, k in ipairs(order) do
      fallback = fallback + now[k].fallback
      failed = failed + now[k].failed
    end
    local ops = total.ops or 0

    r:heading("Summary", 2)
    r:stat { label = "Selector operations", value = ops, format = "int",
             delta = change(ops, prev.ops) }
    r:stat { label = "Success rate", value = ops > 0 and (ops - fallback - failed) / ops or nil,
             format = "pct" }
    r:stat { label = "Fallback rate", value = ops > 0 and fallback / ops or nil, format = "pct" }
    r:stat { label = "Failure rate", value = ops > 0 and failed / ops or nil, format = "pct" }
    r:stat { label = "Avg retries", value = total.retries }
    r:stat { label = "p95 duration", value = total.p95, format = "ms",
             delta = change(total.p95, prev.p95) }
    if ops == 0 then
      r:text("No selector operations (kind selector_op) in this period.")
    end

    r:heading("By strategy", 2)
    local rows, x, p95s, confs = {}, {}, {}, {}
    for _, k in ipairs(order) do
      rows[#rows + 1] = now[k]
      x[#x + 1] = k
      p95s[#p95s + 1] = now[k].p95
      confs[#confs + 1] = now[k].conf
    end
    r:table(rows, {
      { key = "strategy", label = "Strategy", format = "text" },
      { key = "ops", label = "Ops", format = "int" },
      { key = "p50", label = "p50", format = "ms" },
      { key = "p95", label = "p95", format = "ms" },
      { key = "conf", label = "Avg confidence", format = "number" },
      { key = "fallback_rate", label = "Fallback", format = "pct" },
      { key = "failure_rate", label = "Failed", format = "pct" },
      { key = "retries", label = "Avg retries", format = "number" } })
    r:chart { type = "bar", title = "p95 duration by strategy (ms)", x = x,
              series = { { name = "p95 ms", values = p95s } } }
    r:chart { type = "bar", title = "Average confidence by strategy", x = x,
              series = { { name = "confidence", values = confs } } }

    -- degradations: worse than the previous period by 20% or more
    local worse = {}
    for _, k in ipairs(order) do
      local a, b = now[k], before[k]
      if b then
        local dp = change(a.p95, b.p95)
        if dp and dp >= 0.2 then
          worse[#worse + 1] = string.format("%s: p95 %.0f ms, up %.0f%% from %.0f ms", k, a.p95,
            dp * 100, b.p95)
        end
        if a.fallback_rate and b.fallback_rate and a.fallback_rate >= b.fallback_rate * 1.2
            and a.fallback_rate - b.fallback_rate >= 0.01 then
          worse[#worse + 1] = string.format("%s: fallback rate %.1f%%, was %.1f%%", k,
            a.fallback_rate * 100, b.fallback_rate * 100)
        end
        local dc = change(a.conf, b.conf)
        if dc and dc <= -0.05 then
          worse[#worse + 1] = string.format("%s: confidence %.3f, was %.3f", k, a.conf, b.conf)
        end
      end
    end
    r:heading("Degradations vs the previous period", 2)
    r:list(worse)

    local sel = q.query { kind = "selector_op", group_by = { "selector", "strategy" },
      aggs = { ops = "count", p95 = "p95:duration_ms", conf = "avg:confidence" } }
    local slow = {}
    for _, row in ipairs(sel) do
      if row.ops >= (tonumber(params.min_ops) or 3) then slow[#slow + 1] = row end
    end
    table.sort(slow, function(a, b) return (a.p95 or 0) > (b.p95 or 0) end)
    while #slow > (tonumber(params.slowest) or 10) do table.remove(slow) end
    r:heading("Slowest selectors", 2)
    r:table(slow, {
      { key = "selector", label = "Selector", format = "text" },
      { key = "strategy", label = "Strategy", format = "text" },
      { key = "ops", label = "Ops", format = "int" },
      { key = "p95", label = "p95", format = "ms" },
      { key = "conf", label = "Avg confidence", format = "number" } })

    -- trend: fallback rate per bucket
    local every, step_s = step_for(span)
    local all, fb = {}, {}
    for _, row in ipairs(q.query { kind = "selector_op", every = every, aggs = { n = "count" } }) do
      all[row.t] = row.n
    end
    for _, row in ipairs(q.query { kind = "selector_op", every = every,
        where = { outcome = { "fallback", "failed" } }, aggs = { n = "count" } }) do
      fb[row.t] = row.n
    end
    local tx, tv = {}, {}
    for t = math.floor(q.since / step_s) * step_s, q["until"] - 1, step_s do
      tx[#tx + 1] = q.time(t)
      tv[#tv + 1] = all[t] and all[t] > 0 and (fb[t] or 0) / all[t] or te.null
    end
    r:heading("Trend", 2)
    r:chart { type = "line", title = "Fallback + failure rate per " .. every, x = tx,
              format = "pct", series = { { name = "fallback or failed", values = tv } } }
  end,
}
