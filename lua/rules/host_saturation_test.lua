-- Tests of host_saturation.lua (format: docs/rules-testing.md).
local function samples(host, cpu, mem, at, every, times)
  return { at = at, every = every, times = times,
           event = { kind = "host_sample", tags = { host = host, region = "eu-west-1" },
                     fields = { cpu_pct = cpu, mem_pct = mem, disk_used_pct = 60 } } }
end

local n1 = { host = "node-01" }

return {
  rule_files = { "host_saturation.lua" },
  start = "2026-11-20T10:00:00Z",
  tests = {
    {
      name = "CPU over 90% fires after 2m and resolves 1m after it drops",
      events = {
        samples("node-01", 95, 40, "500ms", "10s", 30),    -- 5 minutes busy
        samples("node-01", 20, 40, "300500ms", "10s", 30), -- then idle
        samples("node-03", 50, 60, "500ms", "10s", 60),
      },
      expect = {
        { at = "30s", rule = "host-saturation", group = n1, state = "pending" },
        { at = "2m30s", rule = "host-saturation", group = n1, state = "firing",
          severity = "warning", value = 95,
          summary = "node-01 saturated: 95% CPU or memory (5m average)" },
        { at = "6m", rule = "host-saturation", group = n1, state = "firing" },
        { at = "6m30s", rule = "host-saturation", group = n1, state = "resolved" },
        { at = "6m30s", rule = "host-saturation", group = { host = "node-03" },
          state = "inactive" },
      },
      expect_transitions = {
        { at = "2m30s", rule = "host-saturation", group = n1, to = "firing" },
        { at = "6m30s", rule = "host-saturation", group = n1, to = "resolved" },
      },
    },
    {
      name = "memory at 99% is critical",
      events = { samples("node-02", 30, 99, "500ms", "10s", 30) },
      expect = {
        { at = "3m", rule = "host-saturation", group = { host = "node-02" }, state = "firing",
          severity = "critical", value = 99 },
      },
    },
  },
}
