-- overview.lua - LLM usage at a glance (kind llm_call: tags provider,
-- model, tier, workflow, status; fields cost_usd, latency_ms,
-- input_tokens, output_tokens).
--
--   telemetry-engine report overview --since 30d --format html -o overview.html
local te = require "te"

-- A bucket size that gives a readable number of points for the range.
local function step_for(seconds)
  if seconds <= 6 * 3600 then return "15m", 900 end
  if seconds <= 2 * 86400 then return "1h", 3600 end
  if seconds <= 14 * 86400 then return "6h", 6 * 3600 end
  if seconds <= 90 * 86400 then return "1d", 86400 end
  return "1w", 7 * 86400
end

local function sum(rows, key)
  local s = 0
  for _, r in ipairs(rows) do s = s + (r[key] or 0) end
  return s
end

-- Relative change from before to now; nil when there is no base.
local function delta(now, before)
  if not now or not before or before == 0 then return nil end
  return (now - before) / before
end

te.report {
  name = "overview",
  title = "LLM usage overview",
  description = "cost, calls, success rate, latency, cost by provider, tier and workflow",
  params = { since = "7d", top = 5, failures = 10 },
  schedule = nil,
  render = function(q, r, params)
    local span = q["until"] - q.since
    local every, step_s = step_for(span)
    local totals = q.query { kind = "llm_call",
      aggs = { calls = "count", cost = "sum:cost_usd", avg = "avg:latency_ms",
               p95 = "p95:latency_ms", input = "sum:input_tokens",
               output = "sum:output_tokens" } }[1] or {}
    local prev = q.query { kind = "llm_call", since = q.since - span, ["until"] = q.since,
      aggs = { calls = "count", cost = "sum:cost_usd" } }[1] or {}
    local by_status = q.query { kind = "llm_call", group_by = { "status" },
      aggs = { n = "count" } }
    local ok = 0
    for _, row in ipairs(by_status) do
      if row.status == "ok" then ok = row.n end
    end
    local calls = totals.calls or 0

    r:heading("Summary", 2)
    r:stat { label = "Total cost", value = totals.cost or 0, format = "usd",
             delta = delta(totals.cost, prev.cost) }
    r:stat { label = "Calls", value = calls, format = "int",
             delta = delta(calls, prev.calls) }
    r:stat { label = "Success rate", value = calls > 0 and ok / calls or nil, format = "pct" }
    r:stat { label = "Avg latency", value = totals.avg, format = "ms" }
    r:stat { label = "p95 latency", value = totals.p95, format = "ms" }
    r:stat { label = "Input tokens", value = totals.input or 0, format = "int" }
    r:stat { label = "Output tokens", value = totals.output or 0, format = "int" }
    if calls == 0 then
      r:text("No LLM calls (kind llm_call) in this period.")
    end

    -- cost over time: one point per bucket, empty buckets as zero
    local series = q.query { kind = "llm_call", every = every, aggs = { cost = "sum:cost_usd" } }
    local by_t = {}
    for _, row in ipairs(series) do by_t[row.t] = row.cost or 0 end
    local x, values = {}, {}
    local first = math.floor(q.since / step_s) * step_s
    for t = first, q["until"] - 1, step_s do
      x[#x + 1] = q.time(t)
      values[#values + 1] = by_t[t] or 0
    end
    r:heading("Cost over time", 2)
    r:chart { type = "line", title = "Cost per " .. every, x = x, format = "usd",
              series = { { name = "cost", values = values } } }

    local by_provider = q.query { kind = "llm_call", group_by = { "provider" },
      aggs = { cost = "sum:cost_usd", calls = "count", p95 = "p95:latency_ms" } }
    table.sort(by_provider, function(a, b) return (a.cost or 0) > (b.cost or 0) end)
    local px, pv = {}, {}
    for _, row in ipairs(by_provider) do
      px[#px + 1] = row.provider or "(none)"
      pv[#pv + 1] = row.cost or 0
    end
    r:heading("Cost by provider", 2)
    r:chart { type = "pie", title = "Cost by provider", x = px, format = "usd",
              series = { { name = "cost", values = pv } } }
    r:table(by_provider, {
      { key = "provider", label = "Provider", format = "text" },
      { key = "calls", label = "Calls", format = "int" },
      { key = "cost", label = "Cost", format = "usd" },
      { key = "p95", label = "p95 latency", format = "ms" } })

    local by_tier = q.query { kind = "llm_call", group_by = { "tier" },
      aggs = { input = "sum:input_tokens", output = "sum:output_tokens" } }
    table.sort(by_tier, function(a, b) return (a.tier or "") < (b.tier or "") end)
    local tx, tin, tout = {}, {}, {}
    for _, row in ipairs(by_tier) do
      tx[#tx + 1] = row.tier or "(none)"
      tin[#tin + 1] = row.input or 0
      tout[#tout + 1] = row.output or 0
    end
    r:heading("Tokens by tier", 2)
    r:chart { type = "stacked", title = "Input and output tokens by tier", x = tx,
              series = { { name = "input tokens", values = tin },
                         { name = "output tokens", values = tout } } }

    local wf = q.query { kind = "llm_call", group_by = { "workflow" },
      aggs = { cost = "sum:cost_usd", calls = "count", avg = "avg:latency_ms" } }
    table.sort(wf, function(a, b) return (a.cost or 0) > (b.cost or 0) end)
    local top = {}
    for i = 1, math.min(tonumber(params.top) or 5, #wf) do top[i] = wf[i] end
    r:heading("Top " .. #top .. " workflows by cost", 2)
    r:table(top, {
      { key = "workflow", label = "Workflow", format = "text" },
      { key = "calls", label = "Calls", format = "int" },
      { key = "cost", label = "Cost", format = "usd" },
      { key = "avg", label = "Avg latency", format = "ms" } })

    local failures = {}
    for _, ev in ipairs(q.events { kind = "llm_call", where = { status = { "error", "timeout" } },
                                   limit = tonumber(params.failures) or 10 }) do
      failures[#failures + 1] = {
        time = ev.ts, provider = ev.tags.provider, model = ev.tags.model,
        workflow = ev.tags.workflow, status = ev.tags.status,
        latency = ev.fields.latency_ms }
    end
    r:heading("Recent failures", 2)
    r:table(failures, {
      { key = "time", label = "Time", format = "text" },
      { key = "provider", label = "Provider", format = "text" },
      { key = "model", label = "Model", format = "text" },
      { key = "workflow", label = "Workflow", format = "text" },
      { key = "status", label = "Status", format = "text" },
      { key = "latency", label = "Latency", format = "ms" } })
  end,
}
