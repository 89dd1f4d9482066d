// torch/roi_pool.hpp: RoIPool's forward and backward passes on LibTorch tensors, without
// autograd (torch/autograd.hpp wraps them; <snip/torch/ops.hpp> has everything). CPU:
// snip's roi_pool.hpp on strided views; CUDA (SNIP_TORCH_CUDA): the compiled launchers.
// Conventions: see torch/ops.hpp.
#pragma once

#include <snip/ops/roi_pool.hpp>
#include <snip/torch/dispatch.hpp>

#include <ATen/ATen.h>

#include <cstdint>
#include <tuple>

namespace snip::torch_ops {

namespace detail {

inline roi_pool_options pool_options(const char* op, double spatial_scale, std::int64_t pooled_h,
                                     std::int64_t pooled_w) {
    roi_pool_options o;
    o.pooled_h = to_int(op, "pooled_height", pooled_h, 1);
    o.pooled_w = to_int(op, "pooled_width", pooled_w, 1);
    o.spatial_scale = spatial_scale;
    return o;
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

/// @brief RoIPool forward: (output K x C x pooled_h x pooled_w, argmax int32 of the same
/// shape: y * W + x of the selected pixel in its plane, or -1), the definition of roi_pool.hpp.
inline std::tuple<at::Tensor, at::Tensor>
roi_pool_forward(const at::Tensor& input, const at::Tensor& rois, const roi_pool_options& o) {
    constexpr const char* op = "roi_pool";
    auto cpu = [&](auto tag) {
        using T = decltype(tag);
        const feature_view<const T> f = as_feature_view<const T>(input, "roi_pool: input");
        const roi_view<const T> r = as_roi_view<const T>(rois, "roi_pool: rois");
        at::Tensor out =
            at::empty({r.size(), f.extent(1), o.pooled_h, o.pooled_w}, input.options());
        at::Tensor argmax = at::empty(out.sizes(), input.options().dtype(at::kInt));
        snip::roi_pool(f, r, as_feature_view<T>(out, "roi_pool: output"),
                       as_feature_view<std::int32_t>(argmax, "roi_pool: argmax"), o, op_threads());
        return std::tuple<at::Tensor, at::Tensor>(out, argmax);
    };
#ifdef SNIP_TORCH_CUDA
    auto cuda = [&](auto tag, const at::Tensor& x, const at::Tensor& r) {
        using T = decltype(tag);
        detail::check_torch_shape<T>(x, "roi_pool: input", 4, {-1, -1, -1, -1}, "N x C x H x W");
        detail::check_torch_shape<T>(r, "roi_pool: rois", 2, {-1, 5, -1, -1}, "K x 5");
        const detail::nchw e = detail::to_nchw(op, x.sizes());
        const int k = detail::to_int(op, "the number of RoIs", r.size(0), 0);
        at::Tensor out = at::empty({k, e.c, o.pooled_h, o.pooled_w}, x.options());
        at::Tensor argmax = at::empty(out.sizes(), x.options().dtype(at::kInt));
        if (out.numel() == 0) return std::tuple<at::Tensor, at::Tensor>(out, argmax);
        detail::check_cuda(op, snip::cuda::launchers::roi_pool_forward(
                                   x.data_ptr<T>(), e.n, e.c, e.h, e.w, r.data_ptr<T>(), k,
                                   out.data_ptr<T>(), argmax.data_ptr<std::int32_t>(), o,
                                   detail::cuda_stream()));
        return std::tuple<at::Tensor, at::Tensor>(out, argmax);
    };
#else
    const detail::cpu_only cuda;
#endif
    return detail::on_device(op, "N x C x H x W", cpu, cuda, {{input, "input"}, {rois, "rois"}});
}

/// @brief RoIPool backward: a new zero tensor of `input_sizes` (N, C, H, W) with grad[k, c,
/// ph, pw] added at every argmax pixel.
inline at::Tensor roi_pool_backward(const at::Tensor& grad, const at::Tensor& rois,
                                    const at::Tensor& argmax, const roi_pool_options& o,
                                    at::IntArrayRef input_sizes) {
    constexpr const char* op = "roi_pool_backward";
    detail::check_input_sizes(op, input_sizes);
    auto cpu = [&](auto tag) {
        using T = decltype(tag);
        const feature_view<const T> g = as_feature_view<const T>(grad, "roi_pool_backward: grad");
        const roi_view<const T> r = as_roi_view<const T>(rois, "roi_pool_backward: rois");
        const feature_view<const std::int32_t> a =
            as_feature_view<const std::int32_t>(argmax, "roi_pool_backward: argmax");
        at::Tensor gi = detail::zeros_here<T>(input_sizes, grad.options());
        snip::roi_pool_backward(g, r, a, as_feature_view<T>(gi, "roi_pool_backward: output"), o,
                                op_threads());
        return gi;
    };
#ifdef SNIP_TORCH_CUDA
    auto cuda = [&](auto tag, const at::Tensor& g, const at::Tensor& r, const at::Tensor& a) {
        using T = decltype(tag);
        detail::check_torch_shape<T>(r, "roi_pool_backward: rois", 2, {-1, 5, -1, -1}, "K x 5");
        const int k = detail::to_int(op, "the number of RoIs", r.size(0), 0);
        const detail::nchw e = detail::to_nchw(op, input_sizes);
        detail::check_torch_shape<T>(g, "roi_pool_backward: grad", 4,
                                     {k, e.c, o.pooled_h, o.pooled_w},
                                     "K x C x pooled_h x pooled_w");
        detail::check_torch_shape<std::int32_t>(a, "roi_pool_backward: argmax", 4,
                                                {k, e.c, o.pooled_h, o.pooled_w},
                                                "K x C x pooled_h x pooled_w");
        at::Tensor gi = at::zeros(input_sizes, g.options());
        if (g.numel() == 0 || gi.numel() == 0) return gi;
        detail::check_cuda(op, snip::cuda::launchers::roi_pool_backward(
                                   g.data_ptr<T>(), a.data_ptr<std::int32_t>(), r.data_ptr<T>(), k,
                                   gi.data_ptr<T>(), e.n, e.c, e.h, e.w, o, detail::cuda_stream()));
        return gi;
    };
#else
    const detail::cpu_only cuda;
#endif
    return detail::on_device(op, "K x C x pooled_h x pooled_w", cpu, cuda,
                             {{grad, "grad"}, {rois, "rois"}, {argmax, "argmax"}});
}

} // namespace snip::torch_ops
