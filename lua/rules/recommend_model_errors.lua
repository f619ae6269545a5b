-- recommend_model_errors.lua - models that fail (status error or timeout)
-- clearly more often than their peers of the same tier.
--
-- Over the last 24 hours, per model: its failure rate against the pooled
-- rate of the other models of its tier. A model is reported when it made
-- enough calls, fails at least twice as often as its peers and at least
-- 2 points more; the action names the peer with the lowest failure rate.
local te = require "te"

local config = {
  since = "24h",
  min_calls = 50,
  min_ratio = 2.0,       -- failure rate >= 2x the peers'
  min_excess = 0.02,     -- and >= peers' + 2 points
  critical_rate = 0.20,  -- a model failing this often is critical
}

local function pct(x) return string.format("%.1f%%", x * 100) end
local function round(x, step) return math.floor(x / step + 0.5) * step end

te.recommend {
  name = "model-error-rate",
  description = "models whose failure rate is worse than their tier's peers",
  every = "1h",
  fn = function(q)
    local models = {}
    local function get(row)
      local key = (row.provider or "?") .. "/" .. row.model
      local m = models[key] or { provider = row.provider, model = row.model,
                                 tier = row.tier or "any", n = 0, bad = 0 }
      models[key] = m
      return m
    end
    for _, row in ipairs(q.query { kind = "llm_call", since = config.since,
                                   group_by = { "provider", "model", "tier" },
                                   aggs = { n = "count" } }) do
      if row.model then local m = get(row); m.n = m.n + row.n end
    end
    for _, row in ipairs(q.query { kind = "llm_call", since = config.since,
                                   where = { status = { "error", "timeout" } },
                                   group_by = { "provider", "model", "tier" },
                                   aggs = { n = "count" } }) do
      if row.model then local m = get(row); m.bad = m.bad + row.n end
    end

    local tiers = {}
    for key, m in pairs(models) do
      local t = tiers[m.tier] or {}
      tiers[m.tier] = t
      t[#t + 1] = key
    end
    local out = {}
    for key, m in pairs(models) do
      if m.n >= config.min_calls then
        local rate = m.bad / m.n
        local pn, pbad, best, best_rate = 0, 0, nil, nil
        for _, other in ipairs(tiers[m.tier]) do
          local o = models[other]
          if other ~= key and o.n > 0 then
            pn, pbad = pn + o.n, pbad + o.bad
            local r = o.bad / o.n
            if o.n >= config.min_calls and (not best_rate or r < best_rate) then
              best, best_rate = other, r
            end
          end
        end
        if pn >= config.min_calls then
          local peers = pbad / pn
          if rate >= peers * config.min_ratio and rate >= peers + config.min_excess then
            out[#out + 1] = {
              key = key,
              severity = rate >= config.critical_rate and "critical" or "warning",
              title = string.format("model %s fails more often than its %s peers", key, m.tier),
              detail = string.format("%s failed %d of %d calls (%s) in the last %s; the other "
                .. "%s models failed %s of %d calls.", key, m.bad, m.n, pct(rate), config.since,
                m.tier, pct(peers), pn),
              action = best and string.format("move %s traffic to %s (%s failures), or check "
                .. "%s's quotas, timeouts and prompts", key, best, pct(best_rate), key)
                or string.format("check %s's quotas, timeouts and prompts", key),
              evidence = { model = m.model, provider = m.provider, tier = m.tier,
                           window = config.since, calls = m.n, failures = m.bad,
                           failure_rate = round(rate, 0.0001), peer_calls = pn,
                           peer_failure_rate = round(peers, 0.0001), best_peer = best },
            }
          end
        end
      end
    end
    table.sort(out, function(a, b) return a.key < b.key end)
    return out
  end,
}
