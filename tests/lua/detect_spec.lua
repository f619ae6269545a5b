-- detect_spec.lua - te.detector and te.methods through te.so (standalone
-- mode): declarations, parameter checks with the exact error texts, the C
-- methods driven from Lua (m:update), state blobs (m:save / m:load) and a
-- custom Lua method. The timed behaviour inside the engine is covered by
-- tests/integration/it_detect.c and lua/rules/*detector*_test.lua.
-- Run by ctest from the source folder as
--   busted --lua=lua5.4 --cpath=BUILD/lua/?.so --lpath=lua/lib/?.lua tests/lua/detect_spec.lua

local te = require "te"

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok)
  return e
end

describe("te.methods", function()
  it("ewma_zscore follows the hand-computed arithmetic", function()
    local m = te.methods.ewma_zscore { alpha = 0.5, threshold = 2, warmup = 2 }
    assert.are.equal("te.Method(ewma_zscore)", tostring(m))
    assert.is_false(m:update(10, 1))
    local a, s = m:update(12, 2)
    assert.is_false(a)
    assert.is_nil(s)                       -- warm-up: no verdict
    local a3, s3, b3, lo, hi = m:update(10, 3)
    assert.is_false(a3)
    assert.are.equal(1, s3)
    assert.are.equal(11, b3)
    assert.are.equal(9, lo)
    assert.are.equal(13, hi)
    local a4, s4, b4 = m:update(20, 4)
    assert.is_true(a4)
    assert.are.equal(10.5, b4)
    assert.is_true(math.abs(s4 - 9.5 / math.sqrt(0.75)) < 1e-9)
  end)

  it("takes defaults and reports its parameters", function()
    local p = te.methods.mad {}:params()
    assert.are.same({ kind = "mad", window = 60, threshold = 5, drift = 3, direction = "both" }, p)
    local s = te.methods.seasonal { period = "1w" }:params()
    assert.are.equal(604800, s.period)
    assert.are.equal(3, s.seasons)
    assert.are.equal(600, te.methods.absent { after = "10m" }:params().after)
    assert.are.equal(2, te.methods.multivariate {}:params().k)
  end)

  it("names a wrong key, a wrong type and a bad value", function()
    assert.matches('te.methods.mad: unknown key "windw" %(did you mean "window"%?%)',
      err_of(te.methods.mad, { windw = 5 }))
    assert.matches('detect_spec.lua:%d+: te.methods.ewma_zscore: "alpha" must be a number, got string',
      err_of(te.methods.ewma_zscore, { alpha = "x" }))
    assert.matches('te.methods.ewma_zscore: alpha must be in %(0, 1%], got 2',
      err_of(te.methods.ewma_zscore, { alpha = 2 }))
    assert.matches('te.methods.absent: after is required',
      err_of(te.methods.absent, {}))
    assert.matches('te.methods.change: "direction" must be "up", "down" or "both"',
      err_of(te.methods.change, { direction = "sideways" }))
    assert.matches('te.methods.seasonal: "period": ',
      err_of(te.methods.seasonal, { period = "yesterday" }))
  end)

  it("mad flags a spike against the median of its window", function()
    local m = te.methods.mad { window = 5, threshold = 3.5 }
    for i, v in ipairs { 1, 2, 3, 4, 100 } do m:update(v, i) end
    assert.is_false(m:update(3, 6))
    local a, s, b = m:update(10, 7)
    assert.is_true(a)
    assert.are.equal(3, b)
    assert.is_true(math.abs(s - 7 / 1.4826) < 1e-9)
  end)

  it("absent fires after the silence and not before", function()
    local m = te.methods.absent { after = "10s" }
    assert.is_false(m:update(1, 100))
    assert.is_false(m:update(0, 109))
    m:seen(105)
    assert.is_false(m:update(0, 114))
    local a, s = m:update(0, 115)
    assert.is_true(a)
    assert.are.equal(1, s)
  end)

  it("keeps its state through save and load", function()
    local a = te.methods.change { pct = 20, window = 3 }
    for i = 1, 10 do a:update(100 + i, i) end
    local blob = a:save()
    local b = te.methods.change { pct = 20, window = 3 }
    assert.is_true(b:load(blob))
    for i = 11, 20 do
      local v = (i == 15) and 200 or 100 + i
      assert.are.same({ a:update(v, i) }, { b:update(v, i) })
    end
    local ok, msg = te.methods.change { pct = 30, window = 3 }:load(blob)
    assert.is_nil(ok)
    assert.matches("another method", msg)
  end)
end)

describe("te.detector", function()
  before_each(function() te._reset() end)

  it("declares a detector with a built-in method", function()
    local d = te.detector {
      name = "lat", kind = "llm_call", group_by = { "model" }, field = "latency_ms", stat = "p95",
      every = "1m", window = "5m", method = te.methods.ewma_zscore { threshold = 4 },
      severity = "critical", summary = "{{model}} p95 {{value}} (score {{labels.score}})",
      labels = { team = "llm" }, notify = { "stdout" }, pending = "2m",
    }
    assert.are.equal("detector", d.type)
    assert.are.equal("lat", d.name)
    assert.are.equal("p95", d.stat)
    assert.are.equal("latency_ms", d.field)
    assert.are.equal(60, d.every)
    assert.are.equal(300, d.window)
    assert.are.equal(120, d.pending)
    assert.are.equal("critical", d.severity)
    assert.are.same({ op = "quantile", field = "latency_ms", q = 0.95 }, d.aggs.value)
    assert.are.equal(4, d.method:params().threshold)
    assert.are.equal(d, te.declarations()[1])
  end)

  it("defaults: count without a field, multivariate without a method", function()
    local d = te.detector { name = "n" }
    assert.are.equal("count", d.stat)
    assert.are.same({ op = "count" }, d.aggs.value)
    assert.are.equal("multivariate", d.method:params().kind)
    assert.are.equal(60, d.every)
    assert.are.same({ "stdout" }, d.notify)
    assert.are.equal("avg", te.detector { name = "a", field = "x" }.stat)
  end)

  it("rejects bad declarations with file:line", function()
    assert.matches('detect_spec.lua:%d+: te.detector: unknown key "feild" %(did you mean "field"%?%)',
      err_of(te.detector, { name = "x", feild = "y" }))
    assert.matches('te.detector: stat "p95" needs "field"',
      err_of(te.detector, { name = "x", stat = "p95" }))
    assert.matches('te.detector: "stat" must be count, rate, sum, avg, min, max, last, median or a '
      .. 'percentile like p95, got "p100"', err_of(te.detector, { name = "x", field = "f", stat = "p100" }))
    assert.matches('te.detector: "method" must be te.methods.<name>{...} or a function, got table',
      err_of(te.detector, { name = "x", method = {} }))
    assert.matches('te.detector: method seasonal: period must be a multiple of every',
      err_of(te.detector, { name = "x", every = "7m", method = te.methods.seasonal { period = "1d" } }))
    assert.matches('te.detector: "name" is required', err_of(te.detector, { stat = "count" }))
    assert.matches('te.detector: duplicate name "d"', err_of(function()
      te.detector { name = "d" }
      te.detector { name = "d" }
    end))
  end)

  it("takes a Lua function as a method, called with (value, state, t)", function()
    local function spike(value, state, t)
      local prev = state.prev
      state.prev = value
      state.n = (state.n or 0) + 1
      if not prev then return false end
      return value > 2 * prev, value / prev, prev
    end
    local d = te.detector { name = "custom", kind = "llm_call", field = "cost", stat = "sum",
                            method = spike }
    assert.are.equal(spike, d.method)
    local state = {}
    assert.is_false(d.method(10, state, 60))
    local a, s, b = d.method(11, state, 120)
    assert.is_false(a)
    assert.are.equal(10, b)
    a, s, b = d.method(30, state, 180)
    assert.is_true(a)
    assert.is_true(s > 2.7 and s < 2.8)
    assert.are.equal(11, b)
    assert.are.equal(3, state.n)
  end)
end)
