-- runs.lua - ML pipeline runs (SPEC 8): kind run (tags run_id, pipeline,
-- status = started|succeeded|failed|aborted; fields steps_total,
-- duration_s) and run_step (tags run_id, pipeline, step, status; fields
-- step_ordinal, steps_total, duration_s).
--
--   telemetry-engine report runs --since 7d --param limit=50
local te = require "te"

local FINISHED = { succeeded = true, failed = true, aborted = true }

te.report {
  name = "runs",
  title = "Pipeline runs",
  description = "last runs with status and duration, slowest steps, failure causes",
  params = { since = "7d", limit = 20, slowest = 10 },
  render = function(q, r, params)
    local limit = tonumber(params.limit) or 20

    -- the latest runs: the newest event of each decides its status
    local runs, order = {}, {}
    for _, ev in ipairs(q.events { kind = "run", limit = math.min(10000, 4 * limit + 50) }) do
      local id = ev.tags.run_id
      if id then
        local run = runs[id]
        if not run then
          run = { run_id = id, pipeline = ev.tags.pipeline, status = ev.tags.status,
                  last = ev.t, steps_total = ev.fields.steps_total }
          runs[id] = run
          order[#order + 1] = run
        end
        if ev.tags.status == "started" then run.started = ev.ts; run.start_t = ev.t end
        if FINISHED[ev.tags.status] and not run.duration then
          run.duration = ev.fields.duration_s
        end
        run.steps_total = run.steps_total or ev.fields.steps_total
      end
    end
    for _, run in ipairs(order) do
      if run.status == "started" then run.status = "running" end
      if not run.duration and run.start_t and run.status ~= "running" then
        run.duration = run.last - run.start_t
      end
    end

    -- the counts come from aggregates, exact however many runs there are
    local seen = q.query { kind = "run", aggs = { n = "distinct:run_id" } }[1].n or 0
    local by_status = {}
    for _, row in ipairs(q.query { kind = "run", group_by = { "status" }, aggs = { n = "count" } }) do
      by_status[row.status or "?"] = row.n
    end
    local ok, failed = by_status.succeeded or 0, by_status.failed or 0
    local done = ok + failed + (by_status.aborted or 0)
    local dur = q.query { kind = "run", where = { status = { "succeeded", "failed", "aborted" } },
      aggs = { p50 = "p50:duration_s", p95 = "p95:duration_s" } }[1] or {}

    r:heading("Summary", 2)
    r:stat { label = "Runs seen", value = seen, format = "int" }
    r:stat { label = "Finished", value = done, format = "int" }
    r:stat { label = "Succeeded", value = ok, format = "int" }
    r:stat { label = "Failed", value = failed, format = "int" }
    r:stat { label = "Success rate", value = done > 0 and ok / done or nil, format = "pct" }
    r:stat { label = "Median duration", value = dur.p50, format = "s" }
    if seen == 0 then
      r:text("No pipeline runs (kind run) in this period.")
    end

    -- steps done per run for the last runs
    local last = {}
    for i = 1, math.min(limit, #order) do last[i] = order[i] end
    if #last > 0 then
      local ids = {}
      for i, run in ipairs(last) do ids[i] = run.run_id end
      for _, row in ipairs(q.query { kind = "run_step", where = { run_id = ids,
          status = { "succeeded", "failed" } }, group_by = { "run_id" },
          aggs = { steps = "count", step_time = "sum:duration_s" } }) do
        local run = runs[row.run_id]
        if run then
          run.steps_done = row.steps
          run.progress = run.steps_total and string.format("%d/%d", row.steps, run.steps_total)
        end
      end
    end
    r:heading("Last " .. #last .. " runs", 2)
    r:table(last, {
      { key = "run_id", label = "Run", format = "text" },
      { key = "pipeline", label = "Pipeline", format = "text" },
      { key = "status", label = "Status", format = "text" },
      { key = "progress", label = "Steps", format = "text" },
      { key = "started", label = "Started", format = "text" },
      { key = "duration", label = "Duration", format = "s" } })

    -- runs per pipeline and outcome
    local per, pipelines = {}, {}
    for _, row in ipairs(q.query { kind = "run", group_by = { "pipeline", "status" },
                                   aggs = { n = "count" } }) do
      local p = row.pipeline or "(none)"
      if not per[p] then
        per[p] = { succeeded = 0, failed = 0, aborted = 0, started = 0 }
        pipelines[#pipelines + 1] = p
      end
      if per[p][row.status] then per[p][row.status] = row.n end
    end
    table.sort(pipelines)
    local s_ok, s_fail, s_other = {}, {}, {}
    for i, p in ipairs(pipelines) do
      local c = per[p]
      local running = c.started - c.succeeded - c.failed - c.aborted
      s_ok[i], s_fail[i] = c.succeeded, c.failed
      s_other[i] = c.aborted + (running > 0 and running or 0)
    end
    r:chart { type = "stacked", title = "Runs by pipeline", x = pipelines,
              series = { { name = "succeeded", values = s_ok }, { name = "failed", values = s_fail },
                         { name = "running / aborted", values = s_other } } }

    local steps = q.query { kind = "run_step", where = { status = { "succeeded", "failed" } },
      group_by = { "pipeline", "step" },
      aggs = { n = "count", avg = "avg:duration_s", p95 = "p95:duration_s", max = "max:duration_s" } }
    table.sort(steps, function(a, b) return (a.p95 or 0) > (b.p95 or 0) end)
    while #steps > (tonumber(params.slowest) or 10) do table.remove(steps) end
    r:heading("Slowest steps", 2)
    r:table(steps, {
      { key = "pipeline", label = "Pipeline", format = "text" },
      { key = "step", label = "Step", format = "text" },
      { key = "n", label = "Runs", format = "int" },
      { key = "avg", label = "Avg", format = "s" },
      { key = "p95", label = "p95", format = "s" },
      { key = "max", label = "Max", format = "s" } })

    local causes = q.query { kind = "run_step", where = { status = "failed" },
      group_by = { "pipeline", "step" }, aggs = { failures = "count" } }
    table.sort(causes, function(a, b) return a.failures > b.failures end)
    r:heading("Failure causes", 2)
    r:text("Failed steps, most frequent first.")
    r:table(causes, {
      { key = "pipeline", label = "Pipeline", format = "text" },
      { key = "step", label = "Failed step", format = "text" },
      { key = "failures", label = "Failures", format = "int" } })
  end,
}
