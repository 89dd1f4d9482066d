// torch/roi_align.hpp: RoIAlign's forward and backward passes on LibTorch tensors, without
// autograd (torch/autograd.hpp wraps them; <snip/torch/ops.hpp> has everything), and
// boxes_to_rois. CPU: snip's roi_align.hpp on strided views; CUDA (SNIP_TORCH_CUDA): the
// compiled launchers. Conventions: see torch/ops.hpp.
#pragma once

#include <snip/core/error.hpp>
#include <snip/ops/roi_align.hpp>
#include <snip/torch/dispatch.hpp>

#include <ATen/ATen.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace snip::torch_ops {

namespace detail {

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

} // namespace detail

/// @brief RoIAlign forward: K x C x pooled_h x pooled_w, the definition of roi_align.hpp.
/// @param input N x C x H x W float32/float64 features; @param rois K x 5 (batch index, x1,
/// y1, x2, y2) in input-image pixels, same dtype and device.
inline at::Tensor roi_align_forward(const at::Tensor& input, const at::Tensor& rois,
                                    const roi_align_options& o) {
    constexpr const char* op = "roi_align";
    auto cpu = [&](auto tag) {
        using T = decltype(tag);
        const feature_view<const T> f = as_feature_view<const T>(input, "roi_align: input");
        const roi_view<const T> r = as_roi_view<const T>(rois, "roi_align: rois");
        at::Tensor out =
            at::empty({r.size(), f.extent(1), o.pooled_h, o.pooled_w}, input.options());
        snip::roi_align(f, r, as_feature_view<T>(out, "roi_align: output"), o, op_threads());
        return out;
    };
#ifdef SNIP_TORCH_CUDA
    auto cuda = [&](auto tag, const at::Tensor& x, const at::Tensor& r) {
        using T = decltype(tag);
        detail::check_torch_shape<T>(x, "roi_align: input", 4, {-1, -1, -1, -1}, "N x C x H x W");
        detail::check_torch_shape<T>(r, "roi_align: rois", 2, {-1, 5, -1, -1}, "K x 5");
        const detail::nchw e = detail::to_nchw(op, x.sizes());
        const int k = detail::to_int(op, "the number of RoIs", r.size(0), 0);
        at::Tensor out = at::empty({k, e.c, o.pooled_h, o.pooled_w}, x.options());
        if (out.numel() == 0) return out;
        detail::check_cuda(op, snip::cuda::launchers::roi_align_forward(
                                   x.data_ptr<T>(), e.n, e.c, e.h, e.w, r.data_ptr<T>(), k,
                                   out.data_ptr<T>(), o, detail::cuda_stream()));
        return out;
    };
#else
    const detail::cpu_only cuda;
#endif
    return detail::on_device(op, "N x C x H x W", cpu, cuda, {{input, "input"}, {rois, "rois"}});
}

/// @brief RoIAlign backward: the gradient w.r.t. the features (a new zero-initialised
/// tensor of `input_sizes` = N, C, H, W, plus the adjoint of roi_align_forward applied to
/// `grad`, K x C x pooled_h x pooled_w).
inline at::Tensor roi_align_backward(const at::Tensor& grad, const at::Tensor& rois,
                                     const roi_align_options& o, at::IntArrayRef input_sizes) {
    constexpr const char* op = "roi_align_backward";
    detail::check_input_sizes(op, input_sizes);
    auto cpu = [&](auto tag) {
        using T = decltype(tag);
        const feature_view<const T> g = as_feature_view<const T>(grad, "roi_align_backward: grad");
        const roi_view<const T> r = as_roi_view<const T>(rois, "roi_align_backward: rois");
        at::Tensor gi = detail::zeros_here<T>(input_sizes, grad.options());
        snip::roi_align_backward(g, r, as_feature_view<T>(gi, "roi_align_backward: output"), o,
                                 op_threads());
        return gi;
    };
#ifdef SNIP_TORCH_CUDA
    auto cuda = [&](auto tag, const at::Tensor& g, const at::Tensor& r) {
        using T = decltype(tag);
        detail::check_torch_shape<T>(r, "roi_align_backward: rois", 2, {-1, 5, -1, -1}, "K x 5");
        const int k = detail::to_int(op, "the number of RoIs", r.size(0), 0);
        const detail::nchw e = detail::to_nchw(op, input_sizes);
        detail::check_torch_shape<T>(g, "roi_align_backward: grad", 4,
                                     {k, e.c, o.pooled_h, o.pooled_w},
                                     "K x C x pooled_h x pooled_w");
        at::Tensor gi = at::zeros(input_sizes, g.options());
        if (g.numel() == 0 || gi.numel() == 0) return gi;
        detail::check_cuda(op, snip::cuda::launchers::roi_align_backward(
                                   g.data_ptr<T>(), r.data_ptr<T>(), k, gi.data_ptr<T>(), e.n, e.c,
                                   e.h, e.w, o, detail::cuda_stream()));
        return gi;
    };
#else
    const detail::cpu_only cuda;
#endif
    return detail::on_device(op, "K x C x pooled_h x pooled_w", cpu, cuda,
                             {{grad, "grad"}, {rois, "rois"}});
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

} // namespace snip::torch_ops
