-- Tests of detector_host.lua (format: docs/rules-testing.md).
local function samples(host, cpu, mem, at, every, times)
  return { at = at, every = every, times = times,
           event = { kind = "host_sample", tags = { host = host, region = "eu-west-1" },
                     fields = { cpu_pct = cpu, mem_pct = mem } } }
end

local n1 = { host = "node-01" }

return {
  rule_files = { "detector_host.lua" },
  start = "2026-11-20T10:00:00Z",
  tests = {
    {
      name = "a CPU jump after hours of steady load fires, memory stays quiet",
      events = {
        samples("node-01", 35, 60, "500ms", "10s", 1080),      -- 3 hours steady
        samples("node-01", 90, 60, "10800500ms", "10s", 60),   -- then 10 minutes at 90%
      },
      expect = {
        { at = "3h", rule = "host-cpu-anomaly", group = n1, state = "inactive" },
        { at = "3h4m", rule = "host-cpu-anomaly", group = n1, state = "firing" },
        { at = "3h4m", rule = "host-memory-anomaly", group = n1, state = "inactive" },
      },
    },
    {
      name = "no verdict before the first model is trained",
      events = { samples("node-02", 35, 60, "500ms", "10s", 360),
                 samples("node-02", 99, 99, "3600500ms", "10s", 30) },
      expect = {
        { at = "1h5m", rule = "host-cpu-anomaly", group = { host = "node-02" },
          state = "inactive" },
      },
    },
  },
}
