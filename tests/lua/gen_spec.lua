-- gen_spec.lua - examples/gen.lua: shape of its lines, counts, determinism,
-- domain mix, flat form and option errors. Runs gen.lua as a child process.

local root = os.getenv("TE_SOURCE_DIR") or "."
local GEN = root .. "/examples/gen.lua"
local LUA = "lua5.4"

local function run(args)
  local p = assert(io.popen(LUA .. " " .. GEN .. " " .. args .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function lines(s)
  local t = {}
  for l in s:gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

-- Minimal JSON object check for the generator's shape: balanced braces and
-- quotes, every key quoted, no trailing comma. Decodes into a Lua table.
local function decode(s)
  local pos = 1
  local function ws() pos = s:find("[^ \t]", pos) or #s + 1 end
  local value
  local function str()
    assert(s:sub(pos, pos) == '"', "string expected at " .. pos .. " in " .. s)
    local e = s:find('"', pos + 1, true)
    assert(e, "unterminated string in " .. s)
    local v = s:sub(pos + 1, e - 1)
    assert(not v:find("\\", 1, true), "generator strings need no escapes")
    pos = e + 1
    return v
  end
  local function obj()
    pos = pos + 1
    local t = {}
    ws()
    if s:sub(pos, pos) == "}" then pos = pos + 1; return t end
    while true do
      ws()
      local k = str()
      ws()
      assert(s:sub(pos, pos) == ":", "colon expected in " .. s)
      pos = pos + 1
      ws()
      t[k] = value()
      ws()
      local c = s:sub(pos, pos)
      pos = pos + 1
      if c == "}" then return t end
      assert(c == ",", "comma expected at " .. pos .. " in " .. s)
    end
  end
  function value()
    local c = s:sub(pos, pos)
    if c == "{" then return obj() end
    if c == '"' then return str() end
    local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    assert(num and #num > 0, "value expected at " .. pos .. " in " .. s)
    pos = pos + #num
    return assert(tonumber(num))
  end
  ws()
  local v = value()
  ws()
  assert(pos == #s + 1, "trailing text in " .. s)
  return v
end

describe("gen.lua", function()
  it("writes exactly --count canonical events", function()
    local out, code = run("--count 500 --seed 7 --start 2026-11-20T10:00:00Z")
    assert.are.equal(0, code)
    local ls = lines(out)
    assert.are.equal(500, #ls)
    for _, l in ipairs(ls) do
      local ev = decode(l)
      assert.is_string(ev.kind)
      assert.truthy(ev.kind:match("^[a-z][a-z0-9_.-]*$"))
      assert.truthy(ev.ts:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"))
      assert.is_string(ev.source)
      assert.is_table(ev.tags)
      assert.is_table(ev.fields)
      for _, v in pairs(ev.tags) do assert.is_string(v) end
      for _, v in pairs(ev.fields) do assert.is_number(v) end
    end
  end)

  it("writes nothing for --count 0", function()
    local out, code = run("--count 0")
    assert.are.equal(0, code)
    assert.are.equal("", out)
  end)

  it("is deterministic for the same --seed and --start", function()
    local a = run("--count 300 --seed 42 --start 1763632800 --ids")
    local b = run("--count 300 --seed 42 --start 2025-11-20T10:00:00Z --ids")
    local c = run("--count 300 --seed 43 --start 1763632800 --ids")
    assert.are.equal(a, b)
    assert.are_not.equal(a, c)
  end)

  it("spaces timestamps by --rate from --start", function()
    local ls = lines(run("--count 20 --rate 10 --start 2026-01-01T00:00:00Z --kinds host_sample"))
    assert.truthy(ls[1]:find('"ts":"2026-01-01T00:00:00.0', 1, true))
    assert.truthy(ls[20]:find('"ts":"2026-01-01T00:00:01.9', 1, true))
  end)

  it("mixes every kind with realistic tags and fields", function()
    local out = run("--count 4000 --seed 1 --start 1763632800")
    local seen, providers, errors, llm = {}, {}, 0, 0
    for _, l in ipairs(lines(out)) do
      local ev = decode(l)
      seen[ev.kind] = (seen[ev.kind] or 0) + 1
      if ev.kind == "llm_call" then
        llm = llm + 1
        providers[ev.tags.provider] = true
        assert.truthy(({ fast = 1, capable = 1, premium = 1 })[ev.tags.tier])
        assert.is_number(ev.fields.latency_ms)
        assert.is_true(ev.fields.cost_usd >= 0)
        if ev.tags.status ~= "ok" then errors = errors + 1 end
      elseif ev.kind == "selector_op" then
        assert.truthy(({ css = 1, xpath = 1, text = 1, aria = 1, visual = 1 })[ev.tags.strategy])
        assert.is_true(ev.fields.confidence >= 0 and ev.fields.confidence <= 1)
        assert.truthy(({ found = 1, fallback = 1, failed = 1 })[ev.tags.outcome])
      elseif ev.kind == "run_step" then
        assert.is_string(ev.tags.run_id)
        assert.is_true(ev.fields.step_ordinal >= 1 and ev.fields.step_ordinal <= ev.fields.steps_total)
      elseif ev.kind == "agent_span" then
        assert.truthy(ev.trace_id:match("^%x+$"))
        assert.are.equal(32, #ev.trace_id)
        assert.are.equal(16, #ev.span_id)
      elseif ev.kind == "host_sample" then
        assert.is_true(ev.fields.cpu_pct >= 0 and ev.fields.cpu_pct <= 100)
      end
    end
    for _, k in ipairs({ "llm_call", "selector_op", "run", "run_step", "agent_span", "host_sample" }) do
      assert.is_true((seen[k] or 0) > 0, "no " .. k)
    end
    for _, p in ipairs({ "openai", "anthropic", "google", "mistral" }) do
      assert.is_true(providers[p] ~= nil, "no provider " .. p)
    end
    -- about 3% errors/timeouts
    assert.is_true(errors / llm > 0.01 and errors / llm < 0.06, "error ratio " .. errors / llm)
  end)

  it("limits output to --kinds", function()
    for _, l in ipairs(lines(run("--count 200 --kinds run_step,host_sample"))) do
      local k = decode(l).kind
      assert.truthy(k == "run_step" or k == "host_sample", k)
    end
  end)

  it("gives unique ids with --ids", function()
    local seen = {}
    for _, l in ipairs(lines(run("--count 2000 --ids --seed 5"))) do
      local id = decode(l).id
      assert.is_string(id)
      assert.is_nil(seen[id])
      seen[id] = true
    end
  end)

  it("writes the flat form with --format flat", function()
    for _, l in ipairs(lines(run("--count 200 --format flat --kinds llm_call"))) do
      local ev = decode(l)
      assert.is_nil(ev.tags)
      assert.is_nil(ev.fields)
      assert.is_string(ev.provider)
      assert.is_number(ev.latency_ms)
    end
  end)

  it("rejects bad options with exit 2 and a message", function()
    local out, code = run("--kinds nope")
    assert.are.equal(2, code)
    assert.truthy(out:find("unknown kind 'nope'", 1, true))
    out, code = run("--format xml")
    assert.are.equal(2, code)
    assert.truthy(out:find("--format", 1, true))
    out, code = run("--start yesterday")
    assert.are.equal(2, code)
    out, code = run("--bogus")
    assert.are.equal(2, code)
    assert.truthy(out:find("unknown option", 1, true))
  end)
end)
