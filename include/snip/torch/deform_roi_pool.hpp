// torch/deform_roi_pool.hpp: deformable PS RoI pooling (the original DeformablePSROIPooling
// of Deformable-ConvNets / SNIPER) on LibTorch tensors: the forward and backward passes
// without autograd, the autograd function DeformRoIPoolFunction and the user function
// deform_roi_pool (<snip/torch/ops.hpp> has everything). CPU: snip's deform_roi_pool.hpp on
// strided views; CUDA (SNIP_TORCH_CUDA): the compiled launchers. Semantics, and where the
// original's offset gradient is not the derivative of its forward: ops/deform_roi_pool.hpp.
// Conventions (devices, layouts, dtypes, threads): torch/ops.hpp.
#pragma once

#include <snip/core/error.hpp>
#include <snip/ops/deform_roi_pool.hpp>
#include <snip/torch/dispatch.hpp>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <tuple>

namespace snip::torch_ops {

namespace detail {

inline int deform_roi_pool_int(const char* op, const char* what, std::int64_t v) {
    require(v >= INT_MIN && v <= INT_MAX, op, ": ", what, " = ", v, " does not fit an int");
    return static_cast<int>(v);
}

/// The options of the op from its arguments (no_trans = no offsets). Values outside int are
/// refused here; every other check is the core op's (its messages name field and value).
inline deform_roi_pool_options
deform_roi_pool_opts(const char* op, double spatial_scale, std::int64_t output_dim,
                     std::int64_t group_size, std::int64_t pooled_size, std::int64_t part_size,
                     std::int64_t sample_per_part, double trans_std, bool no_trans) {
    deform_roi_pool_options o;
    o.spatial_scale = spatial_scale;
    o.output_dim = deform_roi_pool_int(op, "output_dim", output_dim);
    o.group_size = deform_roi_pool_int(op, "group_size", group_size);
    o.pooled_size = deform_roi_pool_int(op, "pooled_size", pooled_size);
    o.part_size = deform_roi_pool_int(op, "part_size", part_size);
    o.sample_per_part = deform_roi_pool_int(op, "sample_per_part", sample_per_part);
    o.trans_std = trans_std;
    o.no_trans = no_trans;
    return o;
}

#ifdef SNIP_TORCH_CUDA
/// The offsets of the CUDA bodies: pointer, channel count and extents (none with no_trans).
template <class T>
struct cuda_offsets {
    const T* data = nullptr;
    int channels = 0;
    std::array<std::ptrdiff_t, 4> extents{};
};
template <class T, class... Off>
cuda_offsets<T> deform_roi_cuda_offsets(const char* op, const Off&... off) {
    cuda_offsets<T> r;
    if constexpr (sizeof...(Off) == 1) {
        const at::Tensor& t = (off, ...);
        detail::check_torch_shape<T>(t, snip::concat(op, ": offset"), 4, {-1, -1, -1, -1},
                                     "K x 2M x Q x Q");
        for (int d = 0; d < 4; ++d)
            r.extents[std::size_t(d)] = t.size(d);
        r.channels = to_int(op, "the offsets' channels", t.size(1), 0);
        r.data = t.data_ptr<T>();
    }
    return r;
}
#endif

} // namespace detail

/// @brief Deformable PS RoI pooling forward: K x output_dim x P x P (ops/deform_roi_pool.hpp).
/// @param input N x (output_dim * group_size^2) x H x W float32/float64 features.
/// @param rois K x 5 (batch index, x1, y1, x2, y2) in input-image pixels, same dtype/device.
/// @param offset K x 2M x Q x Q, same dtype and device; ignored (may be undefined) with
/// o.no_trans.
inline at::Tensor deform_roi_pool_forward(const at::Tensor& input, const at::Tensor& rois,
                                          const at::Tensor& offset,
                                          const deform_roi_pool_options& o) {
    constexpr const char* op = "deform_roi_pool";
    auto cpu = [&](auto tag) {
        using T = decltype(tag);
        const feature_view<const T> f = as_feature_view<const T>(input, "deform_roi_pool: input");
        const roi_view<const T> r = as_roi_view<const T>(rois, "deform_roi_pool: rois");
        const feature_view<const T> off =
            o.no_trans ? feature_view<const T>()
                       : as_feature_view<const T>(offset, "deform_roi_pool: offset");
        snip::detail::check_deform_roi_pool_shapes(op, o, snip::detail::deform_roi_extents(f),
                                                   r.size(), snip::detail::deform_roi_extents(off));
        at::Tensor out = at::empty(
            {r.size(), std::int64_t(o.output_dim), o.pooled_size, o.pooled_size}, input.options());
        snip::deform_roi_pool(f, r, off, as_feature_view<T>(out, "deform_roi_pool: output"), o,
                              op_threads());
        return out;
    };
#ifdef SNIP_TORCH_CUDA
    auto cuda = [&](auto tag, const at::Tensor& x, const at::Tensor& r, const auto&... off) {
        using T = decltype(tag);
        detail::check_torch_shape<T>(x, "deform_roi_pool: input", 4, {-1, -1, -1, -1},
                                     "N x C x H x W");
        detail::check_torch_shape<T>(r, "deform_roi_pool: rois", 2, {-1, 5, -1, -1}, "K x 5");
        const detail::cuda_offsets<T> d = detail::deform_roi_cuda_offsets<T>(op, off...);
        const detail::nchw e = detail::to_nchw(op, x.sizes());
        const int k = detail::to_int(op, "the number of RoIs", r.size(0), 0);
        snip::detail::check_deform_roi_pool_shapes(op, o, {e.n, e.c, e.h, e.w}, k, d.extents);
        at::Tensor out = at::empty({k, o.output_dim, o.pooled_size, o.pooled_size}, x.options());
        if (out.numel() == 0) return out;
        detail::check_cuda(op, snip::cuda::launchers::deform_roi_pool_forward(
                                   x.data_ptr<T>(), e.n, e.c, e.h, e.w, r.data_ptr<T>(), k, d.data,
                                   d.channels, out.data_ptr<T>(), o, detail::cuda_stream()));
        return out;
    };
#else
    const detail::cpu_only cuda;
#endif
    constexpr const char* shape = "N x C x H x W";
    if (o.no_trans)
        return detail::on_device(op, shape, cpu, cuda, {{input, "input"}, {rois, "rois"}});
    return detail::on_device(op, shape, cpu, cuda,
                             {{input, "input"}, {rois, "rois"}, {offset, "offset"}});
}

/// @brief Deformable PS RoI pooling backward: the original operator's gradients w.r.t. the
/// input (new zero-initialised tensor of the input's sizes plus the adjoint of the forward
/// applied to `grad`, K x output_dim x P x P) and w.r.t. the offsets (same sizes as
/// `offset`). A gradient not wanted (or the offsets' with o.no_trans) is an undefined tensor
/// and is not computed.
inline std::tuple<at::Tensor, at::Tensor>
deform_roi_pool_backward(const at::Tensor& grad, const at::Tensor& input, const at::Tensor& rois,
                         const at::Tensor& offset, const deform_roi_pool_options& o,
                         bool want_input = true, bool want_offset = true) {
    constexpr const char* op = "deform_roi_pool_backward";
    want_offset = want_offset && !o.no_trans;
    auto cpu = [&](auto tag) {
        using T = decltype(tag);
        const feature_view<const T> g =
            as_feature_view<const T>(grad, "deform_roi_pool_backward: grad");
        const feature_view<const T> f =
            as_feature_view<const T>(input, "deform_roi_pool_backward: input");
        const roi_view<const T> r = as_roi_view<const T>(rois, "deform_roi_pool_backward: rois");
        const feature_view<const T> off =
            o.no_trans ? feature_view<const T>()
                       : as_feature_view<const T>(offset, "deform_roi_pool_backward: offset");
        snip::detail::check_deform_roi_pool_shapes(op, o, snip::detail::deform_roi_extents(f),
                                                   r.size(), snip::detail::deform_roi_extents(off));
        at::Tensor gi, go;
        feature_view<T> gi_view, go_view;
        if (want_input) {
            gi = detail::zeros_here<T>(input.sizes(), grad.options());
            gi_view = as_feature_view<T>(gi, "deform_roi_pool_backward: grad_input");
        }
        if (want_offset) {
            go = detail::zeros_here<T>(offset.sizes(), grad.options());
            go_view = as_feature_view<T>(go, "deform_roi_pool_backward: grad_offset");
        }
        if (want_input || want_offset)
            snip::deform_roi_pool_backward(g, f, r, off, gi_view, go_view, o, op_threads());
        return std::tuple<at::Tensor, at::Tensor>(gi, go);
    };
#ifdef SNIP_TORCH_CUDA
    auto cuda = [&](auto tag, const at::Tensor& g, const at::Tensor& x, const at::Tensor& r,
                    const auto&... off) {
        using T = decltype(tag);
        detail::check_torch_shape<T>(x, "deform_roi_pool_backward: input", 4, {-1, -1, -1, -1},
                                     "N x C x H x W");
        detail::check_torch_shape<T>(r, "deform_roi_pool_backward: rois", 2, {-1, 5, -1, -1},
                                     "K x 5");
        const detail::cuda_offsets<T> d = detail::deform_roi_cuda_offsets<T>(op, off...);
        const detail::nchw e = detail::to_nchw(op, x.sizes());
        const int k = detail::to_int(op, "the number of RoIs", r.size(0), 0);
        snip::detail::check_deform_roi_pool_shapes(op, o, {e.n, e.c, e.h, e.w}, k, d.extents);
        detail::check_torch_shape<T>(g, "deform_roi_pool_backward: grad", 4,
                                     {k, o.output_dim, o.pooled_size, o.pooled_size},
                                     "K x output_dim x P x P");
        at::Tensor gi, go;
        if (want_input) gi = at::zeros(x.sizes(), g.options());
        if (want_offset) go = at::zeros(offset.sizes(), g.options());
        if (g.numel() == 0 || x.numel() == 0 || (!want_input && !want_offset))
            return std::tuple<at::Tensor, at::Tensor>(gi, go);
        detail::check_cuda(
            op, snip::cuda::launchers::deform_roi_pool_backward(
                    g.data_ptr<T>(), x.data_ptr<T>(), e.n, e.c, e.h, e.w, r.data_ptr<T>(), k,
                    d.data, d.channels, want_input ? gi.data_ptr<T>() : nullptr,
                    want_offset ? go.data_ptr<T>() : nullptr, o, detail::cuda_stream()));
        return std::tuple<at::Tensor, at::Tensor>(gi, go);
    };
#else
    const detail::cpu_only cuda;
#endif
    constexpr const char* shape = "K x output_dim x P x P";
    if (o.no_trans)
        return detail::on_device(op, shape, cpu, cuda,
                                 {{grad, "grad"}, {input, "input"}, {rois, "rois"}});
    return detail::on_device(
        op, shape, cpu, cuda,
        {{grad, "grad"}, {input, "input"}, {rois, "rois"}, {offset, "offset"}});
}

/// @brief Deformable PS RoI pooling as a torch::autograd::Function: apply(input, rois,
/// offset, spatial_scale, output_dim, group_size, pooled_size, part_size, sample_per_part,
/// trans_std, with_offsets); with_offsets = false pools without offsets and ignores `offset`,
/// which must still be a defined tensor (LibTorch's Function::apply refuses undefined ones:
/// deform_roi_pool() passes an empty one). The forward saves the input, the RoIs and the
/// offsets; the backward returns the original operator's gradients for the input and the
/// offsets (each only when needed) and undefined ones for the rest. First order only: the
/// backward is not itself differentiable (the offset gradient is not a smooth function; see
/// ops/deform_roi_pool.hpp).
struct DeformRoIPoolFunction : public torch::autograd::Function<DeformRoIPoolFunction> {
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                              const at::Tensor& rois, const at::Tensor& offset,
                              double spatial_scale, std::int64_t output_dim,
                              std::int64_t group_size, std::int64_t pooled_size,
                              std::int64_t part_size, std::int64_t sample_per_part,
                              double trans_std, bool with_offsets) {
        const deform_roi_pool_options o = detail::deform_roi_pool_opts(
            "deform_roi_pool", spatial_scale, output_dim, group_size, pooled_size, part_size,
            sample_per_part, trans_std, !with_offsets);
        at::Tensor out = torch_ops::deform_roi_pool_forward(input, rois, offset, o);
        auto& d = ctx->saved_data;
        d["spatial_scale"] = spatial_scale;
        d["output_dim"] = output_dim;
        d["group_size"] = group_size;
        d["pooled_size"] = pooled_size;
        d["part_size"] = part_size;
        d["sample_per_part"] = sample_per_part;
        d["trans_std"] = trans_std;
        d["with_offsets"] = with_offsets;
        ctx->save_for_backward({input, rois, offset});
        return out;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_outputs) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor& offset = saved[2];
        auto& d = ctx->saved_data;
        const bool with_offsets = d["with_offsets"].toBool();
        const deform_roi_pool_options o = detail::deform_roi_pool_opts(
            "deform_roi_pool_backward", d["spatial_scale"].toDouble(), d["output_dim"].toInt(),
            d["group_size"].toInt(), d["pooled_size"].toInt(), d["part_size"].toInt(),
            d["sample_per_part"].toInt(), d["trans_std"].toDouble(), !with_offsets);
        auto [gi, go] = torch_ops::deform_roi_pool_backward(
            grad_outputs[0], saved[0], saved[1], offset, o, ctx->needs_input_grad(0),
            with_offsets && ctx->needs_input_grad(2));
        return {gi,           at::Tensor(), go,           at::Tensor(), at::Tensor(), at::Tensor(),
                at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

/// @brief Deformable position-sensitive RoI pooling, the operator of SNIPER's heads
/// (DeformablePSROIPooling): K x output_dim x pooled_size x pooled_size, differentiable
/// w.r.t. `input` and `offset` (first order), not w.r.t. the RoIs.
/// @param input N x (output_dim * group_size^2) x H x W features (float32/float64, CPU; CUDA
///        with SNIP_TORCH_CUDA).
/// @param rois K x 5 (batch index, x1, y1, x2, y2), xyxy in input-image pixels, same dtype
///        and device; corners are rounded to whole pixels.
/// @param offset K x 2M x Q x Q (Q = part_size, or pooled_size when 0; channel 2m the x and
///        2m + 1 the y offsets of output channels [m D / M, (m + 1) D / M)), in units of
///        trans_std x RoI size; an undefined tensor pools without offsets (the original's
///        no_trans).
/// @param spatial_scale feature pixels per input-image pixel (1/16 for a stride-16 map).
/// @param output_dim D; @param group_size G (1: plain, not position-sensitive);
/// @param pooled_size P bins per axis; @param part_size Q offsets per axis (0: P);
/// @param sample_per_part S x S samples per bin; @param trans_std scale of the offsets.
///
/// @code
///   // SNIPER's head: a first pass without offsets, an FC predicting them, a second pass.
///   at::Tensor a = ops::deform_roi_pool(feats, rois, {}, 1.0 / 16, 256, 1, 7, 7, 4, 0.1);
///   at::Tensor off = fc(a.flatten(1)).reshape({-1, 2, 7, 7});                 // K x 98
///   at::Tensor y = ops::deform_roi_pool(feats, rois, off, 1.0 / 16, 256, 1, 7, 7, 4, 0.1);
/// @endcode
inline at::Tensor deform_roi_pool(const at::Tensor& input, const at::Tensor& rois,
                                  const at::Tensor& offset, double spatial_scale,
                                  std::int64_t output_dim, std::int64_t group_size,
                                  std::int64_t pooled_size, std::int64_t part_size,
                                  std::int64_t sample_per_part, double trans_std) {
    const bool with_offsets = offset.defined();
    const at::Tensor placeholder =
        with_offsets ? at::Tensor()
                     : at::empty({0}, input.defined() ? input.options() : at::TensorOptions());
    return DeformRoIPoolFunction::apply(input, rois, with_offsets ? offset : placeholder,
                                        spatial_scale, output_dim, group_size, pooled_size,
                                        part_size, sample_per_part, trans_std, with_offsets);
}

} // namespace snip::torch_ops
