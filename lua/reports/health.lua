-- health.lua - the engine and its data: what was stored, how fast, the
-- alerts the rules raised (noisy rules), and data-quality checks: gaps,
-- events dated in the future, missing fields and tag cardinality.
--
--   telemetry-engine report health --since 24h
local te = require "te"

local function step_for(seconds)
  if seconds <= 6 * 3600 then return "5m", 300 end
  if seconds <= 2 * 86400 then return "1h", 3600 end
  if seconds <= 14 * 86400 then return "6h", 6 * 3600 end
  return "1d", 86400
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

te.report {
  name = "health",
  title = "Engine and data health",
  description = "ingest volume and rate, alert counts, noisy rules, data-quality checks",
  params = { since = "24h", sample = 500, max_tags = 8 },
  render = function(q, r, params)
    local span = q["until"] - q.since
    local every, step_s = step_for(span)
    local db = q.stats()

    -- volume per kind in the range
    local kinds = {}
    local total = 0
    for _, k in ipairs(db.kinds) do
      local row = q.query { kind = k.kind, aggs = { n = "count" } }[1]
      local n = row and row.n or 0
      kinds[#kinds + 1] = { kind = k.kind, events = n, series = k.series, stored = k.events }
      total = total + n
    end
    table.sort(kinds, function(a, b) return a.events > b.events end)

    r:heading("Ingest", 2)
    r:stat { label = "Events in period", value = total, format = "int" }
    r:stat { label = "Average rate", value = span > 0 and total / span or 0, unit = "events/s" }
    r:stat { label = "Events stored (all time)", value = db.events, format = "int" }
    r:stat { label = "Series", value = db.series, format = "int" }
    r:stat { label = "Database size", value = db.db_bytes, format = "bytes" }
    if total == 0 then
      r:text("No events in this period.")
    end
    r:table(kinds, {
      { key = "kind", label = "Kind", format = "text" },
      { key = "events", label = "Events in period", format = "int" },
      { key = "stored", label = "Stored", format = "int" },
      { key = "series", label = "Series", format = "int" } })

    -- rate over time, stacked by kind
    local first = math.floor(q.since / step_s) * step_s
    local x = {}
    for t = first, q["until"] - 1, step_s do x[#x + 1] = q.time(t) end
    local series = {}
    local gaps = {}
    for _, k in ipairs(kinds) do
      if k.events > 0 then
        local per = {}
        for _, row in ipairs(q.query { kind = k.kind, every = every, aggs = { n = "count" } }) do
          per[row.t] = row.n
        end
        local values, i = {}, 0
        local seen, empty, longest, run = false, 0, 0, 0
        local last_t
        for t = first, q["until"] - 1, step_s do
          i = i + 1
          values[i] = (per[t] or 0) / step_s
          if per[t] then
            seen, last_t = true, t
            if run > longest then longest = run end
            run = 0
          elseif seen then
            empty = empty + 1
            run = run + 1
          end
        end
        -- empty buckets after the last event are "silence", not a gap inside the data
        local trailing = last_t and math.floor((q["until"] - 1 - last_t) / step_s) or 0
        empty = empty - trailing
        series[#series + 1] = { name = k.kind, values = values }
        gaps[#gaps + 1] = { kind = k.kind, empty = empty, longest = longest * step_s,
                            silent = trailing * step_s }
      end
    end
    r:chart { type = "stacked", title = "Ingest rate (events/s) per " .. every, x = x,
              series = series }
    r:text("Rejected events are not stored, so they are not in this report: the " ..
           "engine counts them by reason in GET /v1/status and /metrics.")

    -- alerts
    local alerts = q.alerts { limit = 10000 }
    local by_state, by_rule = {}, {}
    for _, a in ipairs(alerts) do
      by_state[a.state] = (by_state[a.state] or 0) + 1
      local rr = by_rule[a.rule] or { rule = a.rule, episodes = 0, firing = 0 }
      rr.episodes = rr.episodes + 1
      if a.state == "firing" then rr.firing = rr.firing + 1 end
      by_rule[a.rule] = rr
    end
    r:heading("Alerts", 2)
    for _, s in ipairs({ "pending", "firing", "resolved" }) do
      r:stat { label = "Alerts " .. s, value = by_state[s] or 0, format = "int" }
    end
    local noisy = {}
    for _, k in ipairs(sorted_keys(by_rule)) do noisy[#noisy + 1] = by_rule[k] end
    table.sort(noisy, function(a, b) return a.episodes > b.episodes end)
    while #noisy > 10 do table.remove(noisy) end
    r:heading("Noisy rules", 3)
    r:table(noisy, {
      { key = "rule", label = "Rule", format = "text" },
      { key = "episodes", label = "Alert episodes", format = "int" },
      { key = "firing", label = "Firing now", format = "int" } })

    -- data quality
    r:heading("Data quality", 2)
    r:heading("Gaps", 3)
    r:text("Empty " .. every .. " buckets between a kind's first event in the period and " ..
           "its last; silence = time since its last event.")
    r:table(gaps, {
      { key = "kind", label = "Kind", format = "text" },
      { key = "empty", label = "Empty buckets", format = "int" },
      { key = "longest", label = "Longest gap", format = "s" },
      { key = "silent", label = "Silent for", format = "s" } })

    local future = {}
    for _, k in ipairs(kinds) do
      local row = q.query { kind = k.kind, since = q.now + 60, ["until"] = q.now + 10 * 365 * 86400,
        aggs = { n = "count" } }[1]
      if row and row.n > 0 then
        future[#future + 1] = string.format("%s: %d events dated more than a minute ahead",
          k.kind, row.n)
      end
    end
    r:heading("Events dated in the future (clock skew)", 3)
    r:list(future)

    local sample_n = tonumber(params.sample) or 500
    local missing, card = {}, {}
    for _, k in ipairs(kinds) do
      if k.events > 0 then
        local evs = q.events { kind = k.kind, limit = sample_n }
        local fields, tags = {}, {}
        for _, ev in ipairs(evs) do
          for f in pairs(ev.fields) do fields[f] = (fields[f] or 0) + 1 end
          for t in pairs(ev.tags) do tags[t] = (tags[t] or 0) + 1 end
        end
        for _, f in ipairs(sorted_keys(fields)) do
          if fields[f] < #evs then
            missing[#missing + 1] = { kind = k.kind, field = f, missing = #evs - fields[f],
                                      share = (#evs - fields[f]) / #evs, sampled = #evs }
          end
        end
        -- one scan per kind for all its tags
        local names = sorted_keys(tags)
        local aggs, n = {}, math.min(#names, tonumber(params.max_tags) or 8)
        for i = 1, n do aggs["d" .. i] = "distinct:" .. names[i] end
        if n > 0 then
          local row = q.query { kind = k.kind, aggs = aggs }[1] or {}
          for i = 1, n do
            card[#card + 1] = { kind = k.kind, tag = names[i], distinct = row["d" .. i] or 0 }
          end
        end
      end
    end
    r:heading("Missing fields", 3)
    r:text("Fields that some of the latest " .. sample_n .. " events of a kind carry and " ..
           "others lack.")
    r:table(missing, {
      { key = "kind", label = "Kind", format = "text" },
      { key = "field", label = "Field", format = "text" },
      { key = "missing", label = "Missing", format = "int" },
      { key = "sampled", label = "Sampled", format = "int" },
      { key = "share", label = "Share", format = "pct" } })
    table.sort(card, function(a, b) return a.distinct > b.distinct end)
    r:heading("Tag cardinality", 3)
    r:table(card, {
      { key = "kind", label = "Kind", format = "text" },
      { key = "tag", label = "Tag", format = "text" },
      { key = "distinct", label = "Distinct values", format = "int" } })
  end,
}
