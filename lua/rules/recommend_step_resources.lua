-- recommend_step_resources.lua - pipeline steps that are CPU-bound or
-- memory-bound, from the host samples taken while they ran.
--
-- A finished run_step event (status succeeded or failed) with a `host` tag
-- and fields.duration_s ran on that host from ts - duration_s to ts. For
-- the newest few instances of each pipeline step, the host_sample events
-- of that host in that interval give the average cpu_pct and mem_pct; a
-- step whose instances average above the thresholds is reported. Steps
-- without a host tag cannot be matched and are skipped.
local te = require "te"

local config = {
  since = "7d",
  per_step = 10,          -- newest instances of a step looked at
  max_queries = 200,      -- host_sample queries per run, all steps together
  min_instances = 3,      -- with host samples
  cpu_pct = 85,
  mem_pct = 85,
  critical_pct = 95,
}

local function round(x, step) return math.floor(x / step + 0.5) * step end

te.recommend {
  name = "step-resource-bound",
  description = "pipeline steps that saturate their host's CPU or memory",
  every = "1h",
  fn = function(q)
    local steps, order = {}, {}
    for _, ev in ipairs(q.events { kind = "run_step", since = config.since, limit = 5000,
                                   where = { status = { "succeeded", "failed" } } }) do
      local host, d = ev.tags.host, ev.fields.duration_s
      if host and d and d > 0 and ev.tags.pipeline and ev.tags.step then
        local key = ev.tags.pipeline .. "/" .. ev.tags.step
        local s = steps[key]
        if not s then
          s = { pipeline = ev.tags.pipeline, step = ev.tags.step, runs = {} }
          steps[key] = s
          order[#order + 1] = key
        end
        if #s.runs < config.per_step then -- newest first
          s.runs[#s.runs + 1] = { host = host, from = ev.t - d, to = ev.t }
        end
      end
    end
    table.sort(order)
    local out, queries = {}, 0
    for _, key in ipairs(order) do
      local s = steps[key]
      local n, cpu, mem, hosts = 0, 0, 0, {}
      for _, r in ipairs(s.runs) do
        if queries >= config.max_queries then break end
        queries = queries + 1
        local row = q.query { kind = "host_sample", since = r.from, ["until"] = r.to,
                              where = { host = r.host },
                              aggs = { n = "count", cpu = "avg:cpu_pct", mem = "avg:mem_pct" } }[1]
        if row and row.n > 0 and (row.cpu or row.mem) then
          n = n + 1
          cpu = cpu + (row.cpu or 0)
          mem = mem + (row.mem or 0)
          hosts[r.host] = true
        end
      end
      if n >= config.min_instances then
        cpu, mem = cpu / n, mem / n
        local host_list = {}
        for h in pairs(hosts) do host_list[#host_list + 1] = h end
        table.sort(host_list)
        local function finding(what, value, threshold, action)
          out[#out + 1] = {
            key = key .. "/" .. what,
            severity = value >= config.critical_pct and "critical" or "warning",
            title = string.format("pipeline %s: step %s is %s-bound", s.pipeline, s.step, what),
            detail = string.format("while step %s ran (%d runs in the last %s), its host's %s "
              .. "averaged %.0f%% (threshold %d%%).", s.step, n, config.since,
              what == "cpu" and "CPU" or "memory", value, threshold),
            action = action,
            evidence = { pipeline = s.pipeline, step = s.step, window = config.since,
                         instances = n, avg_cpu_pct = round(cpu, 0.1),
                         avg_mem_pct = round(mem, 0.1), hosts = host_list },
          }
        end
        if cpu >= config.cpu_pct then
          finding("cpu", cpu, config.cpu_pct, string.format("give %s more CPU cores (or a "
            .. "faster host), or parallelise it across hosts", s.step))
        end
        if mem >= config.mem_pct then
          finding("memory", mem, config.mem_pct, string.format("give %s more memory, or "
            .. "process its data in smaller batches / stream it", s.step))
        end
      end
    end
    return out
  end,
}
