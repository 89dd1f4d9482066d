// iou.hpp: overlaps of boxes for target assignment: IoU and the share of an anchor inside
// a region under either pixel convention, their vectorised row and column forms, and IoU
// matrices.
//
// All boxes of one call are xyxy in the same image's pixels (for SNIPER: the chip's
// scaled pixels, origin at the chip's top-left corner). `pixel_convention::inclusive`
// gives every box x2 - x1 + 1 pixels per side (the original code's bbox_overlaps);
// `continuous` (the default) x2 - x1.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/hd.hpp>
#include <snip/core/parallel.hpp>
#include <snip/core/views.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

namespace snip {

namespace detail {

/// Area with `e` added to each side; 0 when a side is not positive.
template <class T>
SNIP_HD constexpr T extent_area(const box<T>& b, T e) {
    return max_(b.x2 - b.x1 + e, T(0)) * max_(b.y2 - b.y1 + e, T(0));
}

/// Intersection area with `e` added to each side of the intersection.
template <class T>
SNIP_HD constexpr T intersection_e(const box<T>& a, const box<T>& b, T e) {
    return max_(min_(a.x2, b.x2) - max_(a.x1, b.x1) + e, T(0)) *
           max_(min_(a.y2, b.y2) - max_(a.y1, b.y1) + e, T(0));
}

/// IoU from the two areas and the intersection; 0 when the union is empty. (The union is
/// positive whenever the intersection is, so the guard only ever replaces 0/0.)
template <class T>
SNIP_HD constexpr T iou_from(T area_a, T area_b, T inter) {
    const T uni = area_a + area_b - inter;
    return inter / (uni > T(0) ? uni : T(1));
}

template <class T>
SNIP_HD constexpr T convention_extra(pixel_convention conv) {
    return conv == pixel_convention::inclusive ? T(1) : T(0);
}

} // namespace detail

/// @brief Intersection over union of `a` and `b` under a pixel convention: `continuous`
/// equals snip::iou(a, b); `inclusive` adds one pixel to every side length (the original
/// SNIPER/py-faster-rcnn overlaps). 0 when both boxes are empty.
template <class T>
SNIP_HD constexpr T iou(const box<T>& a, const box<T>& b, pixel_convention conv) {
    const T e = detail::convention_extra<T>(conv);
    return detail::iou_from(detail::extent_area(a, e), detail::extent_area(b, e),
                            detail::intersection_e(a, b, e));
}

/// @brief Share of `anchor`'s area inside `region` (intersection over the anchor's area),
/// 0 for an empty anchor; `inclusive` adds one pixel per side as in iou().
template <class T>
SNIP_HD constexpr T overlap_fraction(const box<T>& anchor, const box<T>& region,
                                     pixel_convention conv) {
    const T e = detail::convention_extra<T>(conv);
    const T aa = detail::extent_area(anchor, e);
    return aa > T(0) ? detail::intersection_e(anchor, region, e) / aa : T(0);
}

namespace detail {

/// Boxes as columns (x1, y1, x2, y2, area under the convention) plus where each came from:
/// lets the inner IoU loops vectorise.
template <class T>
struct box_columns {
    std::vector<T> x1, y1, x2, y2, area;
    std::vector<std::int32_t> source;

    void clear() {
        x1.clear(), y1.clear(), x2.clear(), y2.clear(), area.clear(), source.clear();
    }
    void push(const box<T>& b, T e, std::int32_t src) {
        x1.push_back(b.x1), y1.push_back(b.y1), x2.push_back(b.x2), y2.push_back(b.y2);
        area.push_back(extent_area(b, e));
        source.push_back(src);
    }
    std::size_t size() const { return x1.size(); }
};

/// out[j] = IoU(a, column box j), equal to snip::iou(a, b_j, conv) (same expressions).
/// Branch-free so that it vectorises: when `a` has a positive area the union is positive
/// (the intersection is at most either area), so the guard of iou_from is not needed;
/// an empty `a` has IoU 0 with everything.
template <class T>
inline void iou_row(const box<T>& a, T e, const box_columns<T>& c, T* out) {
    const T aa = extent_area(a, e);
    const std::size_t n = c.size();
    if (!(aa > T(0))) {
        std::fill(out, out + n, T(0));
        return;
    }
    const T *x1 = c.x1.data(), *y1 = c.y1.data(), *x2 = c.x2.data(), *y2 = c.y2.data(),
            *ar = c.area.data();
    for (std::size_t j = 0; j < n; ++j) {
        const T iw = max_(min_(a.x2, x2[j]) - max_(a.x1, x1[j]) + e, T(0));
        const T ih = max_(min_(a.y2, y2[j]) - max_(a.y1, y1[j]) + e, T(0));
        const T inter = iw * ih;
        out[j] = inter / (aa + ar[j] - inter);
    }
}

/// out[i] = IoU(anchor i, g) for the anchors held as columns [x1, y1, x2, y2, area] + i,
/// i < n: equal to snip::iou(anchor_i, g, conv) (same expressions, anchor first). Branch-free
/// so that it vectorises: an empty `g` has IoU 0 with everything, otherwise the union is
/// at least g's area.
template <class T>
inline void iou_column(const box<T>& g, T e, const T* x1, const T* y1, const T* x2, const T* y2,
                       const T* ar, std::size_t n, T* out) {
    const T ga = extent_area(g, e);
    if (!(ga > T(0))) {
        std::fill(out, out + n, T(0));
        return;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const T iw = max_(min_(x2[i], g.x2) - max_(x1[i], g.x1) + e, T(0));
        const T ih = max_(min_(y2[i], g.y2) - max_(y1[i], g.y1) + e, T(0));
        const T inter = iw * ih;
        out[i] = inter / (ar[i] + ga - inter);
    }
}

/// out[i] = overlap_fraction(anchor i, g, conv) for anchors held as columns.
template <class T>
inline void fraction_column(const box<T>& g, T e, const T* x1, const T* y1, const T* x2,
                            const T* y2, const T* ar, std::size_t n, T* out) {
    for (std::size_t i = 0; i < n; ++i) {
        const T iw = max_(min_(x2[i], g.x2) - max_(x1[i], g.x1) + e, T(0));
        const T ih = max_(min_(y2[i], g.y2) - max_(y1[i], g.y1) + e, T(0));
        out[i] = ar[i] > T(0) ? iw * ih / ar[i] : T(0);
    }
}

/// An overlap threshold (or IoU bound) of the options: a number in [0, 1].
template <class T>
void check_unit_threshold(const char* who, const char* name, T v) {
    require(v >= 0.0 && v <= 1.0, who, ": ", name, " must be in [0, 1], got ", v);
}

} // namespace detail

/// @brief IoU of every box of `a` (N) with every box of `b` (M), row-major:
/// out[i * M + j] = iou(a[i], b[j], conv). Inputs are any box views or containers of the
/// same floating-point element type T (strided views work); `out` holds N*M values.
/// Rows are split over `threads` threads (0 = snip::default_threads()) when N*M is large.
template <detail::readable_boxes A, detail::readable_boxes B>
void iou_matrix(const A& a, const B& b, std::span<detail::box_value_t<A>> out,
                pixel_convention conv = pixel_convention::continuous, unsigned threads = 0) {
    using T = detail::box_value_t<A>;
    static_assert(std::is_floating_point_v<T>, "iou_matrix: boxes must hold floating-point values");
    static_assert(std::is_same_v<detail::box_value_t<B>, T>,
                  "iou_matrix: both box sets must hold the same element type");
    const auto va = detail::const_boxes(a);
    const auto vb = detail::const_boxes(b);
    const auto N = va.size(), M = vb.size();
    require(out.size() == static_cast<std::size_t>(N * M), "iou_matrix: output holds ",
            out.size(), " values for ", N, " x ", M, " boxes");
    if (N == 0 || M == 0) return;
    const T e = detail::convention_extra<T>(conv);
    detail::box_columns<T> cols;
    for (std::ptrdiff_t j = 0; j < M; ++j) cols.push(vb[j], e, static_cast<std::int32_t>(j));
    // Blocks of >= 65,536 pairs (~30 us): smaller matrices stay on the calling thread.
    const std::ptrdiff_t grain = std::max<std::ptrdiff_t>(1, 65536 / M);
    detail::parallel_for(
        N, grain,
        [&](std::ptrdiff_t r0, std::ptrdiff_t r1) {
            for (std::ptrdiff_t i = r0; i < r1; ++i) detail::iou_row(va[i], e, cols, out.data() + i * M);
        },
        threads);
}

/// @brief Convenience overload returning the N x M matrix (row-major).
template <detail::readable_boxes A, detail::readable_boxes B>
std::vector<detail::box_value_t<A>> iou_matrix(const A& a, const B& b,
                                               pixel_convention conv = pixel_convention::continuous,
                                               unsigned threads = 0) {
    std::vector<detail::box_value_t<A>> out(
        static_cast<std::size_t>(detail::const_boxes(a).size() * detail::const_boxes(b).size()));
    iou_matrix(a, b, std::span<detail::box_value_t<A>>(out), conv, threads);
    return out;
}

} // namespace snip
