// snip: SNIP/SNIPER multi-scale training primitives.
// snip.hpp: the whole header-only library in one include - the chip layer and the
// detector's side (chips.hpp), the NMS family and the RoI ops (ops/), and, when
// nlohmann-json is on the include path, COCO reading / writing (io/) and COCO evaluation
// (eval/). The adapters to other tensor types (adapt/), the LibTorch ops (torch/) and the
// CUDA kernels (cuda/) need their own libraries and are included on their own.
#pragma once

#include <snip/chips.hpp>

#include <snip/core/parallel.hpp>

#include <snip/ops/batched_nms.hpp>
#include <snip/ops/merge.hpp>
#include <snip/ops/nms.hpp>
#include <snip/ops/soft_nms.hpp>
#include <snip/ops/roi_align.hpp>
#include <snip/ops/roi_pool.hpp>

#if __has_include(<nlohmann/json.hpp>)
#include <snip/eval/coco_eval.hpp>
#include <snip/io/chips_json.hpp>
#include <snip/io/chips_report.hpp>
#include <snip/io/coco.hpp>
#endif
