# Benchmarks (bench/run.sh BUILD_DIR, called by `make bench`). Figures are
# printed, not asserted; see docs/benchmarks.md.
#   bench_http     HTTP ingest load client (throughput, ack latency at a fixed rate)
#   bench_ceiling  raw ceiling: cJSON parse + SQLite insert in one loop
#   bench_event    ns/event of the core parser (bench/bench_event.c)
add_executable(bench_http bench/bench_http.c)
target_link_libraries(bench_http PRIVATE Threads::Threads te_warnings)

add_executable(bench_ceiling bench/bench_ceiling.c)
target_link_libraries(bench_ceiling PRIVATE PkgConfig::CJSON PkgConfig::SQLITE te_warnings)

if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_event.c)
  add_executable(bench_event bench/bench_event.c)
  target_link_libraries(bench_event PRIVATE te_base)
endif()
