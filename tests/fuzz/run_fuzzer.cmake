# Runs one libFuzzer program for a bounded time on a copy of its seed corpus.
#   cmake -DFUZZER=<program> -DSEEDS=<seed folder> -DWORK=<build folder> [-DDICT=<file>]
#         "-DARGS=-max_total_time=60;-max_len=4096;..." -P run_fuzzer.cmake
# WORK/corpus receives the seeds and whatever the run adds (kept between runs); a
# crashing input is written to WORK/ as crash-*, leak-*, timeout-* or oom-*. The
# fuzzer's output goes to the test log, followed by one summary line: executions,
# coverage (cov: edges, ft: features), corpus size, exec/s and the time taken.
foreach(v FUZZER SEEDS WORK)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "run_fuzzer.cmake: -D${v}=... is required")
  endif()
endforeach()

file(MAKE_DIRECTORY ${WORK}/corpus)
file(GLOB seeds ${SEEDS}/*)
if(seeds)
  file(COPY ${seeds} DESTINATION ${WORK}/corpus)
endif()
set(extra "")
if(DICT)
  list(APPEND extra -dict=${DICT})
endif()

string(TIMESTAMP t0 "%s")
execute_process(
  COMMAND ${FUZZER} ${ARGS} ${extra} -print_final_stats=1 -artifact_prefix=${WORK}/ ${WORK}/corpus
  WORKING_DIRECTORY ${WORK}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out)
string(TIMESTAMP t1 "%s")
math(EXPR seconds "${t1} - ${t0}")
message("${out}")

# libFuzzer's last status line: "#N  DONE   cov: C ft: F corp: U/Sb lim: L exec/s: E rss: R"
set(summary "no DONE line (the run stopped early)")
string(REGEX MATCHALL "#[0-9]+[ \t]+DONE[^\n]*" done_lines "${out}")
if(done_lines)
  list(GET done_lines -1 summary)
endif()
get_filename_component(name ${FUZZER} NAME)
message("${name}: ${seconds} s, ${summary}")

if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${name} failed (exit ${rc}): see the report above and the artifact in ${WORK}/")
endif()
