// box_coder.hpp: box regression deltas (dx, dy, dw, dh) between a reference box (anchor
// or proposal) and a target box, with means/stds normalisation, continuous or inclusive
// (+1) widths, a guarded exp on decode and clipping to an image. The per-box maths is
// SNIP_HD (no allocation, usable in CUDA kernels); the loops over views are host code.
//
// The rule, with e = 0 (continuous) or e = 1 (pixel_convention::inclusive):
//   w = x2 - x1 + e,  cx = (x1 + x2) / 2      (same for h, cy; ref box r, target box t)
//   dx = ((t.cx - r.cx) / r.w - mean[0]) / std[0]      dw = (log(t.w / r.w) - mean[2]) / std[2]
// Decoding inverts it exactly; dw and dh are clamped at `max_log_scale` (log(1000/16))
// before the exp, so a huge predicted delta gives a big but finite box, never inf/NaN:
//   w' = exp(min(dw * std[2] + mean[2], max_log_scale)) * r.w,  x1' = cx' - (w' - e) / 2,
//   x2' = cx' + (w' - e) / 2.
// (The inclusive centre (x1 + x2) / 2 differs from py-faster-rcnn's x1 + w / 2 by the same
// half pixel for both boxes, so dx is identical; decode is its exact inverse.)
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/hd.hpp>
#include <snip/core/views.hpp>

#include <cmath>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

namespace snip {

namespace detail {

template <class T>
SNIP_HD inline T exp_(T x) {
    using std::exp;
    return exp(x);
}
template <class T>
SNIP_HD inline T log_(T x) {
    using std::log;
    return log(x);
}

} // namespace detail

/// @brief log(1000 / 16): the largest dw, dh a decoder applies (a box grows at most
/// 62.5x its reference per side).
inline constexpr double default_max_log_scale = 4.1351665567423561;

/// @brief One regression target: centre shift in reference widths/heights, log size ratio.
template <class T>
struct box_delta {
    T dx{}, dy{}, dw{}, dh{};
    friend constexpr bool operator==(const box_delta&, const box_delta&) = default;
};

/// @brief Encodes and decodes box deltas. `means`/`stds` are applied as (d - mean) / std on
/// encode and d * std + mean on decode, in the order (dx, dy, dw, dh). Boxes are xyxy in
/// one image's pixels (the same for reference and target); `convention` picks w = x2 - x1
/// (continuous) or x2 - x1 + 1 (inclusive, the original SNIPER / py-faster-rcnn code).
template <class T>
struct box_coder {
    static_assert(std::is_floating_point_v<T>, "box_coder<T>: T must be a floating-point type");

    T means[4] = {0, 0, 0, 0};
    T stds[4] = {1, 1, 1, 1};
    pixel_convention convention = pixel_convention::continuous;
    /// dw, dh (after de-normalisation) are clamped at this before exp.
    T max_log_scale = T(default_max_log_scale);

    /// @brief The RCNN coder of SNIPER / Faster R-CNN: means 0, stds (0.1, 0.1, 0.2, 0.2).
    static box_coder rcnn(pixel_convention conv = pixel_convention::continuous) {
        box_coder c;
        c.stds[0] = T(0.1);
        c.stds[1] = T(0.1);
        c.stds[2] = T(0.2);
        c.stds[3] = T(0.2);
        c.convention = conv;
        return c;
    }

    /// @brief Throws snip::error unless the stds are finite and > 0, the means finite and
    /// max_log_scale not NaN.
    void validate() const {
        const char* names[4] = {"dx", "dy", "dw", "dh"};
        for (int k = 0; k < 4; ++k) {
            require(std::isfinite(stds[k]) && stds[k] > T(0), "box_coder: std of ", names[k],
                    " must be finite and > 0, got ", stds[k]);
            require(std::isfinite(means[k]), "box_coder: mean of ", names[k],
                    " must be finite, got ", means[k]);
        }
        require(!std::isnan(max_log_scale), "box_coder: max_log_scale must not be NaN, got ",
                max_log_scale);
    }

    SNIP_HD constexpr T extra() const {
        return convention == pixel_convention::inclusive ? T(1) : T(0);
    }

    /// @brief Deltas that move `ref` onto `target`. Both need positive extents
    /// (w, h > 0 under the convention); otherwise the result is inf/NaN (the view loop
    /// `encode_boxes` checks this and throws).
    SNIP_HD box_delta<T> encode(const box<T>& ref, const box<T>& target) const {
        const T e = extra();
        const T rw = ref.x2 - ref.x1 + e, rh = ref.y2 - ref.y1 + e;
        const T tw = target.x2 - target.x1 + e, th = target.y2 - target.y1 + e;
        const T rcx = (ref.x1 + ref.x2) * T(0.5), rcy = (ref.y1 + ref.y2) * T(0.5);
        const T tcx = (target.x1 + target.x2) * T(0.5), tcy = (target.y1 + target.y2) * T(0.5);
        return {((tcx - rcx) / rw - means[0]) / stds[0], ((tcy - rcy) / rh - means[1]) / stds[1],
                (detail::log_(tw / rw) - means[2]) / stds[2],
                (detail::log_(th / rh) - means[3]) / stds[3]};
    }

    /// @brief The box `d` predicts from `ref`. Finite for any finite `d` of magnitude below
    /// ~1e30 (dw, dh are clamped; dx, dy are not); NaN deltas give NaN coordinates.
    SNIP_HD box<T> decode(const box<T>& ref, const box_delta<T>& d) const {
        const T e = extra();
        const T rw = ref.x2 - ref.x1 + e, rh = ref.y2 - ref.y1 + e;
        const T rcx = (ref.x1 + ref.x2) * T(0.5), rcy = (ref.y1 + ref.y2) * T(0.5);
        const T dx = d.dx * stds[0] + means[0], dy = d.dy * stds[1] + means[1];
        const T dw = detail::min_(d.dw * stds[2] + means[2], max_log_scale);
        const T dh = detail::min_(d.dh * stds[3] + means[3], max_log_scale);
        const T cx = dx * rw + rcx, cy = dy * rh + rcy;
        const T hw = (detail::exp_(dw) * rw - e) * T(0.5);
        const T hh = (detail::exp_(dh) * rh - e) * T(0.5);
        return {cx - hw, cy - hh, cx + hw, cy + hh};
    }
};

/// @brief Clips `b` to an image of `width` x `height` pixels: [0, width] x [0, height]
/// (continuous) or [0, width - 1] x [0, height - 1] (inclusive pixel indices).
template <class T>
SNIP_HD constexpr box<T> clip_to_image(const box<T>& b, T width, T height, pixel_convention conv) {
    const T e = conv == pixel_convention::inclusive ? T(1) : T(0);
    return clip(b, width - e, height - e);
}

/// @brief deltas[i] = coder.encode(refs[i], targets[i]) for N boxes. `refs` and `targets`
/// are any box input (box_view, vector of box<T>, ...) of the same element type T; `out`
/// is an N x 4 view read as (dx, dy, dw, dh) per row (it may be strided).
/// @throws snip::error on a size mismatch, invalid coder, or a reference/target without
/// positive width/height (the index and box are named).
template <class T, detail::readable_boxes R, detail::readable_boxes G>
void encode_boxes(const box_coder<T>& coder, const R& refs, const G& targets, box_view<T> out) {
    static_assert(std::is_same_v<detail::box_value_t<R>, T> && std::is_same_v<detail::box_value_t<G>, T>,
                  "encode_boxes: refs and targets must hold the coder's element type");
    coder.validate();
    const auto r = detail::const_boxes(refs);
    const auto t = detail::const_boxes(targets);
    require(r.size() == t.size(), "encode_boxes: ", r.size(), " reference boxes but ", t.size(),
            " target boxes");
    require(out.size() == r.size(), "encode_boxes: output holds ", out.size(), " rows for ",
            r.size(), " boxes");
    const T e = coder.extra();
    for (std::ptrdiff_t i = 0; i < r.size(); ++i) {
        const box<T> a = r[i], b = t[i];
        require(a.x2 - a.x1 + e > T(0) && a.y2 - a.y1 + e > T(0), "encode_boxes: reference box ",
                i, " [", a.x1, ", ", a.y1, ", ", a.x2, ", ", a.y2, "] has no positive width/height");
        require(b.x2 - b.x1 + e > T(0) && b.y2 - b.y1 + e > T(0), "encode_boxes: target box ", i,
                " [", b.x1, ", ", b.y1, ", ", b.x2, ", ", b.y2, "] has no positive width/height");
        const box_delta<T> d = coder.encode(a, b);
        out(i, 0) = d.dx;
        out(i, 1) = d.dy;
        out(i, 2) = d.dw;
        out(i, 3) = d.dh;
    }
}

/// @brief Convenience overload: returns the deltas as a row-major N x 4 vector.
template <class T, detail::readable_boxes R, detail::readable_boxes G>
std::vector<T> encode_boxes(const box_coder<T>& coder, const R& refs, const G& targets) {
    std::vector<T> out(static_cast<std::size_t>(detail::const_boxes(refs).size()) * 4);
    encode_boxes(coder, refs, targets, as_box_view(out));
    return out;
}

/// @brief out[i] = coder.decode(refs[i], deltas[i]); `deltas` is an N x 4 view (or any box
/// input) read as (dx, dy, dw, dh). Pixels are those of the image the refs live in.
template <class T, detail::readable_boxes R, detail::readable_boxes D>
void decode_boxes(const box_coder<T>& coder, const R& refs, const D& deltas, box_view<T> out) {
    static_assert(std::is_same_v<detail::box_value_t<R>, T> && std::is_same_v<detail::box_value_t<D>, T>,
                  "decode_boxes: refs and deltas must hold the coder's element type");
    coder.validate();
    const auto r = detail::const_boxes(refs);
    const auto d = detail::const_boxes(deltas);
    require(r.size() == d.size(), "decode_boxes: ", r.size(), " reference boxes but ", d.size(),
            " delta rows");
    require(out.size() == r.size(), "decode_boxes: output holds ", out.size(), " boxes for ",
            r.size(), " reference boxes");
    for (std::ptrdiff_t i = 0; i < r.size(); ++i)
        out.set(i, coder.decode(r[i], box_delta<T>{d(i, 0), d(i, 1), d(i, 2), d(i, 3)}));
}

/// @brief As above, then clips every box to an image of `width` x `height` pixels (see
/// clip_to_image for the convention). The output is finite for any non-NaN delta.
template <class T, detail::readable_boxes R, detail::readable_boxes D>
void decode_boxes(const box_coder<T>& coder, const R& refs, const D& deltas, box_view<T> out,
                  T width, T height) {
    require(width >= T(0) && height >= T(0), "decode_boxes: image size must be >= 0, got ",
            width, " x ", height);
    decode_boxes(coder, refs, deltas, out);
    for (std::ptrdiff_t i = 0; i < out.size(); ++i)
        out.set(i, clip_to_image(out[i], width, height, coder.convention));
}

/// @brief Convenience overloads returning the boxes.
template <class T, detail::readable_boxes R, detail::readable_boxes D>
std::vector<box<T>> decode_boxes(const box_coder<T>& coder, const R& refs, const D& deltas) {
    std::vector<box<T>> out(static_cast<std::size_t>(detail::const_boxes(refs).size()));
    decode_boxes(coder, refs, deltas, as_box_view(out));
    return out;
}
template <class T, detail::readable_boxes R, detail::readable_boxes D>
std::vector<box<T>> decode_boxes(const box_coder<T>& coder, const R& refs, const D& deltas,
                                 T width, T height) {
    std::vector<box<T>> out(static_cast<std::size_t>(detail::const_boxes(refs).size()));
    decode_boxes(coder, refs, deltas, as_box_view(out), width, height);
    return out;
}

} // namespace snip
