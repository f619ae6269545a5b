-- sandbox_spec.lua - escapes tried against the engine's script sandbox
-- (SPEC 6.7). Each case writes a script to a temp dir and loads it with
-- te._sandbox_run (test-only, te.so): the real te_script_load in a fresh
-- lua_State with the engine's allocator cap, budget hook, text-only load
-- and lib-only require. A case passes when the escape fails with a clear
-- message and the host (this busted process) keeps running.

local te = require "te"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "/lib/util'"))

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local n = 0
local function script(text)
  n = n + 1
  return write(dir .. "/s" .. n .. ".lua", text)
end

write(dir .. "/lib/helper.lua", "return { twice = function(x) return 2 * x end }\n")
write(dir .. "/lib/util/text.lua", "local M = {} function M.up(s) return s:upper() end return M\n")
write(dir .. "/secret.lua", "return 'outside lib'\n")

local small = { lib_dir = dir .. "/lib", mem_bytes = 4 * 1024 * 1024, max_steps = 200000, max_call_ms = 2000 }
local function with(extra)
  local o = {}
  for k, v in pairs(small) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- Runs `return <expr>` as the body of a global function f after loading.
local function call(body, opts)
  local p = script("function f() " .. body .. " end\n")
  return te._sandbox_run(p, with(opts and opts or { call = "f" }))
end

local function calls(body, extra)
  local o = { call = "f" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return call(body, o)
end

teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

describe("sandbox: what a script can see", function()
  it("has no os, io, debug, package, dofile, loadfile or string.dump", function()
    local ok, _, r1, r2, r3, r4 = calls("return os == nil and io == nil, debug == nil and package == nil, "
      .. "dofile == nil and loadfile == nil, string.dump == nil")
    assert.is_true(ok)
    assert.are.same({ true, true, true, true }, { r1, r2, r3, r4 })
  end)

  it("has base, string, table, math and utf8", function()
    local ok, _, r = calls("return type(string.format) .. type(table.concat) .. type(math.floor) .. type(utf8.char) .. type(pcall)")
    assert.is_true(ok)
    assert.are.equal(("function"):rep(5), r)
  end)

  it("cannot reach io through the string metatable", function()
    local ok, _, r = calls("return getmetatable('').__index == string and string.dump == nil")
    assert.is_true(ok)
    assert.is_true(r)
  end)

  it("loads text chunks with load, but never bytecode", function()
    local ok, _, r = calls("return load('return 1 + 1')()")
    assert.is_true(ok)
    assert.are.equal(2, r)
    local ok2, _, v, msg = calls([[return load(string.char(27) .. "LuaT\0\25\147\r\n\26\n")]])
    assert.is_true(ok2)
    assert.is_nil(v)
    assert.are.equal("attempt to load a binary chunk (mode is 't')", msg)
    local ok3, _, v3 = calls([[return load(string.char(27) .. "Lua", "x", "b")]])
    assert.is_true(ok3)
    assert.is_nil(v3)
  end)

  it("runs load with the sandbox globals by default and honours env", function()
    local ok, _, r1, r2 = calls("local e = { x = 5 } return load('return os')(), load('return x', 'c', 't', e)()")
    assert.is_true(ok)
    assert.is_nil(r1)
    assert.are.equal(5, r2)
  end)

  it("refuses Lua __gc finalizers (they would run outside the budget)", function()
    local ok, msg = calls("setmetatable({}, { __gc = function() while true do end end })")
    assert.is_false(ok)
    assert.matches("setmetatable: __gc metamethods are not allowed in scripts$", msg)
    local ok2 = calls("return setmetatable({}, { __index = {} }) ~= nil")
    assert.is_true(ok2)
  end)
end)

describe("sandbox: require", function()
  it("finds modules in lib_dir, dots as slashes, and te", function()
    local ok, _, r = calls("return require('helper').twice(21), require('util.text').up('x'), require('te') ~= nil")
    assert.is_true(ok)
    assert.are.equal(42, r)
    local ok2, _, _, r2, r3 = calls("return require('helper').twice(21), require('util.text').up('x'), require('te') ~= nil")
    assert.is_true(ok2)
    assert.are.equal("X", r2)
    assert.is_true(r3)
  end)

  it("caches a module", function()
    local ok, _, r = calls("return require('helper') == require('helper')")
    assert.is_true(ok)
    assert.is_true(r)
  end)

  it("rejects paths outside lib", function()
    for _, name in ipairs { "../secret", "/etc/passwd", "..secret", "util/../../secret", ".hidden", "a..b" } do
      local ok, msg = calls("return require(" .. string.format("%q", name) .. ")")
      assert.is_false(ok, name)
      assert.matches('require: bad module name "' .. name:gsub("%p", "%%%0") .. '"', msg)
    end
  end)

  it("says which file it looked for", function()
    local ok, msg = calls("return require('nothere')")
    assert.is_false(ok)
    assert.matches('require: module "nothere" not found: no file ".-/lib/nothere.lua"$', msg)
  end)

  it("has no lib at all without lib_dir", function()
    local ok, msg = calls("return require('helper')", { lib_dir = false })
    assert.is_false(ok)
    assert.matches('require: module "helper" not found %(no lua/lib/ directory%)$', msg)
  end)
end)

describe("sandbox: limits", function()
  it("stops an infinite loop with the instruction budget and disables the script", function()
    local ok, msg, status = calls("while true do end")
    assert.is_false(ok)
    assert.matches("s%d+%.lua:1: instruction budget of 200000 exceeded; script disabled$", msg)
    assert.are.equal("disabled", status)
  end)

  it("cannot swallow the budget error with pcall", function()
    local ok, msg, status = calls("while true do pcall(function() while true do end end) end")
    assert.is_false(ok)
    assert.matches("instruction budget of 200000 exceeded; script disabled$", msg)
    assert.are.equal("disabled", status)
  end)

  it("cannot swallow it with error handlers that loop either", function()
    local ok, _, status = calls("while true do xpcall(function() while true do end end, function() while true do end end) end")
    assert.is_false(ok)
    assert.are.equal("disabled", status)
  end)

  it("still runs xpcall handlers for ordinary errors", function()
    local ok, _, r = calls("return select(2, xpcall(error, function(m) return 'handled: ' .. m end, 'x', 0))")
    assert.is_true(ok)
    assert.are.equal("handled: x", r)
  end)

  it("stops a slow call with the time budget", function()
    local ok, msg, status = calls("local t = {} while true do t[1] = 1 end", { max_steps = 1e12, max_call_ms = 50 })
    assert.is_false(ok)
    assert.matches("time budget of 50ms per call exceeded; script disabled$", msg)
    assert.are.equal("disabled", status)
  end)

  it("stops an infinite loop at the top level", function()
    local p = script("while true do end\n")
    local ok, msg, status = te._sandbox_run(p, small)
    assert.is_false(ok)
    assert.matches("s%d+%.lua:1: instruction budget of 200000 exceeded; script disabled$", msg)
    assert.are.equal("error", status) -- a failed load keeps the previous version: no script to disable
  end)

  it("lets a call just under the budget finish", function()
    local ok, _, r = calls("local x = 0 for i = 1, 1000 do x = x + i end return x")
    assert.is_true(ok)
    assert.are.equal(500500, r)
  end)

  it("stops a string.rep memory bomb at the cap", function()
    local ok, msg, status = calls("return string.rep('x', 1e9)")
    assert.is_false(ok)
    assert.matches("memory cap of 4194304 bytes exceeded; script disabled$", msg)
    assert.are.equal("disabled", status)
  end)

  it("cannot swallow the memory cap with pcall", function()
    local ok, msg, status = calls("while true do pcall(string.rep, 'x', 1e9) end", { max_steps = 1e9 })
    assert.is_false(ok)
    assert.matches("memory cap of 4194304 bytes exceeded; script disabled$", msg)
    assert.are.equal("disabled", status)
  end)

  it("stops a growing table at the cap", function()
    local ok, msg, status = calls("local t = {} while true do t[#t + 1] = ('x'):rep(1000) .. #t end", { max_steps = 1e9 })
    assert.is_false(ok)
    assert.matches("memory cap of 4194304 bytes exceeded; script disabled$", msg)
    assert.are.equal("disabled", status)
  end)

  it("lets a script use memory just under the cap", function()
    local ok, _, r = calls("return #string.rep('x', 1024 * 1024)")
    assert.is_true(ok)
    assert.are.equal(1024 * 1024, r)
  end)

  it("turns deep recursion into an error, not a crash", function()
    local ok, msg = calls("local function r(n) return 1 + r(n + 1) end return r(1)",
      { mem_bytes = 64 * 1024 * 1024, max_steps = 1e9 })
    assert.is_false(ok)
    assert.matches("stack overflow", msg)
  end)

  it("stops deep recursion at a small memory cap", function()
    local ok, msg, status = calls("local function r(n) return 1 + r(n + 1) end return r(1)", { max_steps = 1e9 })
    assert.is_false(ok)
    assert.matches("memory cap of 4194304 bytes exceeded; script disabled$", msg)
    assert.are.equal("disabled", status)
  end)

  it("keeps the host running after all of the above", function()
    local ok, ndefs = te._sandbox_run(script([[
      local te = require "te"
      te.rule { name = "r", kind = "k", aggs = { n = te.count() }, condition = function(a) return a.n > 0 end }
    ]]), small)
    assert.is_true(ok)
    assert.are.equal(1, ndefs)
  end)
end)

describe("sandbox: load errors", function()
  it("reports syntax errors with file:line", function()
    local p = script("local x = \n\nend\n")
    local ok, msg, status = te._sandbox_run(p, small)
    assert.is_false(ok)
    assert.are.equal(p .. ":3: unexpected symbol near 'end'", msg)
    assert.are.equal("error", status)
  end)

  it("reports a bad declaration with file:line", function()
    local p = script('local te = require "te"\n\nte.rule { name = "r", kind = "k", windw = "5m" }\n')
    local ok, msg = te._sandbox_run(p, small)
    assert.is_false(ok)
    assert.are.equal(p .. ':3: te.rule: unknown key "windw" (did you mean "window"?)', msg)
  end)

  it("reports a missing file", function()
    local ok, msg = te._sandbox_run(dir .. "/none.lua", small)
    assert.is_false(ok)
    assert.are.equal(dir .. "/none.lua: cannot open: No such file or directory", msg)
  end)
end)
