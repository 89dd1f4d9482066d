// nms.hpp: hard non-maximum suppression, equal to torchvision.ops.nms, and the host half
// of the GPU bitmask algorithm. Per-class NMS is batched_nms.hpp, Soft-NMS soft_nms.hpp,
// SNIPER's multi-scale merge merge.hpp; the per-pair maths (nms_math.hpp) is shared with
// cuda/nms.cuh.
//
// Boxes are xyxy, all in the same pixel frame, under `pixel_convention::continuous` (the
// default, torchvision's widths x2 - x1) or `inclusive` (+ 1), see nms_math.hpp.
//
// Exactness: hard NMS returns exactly torchvision.ops.nms's kept indices for boxes with
// x1 <= x2, y1 <= y2 (the input torchvision documents): the order is a stable sort by
// decreasing score (equal scores: lower index first), a box is suppressed when its IoU
// with a kept, higher-ranked box is strictly greater than the threshold, and the IoU is
// computed with the same operations in the same order; the threshold is compared as a
// double (torchvision compares the float IoU with the double threshold). This holds when
// the compiler does not contract a * b + c into an FMA on the host (x86-64 g++/clang
// without -mfma/-march=native; otherwise pass -ffp-contract=off); the device code rounds
// every product explicitly (__fmul_rn), so CPU and CUDA results are identical.
//
// Errors (snip::error, naming the value): score count != box count, NaN score, NaN or
// infinite box coordinate, NaN threshold, more than 2^31 - 2 boxes.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/views.hpp>
#include <snip/ops/detail/nms_input.hpp>
#include <snip/ops/detail/nms_strategies.hpp>
#include <snip/ops/nms_common.hpp>
#include <snip/ops/nms_math.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

namespace snip {

/// @brief How hard NMS runs on the CPU. All give the same result.
enum class nms_algorithm {
    automatic, ///< grid for more than 256 boxes and a threshold >= 0, else greedy
    greedy,    ///< each box against every kept box: O(N * kept), no setup
    grid,      ///< kept boxes in per-area-level uniform grids: a box is tested only
               ///< against kept boxes sharing a cell (a suppressor must overlap it) whose
               ///< area is within the ratio the threshold allows (IoU <= min/max area);
               ///< falls back to greedy when the threshold is < 0
    bitmask    ///< 64-box suppression words as on the GPU, rows computed on `threads`
               ///< threads in chunks of 256 (O(N^2 / 2) IoUs, skipping removed rows)
};

/// @brief Options of nms() and batched_nms().
struct nms_options {
    std::size_t max_out = nms_unlimited; ///< keep at most this many (the highest ranked)
    pixel_convention convention = pixel_convention::continuous; ///< continuous = torchvision
    nms_algorithm algorithm = nms_algorithm::automatic;
    unsigned threads = 0; ///< bitmask only; 0 = snip::default_threads()
};

namespace detail {

/// Hard NMS over n boxes in rank order; dispatches on the algorithm.
template <class T>
std::size_t nms_sorted(const T* c, const T* a, std::int32_t n, T thr, T extra,
                       std::size_t max_out, std::int32_t* keep, const nms_options& opt,
                       nms_workspace<T>& ws) {
    if (n <= 0 || max_out == 0) return 0;
    nms_algorithm alg = opt.algorithm;
    if (alg == nms_algorithm::automatic)
        alg = (n > nms_grid_min && thr >= T(0)) ? nms_algorithm::grid : nms_algorithm::greedy;
    if (alg == nms_algorithm::grid && !(thr >= T(0))) alg = nms_algorithm::greedy;
    switch (alg) {
    case nms_algorithm::grid: return nms_grid_sorted(c, a, n, thr, extra, max_out, keep, ws);
    case nms_algorithm::bitmask:
        return nms_bitmask_sorted(c, a, n, thr, extra, max_out, keep, opt.threads, ws);
    default: return nms_greedy_sorted(c, a, n, thr, extra, max_out, keep);
    }
}

template <class T>
std::size_t nms_impl(box_view<const T> boxes, std::span<const T> scores, double iou_threshold,
                     std::span<std::int64_t> keep, nms_workspace<T>& ws, const nms_options& opt) {
    constexpr const char* fn = "nms";
    check_scores(fn, std::size_t(boxes.size()), scores);
    check_threshold(fn, iou_threshold);
    const std::size_t n = scores.size();
    check_keep_capacity(fn, n, opt.max_out, keep.size());
    if (n == 0 || opt.max_out == 0) return 0;
    sort_by_score(fn, scores, ws);
    const T extra = width_extra<T>(opt.convention);
    ws.coords.resize(4 * n);
    ws.area.resize(n);
    for (std::size_t p = 0; p < n; ++p) gather_box(fn, boxes, ws.order[p], p, extra, ws);
    ws.kept.resize(std::min(n, opt.max_out));
    const std::size_t count =
        nms_sorted(ws.coords.data(), ws.area.data(), std::int32_t(n),
                   gt_threshold<T>(iou_threshold), extra, opt.max_out, ws.kept.data(), opt, ws);
    for (std::size_t k = 0; k < count; ++k) keep[k] = ws.order[std::size_t(ws.kept[k])];
    return count;
}

} // namespace detail

/// @brief Hard NMS (torchvision.ops.nms): indices of the kept boxes, by decreasing score
/// (equal scores: lower index first). A box is dropped when its IoU with a kept box of
/// higher rank is > `iou_threshold` (strictly; compared as a double; any number, NaN is an
/// error). @param boxes N xyxy boxes (any strides; float or double);
/// @param scores N scores of the same type as the boxes; @param keep receives the indices,
/// must hold
/// min(N, opt.max_out); @return the number kept. Example:
/// @code
///   std::vector<float> b = {0, 0, 10, 10,  1, 1, 11, 11,  50, 50, 60, 60};
///   std::vector<float> s = {0.9f, 0.8f, 0.7f};
///   auto keep = snip::nms(snip::as_box_view(b), s, 0.5);  // {0, 2}
/// @endcode
template <class T>
std::size_t nms(box_view<T> boxes, detail::score_span<T> scores, double iou_threshold,
                std::span<std::int64_t> keep, nms_workspace<std::remove_const_t<T>>& ws,
                const nms_options& opt = {}) {
    using V = std::remove_const_t<T>;
    static_assert(detail::nms_float_v<V>, "nms: boxes must be float or double");
    return detail::nms_impl<V>(box_view<const V>(boxes), scores, iou_threshold, keep, ws, opt);
}

/// @brief nms() returning a vector.
template <class T>
std::vector<std::int64_t> nms(box_view<T> boxes, detail::score_span<T> scores,
                              double iou_threshold, const nms_options& opt = {}) {
    using V = std::remove_const_t<T>;
    nms_workspace<V> ws;
    std::vector<std::int64_t> keep(std::min(scores.size(), opt.max_out));
    keep.resize(nms(boxes, scores, iou_threshold, std::span<std::int64_t>(keep), ws, opt));
    return keep;
}

/// @brief The host half of the bitmask NMS (cuda/nms.cuh): walks `n` boxes in rank order,
/// keeps a box unless a kept box's suppression word has its bit, and ORs in the row of
/// every kept box. `masks` holds nms_mask_words(n) words, row i at [i * ceil(n / 64)],
/// only words of column blocks >= i / 64 are read. Writes kept rank positions (ascending)
/// to `keep` (must hold min(n, max_out)); returns the count.
inline std::size_t reduce_nms_masks(std::span<const std::uint64_t> masks, std::int64_t n,
                                    std::span<std::int64_t> keep,
                                    std::size_t max_out = nms_unlimited) {
    require(n >= 0, "reduce_nms_masks: n must be >= 0, got ", n);
    require(masks.size() >= nms_mask_words(n), "reduce_nms_masks: ", n, " boxes need ",
            nms_mask_words(n), " mask words, got ", masks.size());
    detail::check_keep_capacity("reduce_nms_masks", std::size_t(n), max_out, keep.size());
    const std::int64_t blocks = (n + nms_tile - 1) / nms_tile;
    std::vector<std::uint64_t> removed(std::size_t(blocks), 0);
    std::size_t count = 0;
    for (std::int64_t i = 0; i < n && count < max_out; ++i) {
        if ((removed[std::size_t(i / nms_tile)] >> (i % nms_tile)) & 1u) continue;
        keep[count++] = i;
        const std::uint64_t* row = masks.data() + i * blocks;
        for (std::int64_t cb = i / nms_tile; cb < blocks; ++cb) removed[std::size_t(cb)] |= row[cb];
    }
    return count;
}

/// @brief The exact T threshold for an IoU threshold given as a double: for every T value
/// x, (x > nms_threshold<T>(t)) == (double(x) > t). Pass it to iou_above() and the CUDA
/// kernel so that they decide like the double comparison.
template <class T>
T nms_threshold(double t) {
    detail::check_threshold("nms_threshold", t);
    return detail::gt_threshold<T>(t);
}

} // namespace snip
