// box.hpp: axis-aligned boxes in xyxy form and their geometry. Allocation-free and
// usable on the device (SNIP_HD).
#pragma once

#include <snip/core/error.hpp>
#include <snip/core/hd.hpp>

namespace snip {

/// @brief How pixel coordinates are read.
/// - `continuous`: a box [x1, x2] is a closed interval on the real line; a COCO
///   [x, y, w, h] becomes [x, x + w]; width = x2 - x1. A chip of side `c` starting at
///   pixel `p` spans [p, p + c]. snip's default.
/// - `inclusive`: the convention of the original SNIPER code: x2 is the index of the
///   last pixel, so COCO [x, y, w, h] becomes [x, x + max(0, w - 1)], a chip starting
///   at `p` spans [p, p + c - 1], and box sizes are truncated to whole pixels,
///   int(x2 - x1), before they are compared with valid ranges.
enum class pixel_convention { continuous, inclusive };

/// @brief An axis-aligned box, xyxy. Units and origin depend on the caller: every
/// function that takes one says whether it is in original-image or scaled-image pixels.
template <class T>
struct box {
    T x1{}, y1{}, x2{}, y2{};

    SNIP_HD constexpr T width() const { return x2 - x1; }
    SNIP_HD constexpr T height() const { return y2 - y1; }
    /// Area, zero for an empty or inverted box.
    SNIP_HD constexpr T area() const {
        T w = x2 - x1, h = y2 - y1;
        return (w > T(0) && h > T(0)) ? w * h : T(0);
    }
    SNIP_HD constexpr bool empty() const { return !(x2 > x1 && y2 > y1); }
    template <class U>
    SNIP_HD constexpr box<U> cast() const {
        return {static_cast<U>(x1), static_cast<U>(y1), static_cast<U>(x2), static_cast<U>(y2)};
    }
    friend constexpr bool operator==(const box&, const box&) = default;
};

namespace detail {
template <class T>
SNIP_HD constexpr T min_(T a, T b) { return b < a ? b : a; }
template <class T>
SNIP_HD constexpr T max_(T a, T b) { return a < b ? b : a; }
} // namespace detail

/// @brief The intersection of two boxes (possibly empty: check `.empty()`).
template <class T>
SNIP_HD constexpr box<T> intersection(const box<T>& a, const box<T>& b) {
    return {detail::max_(a.x1, b.x1), detail::max_(a.y1, b.y1), detail::min_(a.x2, b.x2),
            detail::min_(a.y2, b.y2)};
}

/// @brief Area of the intersection, 0 when disjoint.
template <class T>
SNIP_HD constexpr T intersection_area(const box<T>& a, const box<T>& b) {
    return intersection(a, b).area();
}

/// @brief Intersection over union; 0 when both boxes are empty.
template <class T>
SNIP_HD constexpr T iou(const box<T>& a, const box<T>& b) {
    T inter = intersection_area(a, b);
    T uni = a.area() + b.area() - inter;
    return uni > T(0) ? inter / uni : T(0);
}

/// @brief Intersection over the area of `b` (the "ignore overlap" of SNIPER): the share
/// of `b` that lies inside `a`. 0 when `b` is empty.
template <class T>
SNIP_HD constexpr T intersection_over_box(const box<T>& a, const box<T>& b) {
    T ab = b.area();
    return ab > T(0) ? intersection_area(a, b) / ab : T(0);
}

/// @brief True when `inner` lies fully inside `outer` (closed intervals: touching
/// edges count as inside).
template <class T>
SNIP_HD constexpr bool contains(const box<T>& outer, const box<T>& inner) {
    return outer.x1 <= inner.x1 && outer.y1 <= inner.y1 && inner.x2 <= outer.x2 &&
           inner.y2 <= outer.y2;
}

/// @brief Clips `b` to [0, max_x] x [0, max_y].
template <class T>
SNIP_HD constexpr box<T> clip(const box<T>& b, T max_x, T max_y) {
    return {detail::min_(detail::max_(b.x1, T(0)), max_x),
            detail::min_(detail::max_(b.y1, T(0)), max_y),
            detail::min_(detail::max_(b.x2, T(0)), max_x),
            detail::min_(detail::max_(b.y2, T(0)), max_y)};
}

/// @brief Multiplies every coordinate by `s` (image resize by factor `s`).
template <class T>
SNIP_HD constexpr box<T> scale(const box<T>& b, T s) {
    return {b.x1 * s, b.y1 * s, b.x2 * s, b.y2 * s};
}

/// @brief Moves `b` by (-dx, -dy): expresses a box in the frame of a chip at (dx, dy).
template <class T>
SNIP_HD constexpr box<T> shift(const box<T>& b, T dx, T dy) {
    return {b.x1 - dx, b.y1 - dy, b.x2 - dx, b.y2 - dy};
}

/// @brief A COCO [x, y, w, h] box in xyxy under the given convention (no clipping).
template <class T>
SNIP_HD constexpr box<T> from_xywh(T x, T y, T w, T h,
                                   pixel_convention conv = pixel_convention::continuous) {
    if (conv == pixel_convention::inclusive)
        return {x, y, x + detail::max_(T(0), w - T(1)), y + detail::max_(T(0), h - T(1))};
    return {x, y, x + w, y + h};
}

} // namespace snip
