// torch/ops.hpp: snip's detection ops on LibTorch tensors, with torchvision's argument order
// and semantics (torchvision 0.14): RoIAlign and RoIPool as autograd functions, NMS,
// per-class NMS, the IoU matrix and the box coder. Link snip::torch.
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
// Devices. CPU tensors run snip's CPU code (roi_align.hpp, roi_pool.hpp, nms.hpp,
// matching.hpp, box_coder.hpp). CUDA tensors run snip's CUDA kernels for RoIAlign and
// RoIPool only, and only when SNIP_TORCH_CUDA is defined: the ops then call the compiled
// launchers of cuda/launchers.hpp (this header holds no kernels, so the including
// translation unit is compiled by the host compiler, never nvcc), and the program links
// snip::cuda_launchers and a CUDA build of LibTorch. snip::torch defines and links all that
// itself when SNIP_ENABLE_CUDA is ON and the LibTorch found has CUDA. Otherwise a CUDA
// tensor gives a snip::error saying so. On the GPU the RoIs are not validated (that would
// need a copy to the host): an out-of-range batch index gives 0, as the launchers
// document; on the CPU every RoI is checked. The tensor helpers (nms, batched_nms,
// box_iou, encode_boxes, decode_boxes) are CPU-only.
//
// Layout. CPU inputs of any strides (transposed, sliced, channels-last, expanded) are read
// in place through snip's strided views (backend/torch.hpp): nothing is copied, except the
// 1-D `scores` and `idxs` of the NMS functions, which are made contiguous when they are not
// (snip's NMS takes spans). CUDA inputs are made contiguous (a copy only when they are not).
// Outputs are new contiguous tensors. Empty inputs give empty outputs of the right shape.
//
// Dtypes. float32 or float64; every floating-point input of one call must have the same
// dtype (no promotion), else the error names the tensor, the dtype wanted and the one found:
// "roi_align: rois must be a K x 5 float32 tensor, got float64 [12, 5]".
//
// Threads. The CPU ops use at::get_num_threads() threads (at::set_num_threads(1) makes them
// serial), started by snip (detail/parallel.hpp), not taken from ATen's OpenMP pool. Right
// after a parallel ATen operation libgomp's idle workers spin for a while and compete with
// them for the cores; with few cores, OMP_WAIT_POLICY=passive avoids that. RoIAlign/RoIPool
// backward on the CPU are deterministic for any thread count; on the GPU they use
// atomicAdd, as torchvision's.
//
// Gradients. roi_align and roi_pool are differentiable w.r.t. the features (RoIAlignFunction,
// RoIPoolFunction), to any order: their backward is itself an autograd function whose
// gradient is the forward (RoIAlign is linear) or a gather at the argmax (RoIPool). No
// gradient flows to the RoIs (as torchvision). nms, batched_nms, box_iou, encode_boxes and
// decode_boxes are not differentiable: their outputs never require grad (write box_iou with
// LibTorch operations if you need its gradient).
#pragma once

#include <snip/adapt/torch.hpp>
#include <snip/core/box.hpp>
#include <snip/det/box_coder.hpp>
#include <snip/core/error.hpp>
#include <snip/det/iou.hpp>
#include <snip/ops/batched_nms.hpp>
#include <snip/ops/nms.hpp>
#include <snip/ops/roi_align.hpp>
#include <snip/ops/roi_pool.hpp>
#include <snip/core/views.hpp>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#ifdef SNIP_TORCH_CUDA
#include <snip/cuda/launchers.hpp>

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace snip::torch_ops {

/// @brief The output size of RoIAlign / RoIPool in bins: `7` or `{7, 7}` (height, width),
/// as torchvision's `output_size`.
struct output_size {
    std::int64_t h = 7, w = 7;
    output_size(std::int64_t side) : h(side), w(side) {} // NOLINT: implicit, like an int in Python
    output_size(std::int64_t height, std::int64_t width) : h(height), w(width) {}
};

/// @brief Threads the CPU ops use: at::get_num_threads().
inline unsigned op_threads() {
    const int n = at::get_num_threads();
    return n > 0 ? static_cast<unsigned>(n) : 1u;
}

namespace detail {

using snip::detail::check_torch_layout;
using snip::detail::check_torch_shape;
using snip::detail::torch_describe;

/// Calls fn(T{}) with T = float or double, the dtype of `t` (a floating-point input named
/// `name` whose expected shape is `shape`).
template <class Fn>
decltype(auto) dispatch_floating(const at::Tensor& t, std::string_view name, std::string_view shape,
                                 Fn&& fn) {
    detail::check_torch_layout(t, name);
    switch (t.scalar_type()) {
    case c10::ScalarType::Float:
        return fn(float{});
    case c10::ScalarType::Double:
        return fn(double{});
    default:
        fail(name, " must be a ", shape, " float32 or float64 tensor, got ",
             detail::torch_describe(t));
    }
}

inline int to_int(const char* op, const char* what, std::int64_t v, std::int64_t lo) {
    require(v >= lo && v <= INT_MAX, op, ": ", what, " must be in [", lo, ", 2^31 - 1], got ", v);
    return static_cast<int>(v);
}

inline roi_align_options align_options(const char* op, double spatial_scale, std::int64_t pooled_h,
                                       std::int64_t pooled_w, std::int64_t sampling_ratio,
                                       bool aligned) {
    roi_align_options o;
    o.pooled_h = to_int(op, "pooled_height", pooled_h, 1);
    o.pooled_w = to_int(op, "pooled_width", pooled_w, 1);
    o.spatial_scale = spatial_scale;
    o.sampling_ratio = to_int(op, "sampling_ratio", sampling_ratio, INT_MIN);
    o.aligned = aligned;
    return o;
}

inline roi_pool_options pool_options(const char* op, double spatial_scale, std::int64_t pooled_h,
                                     std::int64_t pooled_w) {
    roi_pool_options o;
    o.pooled_h = to_int(op, "pooled_height", pooled_h, 1);
    o.pooled_w = to_int(op, "pooled_width", pooled_w, 1);
    o.spatial_scale = spatial_scale;
    return o;
}

inline void check_input_sizes(const char* op, at::IntArrayRef sizes) {
    require(sizes.size() == 4 && sizes[0] >= 0 && sizes[1] >= 0 && sizes[2] >= 0 && sizes[3] >= 0,
            op, ": input_sizes must be 4 extents N, C, H, W >= 0, got ", sizes.size(), " values");
}

/// A CUDA tensor among the inputs: the CUDA path, or the error of a CPU-only build.
inline bool any_cuda(const at::Tensor& a, const at::Tensor& b) {
    return a.is_cuda() || b.is_cuda();
}

[[noreturn]] inline void no_cuda(const char* op, const at::Tensor& t) {
    fail(op, ": got a ", t.device().str(),
         " tensor, but snip's LibTorch ops were compiled without CUDA (define SNIP_TORCH_CUDA "
         "and link snip::cuda_launchers and a CUDA LibTorch: SNIP_ENABLE_CUDA=ON does it)");
}

inline const at::Tensor& cuda_one(const at::Tensor& a, const at::Tensor& b) {
    return a.is_cuda() ? a : b;
}

// --------------------------------------------------------------------------------------
// CUDA: compiled by the host compiler in snip's CI (the `cuda` preset's compile-only check
// against Debian's headers), never run or linked there (Debian's LibTorch is CPU-only).

#ifdef SNIP_TORCH_CUDA

/// A launcher's result (a cudaError_t value) turned into snip::error.
inline void check_cuda(const char* op, int e) {
    if (e != snip::cuda::launchers::success)
        fail(op, ": CUDA error: ", snip::cuda::launchers::error_string(e));
}

inline void same_cuda_device(const char* op, const at::Tensor& a, const char* an,
                             const at::Tensor& b, const char* bn) {
    require(a.is_cuda() && b.is_cuda() && a.device() == b.device(), op, ": ", an, " and ", bn,
            " must be on the same CUDA device, got ", a.device().str(), " and ", b.device().str());
}

template <class T>
at::Tensor roi_align_forward_cuda(const at::Tensor& input, const at::Tensor& rois,
                                  const roi_align_options& o) {
    constexpr const char* op = "roi_align";
    same_cuda_device(op, input, "input", rois, "rois");
    detail::check_torch_shape<T>(rois, "roi_align: rois", 2, {-1, 5, -1, -1}, "K x 5");
    const c10::cuda::CUDAGuard guard(input.device());
    const at::Tensor x = input.contiguous(), r = rois.contiguous();
    const int n = to_int(op, "N", x.size(0), 0), c = to_int(op, "C", x.size(1), 0);
    const int h = to_int(op, "H", x.size(2), 0), w = to_int(op, "W", x.size(3), 0);
    const int k = to_int(op, "the number of RoIs", r.size(0), 0);
    at::Tensor out = at::empty({k, c, o.pooled_h, o.pooled_w}, x.options());
    if (out.numel() == 0) return out;
    const snip::cuda::launchers::stream_t stream = at::cuda::getCurrentCUDAStream().stream();
    check_cuda(op, snip::cuda::launchers::roi_align_forward(x.data_ptr<T>(), n, c, h, w,
                                                            r.data_ptr<T>(), k, out.data_ptr<T>(),
                                                            o, stream));
    return out;
}

template <class T>
at::Tensor roi_align_backward_cuda(const at::Tensor& grad, const at::Tensor& rois,
                                   const roi_align_options& o, at::IntArrayRef sizes) {
    constexpr const char* op = "roi_align_backward";
    same_cuda_device(op, grad, "grad", rois, "rois");
    detail::check_torch_shape<T>(rois, "roi_align_backward: rois", 2, {-1, 5, -1, -1}, "K x 5");
    const c10::cuda::CUDAGuard guard(grad.device());
    const int k = to_int(op, "the number of RoIs", rois.size(0), 0);
    const int n = to_int(op, "N", sizes[0], 0), c = to_int(op, "C", sizes[1], 0);
    const int h = to_int(op, "H", sizes[2], 0), w = to_int(op, "W", sizes[3], 0);
    detail::check_torch_shape<T>(grad, "roi_align_backward: grad", 4,
                                 {k, c, o.pooled_h, o.pooled_w}, "K x C x pooled_h x pooled_w");
    const at::Tensor g = grad.contiguous(), r = rois.contiguous();
    at::Tensor gi = at::zeros(sizes, g.options());
    if (g.numel() == 0 || gi.numel() == 0) return gi;
    const snip::cuda::launchers::stream_t stream = at::cuda::getCurrentCUDAStream().stream();
    check_cuda(op,
               snip::cuda::launchers::roi_align_backward(g.data_ptr<T>(), r.data_ptr<T>(), k,
                                                         gi.data_ptr<T>(), n, c, h, w, o, stream));
    return gi;
}

template <class T>
std::tuple<at::Tensor, at::Tensor>
roi_pool_forward_cuda(const at::Tensor& input, const at::Tensor& rois, const roi_pool_options& o) {
    constexpr const char* op = "roi_pool";
    same_cuda_device(op, input, "input", rois, "rois");
    detail::check_torch_shape<T>(rois, "roi_pool: rois", 2, {-1, 5, -1, -1}, "K x 5");
    const c10::cuda::CUDAGuard guard(input.device());
    const at::Tensor x = input.contiguous(), r = rois.contiguous();
    const int n = to_int(op, "N", x.size(0), 0), c = to_int(op, "C", x.size(1), 0);
    const int h = to_int(op, "H", x.size(2), 0), w = to_int(op, "W", x.size(3), 0);
    const int k = to_int(op, "the number of RoIs", r.size(0), 0);
    at::Tensor out = at::empty({k, c, o.pooled_h, o.pooled_w}, x.options());
    at::Tensor argmax = at::empty({k, c, o.pooled_h, o.pooled_w}, x.options().dtype(at::kInt));
    if (out.numel() == 0) return {out, argmax};
    const snip::cuda::launchers::stream_t stream = at::cuda::getCurrentCUDAStream().stream();
    check_cuda(op, snip::cuda::launchers::roi_pool_forward(
                       x.data_ptr<T>(), n, c, h, w, r.data_ptr<T>(), k, out.data_ptr<T>(),
                       argmax.data_ptr<std::int32_t>(), o, stream));
    return {out, argmax};
}

template <class T>
at::Tensor roi_pool_backward_cuda(const at::Tensor& grad, const at::Tensor& rois,
                                  const at::Tensor& argmax, const roi_pool_options& o,
                                  at::IntArrayRef sizes) {
    constexpr const char* op = "roi_pool_backward";
    same_cuda_device(op, grad, "grad", rois, "rois");
    same_cuda_device(op, grad, "grad", argmax, "argmax");
    detail::check_torch_shape<T>(rois, "roi_pool_backward: rois", 2, {-1, 5, -1, -1}, "K x 5");
    const c10::cuda::CUDAGuard guard(grad.device());
    const int k = to_int(op, "the number of RoIs", rois.size(0), 0);
    const int n = to_int(op, "N", sizes[0], 0), c = to_int(op, "C", sizes[1], 0);
    const int h = to_int(op, "H", sizes[2], 0), w = to_int(op, "W", sizes[3], 0);
    detail::check_torch_shape<T>(grad, "roi_pool_backward: grad", 4, {k, c, o.pooled_h, o.pooled_w},
                                 "K x C x pooled_h x pooled_w");
    detail::check_torch_shape<std::int32_t>(argmax, "roi_pool_backward: argmax", 4,
                                            {k, c, o.pooled_h, o.pooled_w},
                                            "K x C x pooled_h x pooled_w");
    const at::Tensor g = grad.contiguous(), r = rois.contiguous(), a = argmax.contiguous();
    at::Tensor gi = at::zeros(sizes, g.options());
    if (g.numel() == 0 || gi.numel() == 0) return gi;
    const snip::cuda::launchers::stream_t stream = at::cuda::getCurrentCUDAStream().stream();
    check_cuda(op, snip::cuda::launchers::roi_pool_backward(
                       g.data_ptr<T>(), a.data_ptr<std::int32_t>(), r.data_ptr<T>(), k,
                       gi.data_ptr<T>(), n, c, h, w, o, stream));
    return gi;
}

#endif // SNIP_TORCH_CUDA

/// A new zero tensor, zeroed by the calling thread. (at::zeros fills large tensors on ATen's
/// OpenMP pool, whose idle workers then spin for milliseconds and compete for the cores with
/// the std::threads of the snip op that follows.)
template <class T>
at::Tensor zeros_here(at::IntArrayRef sizes, const at::TensorOptions& options) {
    at::Tensor t = at::empty(sizes, options);
    std::fill_n(t.data_ptr<T>(), t.numel(), T(0));
    return t;
}

/// gg[b_k, c, argmax / W, argmax % W] for every output element (0 where argmax is -1), with
/// LibTorch operations (any device, differentiable): the adjoint of the RoIPool backward.
inline at::Tensor gather_at_argmax(const at::Tensor& gg, const at::Tensor& rois,
                                   const at::Tensor& argmax) {
    const std::int64_t k = argmax.size(0), c = argmax.size(1);
    if (argmax.numel() == 0 || gg.size(2) * gg.size(3) == 0)
        return at::zeros(argmax.sizes(), gg.options());
    const at::Tensor batch = rois.select(1, 0).to(at::kLong);
    const at::Tensor planes = gg.reshape({gg.size(0), gg.size(1), -1}).index_select(0, batch);
    const at::Tensor idx = argmax.to(at::kLong).clamp_min(0).reshape({k, c, -1});
    return planes.gather(2, idx).reshape(argmax.sizes()).masked_fill(argmax < 0, 0);
}

} // namespace detail

// ======================================================================================
// Kernels without autograd: the forward and backward passes as functions of tensors

/// @brief RoIAlign forward: K x C x pooled_h x pooled_w, the definition of roi_align.hpp.
/// @param input N x C x H x W float32/float64 features; @param rois K x 5 (batch index, x1,
/// y1, x2, y2) in input-image pixels, same dtype and device.
inline at::Tensor roi_align_forward(const at::Tensor& input, const at::Tensor& rois,
                                    const roi_align_options& o) {
    detail::check_torch_layout(input, "roi_align: input");
    detail::check_torch_layout(rois, "roi_align: rois");
    if (detail::any_cuda(input, rois)) {
#ifdef SNIP_TORCH_CUDA
        return detail::dispatch_floating(input, "roi_align: input", "N x C x H x W", [&](auto tag) {
            detail::check_torch_shape<decltype(tag)>(input, "roi_align: input", 4, {-1, -1, -1, -1},
                                                     "N x C x H x W");
            return detail::roi_align_forward_cuda<decltype(tag)>(input, rois, o);
        });
#else
        detail::no_cuda("roi_align", detail::cuda_one(input, rois));
#endif
    }
    return detail::dispatch_floating(input, "roi_align: input", "N x C x H x W", [&](auto tag) {
        using T = decltype(tag);
        const feature_view<const T> f = as_feature_view<const T>(input, "roi_align: input");
        const roi_view<const T> r = as_roi_view<const T>(rois, "roi_align: rois");
        at::Tensor out =
            at::empty({r.size(), f.extent(1), o.pooled_h, o.pooled_w}, input.options());
        snip::roi_align(f, r, as_feature_view<T>(out, "roi_align: output"), o, op_threads());
        return out;
    });
}

/// @brief RoIAlign backward: the gradient w.r.t. the features (a new zero-initialised
/// tensor of `input_sizes` = N, C, H, W, plus the adjoint of roi_align_forward applied to
/// `grad`, K x C x pooled_h x pooled_w).
inline at::Tensor roi_align_backward(const at::Tensor& grad, const at::Tensor& rois,
                                     const roi_align_options& o, at::IntArrayRef input_sizes) {
    detail::check_input_sizes("roi_align_backward", input_sizes);
    detail::check_torch_layout(grad, "roi_align_backward: grad");
    detail::check_torch_layout(rois, "roi_align_backward: rois");
    if (detail::any_cuda(grad, rois)) {
#ifdef SNIP_TORCH_CUDA
        return detail::dispatch_floating(
            grad, "roi_align_backward: grad", "K x C x pooled_h x pooled_w", [&](auto tag) {
                return detail::roi_align_backward_cuda<decltype(tag)>(grad, rois, o, input_sizes);
            });
#else
        detail::no_cuda("roi_align_backward", detail::cuda_one(grad, rois));
#endif
    }
    return detail::dispatch_floating(
        grad, "roi_align_backward: grad", "K x C x pooled_h x pooled_w", [&](auto tag) {
            using T = decltype(tag);
            const feature_view<const T> g =
                as_feature_view<const T>(grad, "roi_align_backward: grad");
            const roi_view<const T> r = as_roi_view<const T>(rois, "roi_align_backward: rois");
            at::Tensor gi = detail::zeros_here<T>(input_sizes, grad.options());
            snip::roi_align_backward(g, r, as_feature_view<T>(gi, "roi_align_backward: output"), o,
                                     op_threads());
            return gi;
        });
}

/// @brief RoIPool forward: (output K x C x pooled_h x pooled_w, argmax int32 of the same
/// shape: y * W + x of the selected pixel in its plane, or -1), the definition of roi_pool.hpp.
inline std::tuple<at::Tensor, at::Tensor>
roi_pool_forward(const at::Tensor& input, const at::Tensor& rois, const roi_pool_options& o) {
    detail::check_torch_layout(input, "roi_pool: input");
    detail::check_torch_layout(rois, "roi_pool: rois");
    if (detail::any_cuda(input, rois)) {
#ifdef SNIP_TORCH_CUDA
        return detail::dispatch_floating(input, "roi_pool: input", "N x C x H x W", [&](auto tag) {
            detail::check_torch_shape<decltype(tag)>(input, "roi_pool: input", 4, {-1, -1, -1, -1},
                                                     "N x C x H x W");
            return detail::roi_pool_forward_cuda<decltype(tag)>(input, rois, o);
        });
#else
        detail::no_cuda("roi_pool", detail::cuda_one(input, rois));
#endif
    }
    return detail::dispatch_floating(input, "roi_pool: input", "N x C x H x W", [&](auto tag) {
        using T = decltype(tag);
        const feature_view<const T> f = as_feature_view<const T>(input, "roi_pool: input");
        const roi_view<const T> r = as_roi_view<const T>(rois, "roi_pool: rois");
        at::Tensor out =
            at::empty({r.size(), f.extent(1), o.pooled_h, o.pooled_w}, input.options());
        at::Tensor argmax = at::empty(out.sizes(), input.options().dtype(at::kInt));
        snip::roi_pool(f, r, as_feature_view<T>(out, "roi_pool: output"),
                       as_feature_view<std::int32_t>(argmax, "roi_pool: argmax"), o, op_threads());
        return std::tuple<at::Tensor, at::Tensor>(out, argmax);
    });
}

/// @brief RoIPool backward: a new zero tensor of `input_sizes` (N, C, H, W) with grad[k, c,
/// ph, pw] added at every argmax pixel.
inline at::Tensor roi_pool_backward(const at::Tensor& grad, const at::Tensor& rois,
                                    const at::Tensor& argmax, const roi_pool_options& o,
                                    at::IntArrayRef input_sizes) {
    detail::check_input_sizes("roi_pool_backward", input_sizes);
    detail::check_torch_layout(grad, "roi_pool_backward: grad");
    detail::check_torch_layout(rois, "roi_pool_backward: rois");
    detail::check_torch_layout(argmax, "roi_pool_backward: argmax");
    if (detail::any_cuda(grad, rois) || argmax.is_cuda()) {
#ifdef SNIP_TORCH_CUDA
        return detail::dispatch_floating(grad, "roi_pool_backward: grad",
                                         "K x C x pooled_h x pooled_w", [&](auto tag) {
                                             return detail::roi_pool_backward_cuda<decltype(tag)>(
                                                 grad, rois, argmax, o, input_sizes);
                                         });
#else
        detail::no_cuda("roi_pool_backward",
                        argmax.is_cuda() ? argmax : detail::cuda_one(grad, rois));
#endif
    }
    return detail::dispatch_floating(
        grad, "roi_pool_backward: grad", "K x C x pooled_h x pooled_w", [&](auto tag) {
            using T = decltype(tag);
            const feature_view<const T> g =
                as_feature_view<const T>(grad, "roi_pool_backward: grad");
            const roi_view<const T> r = as_roi_view<const T>(rois, "roi_pool_backward: rois");
            const feature_view<const std::int32_t> a =
                as_feature_view<const std::int32_t>(argmax, "roi_pool_backward: argmax");
            at::Tensor gi = detail::zeros_here<T>(input_sizes, grad.options());
            snip::roi_pool_backward(g, r, a, as_feature_view<T>(gi, "roi_pool_backward: output"), o,
                                    op_threads());
            return gi;
        });
}

// ======================================================================================
// Autograd functions

namespace detail {
using ctx_t = torch::autograd::AutogradContext;
using grads_t = torch::autograd::variable_list;

inline void save_align(ctx_t* ctx, double spatial_scale, std::int64_t pooled_h,
                       std::int64_t pooled_w, std::int64_t sampling_ratio, bool aligned) {
    ctx->saved_data["spatial_scale"] = spatial_scale;
    ctx->saved_data["pooled_h"] = pooled_h;
    ctx->saved_data["pooled_w"] = pooled_w;
    ctx->saved_data["sampling_ratio"] = sampling_ratio;
    ctx->saved_data["aligned"] = aligned;
}
inline void save_pool(ctx_t* ctx, double spatial_scale, std::int64_t pooled_h,
                      std::int64_t pooled_w) {
    ctx->saved_data["spatial_scale"] = spatial_scale;
    ctx->saved_data["pooled_h"] = pooled_h;
    ctx->saved_data["pooled_w"] = pooled_w;
}
} // namespace detail

/// @brief RoIAlign as a torch::autograd::Function: apply(input, rois, spatial_scale,
/// pooled_h, pooled_w, sampling_ratio, aligned). The forward saves the RoIs, the parameters
/// and the input's sizes (not the input); the backward returns the feature gradient
/// (through RoIAlignBackwardFunction, so it is differentiable again) and undefined gradients
/// for the RoIs and the parameters.
struct RoIAlignFunction : public torch::autograd::Function<RoIAlignFunction> {
    static at::Tensor forward(detail::ctx_t* ctx, const at::Tensor& input, const at::Tensor& rois,
                              double spatial_scale, std::int64_t pooled_h, std::int64_t pooled_w,
                              std::int64_t sampling_ratio, bool aligned) {
        const roi_align_options o = detail::align_options("roi_align", spatial_scale, pooled_h,
                                                          pooled_w, sampling_ratio, aligned);
        at::Tensor out = torch_ops::roi_align_forward(input, rois, o);
        detail::save_align(ctx, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned);
        ctx->saved_data["input_sizes"] = input.sizes().vec();
        ctx->save_for_backward({rois});
        return out;
    }
    static detail::grads_t backward(detail::ctx_t* ctx, detail::grads_t grad_outputs);
};

/// @brief The backward of RoIAlign as a function of the output gradient: apply(grad, rois,
/// spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned, input_sizes) -> N x C x H x W.
/// Linear in `grad`; its own gradient is RoIAlign's forward.
struct RoIAlignBackwardFunction : public torch::autograd::Function<RoIAlignBackwardFunction> {
    static at::Tensor forward(detail::ctx_t* ctx, const at::Tensor& grad, const at::Tensor& rois,
                              double spatial_scale, std::int64_t pooled_h, std::int64_t pooled_w,
                              std::int64_t sampling_ratio, bool aligned,
                              const std::vector<std::int64_t>& input_sizes) {
        const roi_align_options o = detail::align_options(
            "roi_align_backward", spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned);
        at::Tensor gi = torch_ops::roi_align_backward(grad, rois, o, input_sizes);
        detail::save_align(ctx, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned);
        ctx->save_for_backward({rois});
        return gi;
    }
    static detail::grads_t backward(detail::ctx_t* ctx, detail::grads_t grad_outputs) {
        const at::Tensor rois = ctx->get_saved_variables()[0];
        auto& d = ctx->saved_data;
        const at::Tensor gg = RoIAlignFunction::apply(
            grad_outputs[0], rois, d["spatial_scale"].toDouble(), d["pooled_h"].toInt(),
            d["pooled_w"].toInt(), d["sampling_ratio"].toInt(), d["aligned"].toBool());
        return {gg,           at::Tensor(), at::Tensor(), at::Tensor(),
                at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

inline detail::grads_t RoIAlignFunction::backward(detail::ctx_t* ctx,
                                                  detail::grads_t grad_outputs) {
    const at::Tensor rois = ctx->get_saved_variables()[0];
    auto& d = ctx->saved_data;
    const at::Tensor gi = RoIAlignBackwardFunction::apply(
        grad_outputs[0], rois, d["spatial_scale"].toDouble(), d["pooled_h"].toInt(),
        d["pooled_w"].toInt(), d["sampling_ratio"].toInt(), d["aligned"].toBool(),
        d["input_sizes"].toIntVector());
    return {gi, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
}

/// @brief RoIPool as a torch::autograd::Function: apply(input, rois, spatial_scale, pooled_h,
/// pooled_w) -> output (the argmax is kept for the backward). The backward returns the
/// feature gradient (through RoIPoolBackwardFunction) and undefined gradients for the rest.
struct RoIPoolFunction : public torch::autograd::Function<RoIPoolFunction> {
    static at::Tensor forward(detail::ctx_t* ctx, const at::Tensor& input, const at::Tensor& rois,
                              double spatial_scale, std::int64_t pooled_h, std::int64_t pooled_w) {
        const roi_pool_options o =
            detail::pool_options("roi_pool", spatial_scale, pooled_h, pooled_w);
        auto [out, argmax] = torch_ops::roi_pool_forward(input, rois, o);
        detail::save_pool(ctx, spatial_scale, pooled_h, pooled_w);
        ctx->saved_data["input_sizes"] = input.sizes().vec();
        ctx->save_for_backward({rois, argmax});
        return out;
    }
    static detail::grads_t backward(detail::ctx_t* ctx, detail::grads_t grad_outputs);
};

/// @brief The backward of RoIPool as a function of the output gradient: apply(grad, rois,
/// argmax, spatial_scale, pooled_h, pooled_w, input_sizes) -> N x C x H x W. Its own
/// gradient gathers at the argmax.
struct RoIPoolBackwardFunction : public torch::autograd::Function<RoIPoolBackwardFunction> {
    static at::Tensor forward(detail::ctx_t* ctx, const at::Tensor& grad, const at::Tensor& rois,
                              const at::Tensor& argmax, double spatial_scale, std::int64_t pooled_h,
                              std::int64_t pooled_w, const std::vector<std::int64_t>& input_sizes) {
        const roi_pool_options o =
            detail::pool_options("roi_pool_backward", spatial_scale, pooled_h, pooled_w);
        at::Tensor gi = torch_ops::roi_pool_backward(grad, rois, argmax, o, input_sizes);
        ctx->save_for_backward({rois, argmax});
        return gi;
    }
    static detail::grads_t backward(detail::ctx_t* ctx, detail::grads_t grad_outputs) {
        const auto saved = ctx->get_saved_variables();
        return {detail::gather_at_argmax(grad_outputs[0], saved[0], saved[1]),
                at::Tensor(),
                at::Tensor(),
                at::Tensor(),
                at::Tensor(),
                at::Tensor(),
                at::Tensor()};
    }
};

inline detail::grads_t RoIPoolFunction::backward(detail::ctx_t* ctx, detail::grads_t grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    auto& d = ctx->saved_data;
    const at::Tensor gi = RoIPoolBackwardFunction::apply(
        grad_outputs[0], saved[0], saved[1], d["spatial_scale"].toDouble(), d["pooled_h"].toInt(),
        d["pooled_w"].toInt(), d["input_sizes"].toIntVector());
    return {gi, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
}

// ======================================================================================
// User functions (torchvision.ops argument order)

/// @brief torchvision.ops.roi_align: K x C x output_size.h x output_size.w.
/// @param input N x C x H x W features (float32/float64, CPU; CUDA with SNIP_TORCH_CUDA).
/// @param rois K x 5 (batch index, x1, y1, x2, y2), xyxy in input-image pixels, same dtype
/// and device; see boxes_to_rois() for a list of per-image N_i x 4 boxes.
/// @param size bins per RoI (`7` or `{7, 7}`).
/// @param spatial_scale feature pixels per input-image pixel (1/16 for a stride-16 map).
/// @param sampling_ratio samples per bin and axis; <= 0: ceil(RoI size / output size).
/// @param aligned true: shift by -0.5 feature pixel (pixel i centred at i), torchvision's
/// recommended setting; false: the original Mask R-CNN rule (RoIs at least 1 x 1).
inline at::Tensor roi_align(const at::Tensor& input, const at::Tensor& rois, output_size size,
                            double spatial_scale = 1.0, std::int64_t sampling_ratio = -1,
                            bool aligned = false) {
    return RoIAlignFunction::apply(input, rois, spatial_scale, size.h, size.w, sampling_ratio,
                                   aligned);
}

/// @brief torchvision.ops.roi_pool: K x C x output_size.h x output_size.w (bins of the RoI
/// rounded to feature pixels, maximum per bin; see roi_pool.hpp).
inline at::Tensor roi_pool(const at::Tensor& input, const at::Tensor& rois, output_size size,
                           double spatial_scale = 1.0) {
    return RoIPoolFunction::apply(input, rois, spatial_scale, size.h, size.w);
}

/// @brief Per-image boxes (a list of N_i x 4 tensors, xyxy) as one K x 5 RoI tensor whose
/// first column is the image index, as torchvision's convert_boxes_to_roi_format.
inline at::Tensor boxes_to_rois(at::TensorList boxes) {
    std::vector<at::Tensor> parts;
    parts.reserve(boxes.size());
    for (std::size_t i = 0; i < boxes.size(); ++i) {
        const at::Tensor& b = boxes[i];
        const std::string name = snip::concat("boxes_to_rois: boxes[", i, "]");
        detail::check_torch_layout(b, name);
        require(b.dim() == 2 && b.size(1) == 4, name, " must be an N x 4 tensor, got ",
                detail::torch_describe(b));
        parts.push_back(at::cat({at::full({b.size(0), 1}, double(i), b.options()), b}, 1));
    }
    require(!parts.empty(), "boxes_to_rois: the list of boxes is empty");
    return at::cat(parts, 0);
}

namespace detail {

/// A 1-D tensor of n elements of type T on the CPU, contiguous (copied only when strided).
template <class T>
at::Tensor contiguous_vector(const at::Tensor& t, std::string_view name, std::int64_t n) {
    snip::detail::check_torch_view<T>(t, name, 1, {n, -1, -1, -1},
                                      snip::concat("[", n, "]"));
    return t.is_contiguous() ? t : t.contiguous();
}

template <class T>
std::span<const T> as_span(const at::Tensor& t) {
    return {static_cast<const T*>(t.data_ptr()), static_cast<std::size_t>(t.numel())};
}

/// The nms workspace of this thread for element type T (reused across calls).
template <class T>
nms_workspace<T>& thread_nms_workspace() {
    static thread_local nms_workspace<T> ws;
    return ws;
}

template <class T>
box_coder<T> make_coder(const std::array<double, 4>& means, const std::array<double, 4>& stds,
                        pixel_convention convention) {
    box_coder<T> c;
    for (int k = 0; k < 4; ++k) {
        c.means[k] = static_cast<T>(means[std::size_t(k)]);
        c.stds[k] = static_cast<T>(stds[std::size_t(k)]);
    }
    c.convention = convention;
    return c;
}

} // namespace detail

/// @brief torchvision.ops.nms: int64 indices of the kept boxes by decreasing score (equal
/// scores: lower index first); a box is dropped when its IoU with a kept box is >
/// iou_threshold. Exactly torchvision's indices (see nms.hpp).
/// @param boxes N x 4 xyxy (x1 <= x2, y1 <= y2), float32/float64, CPU, any strides.
/// @param scores N scores of the same dtype (copied when not contiguous).
/// Scratch memory is one snip::nms_workspace per thread and dtype, kept for reuse.
inline at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
    return detail::dispatch_floating(boxes, "nms: boxes", "N x 4", [&](auto tag) {
        using T = decltype(tag);
        const box_view<const T> b = as_box_view<const T>(boxes, "nms: boxes");
        const at::Tensor s = detail::contiguous_vector<T>(scores, "nms: scores", b.size());
        at::Tensor keep = at::empty({b.size()}, boxes.options().dtype(at::kLong));
        const std::size_t n =
            snip::nms(b, detail::as_span<T>(s), iou_threshold,
                      std::span<std::int64_t>(keep.data_ptr<std::int64_t>(), std::size_t(b.size())),
                      detail::thread_nms_workspace<T>());
        return keep.resize_({static_cast<std::int64_t>(n)});
    });
}

/// @brief torchvision.ops.batched_nms: NMS per class id `idxs[i]`, the kept indices of all
/// classes merged by decreasing score (equal scores: lower index first). Groups by class
/// exactly (no coordinate offsets).
/// @param idxs N class ids, int64 or int32 (other integer dtypes are converted), CPU.
inline at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores,
                              const at::Tensor& idxs, double iou_threshold) {
    return detail::dispatch_floating(boxes, "batched_nms: boxes", "N x 4", [&](auto tag) {
        using T = decltype(tag);
        const box_view<const T> b = as_box_view<const T>(boxes, "batched_nms: boxes");
        const std::int64_t n = b.size();
        const at::Tensor s = detail::contiguous_vector<T>(scores, "batched_nms: scores", n);
        detail::check_torch_layout(idxs, "batched_nms: idxs");
        at::Tensor keep = at::empty({n}, boxes.options().dtype(at::kLong));
        const std::span<std::int64_t> out(keep.data_ptr<std::int64_t>(), std::size_t(n));
        auto& ws = detail::thread_nms_workspace<T>();
        std::size_t count = 0;
        if (idxs.scalar_type() == at::kInt) {
            const at::Tensor c =
                detail::contiguous_vector<std::int32_t>(idxs, "batched_nms: idxs", n);
            count = snip::batched_nms(b, detail::as_span<T>(s), detail::as_span<std::int32_t>(c),
                                      iou_threshold, out, ws);
        } else {
            require(c10::isIntegralType(idxs.scalar_type(), /*includeBool=*/false),
                    "batched_nms: idxs must be a [", n,
                    "] integer tensor (int64 or int32) of class ids, got ",
                    detail::torch_describe(idxs));
            const at::Tensor c = detail::contiguous_vector<std::int64_t>(
                idxs.scalar_type() == at::kLong ? idxs : idxs.to(at::kLong), "batched_nms: idxs",
                n);
            count = snip::batched_nms(b, detail::as_span<T>(s), detail::as_span<std::int64_t>(c),
                                      iou_threshold, out, ws);
        }
        return keep.resize_({static_cast<std::int64_t>(count)});
    });
}

/// @brief The N x M IoU matrix of two sets of xyxy boxes (torchvision.ops.box_iou, continuous
/// convention: width = x2 - x1). Boxes with no positive area have IoU 0 with everything
/// (torchvision's formula gives NaN for two empty boxes and negative areas for inverted ones).
inline at::Tensor box_iou(const at::Tensor& boxes1, const at::Tensor& boxes2) {
    return detail::dispatch_floating(boxes1, "box_iou: boxes1", "N x 4", [&](auto tag) {
        using T = decltype(tag);
        const box_view<const T> a = as_box_view<const T>(boxes1, "box_iou: boxes1");
        const box_view<const T> b = as_box_view<const T>(boxes2, "box_iou: boxes2");
        at::Tensor out = at::empty({a.size(), b.size()}, boxes1.options());
        iou_matrix(a, b, std::span<T>(out.data_ptr<T>(), std::size_t(out.numel())),
                   pixel_convention::continuous, op_threads());
        return out;
    });
}

namespace detail {

/// The shared body of encode_boxes and decode_boxes: views over `reference` and `x` (both
/// N x 4, same dtype), an N x 4 output, and `code(coder, reference, x, out)` from box_coder.hpp.
template <class Code>
at::Tensor apply_box_coder(const std::string& op, const char* x_role, const at::Tensor& reference,
                           const at::Tensor& x, const std::array<double, 4>& means,
                           const std::array<double, 4>& stds, pixel_convention convention,
                           Code&& code) {
    const std::string ref_name = op + ": reference", x_name = op + ": " + x_role;
    return dispatch_floating(reference, ref_name, "N x 4", [&](auto tag) {
        using T = decltype(tag);
        const box_view<const T> r = as_box_view<const T>(reference, ref_name);
        const box_view<const T> v = as_box_view<const T>(x, x_name);
        at::Tensor out = at::empty({r.size(), 4}, reference.options());
        code(make_coder<T>(means, stds, convention), r, v, as_box_view<T>(out, op + ": output"));
        return out;
    });
}

} // namespace detail

/// @brief Regression deltas (dx, dy, dw, dh) that move `reference[i]` onto `targets[i]`
/// (N x 4 xyxy each, same dtype; see box_coder.hpp): ((t.cx - r.cx) / r.w - mean) / std,
/// (log(t.w / r.w) - mean) / std. Returns N x 4.
/// @throws snip::error for a box without positive width/height (named by index).
inline at::Tensor encode_boxes(const at::Tensor& reference, const at::Tensor& targets,
                               const std::array<double, 4>& means = {0, 0, 0, 0},
                               const std::array<double, 4>& stds = {1, 1, 1, 1},
                               pixel_convention convention = pixel_convention::continuous) {
    return detail::apply_box_coder("encode_boxes", "targets", reference, targets, means, stds,
                                   convention, [](const auto& c, auto r, auto t, auto out) {
                                       snip::encode_boxes(c, r, t, out);
                                   });
}

/// @brief The boxes (N x 4 xyxy) that `deltas` (N x 4: dx, dy, dw, dh) predict from
/// `reference`; the inverse of encode_boxes, with dw, dh clamped at log(1000 / 16).
inline at::Tensor decode_boxes(const at::Tensor& reference, const at::Tensor& deltas,
                               const std::array<double, 4>& means = {0, 0, 0, 0},
                               const std::array<double, 4>& stds = {1, 1, 1, 1},
                               pixel_convention convention = pixel_convention::continuous) {
    return detail::apply_box_coder("decode_boxes", "deltas", reference, deltas, means, stds,
                                   convention, [](const auto& c, auto r, auto d, auto out) {
                                       snip::decode_boxes(c, r, d, out);
                                   });
}

} // namespace snip::torch_ops
