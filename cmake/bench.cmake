# Benchmarks (bench/run.sh BUILD_DIR, called by `make bench`). Figures are
# printed, not asserted; see docs/benchmarks.md.
#   bench_http     HTTP ingest load client (throughput, ack latency at a fixed rate)
#   bench_ceiling  raw ceiling: cJSON parse + SQLite insert in one loop
#   bench_event    ns/event of the core parser (bench/bench_event.c)
#   bench_rollup   rollup figures (bench/rollup.sh)
#   bench_alerts   alert delivery on the real binary (webhook latency, 10k grouped)
add_executable(bench_http bench/bench_http.c)
target_link_libraries(bench_http PRIVATE Threads::Threads te_warnings)

add_executable(bench_ceiling bench/bench_ceiling.c)
target_link_libraries(bench_ceiling PRIVATE PkgConfig::CJSON PkgConfig::SQLITE te_warnings)

if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_event.c)
  add_executable(bench_event bench/bench_event.c)
  target_link_libraries(bench_event PRIVATE te_base)
endif()

# bench_rollup: rollup figures (bench/rollup.sh): ingest with/without rollups,
# bytes per event, p95-by-model-per-hour over 30 days
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_rollup.c)
  add_executable(bench_rollup bench/bench_rollup.c)
  target_link_libraries(bench_rollup PRIVATE te_core te_warnings)
endif()

# bench_alerts: transition-to-webhook latency and 10,000 alerts delivered
# grouped, on the real binary with a loopback receiver (issue #4)
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_alerts.c)
  add_executable(bench_alerts bench/bench_alerts.c)
  target_link_libraries(bench_alerts PRIVATE te_base PkgConfig::CJSON Threads::Threads te_warnings)
endif()

# anomaly detectors on labelled data generated in the bench (issue #6):
# precision, recall, delay per method and anomaly type, false alarms, ns/update
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_detect.c)
  add_executable(bench_detect bench/bench_detect.c)
  target_link_libraries(bench_detect PRIVATE te_core m te_warnings)
endif()
