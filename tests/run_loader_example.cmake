# Installs the build tree into a fresh prefix, builds examples/loader against it with
# find_package(snip), and runs it on coco128 (skipped with 77 when the data is absent).
# -DBUILD_DIR, -DSOURCE_DIR, -DWORK_DIR, -DDATA_DIR, -DGENERATOR
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/loader -B ${WORK_DIR}/build
                        -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the loader example against the installed package failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the loader example failed (${rc})")
endif()
set(ann ${DATA_DIR}/coco128/instances_coco128.json)
if(NOT EXISTS ${ann})
  if(DEFINED ENV{SNIP_REQUIRE_DATA} AND NOT "$ENV{SNIP_REQUIRE_DATA}" STREQUAL "" AND NOT "$ENV{SNIP_REQUIRE_DATA}" STREQUAL "0")
    message(FATAL_ERROR "${ann} not found and SNIP_REQUIRE_DATA is set (as in CI): set SNIP_DATA_DIR")
  endif()
  message("[skip] ${ann} not found: the loader example was built but not run")
  return()
endif()
# Stand-in proposals for the first 24 images (a trained RPN's would come from
# snip-train proposals): 40 boxes of 20..140 px spread over each image, so that the
# loader's negative-chip path runs.
file(READ ${ann} coco)
set(props "[")
foreach(i RANGE 23)
  string(JSON id GET "${coco}" images ${i} id)
  string(JSON w GET "${coco}" images ${i} width)
  string(JSON h GET "${coco}" images ${i} height)
  foreach(k RANGE 39)
    math(EXPR bw "20 + (${k} * 13) % 120")
    math(EXPR bh "20 + (${k} * 29) % 120")
    math(EXPR x "(${k} * 37 + ${i} * 11) % (${w} - ${bw})")
    math(EXPR y "(${k} * 53 + ${i} * 7) % (${h} - ${bh})")
    if(NOT props STREQUAL "[")
      string(APPEND props ",")
    endif()
    string(APPEND props "{\"image_id\": ${id}, \"bbox\": [${x}, ${y}, ${bw}, ${bh}], \"score\": 0.5}")
  endforeach()
endforeach()
string(APPEND props "]")
file(WRITE ${WORK_DIR}/proposals.json "${props}")
execute_process(COMMAND ${WORK_DIR}/build/loader ${ann} ${DATA_DIR}/coco128/images
                        ${WORK_DIR}/proposals.json --epochs 2 --limit 24
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the loader example failed (${rc})")
endif()
if(NOT out MATCHES "epoch 1: 24 images, [1-9][0-9]* chips \\([1-9][0-9]* negative\\)")
  message(FATAL_ERROR "the loader example did not report two epochs of chips with negatives")
endif()
# Bad input is a clear error naming the file.
execute_process(COMMAND ${WORK_DIR}/build/loader ${WORK_DIR}/missing.json ${DATA_DIR}/coco128/images
                RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
if(rc EQUAL 0 OR NOT err MATCHES "missing.json: file not found")
  message(FATAL_ERROR "a missing annotations file was not reported by name: ${err}")
endif()
