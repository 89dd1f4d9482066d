// torch/deform_conv.hpp: deformable convolution v1 on LibTorch tensors (torchvision.ops.
// deform_conv2d without a mask, torchvision 0.14): the forward and backward passes, the
// autograd functions, and the user function deform_conv2d. CPU: snip fills the deformable
// columns of each image (ops/deform_conv.hpp, strided views, snip's threads) and LibTorch's
// GEMM (at::mm) multiplies them with the weights; the backward multiplies the output gradient
// back into column gradients and snip scatters them to the input and the offsets. CUDA
// (SNIP_TORCH_CUDA): the same with the compiled launchers and at::mm on the GPU.
// Conventions: see torch/ops.hpp.
#pragma once

#include <snip/core/error.hpp>
#include <snip/ops/deform_conv.hpp>
#include <snip/torch/dispatch.hpp>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <climits>
#include <cstdint>
#include <span>
#include <string_view>
#include <tuple>
#include <vector>

namespace snip::torch_ops {

namespace detail {

inline deform_conv_options dconv_options(std::string_view op, std::int64_t stride_h,
                                          std::int64_t stride_w, std::int64_t pad_h,
                                          std::int64_t pad_w, std::int64_t dilation_h,
                                          std::int64_t dilation_w, std::int64_t groups,
                                          std::int64_t offset_groups) {
    // Only the int range here; make_deform_conv_geometry names the value that is too small.
    deform_conv_options o;
    o.stride_h = to_int(op, "stride_h", stride_h, INT_MIN);
    o.stride_w = to_int(op, "stride_w", stride_w, INT_MIN);
    o.pad_h = to_int(op, "pad_h", pad_h, INT_MIN);
    o.pad_w = to_int(op, "pad_w", pad_w, INT_MIN);
    o.dilation_h = to_int(op, "dilation_h", dilation_h, INT_MIN);
    o.dilation_w = to_int(op, "dilation_w", dilation_w, INT_MIN);
    o.groups = to_int(op, "groups", groups, INT_MIN);
    o.offset_groups = to_int(op, "offset_groups", offset_groups, INT_MIN);
    return o;
}

inline std::array<std::ptrdiff_t, 4> dconv_extents4(at::IntArrayRef s) {
    return {s[0], s[1], s[2], s[3]};
}

/// The geometry of a call after the dtype and rank checks of its tensors (T; the bias, when
/// defined, 1-D).
template <class T>
deform_conv_geometry dconv_geometry(const char* op, const at::Tensor& input,
                                     const at::Tensor& weight, const at::Tensor& offset,
                                     const at::Tensor& bias, const deform_conv_options& o) {
    const std::string p(op);
    check_torch_shape<T>(input, p + ": input", 4, {-1, -1, -1, -1}, "N x C x H x W");
    check_torch_shape<T>(weight, p + ": weight", 4, {-1, -1, -1, -1},
                         "O x C/groups x kernel_h x kernel_w");
    check_torch_shape<T>(offset, p + ": offset", 4, {-1, -1, -1, -1},
                         "N x (2 offset_groups kernel_h kernel_w) x Ho x Wo");
    if (bias.defined()) check_torch_shape<T>(bias, p + ": bias", 1, {-1, -1, -1, -1}, "[O]");
    return make_deform_conv_geometry(op, dconv_extents4(input.sizes()), dconv_extents4(weight.sizes()),
                                     dconv_extents4(offset.sizes()), bias.defined() ? bias.size(0) : -1,
                                     o);
}

/// The weight as groups x (O / groups) x (C / groups kh kw) (a copy only when not contiguous).
inline at::Tensor dconv_grouped_weight(const at::Tensor& weight, const deform_conv_geometry& g) {
    return weight.reshape({g.o.groups, g.group_out_channels(), g.column_rows() / g.o.groups});
}

/// out[n] (groups x O/groups x P) = weight (groups x O/groups x R) x columns (groups x R x P),
/// one GEMM per group into the output's memory.
inline void dconv_multiply_columns(const at::Tensor& out_n, const at::Tensor& w3,
                             const at::Tensor& columns, const deform_conv_geometry& g) {
    const at::Tensor o3 = out_n.view({g.o.groups, g.group_out_channels(), g.positions()});
    const at::Tensor c3 = columns.view({g.o.groups, g.column_rows() / g.o.groups, g.positions()});
    for (int grp = 0; grp < g.o.groups; ++grp) {
        at::Tensor dst = o3.select(0, grp);
        at::mm_out(dst, w3.select(0, grp), c3.select(0, grp));
    }
}

/// grad_columns (groups x R x P) = weight^T x grad_out[n] (groups x O/groups x P).
inline void dconv_column_gradient(at::Tensor& grad_columns, const at::Tensor& w3,
                            const at::Tensor& go3, const deform_conv_geometry& g) {
    const at::Tensor c3 =
        grad_columns.view({g.o.groups, g.column_rows() / g.o.groups, g.positions()});
    for (int grp = 0; grp < g.o.groups; ++grp) {
        at::Tensor dst = c3.select(0, grp);
        at::mm_out(dst, w3.select(0, grp).t(), go3.select(0, grp));
    }
}

/// grad_weight (groups x O/groups x R) += grad_out[n] x columns^T, per group.
inline void dconv_weight_gradient(const at::Tensor& gw3, const at::Tensor& go3,
                            const at::Tensor& columns, const deform_conv_geometry& g) {
    const at::Tensor c3 = columns.view({g.o.groups, g.column_rows() / g.o.groups, g.positions()});
    for (int grp = 0; grp < g.o.groups; ++grp)
        gw3.select(0, grp).addmm_(go3.select(0, grp), c3.select(0, grp).t());
}

} // namespace detail

/// @brief Deformable convolution forward: N x O x Ho x Wo (the definition of
/// ops/deform_conv.hpp). No autograd (deform_conv2d below records it).
/// @param input N x C x H x W; @param weight O x C/groups x kh x kw; @param offset
/// N x (2 offset_groups kh kw) x Ho x Wo (dy, dx per offset group and tap, input pixels);
/// @param bias O values, or an undefined tensor for none. float32 or float64, one dtype and
/// device for all.
inline at::Tensor deform_conv2d_forward(const at::Tensor& input, const at::Tensor& weight,
                                        const at::Tensor& offset, const at::Tensor& bias,
                                        const deform_conv_options& o) {
    constexpr const char* op = "deform_conv2d";
    auto cpu = [&](auto tag) {
        using T = decltype(tag);
        const auto in = as_feature_view<const T>(input, "deform_conv2d: input");
        const auto off = as_feature_view<const T>(offset, "deform_conv2d: offset");
        if (bias.defined())
            snip::detail::check_torch_view<T>(bias, "deform_conv2d: bias", 1, {-1, -1, -1, -1},
                                              "[O]");
        const deform_conv_geometry g =
            detail::dconv_geometry<T>(op, input, weight, offset, bias, o);
        at::Tensor out = at::empty({g.batch, g.out_channels, g.out_h, g.out_w}, input.options());
        if (out.numel() == 0) return out;
        const at::Tensor w3 = detail::dconv_grouped_weight(weight, g);
        const at::Tensor columns = at::empty({g.column_rows(), g.positions()}, input.options());
        const std::span<T> cols(columns.data_ptr<T>(), static_cast<std::size_t>(columns.numel()));
        for (int n = 0; n < g.batch; ++n) {
            snip::deform_conv_columns(in, off, n, g, cols, op_threads());
            detail::dconv_multiply_columns(out.select(0, n), w3, columns, g);
        }
        if (bias.defined()) out.add_(bias.view({1, g.out_channels, 1, 1}));
        return out;
    };
#ifdef SNIP_TORCH_CUDA
    auto cuda = [&](auto tag, const at::Tensor& x, const at::Tensor& w, const at::Tensor& off,
                    const auto&... b) {
        using T = decltype(tag);
        const deform_conv_geometry g = detail::dconv_geometry<T>(op, x, w, off, bias, o);
        at::Tensor out = at::empty({g.batch, g.out_channels, g.out_h, g.out_w}, x.options());
        if (out.numel() == 0) return out;
        const at::Tensor w3 = detail::dconv_grouped_weight(w, g);
        const at::Tensor columns = at::empty({g.column_rows(), g.positions()}, x.options());
        const std::int64_t image = x.numel() / g.batch, image_off = off.numel() / g.batch;
        for (int n = 0; n < g.batch; ++n) {
            detail::check_cuda(op, snip::cuda::launchers::deform_conv_columns(
                                       x.data_ptr<T>() + n * image, off.data_ptr<T>() + n * image_off,
                                       columns.data_ptr<T>(), g, detail::cuda_stream()));
            detail::dconv_multiply_columns(out.select(0, n), w3, columns, g);
        }
        (out.add_(b.view({1, g.out_channels, 1, 1})), ...);
        return out;
    };
#else
    const detail::cpu_only cuda;
#endif
    constexpr std::string_view shape = "N x C x H x W";
    if (bias.defined())
        return detail::on_device(
            op, shape, cpu, cuda,
            {{input, "input"}, {weight, "weight"}, {offset, "offset"}, {bias, "bias"}});
    return detail::on_device(op, shape, cpu, cuda,
                             {{input, "input"}, {weight, "weight"}, {offset, "offset"}});
}

/// @brief The gradients of deform_conv2d_forward for the output gradient `grad`
/// (N x O x Ho x Wo): new tensors (grad_input, grad_weight, grad_offset, grad_bias), with
/// the extents of input, weight, offset and O (grad_bias: the sum of `grad` over N, Ho, Wo).
/// CPU: deterministic for any thread count; CUDA: the input gradient adds with atomicAdd.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>
deform_conv2d_backward(const at::Tensor& grad, const at::Tensor& input, const at::Tensor& weight,
                       const at::Tensor& offset, const deform_conv_options& o) {
    constexpr const char* op = "deform_conv2d_backward";
    using result = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
    auto check_grad = [&](auto tag, const at::Tensor& g4, const deform_conv_geometry& g) {
        using T = decltype(tag);
        detail::check_torch_shape<T>(g4, "deform_conv2d_backward: grad", 4,
                             {g.batch, g.out_channels, g.out_h, g.out_w}, "N x O x Ho x Wo");
    };
    auto cpu = [&](auto tag) -> result {
        using T = decltype(tag);
        const auto in = as_feature_view<const T>(input, "deform_conv2d_backward: input");
        const auto off = as_feature_view<const T>(offset, "deform_conv2d_backward: offset");
        (void)as_feature_view<const T>(grad, "deform_conv2d_backward: grad");
        const deform_conv_geometry g =
            detail::dconv_geometry<T>(op, input, weight, offset, at::Tensor(), o);
        check_grad(tag, grad, g);
        at::Tensor gi = detail::zeros_here<T>(input.sizes(), input.options());
        at::Tensor goff = detail::zeros_here<T>(offset.sizes(), offset.options());
        at::Tensor gw = at::zeros(weight.sizes(), weight.options());
        at::Tensor gb = grad.sum({0, 2, 3});
        if (grad.numel() == 0) return {gi, gw, goff, gb};
        const at::Tensor go = grad.contiguous();
        const at::Tensor w3 = detail::dconv_grouped_weight(weight, g);
        const at::Tensor gw3 = detail::dconv_grouped_weight(gw, g);
        at::Tensor gcol = at::empty({g.column_rows(), g.positions()}, input.options());
        const at::Tensor columns = at::empty({g.column_rows(), g.positions()}, input.options());
        const auto size = static_cast<std::size_t>(gcol.numel());
        const feature_view<T> giv = as_feature_view<T>(gi, "deform_conv2d_backward: grad_input");
        const feature_view<T> goffv =
            as_feature_view<T>(goff, "deform_conv2d_backward: grad_offset");
        for (int n = 0; n < g.batch; ++n) {
            const at::Tensor go3 =
                go.select(0, n).view({g.o.groups, g.group_out_channels(), g.positions()});
            detail::dconv_column_gradient(gcol, w3, go3, g);
            snip::deform_conv_columns_backward(std::span<const T>(gcol.data_ptr<T>(), size), in,
                                               off, n, g, giv, goffv, op_threads());
            snip::deform_conv_columns(in, off, n, g, std::span<T>(columns.data_ptr<T>(), size),
                                      op_threads());
            detail::dconv_weight_gradient(gw3, go3, columns, g);
        }
        return {gi, gw, goff, gb};
    };
#ifdef SNIP_TORCH_CUDA
    auto cuda = [&](auto tag, const at::Tensor& go, const at::Tensor& x, const at::Tensor& w,
                    const at::Tensor& off) -> result {
        using T = decltype(tag);
        const deform_conv_geometry g =
            detail::dconv_geometry<T>(op, x, w, off, at::Tensor(), o);
        check_grad(tag, go, g);
        at::Tensor gi = at::zeros(x.sizes(), x.options());
        at::Tensor goff = at::zeros(off.sizes(), off.options());
        at::Tensor gw = at::zeros(w.sizes(), w.options());
        at::Tensor gb = go.sum({0, 2, 3});
        if (go.numel() == 0) return {gi, gw, goff, gb};
        const at::Tensor w3 = detail::dconv_grouped_weight(w, g);
        const at::Tensor gw3 = detail::dconv_grouped_weight(gw, g);
        at::Tensor gcol = at::empty({g.column_rows(), g.positions()}, x.options());
        const at::Tensor columns = at::empty({g.column_rows(), g.positions()}, x.options());
        const std::int64_t image = x.numel() / g.batch, image_off = off.numel() / g.batch;
        for (int n = 0; n < g.batch; ++n) {
            const at::Tensor go3 =
                go.select(0, n).view({g.o.groups, g.group_out_channels(), g.positions()});
            detail::dconv_column_gradient(gcol, w3, go3, g);
            const T* xn = x.data_ptr<T>() + n * image;
            const T* offn = off.data_ptr<T>() + n * image_off;
            detail::check_cuda(op, snip::cuda::launchers::deform_conv_col2im(
                                       gcol.data_ptr<T>(), offn, gi.data_ptr<T>() + n * image, g,
                                       detail::cuda_stream()));
            detail::check_cuda(op, snip::cuda::launchers::deform_conv_offset_grad(
                                       gcol.data_ptr<T>(), xn, offn,
                                       goff.data_ptr<T>() + n * image_off, g,
                                       detail::cuda_stream()));
            detail::check_cuda(op, snip::cuda::launchers::deform_conv_columns(
                                       xn, offn, columns.data_ptr<T>(), g, detail::cuda_stream()));
            detail::dconv_weight_gradient(gw3, go3, columns, g);
        }
        return {gi, gw, goff, gb};
    };
#else
    const detail::cpu_only cuda;
#endif
    return detail::on_device(op, "N x O x Ho x Wo", cpu, cuda,
                             {{grad, "grad"}, {input, "input"}, {weight, "weight"},
                              {offset, "offset"}});
}

// ======================================================================================
// Autograd

/// @brief The backward of deformable convolution as an autograd function: apply(grad, input,
/// weight, offset, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups,
/// offset_groups) -> {grad_input, grad_weight, grad_offset, grad_bias}. Not differentiable
/// itself (as torchvision's): its backward throws snip::error.
struct DeformConv2dBackwardFunction
    : public torch::autograd::Function<DeformConv2dBackwardFunction> {
    static torch::autograd::variable_list
    forward(torch::autograd::AutogradContext* /*ctx*/, const at::Tensor& grad,
            const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
            std::int64_t stride_h, std::int64_t stride_w, std::int64_t pad_h, std::int64_t pad_w,
            std::int64_t dilation_h, std::int64_t dilation_w, std::int64_t groups,
            std::int64_t offset_groups) {
        const deform_conv_options o =
            detail::dconv_options("deform_conv2d_backward", stride_h, stride_w, pad_h, pad_w,
                                   dilation_h, dilation_w, groups, offset_groups);
        auto [gi, gw, goff, gb] = torch_ops::deform_conv2d_backward(grad, input, weight, offset, o);
        return {gi, gw, goff, gb};
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* /*ctx*/,
                                                   torch::autograd::variable_list /*grads*/) {
        fail("deform_conv2d: second-order gradients (the gradient of the backward) are not "
             "supported");
    }
};

/// @brief Deformable convolution as a torch::autograd::Function: apply(input, weight, offset,
/// bias, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups); a
/// bias without elements means none (LibTorch 1.13's custom functions take no undefined
/// tensors). The forward saves input, weight and offset; the backward returns the gradients of
/// input, weight, offset and bias, through DeformConv2dBackwardFunction.
struct DeformConv2dFunction : public torch::autograd::Function<DeformConv2dFunction> {
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                              const at::Tensor& weight, const at::Tensor& offset,
                              const at::Tensor& bias, std::int64_t stride_h, std::int64_t stride_w,
                              std::int64_t pad_h, std::int64_t pad_w, std::int64_t dilation_h,
                              std::int64_t dilation_w, std::int64_t groups,
                              std::int64_t offset_groups) {
        const deform_conv_options o =
            detail::dconv_options("deform_conv2d", stride_h, stride_w, pad_h, pad_w, dilation_h,
                                   dilation_w, groups, offset_groups);
        const at::Tensor b = bias.defined() && bias.numel() == 0 ? at::Tensor() : bias;
        at::Tensor out = torch_ops::deform_conv2d_forward(input, weight, offset, b, o);
        ctx->saved_data["params"] = std::vector<std::int64_t>{
            stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups};
        ctx->saved_data["has_bias"] = b.defined();
        ctx->save_for_backward({input, weight, offset});
        return out;
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_outputs) {
        const auto saved = ctx->get_saved_variables();
        const std::vector<std::int64_t> p = ctx->saved_data["params"].toIntVector();
        const auto g = DeformConv2dBackwardFunction::apply(grad_outputs[0], saved[0], saved[1],
                                                           saved[2], p[0], p[1], p[2], p[3], p[4],
                                                           p[5], p[6], p[7]);
        const at::Tensor gb = ctx->saved_data["has_bias"].toBool() ? g[3] : at::Tensor();
        return {g[0],         g[1],         g[2],         gb,           at::Tensor(), at::Tensor(),
                at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

/// @brief torchvision.ops.deform_conv2d without a mask (deformable convolution v1):
/// N x O x Ho x Wo with Ho = (H + 2 pad_h - (dilation_h (kh - 1) + 1)) / stride_h + 1 (likewise
/// Wo). Differentiable w.r.t. input, weight, offset and bias (first order).
/// @param input  N x C x H x W (float32/float64, CPU; CUDA with SNIP_TORCH_CUDA).
/// @param weight O x C/groups x kh x kw, same dtype and device.
/// @param offset N x (2 offset_groups kh kw) x Ho x Wo: channel 2 ((g kh + i) kw + j) is the
/// y offset (input pixels) of tap (i, j) for the input channels of offset group g, the next
/// channel its x offset. Zero offsets give at::conv2d's result.
/// @param bias   O values, or an undefined tensor (at::Tensor()) for none.
/// @param stride_h, stride_w >= 1; @param pad_h, pad_w zero padding >= 0; @param dilation_h,
/// dilation_w >= 1; @param groups divides C and O; @param offset_groups divides C.
/// @code
///   at::Tensor x = at::randn({1, 512, 32, 32}), w = at::randn({512, 512, 3, 3});
///   at::Tensor off = at::zeros({1, 2 * 4 * 9, 32, 32});     // 4 offset groups
///   at::Tensor y = snip::torch_ops::deform_conv2d(x, w, off, {}, 1, 1, 2, 2, 2, 2, 1, 4);
/// @endcode
inline at::Tensor deform_conv2d(const at::Tensor& input, const at::Tensor& weight,
                                const at::Tensor& offset, const at::Tensor& bias,
                                std::int64_t stride_h, std::int64_t stride_w, std::int64_t pad_h,
                                std::int64_t pad_w, std::int64_t dilation_h,
                                std::int64_t dilation_w, std::int64_t groups,
                                std::int64_t offset_groups) {
    const at::Tensor b =
        bias.defined() ? bias
                       : at::empty({0}, input.defined() ? input.options() : at::TensorOptions());
    return DeformConv2dFunction::apply(input, weight, offset, b, stride_h, stride_w, pad_h, pad_w,
                                       dilation_h, dilation_w, groups, offset_groups);
}

} // namespace snip::torch_ops
