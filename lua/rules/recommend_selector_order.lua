-- recommend_selector_order.lua - selector strategies that mostly fall back:
-- reorder the strategies of that app so the one that finds elements is
-- tried first.
--
-- Over the last 7 days, per app and strategy: the share of operations whose
-- outcome was "fallback" (another strategy had to find the element). A
-- strategy with at least half of its operations falling back is reported,
-- with the app's strategies ranked by their "found" share.
local te = require "te"

local config = {
  since = "7d",
  min_ops = 30,
  max_fallback_share = 0.5,  -- "mostly"
  critical_share = 0.8,
}

local function pct(x) return string.format("%.0f%%", x * 100) end
local function round(x, step) return math.floor(x / step + 0.5) * step end

te.recommend {
  name = "selector-strategy-order",
  description = "selector strategies that mostly fall back, per app",
  every = "1h",
  fn = function(q)
    local apps = {}
    local function get(row)
      local a = apps[row.app] or {}
      apps[row.app] = a
      a[row.strategy] = a[row.strategy] or { n = 0, fallback = 0, found = 0 }
      return a[row.strategy]
    end
    local function count(where, field)
      for _, row in ipairs(q.query { kind = "selector_op", since = config.since, where = where,
                                     group_by = { "app", "strategy" }, aggs = { n = "count" } }) do
        if row.app and row.strategy then
          local s = get(row)
          s[field] = s[field] + row.n
        end
      end
    end
    count(nil, "n")
    count({ outcome = "fallback" }, "fallback")
    count({ outcome = "found" }, "found")

    local out = {}
    for app, strategies in pairs(apps) do
      local ranked = {}
      for name, s in pairs(strategies) do
        if s.n >= config.min_ops then
          ranked[#ranked + 1] = { strategy = name, found_share = round(s.found / s.n, 0.0001),
                                  fallback_share = round(s.fallback / s.n, 0.0001), ops = s.n }
        end
      end
      table.sort(ranked, function(a, b)
        if a.found_share ~= b.found_share then return a.found_share > b.found_share end
        return a.strategy < b.strategy
      end)
      local order = {}
      for i, r in ipairs(ranked) do order[i] = r.strategy end
      for _, r in ipairs(ranked) do
        if r.fallback_share >= config.max_fallback_share then
          out[#out + 1] = {
            key = app .. "/" .. r.strategy,
            severity = r.fallback_share >= config.critical_share and "critical" or "warning",
            title = string.format("app %s: selector strategy %s mostly falls back", app,
                                  r.strategy),
            detail = string.format("%s of %d %s operations in %s fell back to another "
              .. "strategy in the last %s; %s finds %s of its elements first try.",
              pct(r.fallback_share), r.ops, r.strategy, app, config.since, ranked[1].strategy,
              pct(ranked[1].found_share)),
            action = string.format("reorder %s's selector strategies: %s", app,
                                   table.concat(order, ", ")),
            evidence = { app = app, strategy = r.strategy, window = config.since, ops = r.ops,
                         fallback_share = r.fallback_share, ranking = ranked },
          }
        end
      end
    end
    table.sort(out, function(a, b) return a.key < b.key end)
    return out
  end,
}
