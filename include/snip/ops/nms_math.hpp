// nms_math.hpp: the per-pair maths of every NMS of snip (area, intersection, IoU, the
// suppression test and the 64-bit suppression words of the bitmask algorithm). All of it
// is SNIP_HD: cuda/nms.cuh runs the same code on the device.
//
// Boxes are xyxy. With `pixel_convention::continuous` (the default, torchvision's rule)
//   w = x2 - x1, h = y2 - y1, area = w * h;
//   inter = max(0, min(x2a, x2b) - max(x1a, x1b)) * max(0, min(y2a, y2b) - max(y1a, y1b));
//   IoU   = inter / (area_a + area_b - inter), evaluated in T (float boxes: float maths)
// and with `pixel_convention::inclusive` (the original SNIPER / py-faster-rcnn code) every
// width and height gets + 1. A box with w <= 0 or h <= 0 has area 0. When the union is 0
// the IoU test is false (torchvision divides 0 by 0 and compares NaN).
//
// The products are rounded on their own: on the host the compiler must not contract
// a * b + c into an FMA (x86-64 g++/clang without -mfma/-march=native; otherwise pass
// -ffp-contract=off); the device code rounds every product explicitly (__fmul_rn), so CPU
// and CUDA results are identical.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/hd.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace snip {

namespace detail {

/// a * b rounded on its own: on the device __fmul_rn/__dmul_rn stop nvcc from fusing the
/// product into a later add (an FMA would round differently from the CPU).
template <class T>
SNIP_HD inline T mul_rn(T a, T b) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>)
        return __fmul_rn(a, b);
    else if constexpr (std::is_same_v<T, double>)
        return __dmul_rn(a, b);
    else
        return a * b;
#else
    return a * b;
#endif
}

/// Box `i` of a flat xyxy array (4 numbers per box).
template <class T>
SNIP_HD inline box<T> load_box(const T* xyxy, std::ptrdiff_t i) {
    return {xyxy[4 * i], xyxy[4 * i + 1], xyxy[4 * i + 2], xyxy[4 * i + 3]};
}

} // namespace detail

/// @brief 1 for pixel_convention::inclusive (widths are x2 - x1 + 1), else 0.
template <class T>
SNIP_HD constexpr T width_extra(pixel_convention conv) {
    return conv == pixel_convention::inclusive ? T(1) : T(0);
}

/// @brief Area for NMS: w * h with w = x2 - x1 + extra, h = y2 - y1 + extra; 0 when w <= 0
/// or h <= 0. `extra` is 0 (continuous) or 1 (inclusive), see width_extra().
template <class T>
SNIP_HD inline T nms_area(const box<T>& b, T extra = T(0)) {
    const T w = b.x2 - b.x1 + extra, h = b.y2 - b.y1 + extra;
    return (w > T(0) && h > T(0)) ? detail::mul_rn(w, h) : T(0);
}

/// @brief Intersection area for NMS (same convention as nms_area), 0 when disjoint.
template <class T>
SNIP_HD inline T nms_intersection(const box<T>& a, const box<T>& b, T extra = T(0)) {
    const T w = detail::min_(a.x2, b.x2) - detail::max_(a.x1, b.x1) + extra;
    const T h = detail::min_(a.y2, b.y2) - detail::max_(a.y1, b.y1) + extra;
    return (w > T(0) && h > T(0)) ? detail::mul_rn(w, h) : T(0);
}

/// @brief IoU from precomputed areas: inter / (area_a + area_b - inter), 0 when the union
/// is not positive. `a` is the higher-ranked box (the order of the sum, as torchvision).
template <class T>
SNIP_HD inline T nms_iou(const box<T>& a, T area_a, const box<T>& b, T area_b, T extra = T(0)) {
    const T inter = nms_intersection(a, b, extra);
    const T uni = area_a + area_b - inter;
    return uni > T(0) ? inter / uni : T(0);
}

/// @brief The suppression test of hard NMS: IoU(a, b) > thr (strictly), false when the
/// union is not positive. `thr` is already in T (see nms_threshold()).
template <class T>
SNIP_HD inline bool iou_above(const box<T>& a, T area_a, const box<T>& b, T area_b, T thr,
                              T extra = T(0)) {
    const T inter = nms_intersection(a, b, extra);
    const T uni = area_a + area_b - inter;
    return uni > T(0) && inter / uni > thr;
}

/// @brief iou_above() computing both areas (continuous convention unless `extra` = 1).
template <class T>
SNIP_HD inline bool iou_above(const box<T>& a, const box<T>& b, T thr, T extra = T(0)) {
    return iou_above(a, nms_area(a, extra), b, nms_area(b, extra), thr, extra);
}

/// @brief Boxes per suppression word: the tile side of the bitmask NMS.
inline constexpr int nms_tile = 64;

/// @brief One 64-bit word of the suppression matrix: bit k (begin <= k < end) is set when
/// `cur` suppresses tile box k, i.e. iou_above(cur, tile k). `tile` holds xyxy boxes
/// (4 numbers each) and `tile_area` their nms_area(). Used by the CUDA kernel and the CPU
/// bitmask path.
template <class T>
SNIP_HD inline std::uint64_t nms_mask_word(const box<T>& cur, T cur_area, const T* tile,
                                           const T* tile_area, int begin, int end, T thr,
                                           T extra = T(0)) {
    std::uint64_t bits = 0;
    for (int k = begin; k < end; ++k)
        if (iou_above(cur, cur_area, detail::load_box(tile, k), tile_area[k], thr, extra))
            bits |= std::uint64_t(1) << k;
    return bits;
}

/// @brief Number of 64-bit words of the suppression matrix of `n` sorted boxes: row i holds
/// ceil(n / 64) words (only words at or right of block i / 64 are written or read).
inline std::size_t nms_mask_words(std::int64_t n) {
    const auto blocks = static_cast<std::size_t>((n + nms_tile - 1) / nms_tile);
    return static_cast<std::size_t>(n) * blocks;
}

} // namespace snip
