// torch/box_coder.hpp: the box coder of box_coder.hpp on LibTorch tensors: encode_boxes
// (regression deltas) and decode_boxes (their inverse). CPU only, any strides. Conventions:
// see torch/ops.hpp.
#pragma once

#include <snip/core/box.hpp>
#include <snip/det/box_coder.hpp>
#include <snip/torch/dispatch.hpp>

#include <ATen/ATen.h>

#include <array>
#include <cstddef>
#include <string>

namespace snip::torch_ops {

namespace detail {

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

/// The shared body of encode_boxes and decode_boxes: views over `reference` and `x` (both
/// N x 4, same dtype), an N x 4 output, and `code(coder, reference, x, out)` from box_coder.hpp.
template <class Code>
at::Tensor apply_box_coder(const std::string& op, const char* x_role, const at::Tensor& reference,
                           const at::Tensor& x, const std::array<double, 4>& means,
                           const std::array<double, 4>& stds, pixel_convention convention,
                           Code&& code) {
    const std::string ref_name = op + ": reference", x_name = op + ": " + x_role;
    check_layout(op, {reference, "reference"});
    return dispatch_floating(reference, op, "reference", "N x 4", [&](auto tag) {
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
    return detail::apply_box_coder(
        "encode_boxes", "targets", reference, targets, means, stds, convention,
        [](const auto& c, auto r, auto t, auto out) { snip::encode_boxes(c, r, t, out); });
}

/// @brief The boxes (N x 4 xyxy) that `deltas` (N x 4: dx, dy, dw, dh) predict from
/// `reference`; the inverse of encode_boxes, with dw, dh clamped at log(1000 / 16).
inline at::Tensor decode_boxes(const at::Tensor& reference, const at::Tensor& deltas,
                               const std::array<double, 4>& means = {0, 0, 0, 0},
                               const std::array<double, 4>& stds = {1, 1, 1, 1},
                               pixel_convention convention = pixel_convention::continuous) {
    return detail::apply_box_coder(
        "decode_boxes", "deltas", reference, deltas, means, stds, convention,
        [](const auto& c, auto r, auto d, auto out) { snip::decode_boxes(c, r, d, out); });
}

} // namespace snip::torch_ops
