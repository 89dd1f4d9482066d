// torch/autograd.hpp: RoIAlign and RoIPool as torch::autograd::Functions, differentiable
// w.r.t. the features to any order (each backward is itself an autograd function), and the
// user functions roi_align and roi_pool (torchvision.ops argument order). The passes they
// call are torch/roi_align.hpp's and torch/roi_pool.hpp's. Conventions: see torch/ops.hpp.
#pragma once

#include <snip/ops/roi_align.hpp>
#include <snip/ops/roi_pool.hpp>
#include <snip/torch/dispatch.hpp>
#include <snip/torch/roi_align.hpp>
#include <snip/torch/roi_pool.hpp>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <cstdint>
#include <vector>

namespace snip::torch_ops {

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

} // namespace snip::torch_ops
