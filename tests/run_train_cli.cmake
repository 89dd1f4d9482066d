# The snip-train command line end to end on a small synthetic set (a few minutes of the
# README's demo shrunk to seconds), then every pipeline command on the demo's outputs:
#   demo -> (stage-1 checkpoint) proposals -> snip-chips plan --proposals (negative chips)
#   -> train (with negatives, stopped, resumed) -> detect (+ PNGs, AP) -> eval
# and a few bad inputs that must fail with a message naming the culprit.
# With --masks: the demo trains and scores masks, the stage-2 runs and detections below carry
# them (through resume and the 2-rank launch), and coco128's real polygons train a mask branch
# for a few steps and are scored with --iou-type segm.
# Variables: SNIP_TRAIN, SNIP_CHIPS (programs), WORK_DIR, SKIP_DIST (ON: leave out launch),
# DATA_DIR (the real data; the coco128 block is skipped with a message without it).
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(D ${WORK_DIR}/demo)
set(PLAN --config ${D}/plan.json)

function(run name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  WORKING_DIRECTORY ${WORK_DIR})
  message("-- ${name}:\n${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name} failed (${rc}):\n${err}")
  endif()
  set(OUT "${out}" PARENT_SCOPE)
endfunction()

function(must_fail name pattern)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  WORKING_DIRECTORY ${WORK_DIR})
  if(rc EQUAL 0)
    message(FATAL_ERROR "${name} succeeded but must fail")
  endif()
  if(NOT err MATCHES "${pattern}")
    message(FATAL_ERROR "${name}: the error does not match '${pattern}':\n${err}")
  endif()
  message("-- ${name} fails as it must: ${err}")
endfunction()

function(must_exist)
  foreach(f ${ARGN})
    if(NOT EXISTS ${f})
      message(FATAL_ERROR "missing output ${f}")
    endif()
  endforeach()
endfunction()

run(demo ${SNIP_TRAIN} demo --out ${D} --train-images 6 --val-images 3 --rpn-epochs 1 --epochs 1
    --width 8 --quiet --masks)
if(NOT OUT MATCHES "masks \\(iou type segm\\)" OR NOT OUT MATCHES "mask AP [0-9.]+")
  message(FATAL_ERROR "demo --masks printed no mask AP:\n${OUT}")
endif()
must_exist(${D}/plan.json ${D}/train/annotations.json ${D}/val/annotations.json ${D}/proposals.json
           ${D}/stage1/checkpoint.pt ${D}/stage2/checkpoint.pt ${D}/stage2/log.csv
           ${D}/stage2/loss.png ${D}/val_results.json ${D}/detections_1.png)
if(NOT OUT MATCHES "Average Precision")
  message(FATAL_ERROR "the demo printed no COCO summary")
endif()

# proposals from the stage-1 RPN -> snip-chips plan mines negative chips from them
run(proposals ${SNIP_TRAIN} proposals --checkpoint ${D}/stage1/checkpoint.pt
    --annotations ${D}/train/annotations.json --out ${WORK_DIR}/proposals.json --test-scales plan
    ${PLAN})
run(plan ${SNIP_CHIPS} plan --annotations ${D}/train/annotations.json
    --proposals ${WORK_DIR}/proposals.json --out ${WORK_DIR}/chips.json --negatives 1 ${PLAN})
string(REGEX MATCH "([0-9]+) negative chips" m "${OUT}")
if(NOT m OR CMAKE_MATCH_1 EQUAL 0)
  message(FATAL_ERROR "snip-chips plan mined no negative chip from the proposals")
endif()

# stage 2 from the command line: 3 steps, then resumed for 2 more
set(TRAIN ${SNIP_TRAIN} train --annotations ${D}/train/annotations.json
    --proposals ${WORK_DIR}/proposals.json --out ${WORK_DIR}/run --depth 18 --width 8
    --batch 2 --epochs 1 --lr 0.08 --warmup-chips 4 --quiet --masks ${PLAN})
run(train ${TRAIN} --max-steps 3)
if(NOT OUT MATCHES "3 steps this run \\(3 in all\\)")
  message(FATAL_ERROR "train did not stop after 3 steps")
endif()
run(train-resume ${TRAIN} --max-steps 2 --resume)
if(NOT OUT MATCHES "2 steps this run \\(5 in all\\)")
  message(FATAL_ERROR "train --resume did not continue at step 3")
endif()
file(STRINGS ${WORK_DIR}/run/log.csv rows)
list(LENGTH rows n)
if(NOT n EQUAL 6)
  message(FATAL_ERROR "log.csv has ${n} lines, expected a header and 5 steps")
endif()

# What a real run meets (README, Reliability): a forgotten --resume, flags without values or
# of no use, an output folder that cannot be made, a batch that cannot fit.
must_fail(forgotten-resume "checkpoint.pt exists .*continue that run with --resume, replace it with --overwrite"
          ${TRAIN} --max-steps 1)
must_fail(max-steps-0 "--max-steps: expected an integer >= 1, got '0'" ${TRAIN} --max-steps 0)
must_fail(max-steps-no-value "--max-steps needs a value" ${TRAIN} --max-steps --out ${WORK_DIR}/x)
must_fail(out-not-a-folder "--out ${D}/plan.json/sub: cannot create the folder \\(Not a directory\\)"
          ${TRAIN} --out ${D}/plan.json/sub)
must_fail(huge-batch "a batch of 1000000 chips .* GiB for the loader's pixels alone"
          ${TRAIN} --batch 1000000 --out ${WORK_DIR}/big)
must_fail(detect-out-not-writable "--out ${D}/plan.json/r.json: cannot write there \\(Not a directory\\)"
          ${SNIP_TRAIN} detect --checkpoint ${WORK_DIR}/run/checkpoint.pt
          --annotations ${D}/val/annotations.json --out ${D}/plan.json/r.json)
# The model's initial weights follow the seed: two identical runs, the same first losses.
foreach(k a b)
  run(seeded-${k} ${TRAIN} --max-steps 1 --out ${WORK_DIR}/seeded_${k} --seed 3)
  file(STRINGS ${WORK_DIR}/seeded_${k}/log.csv rows_${k})
  list(GET rows_${k} 1 row)
  string(REGEX REPLACE ",[^,]*$" "" first_${k} "${row}") # all but chips/s
endforeach()
if(NOT first_a STREQUAL first_b)
  message(FATAL_ERROR "two runs with the same seed differ at step 0: ${first_a} vs ${first_b}")
endif()
message("-- seeded: two runs, the same step 0: ${first_a}")

run(detect ${SNIP_TRAIN} detect --checkpoint ${WORK_DIR}/run/checkpoint.pt
    --annotations ${D}/val/annotations.json --out ${WORK_DIR}/results.json
    --draw ${WORK_DIR}/draw --draw-count 2 --eval --test-scales plan ${PLAN})
must_exist(${WORK_DIR}/results.json ${WORK_DIR}/draw/detections_1.png)
if(NOT OUT MATCHES "Average Precision")
  message(FATAL_ERROR "detect --eval printed no COCO summary")
endif()
if(NOT OUT MATCHES "masks \\(iou type segm\\)")
  message(FATAL_ERROR "detect --eval of a mask model printed no segm summary:\n${OUT}")
endif()
file(READ ${WORK_DIR}/results.json results_json)
if(NOT results_json MATCHES "\"segmentation\": *{\"counts\"")
  message(FATAL_ERROR "detect of a mask model wrote no segmentation")
endif()
run(eval-segm ${SNIP_TRAIN} eval --annotations ${D}/val/annotations.json
    --results ${WORK_DIR}/results.json --iou-type segm)
if(NOT OUT MATCHES "segm")
  message(FATAL_ERROR "eval --iou-type segm did not say what it scored:\n${OUT}")
endif()
must_fail(eval-bad-iou-type "--iou-type" ${SNIP_TRAIN} eval --annotations ${D}/val/annotations.json
          --results ${WORK_DIR}/results.json --iou-type keypoints)

# Real polygons: coco128 plans, trains a mask branch for 2 steps, detects and scores masks.
if(DATA_DIR AND EXISTS ${DATA_DIR}/coco128/instances_coco128.json)
  set(C128 --annotations ${DATA_DIR}/coco128/instances_coco128.json
      --images ${DATA_DIR}/coco128/images --scales "0.5" --ranges "-1,-1" --chip-size 256)
  run(coco128-train ${SNIP_TRAIN} train ${C128} --out ${WORK_DIR}/c128 --depth 18 --width 8
      --batch 2 --epochs 1 --max-steps 2 --quiet --masks)
  run(coco128-detect ${SNIP_TRAIN} detect --checkpoint ${WORK_DIR}/c128/checkpoint.pt ${C128}
      --test-scales plan --limit 2 --out ${WORK_DIR}/c128.json --eval)
  if(NOT OUT MATCHES "masks \\(iou type segm\\)")
    message(FATAL_ERROR "coco128 detect --eval printed no segm summary:\n${OUT}")
  endif()
else()
  message("-- [skip] coco128 masks: no real data at '${DATA_DIR}'")
endif()
run(eval ${SNIP_TRAIN} eval --annotations ${D}/val/annotations.json
    --results ${D}/val_results.json)
# detect --limit N --eval and eval --limit N score the same images, and say so.
run(detect-limit ${SNIP_TRAIN} detect --checkpoint ${WORK_DIR}/run/checkpoint.pt
    --annotations ${D}/val/annotations.json --out ${WORK_DIR}/results_2.json --limit 2 --eval
    --test-scales plan ${PLAN})
string(REGEX MATCH "\\(AP\\) @\\[ IoU=0.50:0.95 \\| area=   all \\| maxDets=100 \\] = [0-9.]+" ap_detect "${OUT}")
if(NOT OUT MATCHES "scoring the 2 images detected, of the 3 of .*eval --limit 2")
  message(FATAL_ERROR "detect --limit 2 --eval does not say which images it scores")
endif()
run(eval-limit ${SNIP_TRAIN} eval --annotations ${D}/val/annotations.json
    --results ${WORK_DIR}/results_2.json --limit 2)
string(REGEX MATCH "\\(AP\\) @\\[ IoU=0.50:0.95 \\| area=   all \\| maxDets=100 \\] = [0-9.]+" ap_eval "${OUT}")
if(NOT ap_detect OR NOT ap_detect STREQUAL ap_eval)
  message(FATAL_ERROR "detect --limit 2 --eval (${ap_detect}) and eval --limit 2 (${ap_eval}) differ")
endif()

# bad inputs
must_fail(no-checkpoint "none.pt: no such checkpoint file" ${SNIP_TRAIN} detect
          --checkpoint ${WORK_DIR}/none.pt --annotations ${D}/val/annotations.json
          --out ${WORK_DIR}/x.json)
must_fail(wrong-model "checkpoint of another model" ${TRAIN} --width 16 --resume)
must_fail(wrong-network "its network is `sniper`, this run's `plain`" ${TRAIN} --model plain --resume)
must_fail(bad-network "--model: unknown network 'fpn'" ${TRAIN} --model fpn)
must_fail(bad-head "--head: unknown RoI pooling 'psroi'" ${TRAIN} --head psroi)
must_fail(bad-device "--device: expected cpu, cuda or cuda:N, got 'tpu'" ${TRAIN} --device tpu)
must_fail(cuda-absent "no usable CUDA" ${TRAIN} --device cuda)
must_fail(bad-flag "unknown option '--epoch-count'" ${TRAIN} --epoch-count 3)
must_fail(rpn-proposals "--proposals belongs to" ${SNIP_TRAIN} rpn
          --annotations ${D}/train/annotations.json --proposals ${WORK_DIR}/proposals.json
          --out ${WORK_DIR}/r ${PLAN})

# Distributed (c10d Gloo over loopback), started by `snip-train launch`: 2 ranks give the same
# proposals and detections JSON as 1 process (one intra-op thread each, so that every image's
# arithmetic is the same), train shares a global batch, and the run resumes in 1 process.
# (Not under ThreadSanitizer, SKIP_DIST: see the label c10d in tests/CMakeLists.txt.)
if(SKIP_DIST)
  message("-- [skip] distributed commands: c10d's Gloo threads are not instrumented for TSan")
  return()
endif()
function(same_files a b what)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${a} ${b} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what}: 2 ranks wrote another file than 1 process (${a} vs ${b})")
  endif()
  message("-- ${what}: 2 ranks == 1 process")
endfunction()
set(PROPS proposals --checkpoint ${D}/stage1/checkpoint.pt
    --annotations ${D}/train/annotations.json --threads 1 --test-scales plan ${PLAN})
run(proposals-1 ${SNIP_TRAIN} ${PROPS} --out ${WORK_DIR}/proposals_1.json)
run(proposals-2 ${SNIP_TRAIN} launch -n 2 ${PROPS} --out ${WORK_DIR}/proposals_2.json)
same_files(${WORK_DIR}/proposals_1.json ${WORK_DIR}/proposals_2.json proposals)
set(DETECT detect --checkpoint ${WORK_DIR}/run/checkpoint.pt
    --annotations ${D}/val/annotations.json --threads 1 --test-scales plan ${PLAN})
run(detect-1 ${SNIP_TRAIN} ${DETECT} --out ${WORK_DIR}/results_1.json)
run(detect-2 ${SNIP_TRAIN} launch -n 2 ${DETECT} --out ${WORK_DIR}/results_2.json
    --draw ${WORK_DIR}/draw2 --draw-count 2)
same_files(${WORK_DIR}/results_1.json ${WORK_DIR}/results_2.json detect)
must_exist(${WORK_DIR}/draw2/detections_1.png ${WORK_DIR}/draw2/detections_2.png)

set(DTRAIN train --annotations ${D}/train/annotations.json --out ${WORK_DIR}/drun
    --depth 18 --width 8 --batch 2 --epochs 1 --lr 0.08 --warmup-chips 4
    --quiet ${PLAN})
run(train-2-ranks ${SNIP_TRAIN} launch -n 2 ${DTRAIN} --max-steps 2)
if(NOT OUT MATCHES "2 steps this run \\(2 in all\\)")
  message(FATAL_ERROR "launch -n 2 train did not train 2 steps")
endif()
run(train-resume-1-rank ${SNIP_TRAIN} ${DTRAIN} --max-steps 1 --resume)
if(NOT OUT MATCHES "1 steps this run \\(3 in all\\)")
  message(FATAL_ERROR "a 2-rank run did not resume in 1 process at step 2")
endif()
# A file that rank 1 alone needs is missing: launch prints rank 1's error last.
file(COPY ${D}/val DESTINATION ${WORK_DIR}/val_copy)
file(READ ${D}/val/annotations.json val_json)
string(JSON second GET "${val_json}" images 1 file_name)
file(REMOVE ${WORK_DIR}/val_copy/val/${second})
execute_process(COMMAND ${SNIP_TRAIN} launch -n 2 ${DETECT} --out ${WORK_DIR}/results_bad.json
                --images ${WORK_DIR}/val_copy/val
                RESULT_VARIABLE rc ERROR_VARIABLE err WORKING_DIRECTORY ${WORK_DIR})
string(STRIP "${err}" err)
string(REGEX MATCH "[^\n]*$" last_line "${err}")
if(rc EQUAL 0 OR NOT last_line MATCHES "^launch: rank 1 failed first: .*${second}")
  message(FATAL_ERROR "launch with a file missing on rank 1: rc ${rc}, last line '${last_line}':\n${err}")
endif()
message("-- rank-1-missing-file fails as it must; launch's last line: ${last_line}")
# SIGTERM to launch (a scheduler's preemption): passed to both ranks, which stop after the
# same step; rank 0 writes the checkpoint; launch exits 143; one process resumes from it.
execute_process(COMMAND timeout --preserve-status -s TERM 15 ${SNIP_TRAIN} launch -n 2 ${DTRAIN}
                --out ${WORK_DIR}/sigrun --epochs 400 --checkpoint-every 1000
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err WORKING_DIRECTORY ${WORK_DIR})
if(NOT rc EQUAL 143 OR NOT err MATCHES "stopped by SIGTERM after step [0-9]+" OR NOT EXISTS ${WORK_DIR}/sigrun/checkpoint.pt)
  message(FATAL_ERROR "launch under SIGTERM: rc ${rc} (expected 143), no clean stop:\n${err}")
endif()
string(REGEX MATCH "stopped by SIGTERM after step ([0-9]+)" m "${err}")
set(sig_step ${CMAKE_MATCH_1})
message("-- launch under SIGTERM: both ranks stopped after step ${sig_step}, exit 143")
run(sigrun-resume ${SNIP_TRAIN} ${DTRAIN} --out ${WORK_DIR}/sigrun --epochs 400
    --checkpoint-every 1000 --max-steps 1 --resume)
math(EXPR next "${sig_step} + 1")
if(NOT OUT MATCHES "1 steps this run \\(${next} in all\\)")
  message(FATAL_ERROR "the SIGTERM-stopped run did not resume at step ${sig_step}:\n${OUT}")
endif()
must_fail(odd-batch "a batch of 3 chips does not split over 2 processes"
          ${SNIP_TRAIN} launch -n 2 ${DTRAIN} --batch 3)
must_fail(bad-rank "rank must be in \\[0, 1\\], got 2" ${SNIP_TRAIN} ${DTRAIN} --world-size 2 --rank 2
          --dist-init tcp://127.0.0.1:29500)
must_fail(bad-init "--dist-init 'http://x:1': expected tcp://HOST:PORT or file:///PATH"
          ${SNIP_TRAIN} ${DTRAIN} --world-size 2 --rank 0 --dist-init http://x:1)
must_fail(no-rendezvous "world size 2 needs a rendezvous" ${SNIP_TRAIN} ${DTRAIN} --world-size 2 --rank 0)
must_fail(launch-no-n "launch: give the number of processes with -n N" ${SNIP_TRAIN} launch train)
