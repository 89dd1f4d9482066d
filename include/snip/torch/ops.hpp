// torch/ops.hpp: snip's detection ops on LibTorch tensors, with torchvision's argument order
// and semantics (torchvision 0.14): RoIAlign and RoIPool as autograd functions, NMS,
// per-class NMS, the IoU matrix, the box coder and deformable convolution v1 (deform_conv2d,
// torch/deform_conv.hpp: torchvision.ops.deform_conv2d without a mask; snip fills the
// deformable columns, LibTorch's GEMM multiplies them). Link snip::torch. One header per op
// (torch/roi_align.hpp, roi_pool.hpp, nms.hpp, box_iou.hpp, box_coder.hpp), the autograd
// functions (torch/autograd.hpp) and the device dispatch they share (torch/dispatch.hpp);
// this header includes them all. The same ops registered with the dispatcher
// (torch.ops.snip.*): torch/library.hpp, library snip::torch_ops.
//
// @code
//   #include <snip/torch/ops.hpp>
//   namespace ops = snip::torch_ops;
//   at::Tensor feats = at::randn({2, 256, 50, 68}, at::requires_grad());   // stride-16 map
//   at::Tensor rois  = ...;                              // K x 5: batch index, x1, y1, x2, y2
//   at::Tensor y = ops::roi_align(feats, rois, 7, 1.0 / 16, 2, true);   // K x 256 x 7 x 7
//   y.sum().backward();                                  // feats.grad() from snip's backward
//   at::Tensor keep = ops::nms(boxes, scores, 0.7);      // int64 indices, by decreasing score
// @endcode
//
// Devices. CPU tensors run snip's CPU code (ops/roi_align.hpp, ops/roi_pool.hpp, ops/nms.hpp,
// det/iou.hpp, det/box_coder.hpp). CUDA tensors run snip's CUDA kernels for RoIAlign, RoIPool,
// nms and box_iou, and only when SNIP_TORCH_CUDA is defined: the ops then call the compiled
// launchers of cuda/launchers.hpp (these headers hold no kernels, so the including
// translation unit is compiled by the host compiler, never nvcc), and the program links
// snip::cuda_launchers and a CUDA build of LibTorch. snip::torch defines and links all that
// itself when SNIP_ENABLE_CUDA is ON and the LibTorch found has CUDA. Otherwise a CUDA
// tensor gives a snip::error saying so. On the GPU the RoIs are not validated (that would
// need a copy to the host): an out-of-range batch index gives 0, as the launchers
// document; on the CPU every RoI is checked. nms on the GPU returns the CPU's indices, on
// the boxes' device. batched_nms, encode_boxes and decode_boxes are CPU-only.
//
// Layout. CPU inputs of any strides (transposed, sliced, channels-last, expanded) are read
// in place through snip's strided views (adapt/torch.hpp): nothing is copied, except the
// 1-D `scores` and `idxs` of the NMS functions, which are made contiguous when they are not
// (snip's NMS takes spans). CUDA inputs are made contiguous (a copy only when they are not).
// Outputs are new contiguous tensors. Empty inputs give empty outputs of the right shape.
//
// Dtypes. float32 or float64; every floating-point input of one call must have the same
// dtype (no promotion), else the error names the tensor, the dtype wanted and the one found:
// "roi_align: rois must be a K x 5 float32 tensor, got float64 [12, 5]".
//
// Threads. The CPU ops use at::get_num_threads() threads (at::set_num_threads(1) makes them
// serial), started by snip (core/parallel.hpp), not taken from ATen's OpenMP pool. Right
// after a parallel ATen operation libgomp's idle workers spin for a while and compete with
// them for the cores; with few cores, OMP_WAIT_POLICY=passive avoids that. RoIAlign/RoIPool
// backward on the CPU are deterministic for any thread count; on the GPU they use
// atomicAdd, as torchvision's.
//
// Gradients. roi_align and roi_pool are differentiable w.r.t. the features (RoIAlignFunction,
// RoIPoolFunction), to any order: their backward is itself an autograd function whose
// gradient is the forward (RoIAlign is linear) or a gather at the argmax (RoIPool). No
// gradient flows to the RoIs (as torchvision). deform_conv2d is differentiable w.r.t. input,
// weight, offset and bias, to first order (as torchvision's: the gradient of its backward
// throws); its CPU backward is deterministic, its CUDA input gradient uses atomicAdd. nms, batched_nms, box_iou, encode_boxes and
// decode_boxes are not differentiable: their outputs never require grad (write box_iou with
// LibTorch operations if you need its gradient).
//
// Deformable RoI pooling. deform_roi_pool(input, rois, offset, spatial_scale, output_dim,
// group_size, pooled_size, part_size, sample_per_part, trans_std) is the DeformablePSROIPooling
// operator of Deformable-ConvNets and SNIPER (torch/deform_roi_pool.hpp, semantics in
// ops/deform_roi_pool.hpp): K x output_dim x pooled_size x pooled_size; an undefined `offset`
// pools without offsets. Differentiable w.r.t. the input and the offsets, first order only,
// with the original operator's offset gradient (0 along an axis where a sample sits on a
// whole pixel or is clamped to the map); no gradient flows to the RoIs. CPU and (with
// SNIP_TORCH_CUDA) CUDA, like roi_align; its CPU backward is deterministic too.
#pragma once

#include <snip/torch/autograd.hpp>
#include <snip/torch/box_coder.hpp>
#include <snip/torch/box_iou.hpp>
#include <snip/torch/deform_conv.hpp>
#include <snip/torch/deform_roi_pool.hpp>
#include <snip/torch/dispatch.hpp>
#include <snip/torch/nms.hpp>
#include <snip/torch/roi_align.hpp>
#include <snip/torch/roi_pool.hpp>
