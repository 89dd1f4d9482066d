// torch/library.hpp: snip's LibTorch ops registered with the dispatcher as the operator
// namespace `snip` (TORCH_LIBRARY(snip, m) in src/torch/library.cpp), compiled into the
// shared library snip::torch_ops. A C++ program linking it, or a Python one after
// torch.ops.load_library("<path>/libsnip_torch_ops.so"), calls them as torch.ops.snip.* /
// c10::Dispatcher::singleton().findSchemaOrThrow("snip::roi_align", ""). Schemas
// (torchvision's argument order; `convention` is "continuous" or "inclusive"):
//
//   roi_align(Tensor input, Tensor rois, float spatial_scale, int pooled_height,
//             int pooled_width, int sampling_ratio, bool aligned) -> Tensor
//   roi_pool(Tensor input, Tensor rois, float spatial_scale, int pooled_height,
//            int pooled_width) -> Tensor
//   nms(Tensor boxes, Tensor scores, float iou_threshold) -> Tensor
//   batched_nms(Tensor boxes, Tensor scores, Tensor idxs, float iou_threshold) -> Tensor
//   box_iou(Tensor boxes1, Tensor boxes2) -> Tensor
//   encode_boxes(Tensor reference, Tensor targets, float[] means=[0, 0, 0, 0],
//                float[] stds=[1, 1, 1, 1], str convention="continuous") -> Tensor
//   decode_boxes(Tensor reference, Tensor deltas, float[] means=[0, 0, 0, 0],
//                float[] stds=[1, 1, 1, 1], str convention="continuous") -> Tensor
//   deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor? bias, int stride_h,
//                 int stride_w, int pad_h, int pad_w, int dilation_h, int dilation_w,
//                 int groups, int offset_groups) -> Tensor
//   deform_roi_pool(Tensor input, Tensor rois, Tensor? offset, float spatial_scale,
//                   int output_dim, int group_size, int pooled_size, int part_size,
//                   int sample_per_part, float trans_std) -> Tensor
//
// Each runs the function of the same name in torch/ops.hpp (same results, same errors).
// roi_align and roi_pool are CompositeImplicitAutograd kernels: called through the
// dispatcher they record RoIAlignFunction / RoIPoolFunction, so backward (to any order)
// works as for the direct call; so is deform_conv2d (DeformConv2dFunction, first order);
// so is deform_roi_pool (DeformRoIPoolFunction, first order; offset None pools without
// offsets); the others are not differentiable.
#pragma once

#include <string>
#include <vector>

namespace snip::torch_ops {

/// @brief The qualified names of the operators that snip::torch_ops registers
/// ("snip::roi_align", ...), defined in the library (calling it also keeps the library on a
/// program's link line when nothing else refers to it).
std::vector<std::string> library_ops();

} // namespace snip::torch_ops
