-- pipeline_run_stalled.lua - a pipeline run that started, has not
-- finished, and has sent no event for too long (a hung step, a dead
-- worker).
--
-- Two on_event hooks keep the time of each open run's latest event in a
-- table of this script (a run is forgotten when it succeeds, fails or is
-- aborted); the rule, grouped per run, compares it with te.now() at every
-- evaluation. The rule's window (12 h) bounds how long a silent run is
-- watched; the table is pruned of runs silent for more than a day. This
-- state lives in the script, so a reload of this file forgets open runs
-- until their next event.
local te = require "te"

local config = {
  stall_after_s = te.duration("15m"),   -- default silence that counts as stalled
  stall_after_by_pipeline = {           -- pipelines with long steps
    ["finetune-llm"] = te.duration("2h"),
  },
  forget_after_s = te.duration("24h"),
  max_runs = 10000,
}

local open_runs = {}    -- run_id -> time (s) of the run's latest event
local nopen = 0

local function prune(now)
  for id, last in pairs(open_runs) do
    if now - last > config.forget_after_s then
      open_runs[id] = nil
      nopen = nopen - 1
    end
  end
end

local function touch(id, ts)
  if open_runs[id] == nil then
    if nopen >= config.max_runs then prune(ts) end
    if nopen >= config.max_runs then return end
    nopen = nopen + 1
  end
  open_runs[id] = ts
end

local function forget(id)
  if open_runs[id] ~= nil then
    open_runs[id] = nil
    nopen = nopen - 1
  end
end

te.on_event {
  name = "pipeline-run-lifecycle", kind = "run",
  fn = function(ev)
    local id, status = ev.tags.run_id, ev.tags.status
    if id == nil then return end
    if status == "started" then
      touch(id, ev.ts)
    else
      forget(id)   -- succeeded, failed, aborted
    end
  end,
}

te.on_event {
  name = "pipeline-run-progress", kind = "run_step",
  fn = function(ev)
    local id = ev.tags.run_id
    if id ~= nil and open_runs[id] ~= nil then touch(id, ev.ts) end
  end,
}

te.rule {
  name = "pipeline-run-stalled",
  description = "an open run with no event for longer than its pipeline's stall time",
  kind = "run",
  where = { status = "started" },
  group_by = { "pipeline", "run_id" },
  window = "12h", every = "1m",
  aggs = { started = te.count() },
  condition = function(a, g)
    local last = open_runs[g.run_id]
    if a.started == 0 or last == nil then return false end
    local limit = config.stall_after_by_pipeline[g.pipeline] or config.stall_after_s
    return te.now() - last >= limit
  end,
  value = function(a, g) return te.now() - open_runs[g.run_id] end,
  severity = "warning",
  summary = "{{pipeline}} run {{run_id}} silent for {{value|round}} s",
  labels = { team = "ml-platform" },
}
