-- te_spec.lua - the `te` module through te.so (standalone mode): every
-- constructor, the description tables te.rule returns, and the exact error
-- texts authors see. Run by ctest as
--   busted --lua=lua5.4 --cpath=BUILD/lua/?.so --lpath=lua/lib/?.lua tests/lua/te_spec.lua

local te = require "te"

-- The error of f(...) without its "file:line: " prefix.
local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return (tostring(e):gsub("^[^\n]-:%d+: ", ""))
end

local function minimal(extra)
  local spec = {
    name = "r", kind = "llm_call",
    aggs = { n = te.count() },
    condition = function(a) return a.n > 0 end,
  }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return spec
end

describe("te.rule", function()
  before_each(function() te._reset() end)

  it("returns a description with the SPEC 6.1 example's values", function()
    local cond = function(a) return a.total >= 20 and a.errors / a.total > 0.05 end
    local val = function(a) return a.errors / a.total end
    local r = te.rule {
      name = "llm-error-rate", kind = "llm_call", where = { provider = { "openai", "anthropic" } },
      group_by = { "provider", "model" }, window = "5m", every = "30s",
      aggs = { errors = te.count { status = "error" }, total = te.count(),
               p95 = te.quantile("latency_ms", 0.95) },
      condition = cond, value = val,
      pending = "1m", keep_firing = "2m", severity = "warning",
      summary = "{{provider}}/{{model}} error rate {{value|pct}} (5m)",
      labels = { team = "llm-platform" }, notify = { "stdout", "slack-ops" }, repeat_every = "4h",
      description = "errors over 5% of calls",
    }
    assert.are.equal("rule", r.type)
    assert.are.equal("llm-error-rate", r.name)
    assert.are.equal("llm_call", r.kind)
    assert.are.same({ "openai", "anthropic" }, r.where.provider)
    assert.are.same({ "provider", "model" }, r.group_by)
    assert.are.equal(300, r.window)
    assert.are.equal(30, r.every)
    assert.are.equal(60, r.pending)
    assert.are.equal(120, r.keep_firing)
    assert.are.equal(4 * 3600, r.repeat_every)
    assert.are.same({ op = "count", filter = { status = { "error" } } }, r.aggs.errors)
    assert.are.same({ op = "count" }, r.aggs.total)
    assert.are.same({ op = "quantile", field = "latency_ms", q = 0.95 }, r.aggs.p95)
    assert.are.equal(cond, r.condition)
    assert.are.equal(val, r.value)
    assert.is_true(r.condition { total = 100, errors = 6 })
    assert.are.equal(0.06, r.value { total = 100, errors = 6 })
    assert.are.equal("warning", r.severity)
    assert.are.equal("{{provider}}/{{model}} error rate {{value|pct}} (5m)", r.summary)
    assert.are.same({ team = "llm-platform" }, r.labels)
    assert.are.same({ "stdout", "slack-ops" }, r.notify)
    assert.are.equal(10000, r.max_groups)
    assert.are.equal("errors over 5% of calls", r.description)
    assert.are.equal(1, #te.declarations())
    assert.are.equal(r, te.declarations()[1])
  end)

  it("applies the defaults", function()
    local r = te.rule(minimal())
    assert.are.equal(300, r.window)
    assert.are.equal(30, r.every)
    assert.are.equal(0, r.pending)
    assert.are.equal(0, r.keep_firing)
    assert.are.equal(0, r.repeat_every)
    assert.are.equal("warning", r.severity)
    assert.are.same({ "stdout" }, r.notify)
    assert.are.same({}, r.group_by)
    assert.are.same({}, r.labels)
    assert.are.equal(10000, r.max_groups)
    assert.is_nil(r.value)
  end)

  it("records the line of the declaration", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local r = te.rule(minimal())
    assert.are.equal(line, r.line)
  end)

  it("accepts a severity function and keeps it callable", function()
    local sev = function(a) return a.n > 10 and "critical" or "warning" end
    local r = te.rule(minimal { severity = sev })
    assert.are.equal(sev, r.severity)
    assert.are.equal("critical", r.severity { n = 11 })
  end)

  it("accepts where with a string, a list and te.match", function()
    local r = te.rule(minimal { where = { env = "prod", provider = { "a", "b" }, model = te.match("^gpt-4") } })
    assert.are.same({ "prod" }, r.where.env)
    assert.are.same({ "a", "b" }, r.where.provider)
    assert.are.same({ match = "^gpt-4" }, r.where.model)
  end)

  it("names the file and line of the call in errors", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, e = pcall(te.rule, minimal { windw = "5m" })
    assert.is_false(ok)
    assert.matches("te_spec%.lua:" .. line .. ": te%.rule: unknown key \"windw\" %(did you mean \"window\"%?%)$", e)
  end)

  it("rejects unknown keys with and without a suggestion", function()
    assert.are.equal('te.rule: unknown key "windw" (did you mean "window"?)', err_of(te.rule, minimal { windw = "5m" }))
    assert.are.equal('te.rule: unknown key "conditon" (did you mean "condition"?)', err_of(te.rule, minimal { conditon = 1 }))
    assert.are.equal('te.rule: unknown key "zzzzzz"', err_of(te.rule, minimal { zzzzzz = 1 }))
    assert.are.equal("te.rule: unexpected value without a name (write key = value)", err_of(te.rule, minimal { [1] = "x" }))
  end)

  it("rejects a missing or wrong argument", function()
    assert.are.equal("bad argument #1 to 'te.rule' (table expected, got no value)", err_of(te.rule))
    assert.are.equal("bad argument #1 to 'te.rule' (table expected, got string)", err_of(te.rule, "x"))
    assert.are.equal("bad argument #2 to 'te.rule' (write te.rule{ ... } with one table)", err_of(te.rule, {}, {}))
  end)

  it("checks required keys", function()
    local s = minimal(); s.name = nil
    assert.are.equal('te.rule: "name" is required', err_of(te.rule, s))
    s = minimal(); s.kind = nil
    assert.are.equal('te.rule: "kind" is required', err_of(te.rule, s))
    s = minimal(); s.aggs = nil
    assert.are.equal('te.rule: "aggs" is required', err_of(te.rule, s))
    s = minimal(); s.condition = nil
    assert.are.equal('te.rule: "condition" is required', err_of(te.rule, s))
  end)

  it("checks names and kinds", function()
    assert.are.equal('te.rule: "name" must match [a-zA-Z0-9_.-]+, got "bad name"', err_of(te.rule, minimal { name = "bad name" }))
    assert.are.equal('te.rule: "name" must match [a-zA-Z0-9_.-]+, got ""', err_of(te.rule, minimal { name = "" }))
    assert.are.equal('te.rule: "name" must be a string, got number', err_of(te.rule, minimal { name = 3 }))
    assert.are.equal('te.rule: "kind" must match [a-z][a-z0-9_.-]{0,63}, got "Bad"', err_of(te.rule, minimal { kind = "Bad" }))
    assert.are.equal('te.rule: "kind" must be a string, got table', err_of(te.rule, minimal { kind = {} }))
    assert.has_no.errors(function() te.rule(minimal { name = "A.b_c-9" }) end)
  end)

  it("checks durations", function()
    assert.are.equal('te.rule: "window" must be a duration like "5m", got number', err_of(te.rule, minimal { window = 5 }))
    assert.are.equal('te.rule: "window": duration "5x": unknown unit "x" (valid units: ns, us, ms, s, m, h, d, w)',
      err_of(te.rule, minimal { window = "5x" }))
    assert.are.equal('te.rule: "window" must be longer than 0s, got "0s"', err_of(te.rule, minimal { window = "0s" }))
    assert.are.equal('te.rule: "every" must be longer than 0s, got "0"', err_of(te.rule, minimal { every = "0" }))
    assert.are.equal('te.rule: "pending" must be a duration like "5m", got boolean', err_of(te.rule, minimal { pending = true }))
    assert.are.equal(0, te.rule(minimal { pending = "0s" }).pending)
    te._reset()
    assert.are.equal(1.5, te.rule(minimal { keep_firing = "1500ms" }).keep_firing)
  end)

  it("checks where tables", function()
    assert.are.equal('te.rule: "where" must be a table of tag = value, got string', err_of(te.rule, minimal { where = "x" }))
    assert.are.equal('te.rule: where.env must be a string, a list of strings or te.match("re"), got number',
      err_of(te.rule, minimal { where = { env = 1 } }))
    assert.are.equal("te.rule: where.env[2] must be a string, got boolean", err_of(te.rule, minimal { where = { env = { "a", true } } }))
    assert.are.equal("te.rule: where.env is an empty list (give at least one value)", err_of(te.rule, minimal { where = { env = {} } }))
    assert.are.equal("te.rule: where.env must be a list of strings", err_of(te.rule, minimal { where = { env = { x = "a" } } }))
    assert.are.equal("te.rule: where: keys must be tag names, got number", err_of(te.rule, minimal { where = { "a" } }))
  end)

  it("checks group_by, labels and notify", function()
    assert.are.equal('te.rule: "group_by" must be a list of strings, got string', err_of(te.rule, minimal { group_by = "provider" }))
    assert.are.equal("te.rule: group_by[1] must be a non-empty string, got number", err_of(te.rule, minimal { group_by = { 1 } }))
    assert.are.equal('te.rule: group_by[1] must be a non-empty string, got ""', err_of(te.rule, minimal { group_by = { "" } }))
    assert.are.equal('te.rule: "labels" must be a table of name = "value", got string', err_of(te.rule, minimal { labels = "x" }))
    assert.are.equal("te.rule: labels.team must be a string, got number", err_of(te.rule, minimal { labels = { team = 1 } }))
    assert.are.equal('te.rule: "notify" must be a list of strings, got string', err_of(te.rule, minimal { notify = "stdout" }))
    assert.are.same({}, te.rule(minimal { notify = {} }).notify)
  end)

  it("checks aggs", function()
    assert.are.equal('te.rule: "aggs" must be a table of name = te.count() ..., got number', err_of(te.rule, minimal { aggs = 1 }))
    assert.are.equal('te.rule: "aggs" needs at least one aggregate', err_of(te.rule, minimal { aggs = {} }))
    assert.are.equal('te.rule: aggs.n must be an aggregate (te.count(), te.sum("f"), ...), got number',
      err_of(te.rule, minimal { aggs = { n = 1 } }))
    assert.are.equal("te.rule: aggs: key 1x must be a name like errors_total", err_of(te.rule, minimal { aggs = { ["1x"] = te.count() } }))
    assert.are.equal("te.rule: aggs: key number must be a name like errors_total", err_of(te.rule, minimal { aggs = { te.count() } }))
  end)

  it("checks condition, value, severity and max_groups", function()
    assert.are.equal('te.rule: "condition" must be a function, got string', err_of(te.rule, minimal { condition = "a.n > 1" }))
    assert.are.equal('te.rule: "value" must be a function, got number', err_of(te.rule, minimal { value = 1 }))
    assert.are.equal('te.rule: "severity" must be "info", "warning", "critical" or a function, got "fatal"',
      err_of(te.rule, minimal { severity = "fatal" }))
    assert.are.equal('te.rule: "severity" must be "info", "warning", "critical" or a function, got number',
      err_of(te.rule, minimal { severity = 3 }))
    assert.are.equal('te.rule: "max_groups" must be an integer, got number', err_of(te.rule, minimal { max_groups = 1.5 }))
    assert.are.equal('te.rule: "max_groups" must be at least 1, got 0', err_of(te.rule, minimal { max_groups = 0 }))
    assert.are.equal(1, te.rule(minimal { max_groups = 1 }).max_groups)
    assert.are.equal('te.rule: "summary" must be a string, got number', err_of(te.rule, minimal { summary = 1 }))
    assert.are.equal('te.rule: "description" must be a string, got number', err_of(te.rule, minimal { description = 1 }))
  end)

  it("rejects duplicate names", function()
    local line = debug.getinfo(1, "l").currentline + 1
    te.rule(minimal())
    assert.are.equal('te.rule: duplicate name "r" (already declared at line ' .. line .. ")", err_of(te.rule, minimal()))
    assert.are.equal(1, #te.declarations())
  end)

  it("keeps nothing from a rejected rule", function()
    err_of(te.rule, minimal { where = { env = "x" }, windw = "1m" })
    err_of(te.rule, minimal { where = { env = "x" }, severity = "nope" })
    assert.are.equal(0, #te.declarations())
    collectgarbage() -- the boxes of the rejected specs are freed here (ASan checks)
  end)
end)

describe("aggregate constructors", function()
  it("build te.Agg values with __tostring", function()
    assert.are.equal("te.Agg(count)", tostring(te.count()))
    assert.are.equal("te.Agg(count, filtered)", tostring(te.count { status = "error" }))
    assert.are.equal('te.Agg(sum "cost")', tostring(te.sum("cost")))
    assert.are.equal('te.Agg(avg "x", filtered)', tostring(te.avg("x", { a = "b" })))
    assert.are.equal('te.Agg(min "x")', tostring(te.min("x")))
    assert.are.equal('te.Agg(max "x")', tostring(te.max("x")))
    assert.are.equal('te.Agg(quantile "latency_ms", 0.95)', tostring(te.quantile("latency_ms", 0.95)))
    assert.are.equal("te.Agg(rate)", tostring(te.rate()))
    assert.are.equal('te.Agg(distinct "user")', tostring(te.distinct("user")))
    assert.are.equal('te.Agg(last "x")', tostring(te.last("x")))
    assert.are.equal("te.Agg", getmetatable(te.count()))
  end)

  it("describe every op inside a rule", function()
    te._reset()
    local r = te.rule(minimal { aggs = {
      c = te.count(), s = te.sum("cost", { env = "prod" }), a = te.avg("x"), mi = te.min("x"),
      ma = te.max("x"), q = te.quantile("x", 0), r = te.rate { status = "error" },
      d = te.distinct("user"), l = te.last("x"),
    } })
    assert.are.same({ op = "count" }, r.aggs.c)
    assert.are.same({ op = "sum", field = "cost", filter = { env = { "prod" } } }, r.aggs.s)
    assert.are.same({ op = "avg", field = "x" }, r.aggs.a)
    assert.are.same({ op = "min", field = "x" }, r.aggs.mi)
    assert.are.same({ op = "max", field = "x" }, r.aggs.ma)
    assert.are.same({ op = "quantile", field = "x", q = 0 }, r.aggs.q)
    assert.are.same({ op = "rate", filter = { status = { "error" } } }, r.aggs.r)
    assert.are.same({ op = "distinct", field = "user" }, r.aggs.d)
    assert.are.same({ op = "last", field = "x" }, r.aggs.l)
  end)

  it("check their arguments", function()
    assert.are.equal("bad argument #1 to 'te.sum' (string expected, got nil)", err_of(te.sum, nil))
    assert.are.equal("bad argument #1 to 'te.sum' (string expected, got no value)", err_of(te.sum))
    assert.are.equal("bad argument #1 to 'te.avg' (field name must not be empty)", err_of(te.avg, ""))
    assert.are.equal("bad argument #1 to 'te.distinct' (tag name must not be empty)", err_of(te.distinct, ""))
    assert.are.equal("bad argument #2 to 'te.min' (table expected, got string)", err_of(te.min, "x", "y"))
    assert.are.equal("bad argument #1 to 'te.count' (table expected, got string)", err_of(te.count, "status"))
    assert.are.equal("bad argument #2 to 'te.count' (no more than 1 arguments expected)", err_of(te.count, {}, {}))
    assert.are.equal("bad argument #2 to 'te.quantile' (number expected, got no value)", err_of(te.quantile, "x"))
    assert.are.equal("bad argument #2 to 'te.quantile' (q must be between 0 and 1, got 1.5)", err_of(te.quantile, "x", 1.5))
    assert.are.equal("bad argument #2 to 'te.quantile' (q must be between 0 and 1, got -0.1)", err_of(te.quantile, "x", -0.1))
    assert.are.equal("bad argument #2 to 'te.quantile' (q must be between 0 and 1, got nan)", err_of(te.quantile, "x", 0 / 0))
    assert.has_no.errors(function() te.quantile("x", 1) end)
    assert.are.equal('te.count: filter.status must be a string, a list of strings or te.match("re"), got number',
      err_of(te.count, { status = 500 }))
  end)
end)

describe("te.match", function()
  it("compiles PCRE2 patterns", function()
    assert.are.equal('te.match("^gpt-[0-9]+$")', tostring(te.match("^gpt-[0-9]+$")))
    assert.are.equal("te.Match", getmetatable(te.match("x")))
  end)

  it("reports a bad pattern", function()
    assert.are.equal('te.match: bad regex "(": missing closing parenthesis (at offset 1)', err_of(te.match, "("))
    assert.are.equal("bad argument #1 to 'te.match' (string expected, got number)", err_of(te.match, 1))
  end)
end)

describe("te.on_event", function()
  before_each(function() te._reset() end)

  it("returns a description with fn callable", function()
    local seen
    local h = te.on_event { name = "h", kind = "llm_call", where = { status = "error" }, fn = function(ev) seen = ev end }
    assert.are.equal("on_event", h.type)
    assert.are.equal("h", h.name)
    assert.are.equal("llm_call", h.kind)
    assert.are.same({ status = { "error" } }, h.where)
    h.fn(42)
    assert.are.equal(42, seen)
  end)

  it("allows every kind and checks its keys", function()
    assert.is_nil(te.on_event { name = "any", fn = function() end }.kind)
    assert.are.equal('te.on_event: "fn" is required', err_of(te.on_event, { name = "x" }))
    assert.are.equal('te.on_event: "fn" must be a function, got string', err_of(te.on_event, { name = "x", fn = "f" }))
    assert.are.equal('te.on_event: unknown key "fun" (did you mean "fn"?)', err_of(te.on_event, { name = "x", fun = print }))
    assert.are.equal('te.on_event: duplicate name "any" (already declared at line '
      .. te.declarations()[1].line .. ")", err_of(te.on_event, { name = "any", fn = print }))
  end)
end)

describe("utilities", function()
  it("te.duration converts to seconds", function()
    assert.are.equal(300, te.duration("5m"))
    assert.are.equal(math.type(te.duration("5m")), "integer")
    assert.are.equal(0.25, te.duration("250ms"))
    assert.are.equal(5400, te.duration("1h30m"))
    assert.are.equal(0, te.duration("0s"))
    assert.are.equal('te.duration: duration "5x": unknown unit "x" (valid units: ns, us, ms, s, m, h, d, w)', err_of(te.duration, "5x"))
    assert.are.equal("bad argument #1 to 'te.duration' (string expected, got number)", err_of(te.duration, 5))
  end)

  it("te.null and te.array", function()
    assert.are.equal("userdata", type(te.null))
    local t = te.array { 1, 2 }
    assert.are.same({ 1, 2 }, t)
    assert.are.equal("te.Array", getmetatable(t).__name)
    assert.are.equal(t, te.array(t))
    assert.are.equal("te.Array", getmetatable(te.array()).__name)
    assert.are.equal("te.array: the table already has a metatable", err_of(te.array, setmetatable({}, {})))
    assert.are.equal("bad argument #1 to 'te.array' (table expected, got number)", err_of(te.array, 1))
  end)

  it("te.now reads the clock, pinned by te._set_now", function()
    -- os.time() reads the kernel's coarse clock, which may lag the one
    -- te.now() reads by a tick across a second boundary: allow 2 s
    local before = os.time()
    local now = te.now()
    assert.is_true(now >= before - 2 and now <= os.time() + 2)
    te._set_now(1000.5)
    assert.are.equal(1000.5, te.now())
    te._set_now(nil)
    assert.is_true(te.now() >= before - 1)
  end)

  it("te.log checks its level", function()
    assert.has_no.errors(function() te.log("debug", "quiet") end)
    assert.are.equal([[bad argument #1 to 'te.log' (level must be "debug", "info", "warn" or "error", got "loud")]],
      err_of(te.log, "loud", "x"))
    assert.are.equal("bad argument #1 to 'te.log' (string expected, got nil)", err_of(te.log, nil, "x"))
  end)

  it("te.version is a string", function()
    assert.matches("^%d+%.%d+%.%d+", te.version)
  end)
end)
