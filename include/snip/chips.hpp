// snip: SNIP/SNIPER multi-scale training primitives.
// chips.hpp: everything an existing detector needs for SNIPER chip training, in one include
// (no dependency beyond the standard library):
//   - presets and config: plan_config::sniper_coco() / ::defaults() / ::preset(name), scales, valid
//     ranges, chip size and stride (sniper/plan.hpp, sniper/pyramid.hpp, core/valid_range.hpp);
//   - planning: plan_image (positive chips, greedy cover), plan_dataset with per-epoch seeds
//     and stride draw (sniper/plan.hpp, sniper/cover.hpp, sniper/dataset_plan.hpp);
//   - negative chips: mine_negatives from a trained RPN's proposals, sample_negatives
//     (sniper/negatives.hpp);
//   - chip ground truth: assign_chip (valid / invalid / crowd in the chip's frame)
//     (sniper/chip_gt.hpp);
//   - the chip's pixels: cut_chip / crop_resize over any pixel type (sniper/crop.hpp);
//   - pixel budgets and tuning (sniper/pixel_budget.hpp, sniper/tune.hpp);
//   - instance masks in a chip's frame: COCO polygons and RLE, to_chip / flip_x / clip,
//     crop_rle, the Mask R-CNN target in an RoI (roi_mask), RLE encode / decode / area /
//     IoU / merge / compressed strings, pasting a predicted mask back (mask/);
//   - the detector's side of a chip: anchors, box coding, RPN labels and sampling, RCNN
//     targets (det/).
// Reading COCO files is <snip/io/coco.hpp> (nlohmann-json); the NMS and RoI ops are
// <snip/ops/...>; everything header-only at once is <snip/snip.hpp>.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/gt_state.hpp>
#include <snip/core/random.hpp>
#include <snip/core/valid_range.hpp>
#include <snip/core/version.hpp>
#include <snip/core/views.hpp>

#include <snip/mask/paste.hpp>
#include <snip/mask/polygon.hpp>
#include <snip/mask/rle.hpp>
#include <snip/mask/segmentation.hpp>

#include <snip/sniper/chip_gt.hpp>
#include <snip/sniper/cover.hpp>
#include <snip/sniper/crop.hpp>
#include <snip/sniper/dataset.hpp>
#include <snip/sniper/dataset_plan.hpp>
#include <snip/sniper/negatives.hpp>
#include <snip/sniper/pixel_budget.hpp>
#include <snip/sniper/plan.hpp>
#include <snip/sniper/pyramid.hpp>
#include <snip/sniper/tune.hpp>

#include <snip/det/anchors.hpp>
#include <snip/det/box_coder.hpp>
#include <snip/det/iou.hpp>
#include <snip/det/rcnn_targets.hpp>
#include <snip/det/rpn_targets.hpp>
#include <snip/det/sampling.hpp>
