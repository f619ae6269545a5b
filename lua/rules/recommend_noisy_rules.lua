-- recommend_noisy_rules.lua - alert rules that make noise instead of
-- news: alerts that flap (fire and resolve again and again), and alerts
-- that are acknowledged and come back (acked without action).
--
-- Over the last 7 days of alert episodes (q.alerts), per rule:
--   flapping: at least `flap_episodes` episodes of one alert (fingerprint),
--     or a rule whose episodes are mostly shorter than `short`;
--   acked without action: at least `acked_recurring` acknowledged episodes
--     after which the same alert fired again.
local te = require "te"

local config = {
  since = "7d",
  flap_episodes = 5,
  min_episodes = 6,          -- for the "mostly short" test
  short = "10m",
  short_share = 0.6,
  acked_recurring = 3,
}

local function round(x, step) return math.floor(x / step + 0.5) * step end

te.recommend {
  name = "noisy-rule",
  description = "alert rules whose alerts flap, or are acked and come back",
  every = "1h",
  fn = function(q)
    local short_s = te.duration(config.short)
    local rules = {}
    for _, a in ipairs(q.alerts { since = config.since, limit = 100000 }) do
      local start = a.starts_at_s or a.active_at_s
      if a.rule and a.fingerprint and start then
        local r = rules[a.rule] or { episodes = 0, short = 0, fps = {} }
        rules[a.rule] = r
        r.episodes = r.episodes + 1
        if a.ends_at_s and a.ends_at_s - start < short_s then r.short = r.short + 1 end
        local f = r.fps[a.fingerprint] or {}
        r.fps[a.fingerprint] = f
        f[#f + 1] = { start = start, acked = a.acked_at_s }
      end
    end

    local out = {}
    local names = {}
    for name in pairs(rules) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      local r = rules[name]
      local worst, acked_back = 0, 0
      for _, eps in pairs(r.fps) do
        if #eps > worst then worst = #eps end
        table.sort(eps, function(x, y) return x.start < y.start end)
        for i, e in ipairs(eps) do
          if e.acked and eps[i + 1] and eps[i + 1].start > e.acked then
            acked_back = acked_back + 1
          end
        end
      end
      local short_share = r.episodes > 0 and r.short / r.episodes or 0
      if worst >= config.flap_episodes
         or (r.episodes >= config.min_episodes and short_share >= config.short_share) then
        out[#out + 1] = {
          key = name .. "/flapping",
          severity = "warning",
          title = string.format("rule %s flaps", name),
          detail = string.format("%d alert episodes in the last %s, up to %d for one alert; "
            .. "%.0f%% lasted less than %s.", r.episodes, config.since, worst,
            short_share * 100, config.short),
          action = string.format("give rule %s a longer `pending` and `keep_firing`, a wider "
            .. "window, or a threshold with more margin", name),
          evidence = { rule = name, window = config.since, episodes = r.episodes,
                       max_episodes_one_alert = worst, short_share = round(short_share, 0.0001) },
        }
      end
      if acked_back >= config.acked_recurring then
        out[#out + 1] = {
          key = name .. "/acked",
          severity = "info",
          title = string.format("alerts of rule %s are acknowledged and come back", name),
          detail = string.format("%d acknowledged episodes of rule %s were followed by the "
            .. "same alert firing again in the last %s.", acked_back, name, config.since),
          action = string.format("fix what rule %s points at, or lower its severity / route "
            .. "it to a less urgent notifier / delete it if nobody acts on it", name),
          evidence = { rule = name, window = config.since, acked_then_refired = acked_back,
                       episodes = r.episodes },
        }
      end
    end
    return out
  end,
}
