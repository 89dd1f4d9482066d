// Compile-only check (an OBJECT library, never linked or run): the SNIP_TORCH_CUDA branch
// of <snip/torch/ops.hpp> (the CUDA bodies of torch/roi_align.hpp, roi_pool.hpp, nms.hpp,
// box_iou.hpp, deform_conv.hpp and deform_roi_pool.hpp, and the device dispatch of
// torch/dispatch.hpp) compiles with the host
// compiler at C++20 against the LibTorch headers, the c10/cuda and ATen/cuda headers and the
// CUDA toolkit's headers. Built by the `cuda` preset (a dependency of snip_cuda_tests)
// against Debian's CPU-only LibTorch, whose missing generated header
// c10/cuda/impl/cuda_cmake_macros.h comes from the shim in cmake/cuda_check/include. Linking
// is impossible there (no libc10_cuda / libtorch_cuda); the launchers themselves are linked
// and called by test_cuda_launchers.
#ifndef SNIP_TORCH_CUDA
#error "compile with SNIP_TORCH_CUDA defined"
#endif

#include <snip/torch/ops.hpp>

#include <tuple>

namespace ops = snip::torch_ops;

// Instantiates every CUDA path (float and double through the dtype dispatch) and the
// autograd functions that reach them.
at::Tensor snip_check_torch_ops_cuda(const at::Tensor& x, const at::Tensor& rois) {
    const snip::roi_align_options ao;
    const snip::roi_pool_options po;
    at::Tensor y = ops::roi_align(x, rois, {7, 7}, 1.0 / 16, 2, true);
    y = y + ops::roi_pool(x, rois, 7, 1.0 / 16);
    at::Tensor g = ops::roi_align_backward(y, rois, ao, x.sizes());
    auto [out, argmax] = ops::roi_pool_forward(x, rois, po);
    g = g + ops::roi_pool_backward(out, rois, argmax, po, x.sizes());
    return g + ops::roi_align_forward(x, rois, ao).sum();
}

at::Tensor snip_check_torch_ops_cuda_boxes(const at::Tensor& boxes, const at::Tensor& scores) {
    return ops::nms(boxes, scores, 0.5).to(at::kDouble).sum() + ops::box_iou(boxes, boxes);
}

at::Tensor snip_check_torch_deform_roi_pool_cuda(const at::Tensor& x, const at::Tensor& rois,
                                                  const at::Tensor& offset) {
    snip::deform_roi_pool_options o;
    at::Tensor y = ops::deform_roi_pool(x, rois, offset, 1.0 / 16, 256, 1, 7, 7, 4, 0.1);
    auto [gi, go] = ops::deform_roi_pool_backward(y, x, rois, offset, o, true, true);
    o.no_trans = true; // the first pass of SNIPER's head
    return gi.sum() + go.sum() + ops::deform_roi_pool_forward(x, rois, at::Tensor(), o).sum();
}

at::Tensor snip_check_torch_deform_conv_cuda(const at::Tensor& x, const at::Tensor& weight,
                                             const at::Tensor& offset, const at::Tensor& bias) {
    snip::deform_conv_options o;
    o.pad_h = o.pad_w = 2;
    o.dilation_h = o.dilation_w = 2;
    o.offset_groups = 4; // the original's res5
    at::Tensor y = ops::deform_conv2d(x, weight, offset, bias, 1, 1, 2, 2, 2, 2, 1, 4);
    auto [gi, gw, goff, gb] = ops::deform_conv2d_backward(y, x, weight, offset, o);
    return gi.sum() + gw.sum() + goff.sum() + gb.sum() +
           ops::deform_conv2d_forward(x, weight, offset, bias, o).sum();
}
