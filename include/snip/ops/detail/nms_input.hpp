// detail/nms_input.hpp: what every NMS of snip checks and derives from its inputs: the
// element types it accepts, sort keys for scores, thresholds given as doubles turned into
// exact comparisons in T, and the checks of counts, scores, thresholds and output spans.
#pragma once

#include <snip/core/error.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>

namespace snip::detail {

template <class T>
inline constexpr bool nms_float_v = std::is_same_v<T, float> || std::is_same_v<T, double>;

template <class T>
using score_key_t = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

/// An unsigned key whose ascending order is the DEScending order of the scores (-0 == +0).
template <class T>
inline score_key_t<T> descending_key(T s) {
    using K = score_key_t<T>;
    if (s == T(0)) s = T(0);
    const K u = std::bit_cast<K>(s);
    constexpr K sign = K(1) << (8 * sizeof(K) - 1);
    const K ascending = (u & sign) ? K(~u) : K(u | sign);
    return K(~ascending);
}

/// The T value t' with (x > t') == (double(x) > t) for every non-NaN T x.
template <class T>
inline T gt_threshold(double t) {
    if constexpr (sizeof(T) >= sizeof(double)) {
        return static_cast<T>(t);
    } else {
        constexpr double mx = double(std::numeric_limits<T>::max());
        if (t == std::numeric_limits<double>::infinity()) return std::numeric_limits<T>::infinity();
        if (t >= mx) return std::numeric_limits<T>::max();
        if (t < -mx) return -std::numeric_limits<T>::infinity();
        T f = static_cast<T>(t);
        if (double(f) > t) f = std::nextafter(f, -std::numeric_limits<T>::infinity());
        return f;
    }
}

/// The T value t' with (x < t') == (double(x) < t) for every non-NaN T x.
template <class T>
inline T lt_threshold(double t) {
    return -gt_threshold<T>(-t);
}

inline constexpr std::size_t nms_max_boxes = std::size_t(std::numeric_limits<std::int32_t>::max()) - 1;

template <class T>
void check_scores(const char* fn, std::size_t nboxes, std::span<const T> scores) {
    require(scores.size() == nboxes, fn, ": got ", scores.size(), " scores for ", nboxes,
            " boxes");
    require(nboxes <= nms_max_boxes, fn, ": at most ", nms_max_boxes, " boxes, got ", nboxes);
}

inline void check_threshold(const char* fn, double thr) {
    require(!std::isnan(thr), fn, ": iou_threshold must be a number, got ", thr);
}

inline void check_keep_capacity(const char* fn, std::size_t n, std::size_t max_out, std::size_t cap) {
    const std::size_t need = std::min(n, max_out);
    require(cap >= need, fn, ": the output span holds ", cap, " indices but up to ", need,
            " may be kept");
}

/// The scores parameter of the public functions: a span of the boxes' element type that
/// takes no part in deducing it (a std::vector converts).
template <class T>
using score_span = std::type_identity_t<std::span<const std::remove_const_t<T>>>;

} // namespace snip::detail
