// anchors.hpp: RPN anchor templates, their shifts over a feature grid, and the anchors
// kept inside a chip plus a border.
//
// Templates are A = ratios x scales boxes around the centre of feature cell (0, 0), listed
// ratio-major: template index a = r * scales.size() + s. Two generators:
//  - legacy_anchor_templates: the py-faster-rcnn rule used by SNIPER (inclusive pixels).
//    Base box [0, 0, b-1, b-1] (b = base size = stride), centre c = (b - 1) / 2. For each
//    ratio r: w_r = round(sqrt(b*b / r)), h_r = round(w_r * r), rounding to nearest with
//    ties to even (numpy's and Python's round). For each scale s: W = w_r*s, H = h_r*s and
//    the box is [c - (W-1)/2, c - (H-1)/2, c + (W-1)/2, c + (H-1)/2], so its inclusive
//    width x2 - x1 + 1 is W. Coordinates can be half-integers (odd W, e.g. scale 7).
//    SNIPER's set (stride 16, scales 2,4,7,10,13,16,24, ratios 0.5,1,2) gives w_r, h_r =
//    (23, 12), (16, 16), (11, 22); the 21 boxes are listed in tests/test_anchors.cpp.
//    (The original CUDA proposal op rounds half up instead of to even; for this set both
//    agree: 11.5 -> 12 either way.)
//  - continuous_anchor_templates: boxes of area (stride*scale)^2 and aspect h/w = ratio,
//    centred on (stride/2, stride/2), the centre of cell (0, 0) in continuous pixels:
//    w = stride*scale/sqrt(ratio), h = stride*scale*sqrt(ratio). No rounding.
// grid_anchors shifts the templates over an H x W feature map at `stride`: anchor
// (y, x, a) is template a moved by (x*stride, y*stride); its index is (y*W + x)*A + a,
// the order of SNIPER's anchor labels before reshaping (row-major cells, anchors fastest).
#pragma once

#include <snip/core/box.hpp>
#include <snip/det/box_coder.hpp>
#include <snip/core/error.hpp>
#include <snip/core/hd.hpp>
#include <snip/core/views.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace snip {

/// @brief Rounds to the nearest integer, ties to even (numpy.round / Python round),
/// independently of the floating-point rounding mode.
inline double round_half_even(double x) {
    const double f = std::floor(x);
    const double d = x - f;
    if (d < 0.5) return f;
    if (d > 0.5) return f + 1.0;
    return std::fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

namespace detail {
inline void check_anchor_lists(const char* who, double stride, std::span<const double> ratios,
                               std::span<const double> scales) {
    require(std::isfinite(stride) && stride > 0.0, who, ": stride must be finite and > 0, got ",
            stride);
    for (double r : ratios)
        require(std::isfinite(r) && r > 0.0, who, ": aspect ratio must be finite and > 0, got ", r);
    for (double s : scales)
        require(std::isfinite(s) && s > 0.0, who, ": scale must be finite and > 0, got ", s);
}
} // namespace detail

/// @brief The py-faster-rcnn / SNIPER anchor templates (see the file comment for the exact
/// rule), ratio-major, in inclusive pixels of the network input around cell (0, 0).
/// @param base_size the base box side, px (SNIPER: the stride, 16).
/// @throws snip::error on a non-positive or non-finite value, or a ratio whose rounded
/// width or height is 0 px.
inline std::vector<box<double>> legacy_anchor_templates(double base_size,
                                                        std::span<const double> ratios,
                                                        std::span<const double> scales) {
    detail::check_anchor_lists("legacy_anchor_templates", base_size, ratios, scales);
    const double c = 0.5 * (base_size - 1.0);
    std::vector<box<double>> out;
    out.reserve(ratios.size() * scales.size());
    for (double r : ratios) {
        const double wr = round_half_even(std::sqrt(base_size * base_size / r));
        const double hr = round_half_even(wr * r);
        require(wr >= 1.0 && hr >= 1.0, "legacy_anchor_templates: aspect ratio ", r,
                " rounds to a ", wr, " x ", hr, " px base box");
        for (double s : scales) {
            const double hw = 0.5 * (wr * s - 1.0), hh = 0.5 * (hr * s - 1.0);
            out.push_back({c - hw, c - hh, c + hw, c + hh});
        }
    }
    return out;
}

/// @brief Continuous anchor templates: area (stride*scale)^2 px^2, aspect h/w = ratio,
/// centred on (stride/2, stride/2); ratio-major like the legacy ones.
inline std::vector<box<double>> continuous_anchor_templates(double stride,
                                                            std::span<const double> ratios,
                                                            std::span<const double> scales) {
    detail::check_anchor_lists("continuous_anchor_templates", stride, ratios, scales);
    const double c = 0.5 * stride;
    std::vector<box<double>> out;
    out.reserve(ratios.size() * scales.size());
    for (double r : ratios) {
        const double q = std::sqrt(r);
        for (double s : scales) {
            const double side = stride * s;
            const double hw = 0.5 * side / q, hh = 0.5 * side * q;
            out.push_back({c - hw, c - hh, c + hw, c + hh});
        }
    }
    return out;
}

/// @brief An anchor set: stride (px of the network input per feature cell), scales
/// (multiples of the stride) and aspect ratios h/w; `convention` selects the generator.
struct anchor_config {
    double stride = 16.0;
    std::vector<double> scales{2, 4, 7, 10, 13, 16, 24};
    std::vector<double> ratios{0.5, 1, 2};
    pixel_convention convention = pixel_convention::continuous;

    /// SNIPER's 21 anchors, generated the py-faster-rcnn way (inclusive pixels).
    static anchor_config sniper() {
        anchor_config c;
        c.convention = pixel_convention::inclusive;
        return c;
    }
    /// The same stride, scales and ratios as continuous boxes (snip's default).
    static anchor_config defaults() { return {}; }

    std::size_t size() const { return scales.size() * ratios.size(); }
    /// The templates: legacy_anchor_templates when inclusive, else continuous ones.
    std::vector<box<double>> templates() const {
        return convention == pixel_convention::inclusive
                   ? legacy_anchor_templates(stride, ratios, scales)
                   : continuous_anchor_templates(stride, ratios, scales);
    }
};

/// @brief Writes the anchors of an `height` x `width` feature map into `out`
/// (height*width*A boxes, index (y*width + x)*A + a): template a shifted by
/// (x*stride, y*stride) px of the network input. Computed in double, stored as T.
template <class T>
void grid_anchors(std::span<const box<double>> templates, int height, int width, double stride,
                  box_view<T> out) {
    require(height >= 0 && width >= 0, "grid_anchors: feature map must be >= 0 cells, got ",
            height, " x ", width);
    require(std::isfinite(stride) && stride > 0.0, "grid_anchors: stride must be finite and > 0, got ",
            stride);
    const auto A = static_cast<std::ptrdiff_t>(templates.size());
    const std::ptrdiff_t n = std::ptrdiff_t(height) * width * A;
    require(out.size() == n, "grid_anchors: output holds ", out.size(), " boxes, the ", height,
            " x ", width, " grid of ", A, " templates needs ", n);
    std::ptrdiff_t i = 0;
    for (int y = 0; y < height; ++y) {
        const double sy = y * stride;
        for (int x = 0; x < width; ++x) {
            const double sx = x * stride;
            for (const box<double>& t : templates)
                out.set(i++, box<double>{t.x1 + sx, t.y1 + sy, t.x2 + sx, t.y2 + sy}.cast<T>());
        }
    }
}

/// @brief Convenience overload returning the anchors.
template <class T = float>
std::vector<box<T>> grid_anchors(std::span<const box<double>> templates, int height, int width,
                                 double stride) {
    require(height >= 0 && width >= 0, "grid_anchors: feature map must be >= 0 cells, got ",
            height, " x ", width);
    std::vector<box<T>> out(static_cast<std::size_t>(height) * static_cast<std::size_t>(width) *
                            templates.size());
    grid_anchors(templates, height, width, stride, as_box_view(out));
    return out;
}

/// @brief True when anchor `b` lies inside [0, width] x [0, height] grown by `border` px on
/// every side: x1 >= -border, y1 >= -border and x2 <= width + border (continuous) or
/// x2 < width + border (inclusive, SNIPER's test with `width` pixels 0..width-1); same in y.
template <class T>
SNIP_HD constexpr bool anchor_inside(const box<T>& b, T width, T height, T border,
                                     pixel_convention conv) {
    if (!(b.x1 >= -border && b.y1 >= -border)) return false;
    if (conv == pixel_convention::inclusive) return b.x2 < width + border && b.y2 < height + border;
    return b.x2 <= width + border && b.y2 <= height + border;
}

/// @brief Indices (ascending) of the anchors that lie inside a `width` x `height` chip
/// plus `border` px (see anchor_inside). Anchors are in the chip's pixels (origin at its
/// top-left corner). SNIPER: 512 x 512 chip, border 32, inclusive.
/// @return the number written to `out`, which must hold at least anchors.size() entries.
template <detail::readable_boxes A>
std::size_t anchors_inside(const A& anchors, double width, double height, double border,
                           pixel_convention conv, std::span<std::int64_t> out) {
    const auto v = detail::const_boxes(anchors);
    require(width >= 0 && height >= 0, "anchors_inside: chip size must be >= 0, got ", width, " x ",
            height);
    require(std::isfinite(border), "anchors_inside: border must be finite, got ", border);
    require(out.size() >= static_cast<std::size_t>(v.size()), "anchors_inside: output holds ",
            out.size(), " indices for ", v.size(), " anchors");
    std::size_t k = 0;
    for (std::ptrdiff_t i = 0; i < v.size(); ++i)
        if (anchor_inside(v[i].template cast<double>(), width, height, border, conv))
            out[k++] = i;
    return k;
}

/// @brief Convenience overload returning the kept indices.
template <detail::readable_boxes A>
std::vector<std::int64_t> anchors_inside(const A& anchors, double width, double height,
                                         double border,
                                         pixel_convention conv = pixel_convention::continuous) {
    std::vector<std::int64_t> out(static_cast<std::size_t>(detail::const_boxes(anchors).size()));
    out.resize(anchors_inside(anchors, width, height, border, conv, std::span<std::int64_t>(out)));
    return out;
}

} // namespace snip
