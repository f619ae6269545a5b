-- recommend_spec.lua - te.recommend through te.so (standalone mode): the
-- declaration it describes, its checks with the exact error texts, the
-- engine sandbox (te._sandbox_run), and the shipped recommenders
-- (lua/rules/recommend_*.lua) declaring what docs/recommendations.md says.
-- What the shipped fns find in real data, once and across runs, is tested
-- on the real binary with crafted events: tests/integration/it_recs.c.
-- Run by ctest from the source folder as
--   busted --lua=lua5.4 --cpath=BUILD/lua/?.so --lpath=lua/lib/?.lua tests/lua/recommend_spec.lua

local te = require "te"

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok)
  return e
end

local function fn() return {} end

describe("te.recommend", function()
  before_each(function() te._reset() end)

  it("describes the declaration and joins te.declarations()", function()
    local d = te.recommend { name = "cheaper-tier", every = "30m", fn = fn,
                             description = "what it finds" }
    assert.are.equal("recommend", d.type)
    assert.are.equal("cheaper-tier", d.name)
    assert.are.equal(1800, d.every)
    assert.are.equal(fn, d.fn)
    assert.are.equal("what it finds", d.description)
    assert.is_true(d.line > 0)
    assert.are.same({ d }, te.declarations())
  end)

  it("runs every hour unless told otherwise", function()
    assert.are.equal(3600, te.recommend { name = "r", fn = fn }.every)
  end)

  it("names the key, the file and the line of a mistake", function()
    local e = err_of(te.recommend, { name = "r", evry = "1h", fn = fn })
    assert.matches("recommend_spec%.lua:%d+: te%.recommend: unknown key \"evry\" %(did you mean \"every\"%?%)$", e)
    e = err_of(te.recommend, { name = "r", colour = "red", fn = fn })
    assert.matches(": te%.recommend: unknown key \"colour\"$", e)
  end)

  it("checks every field", function()
    local cases = {
      { { fn = fn }, 'te.recommend: "name" is required' },
      { { name = 7, fn = fn }, 'te.recommend: "name" must be a string, got number' },
      { { name = "a b", fn = fn }, 'te.recommend: "name" must match [a-zA-Z0-9_.-]{1,127}, got "a b"' },
      { { name = "r" }, 'te.recommend: "fn" is required (function(q) return { findings } end)' },
      { { name = "r", fn = "f" }, 'te.recommend: "fn" must be a function, got string' },
      { { name = "r", fn = fn, every = 60 }, 'te.recommend: "every" must be a duration like "1h", got number' },
      { { name = "r", fn = fn, every = "500ms" }, 'te.recommend: "every" must be at least 1s, got "500ms"' },
      { { name = "r", fn = fn, description = {} }, 'te.recommend: "description" must be a string, got table' },
      { { name = "r", fn = fn, [1] = "x" }, "te.recommend: unexpected value without a name (write key = value)" },
    }
    for _, c in ipairs(cases) do
      local e = err_of(te.recommend, c[1])
      assert.are.equal(c[2], e:match(":%d+: (.*)$"))
    end
    local e = err_of(te.recommend, { name = "r", fn = fn, every = "soon" })
    assert.matches('te%.recommend: "every": ', e)
  end)

  it("wants one table", function()
    assert.matches("bad argument #1 to 'te.recommend' %(table expected, got string%)",
                   err_of(te.recommend, "r"))
    assert.matches("bad argument #2 to 'te.recommend'", err_of(te.recommend, { name = "r", fn = fn }, 2))
  end)

  it("refuses a name declared twice", function()
    te.recommend { name = "r", fn = fn }
    assert.matches('te%.recommend: duplicate name "r" %(already declared at line %d+%)',
                   err_of(te.recommend, { name = "r", fn = fn }))
  end)
end)

describe("te.recommend in the engine sandbox", function()
  local function script(src)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(src)
    f:close()
    return path
  end

  it("loads a script that declares recommenders", function()
    local path = script('local te = require "te"\n'
      .. 'te.recommend { name = "a", fn = function(q) return {} end }\n'
      .. 'te.recommend { name = "b", every = "5m", fn = function(q) return {} end }\n')
    local ok, ndefs = te._sandbox_run(path, {})
    os.remove(path)
    assert.is_true(ok)
    assert.are.equal(0, ndefs) -- recommenders are not rules
  end)

  it("refuses a declaration made after the top level", function()
    local path = script('local te = require "te"\n'
      .. 'function later() te.recommend { name = "late", fn = function() end } end\n')
    local ok, msg = te._sandbox_run(path, { call = "later" })
    os.remove(path)
    assert.is_false(ok)
    assert.matches(":2: te%.recommend: declarations belong at the top level of the script", msg)
  end)

  it("refuses a recommender named like a rule of the same script", function()
    local path = script('local te = require "te"\n'
      .. 'te.rule { name = "x", kind = "k", aggs = { n = te.count() }, condition = function() return false end }\n'
      .. 'te.recommend { name = "x", fn = function() end }\n')
    local ok, msg = te._sandbox_run(path, {})
    os.remove(path)
    assert.is_false(ok)
    assert.matches(':3: te%.recommend: duplicate name "x" %(already declared at line 2%)', msg)
  end)
end)

describe("shipped recommenders", function()
  local shipped = {
    recommend_premium_downgrade = "premium-downgrade",
    recommend_model_errors = "model-error-rate",
    recommend_selector_order = "selector-strategy-order",
    recommend_dominant_steps = "pipeline-dominant-step",
    recommend_step_resources = "step-resource-bound",
    recommend_noisy_rules = "noisy-rule",
  }
  for file, name in pairs(shipped) do
    it(file .. ".lua declares " .. name, function()
      te._reset()
      dofile("lua/rules/" .. file .. ".lua")
      local d = te.declarations()
      assert.are.equal(1, #d)
      assert.are.equal("recommend", d[1].type)
      assert.are.equal(name, d[1].name)
      assert.are.equal(3600, d[1].every)
      assert.are.equal("function", type(d[1].fn))
      assert.are.equal("string", type(d[1].description))
    end)
  end
end)
