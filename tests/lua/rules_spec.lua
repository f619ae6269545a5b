-- rules_spec.lua - the rules that ship in lua/rules/, loaded through te.so
-- (standalone mode): their declarations (names, kinds, group_by, timing,
-- aggregates) and their condition/value/severity functions called with
-- hand-made aggregate tables at the edges (at the threshold, just above,
-- missing values). The timed behaviour (pending, firing, resolved) is
-- covered by lua/rules/*_test.lua through `telemetry-engine rules test`.
-- Run by ctest from the source folder as
--   busted --lua=lua5.4 --cpath=BUILD/lua/?.so --lpath=lua/lib/?.lua tests/lua/rules_spec.lua

local te = require "te"

local src = os.getenv("TE_SOURCE_DIR") or "."

-- Loads lua/rules/NAME and returns its declarations by name.
local function load_rules(name)
  te._reset()
  dofile(src .. "/lua/rules/" .. name)
  local by_name = {}
  for _, d in ipairs(te.declarations()) do by_name[d.name] = d end
  return by_name
end

local function sev(d, a, g)
  if type(d.severity) == "function" then return d.severity(a, g) end
  return d.severity
end

describe("shipped rules", function()
  after_each(function() te._reset() end)

  it("every rule file has a test file and loads alone", function()
    local names = { "llm_error_rate", "llm_cost_budget", "llm_latency_p95", "selector_confidence",
                    "selector_fallback_rate", "pipeline_step_failure", "pipeline_run_stalled",
                    "host_saturation" }
    for _, n in ipairs(names) do
      local decls = load_rules(n .. ".lua")
      assert.is_not_nil(next(decls), n .. ".lua declares nothing")
      local f = io.open(src .. "/lua/rules/" .. n .. "_test.lua")
      assert.is_not_nil(f, n .. "_test.lua is missing")
      f:close()
    end
  end)

  describe("llm-error-rate", function()
    local r
    before_each(function() r = load_rules("llm_error_rate.lua")["llm-error-rate"] end)

    it("is declared as SPEC 6.1 describes", function()
      assert.are.equal("rule", r.type)
      assert.are.equal("llm_call", r.kind)
      assert.are.same({ "provider", "model" }, r.group_by)
      assert.are.equal(300, r.window)
      assert.are.equal(30, r.every)
      assert.are.equal(60, r.pending)
      assert.are.equal(120, r.keep_firing)
      assert.are.same({ op = "count", filter = { status = { "error", "timeout" } } }, r.aggs.errors)
      assert.are.same({ op = "count" }, r.aggs.total)
    end)

    it("fires just above 5% with at least 20 calls, not at 5% exactly", function()
      assert.is_false(r.condition { total = 100, errors = 5 })
      assert.is_true(r.condition { total = 100, errors = 6 })
      assert.is_false(r.condition { total = 19, errors = 19 })
      assert.is_true(r.condition { total = 20, errors = 2 })
      assert.is_false(r.condition { total = 0, errors = 0 })
      assert.are.equal(0.06, r.value { total = 100, errors = 6 })
    end)

    it("is critical above 25%", function()
      assert.are.equal("warning", sev(r, { total = 100, errors = 25 }))
      assert.are.equal("critical", sev(r, { total = 100, errors = 26 }))
    end)
  end)

  describe("llm-cost-budget", function()
    local r
    before_each(function() r = load_rules("llm_cost_budget.lua")["llm-cost-budget"] end)

    it("sums cost_usd per workflow over 24h every 5m", function()
      assert.are.same({ "workflow" }, r.group_by)
      assert.are.equal(86400, r.window)
      assert.are.equal(300, r.every)
      assert.are.same({ op = "sum", field = "cost_usd" }, r.aggs.spent)
    end)

    it("warns from 80% of the workflow's budget and is critical once spent", function()
      local review, other = { workflow = "code-review" }, { workflow = "translate" }
      assert.is_false(r.condition({ spent = 79.99 }, review))
      assert.is_true(r.condition({ spent = 80 }, review))
      assert.are.equal("warning", sev(r, { spent = 99.99 }, review))
      assert.are.equal("critical", sev(r, { spent = 100 }, review))
      assert.is_false(r.condition({ spent = 39.99 }, other))  -- default budget 50
      assert.is_true(r.condition({ spent = 40 }, other))
      assert.is_false(r.condition({}, other))                 -- no spend in the window
    end)
  end)

  describe("llm-latency-p95", function()
    local r
    before_each(function() r = load_rules("llm_latency_p95.lua")["llm-latency-p95"] end)

    it("takes the 0.95 quantile of latency_ms per provider/model", function()
      assert.are.same({ op = "quantile", field = "latency_ms", q = 0.95 }, r.aggs.p95)
      assert.are.same({ "provider", "model" }, r.group_by)
      assert.are.equal(180, r.pending)
    end)

    it("compares with the model's threshold, with at least 50 calls", function()
      local g = { provider = "openai", model = "gpt-4o" }
      assert.is_false(r.condition({ calls = 50, p95 = 8000 }, g))
      assert.is_true(r.condition({ calls = 50, p95 = 8000.5 }, g))
      assert.is_false(r.condition({ calls = 49, p95 = 90000 }, g))
      assert.is_false(r.condition({ calls = 50 }, g))           -- no latency field in the window
      local o1 = { provider = "openai", model = "o1" }
      assert.is_false(r.condition({ calls = 50, p95 = 60000 }, o1))
      assert.is_true(r.condition({ calls = 50, p95 = 60001 }, o1))
    end)
  end)

  describe("selector-confidence", function()
    local r
    before_each(function() r = load_rules("selector_confidence.lua")["selector-confidence"] end)

    it("averages confidence per app/strategy", function()
      assert.are.same({ op = "avg", field = "confidence" }, r.aggs.confidence)
      assert.are.same({ "app", "strategy" }, r.group_by)
    end)

    it("fires under 0.80 with 30 operations, critical under 0.50", function()
      assert.is_false(r.condition { ops = 30, confidence = 0.80 })
      assert.is_true(r.condition { ops = 30, confidence = 0.79 })
      assert.is_false(r.condition { ops = 29, confidence = 0.1 })
      assert.is_false(r.condition { ops = 30 })
      assert.are.equal("warning", sev(r, { ops = 30, confidence = 0.50 }))
      assert.are.equal("critical", sev(r, { ops = 30, confidence = 0.49 }))
    end)
  end)

  describe("selector-fallback-rate", function()
    local r
    before_each(function() r = load_rules("selector_fallback_rate.lua")["selector-fallback-rate"] end)

    it("counts fallbacks and averages retries", function()
      assert.are.same({ op = "count", filter = { outcome = { "fallback" } } }, r.aggs.fallbacks)
      assert.are.same({ op = "avg", field = "retries" }, r.aggs.retries)
    end)

    it("fires above a 15% fallback share or above 1 retry on average", function()
      assert.is_false(r.condition { ops = 100, fallbacks = 15, retries = 1 })
      assert.is_true(r.condition { ops = 100, fallbacks = 16, retries = 0 })
      assert.is_true(r.condition { ops = 100, fallbacks = 0, retries = 1.01 })
      assert.is_false(r.condition { ops = 100, fallbacks = 0 })     -- no retries field
      assert.is_false(r.condition { ops = 29, fallbacks = 29, retries = 4 })
      assert.are.equal(0.16, r.value { ops = 100, fallbacks = 16 })
    end)
  end)

  describe("pipeline-step-failure", function()
    local r
    before_each(function() r = load_rules("pipeline_step_failure.lua")["pipeline-step-failure"] end)

    it("watches failed run_step events per pipeline/step", function()
      assert.are.equal("run_step", r.kind)
      assert.are.same({ status = { "failed" } }, r.where)
      assert.are.same({ "pipeline", "step" }, r.group_by)
      assert.are.equal(900, r.window)
    end)

    it("fires on one failure, critical from three", function()
      assert.is_false(r.condition { failures = 0, runs = 0 })
      assert.is_true(r.condition { failures = 1, runs = 1 })
      assert.are.equal("warning", sev(r, { failures = 2 }))
      assert.are.equal("critical", sev(r, { failures = 3 }))
    end)
  end)

  describe("pipeline-run-stalled", function()
    local d
    before_each(function() d = load_rules("pipeline_run_stalled.lua") end)
    after_each(function() te._set_now(nil) end)

    local function ev(kind, tags, ts) return { kind = kind, tags = tags, ts = ts } end

    it("declares two hooks and a rule per run", function()
      assert.are.equal("on_event", d["pipeline-run-lifecycle"].type)
      assert.are.equal("run", d["pipeline-run-lifecycle"].kind)
      assert.are.equal("run_step", d["pipeline-run-progress"].kind)
      assert.are.same({ "pipeline", "run_id" }, d["pipeline-run-stalled"].group_by)
      assert.are.same({ status = { "started" } }, d["pipeline-run-stalled"].where)
    end)

    it("fires once a started run is silent for its pipeline's stall time", function()
      local rule = d["pipeline-run-stalled"]
      local g = { pipeline = "nightly-etl", run_id = "r-1" }
      d["pipeline-run-lifecycle"].fn(ev("run", { run_id = "r-1", status = "started" }, 1000))
      d["pipeline-run-progress"].fn(ev("run_step", { run_id = "r-1", step = "a" }, 1100))
      te._set_now(1100 + 899)
      assert.is_false(rule.condition({ started = 1 }, g))
      te._set_now(1100 + 900)
      assert.is_true(rule.condition({ started = 1 }, g))
      assert.are.equal(900, rule.value({ started = 1 }, g))
      -- finetune-llm allows 2 hours
      local ft = { pipeline = "finetune-llm", run_id = "r-1" }
      assert.is_false(rule.condition({ started = 1 }, ft))
      -- a finished run is forgotten
      d["pipeline-run-lifecycle"].fn(ev("run", { run_id = "r-1", status = "succeeded" }, 2000))
      assert.is_false(rule.condition({ started = 1 }, g))
    end)

    it("ignores steps of runs it never saw start", function()
      local rule = d["pipeline-run-stalled"]
      d["pipeline-run-progress"].fn(ev("run_step", { run_id = "r-9", step = "a" }, 10))
      te._set_now(100000)
      assert.is_false(rule.condition({ started = 1 }, { pipeline = "p", run_id = "r-9" }))
      assert.is_false(rule.condition({ started = 0 }, { pipeline = "p", run_id = "r-9" }))
    end)
  end)

  describe("host-saturation", function()
    local r
    before_each(function() r = load_rules("host_saturation.lua")["host-saturation"] end)

    it("averages cpu_pct and mem_pct per host over 5m, pending 2m", function()
      assert.are.same({ op = "avg", field = "cpu_pct" }, r.aggs.cpu)
      assert.are.same({ op = "avg", field = "mem_pct" }, r.aggs.mem)
      assert.are.same({ "host" }, r.group_by)
      assert.are.equal(120, r.pending)
    end)

    it("fires above 90% of either, critical above 97%, and tolerates a missing field", function()
      assert.is_false(r.condition { cpu = 90, mem = 90 })
      assert.is_true(r.condition { cpu = 90.1, mem = 10 })
      assert.is_true(r.condition { mem = 95 })
      assert.is_false(r.condition {})
      assert.are.equal(95, r.value { cpu = 20, mem = 95 })
      assert.are.equal("warning", sev(r, { cpu = 97 }))
      assert.are.equal("critical", sev(r, { cpu = 97.5 }))
    end)
  end)
end)
