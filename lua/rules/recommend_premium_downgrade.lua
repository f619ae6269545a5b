-- recommend_premium_downgrade.lua - workflows that pay for the premium tier
-- although their calls are short and the same workflow already succeeds on
-- a cheaper tier: suggest the downgrade, with the estimated saving.
--
-- Over the last 7 days, per workflow: premium calls with a short average
-- answer (output tokens), and a cheaper tier (fast, capable) that served
-- the same workflow at least as reliably. The saving is what the premium
-- calls cost minus what they would have cost at the cheaper tier's average
-- cost per call of that workflow, also projected to 30 days.
local te = require "te"

local config = {
  since = "7d",
  min_calls = 20,              -- on each side of the comparison
  max_avg_output_tokens = 600, -- "short" premium calls
  min_success = 0.97,          -- of the cheaper tier
  max_success_drop = 0.01,     -- cheaper tier may be this much less reliable
  warning_usd_month = 50,      -- projected saving that makes it a warning
}

local RANK = { fast = 1, capable = 2, premium = 3 }

local function round(x, step) return math.floor(x / step + 0.5) * step end

te.recommend {
  name = "premium-downgrade",
  description = "premium-tier workflows whose short calls succeed on a cheaper tier",
  every = "1h",
  fn = function(q)
    local by = {}
    local function cell(row)
      local w = by[row.workflow] or {}
      by[row.workflow] = w
      w[row.tier] = w[row.tier] or { n = 0, ok = 0, cost = 0 }
      return w[row.tier]
    end
    for _, row in ipairs(q.query { kind = "llm_call", since = config.since,
                                   group_by = { "workflow", "tier" },
                                   aggs = { n = "count", cost = "sum:cost_usd",
                                            out = "avg:output_tokens" } }) do
      if row.workflow and row.tier and RANK[row.tier] then
        local c = cell(row)
        c.n, c.cost, c.out = row.n, row.cost or 0, row.out
      end
    end
    for _, row in ipairs(q.query { kind = "llm_call", since = config.since,
                                   where = { status = "ok" }, group_by = { "workflow", "tier" },
                                   aggs = { ok = "count" } }) do
      if row.workflow and row.tier and RANK[row.tier] then cell(row).ok = row.ok end
    end

    local days = te.duration(config.since) / 86400
    local out = {}
    for workflow, tiers in pairs(by) do
      local p = tiers.premium
      if p and p.n >= config.min_calls and p.out and p.out <= config.max_avg_output_tokens then
        local p_success = p.ok / p.n
        local best
        for tier, c in pairs(tiers) do
          if RANK[tier] < RANK.premium and c.n >= config.min_calls then
            local success = c.ok / c.n
            if success >= config.min_success and success >= p_success - config.max_success_drop
               and (not best or RANK[tier] < RANK[best.tier]) then
              best = { tier = tier, c = c, success = success }
            end
          end
        end
        if best then
          local per_call = best.c.cost / best.c.n
          local saving = p.cost - per_call * p.n
          if saving > 0 then
            local month = saving * 30 / days
            out[#out + 1] = {
              key = workflow,
              severity = month >= config.warning_usd_month and "warning" or "info",
              title = string.format("workflow %s: move premium calls to the %s tier",
                                    workflow, best.tier),
              detail = string.format(
                "%d premium calls in %s averaged %.0f output tokens and cost $%.2f; the %s "
                .. "tier served %d calls of this workflow with %.1f%% success at $%.4f per call.",
                p.n, config.since, p.out, p.cost, best.tier, best.c.n, best.success * 100,
                per_call),
              action = string.format(
                "route workflow %s to the %s tier: saves about $%.2f per %s ($%.2f per 30 days)",
                workflow, best.tier, saving, config.since, month),
              evidence = {
                workflow = workflow, window = config.since,
                premium = { calls = p.n, cost_usd = round(p.cost, 0.0001),
                            avg_output_tokens = round(p.out, 0.1),
                            success_rate = round(p_success, 0.0001) },
                target = { tier = best.tier, calls = best.c.n,
                           success_rate = round(best.success, 0.0001),
                           avg_cost_usd = round(per_call, 0.000001) },
                saving_usd = round(saving, 0.01), saving_usd_30d = round(month, 0.01),
              },
            }
          end
        end
      end
    end
    table.sort(out, function(a, b) return a.key < b.key end)
    return out
  end,
}
