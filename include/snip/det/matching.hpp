// matching.hpp: IoU matrices, RPN anchor labels with SNIPER's ignore rules, seeded label
// sampling, and RCNN proposal targets.
//
// All boxes of one call are xyxy in the same image's pixels (for SNIPER: the chip's
// scaled pixels, origin at the chip's top-left corner). `pixel_convention::inclusive`
// gives every box x2 - x1 + 1 pixels per side (the original code's bbox_overlaps);
// `continuous` (the default) x2 - x1.
#pragma once

#include <snip/core/gt_state.hpp>
#include <snip/core/box.hpp>
#include <snip/det/box_coder.hpp>
#include <snip/core/error.hpp>
#include <snip/core/hd.hpp>
#include <snip/core/parallel.hpp>
#include <snip/core/random.hpp>
#include <snip/core/valid_range.hpp>
#include <snip/core/views.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <type_traits>
#include <utility>
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

/// max(0, v[0..n)) with eight independent accumulators (no serial dependency chain).
template <class T>
inline T max_of(const T* v, std::size_t n) {
    T m[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) m[l] = max_(m[l], v[i + std::size_t(l)]);
    T r = T(0);
    for (int l = 0; l < 8; ++l) r = max_(r, m[l]);
    for (; i < n; ++i) r = max_(r, v[i]);
    return r;
}

template <class T>
void check_unit_threshold(const char* who, const char* name, T v) {
    require(v >= 0.0 && v <= 1.0, who, ": ", name, " must be in [0, 1], got ", v);
}

inline void check_sampling(const char* who, int batch, double fg_fraction) {
    require(batch >= 0, who, ": batch must be >= 0, got ", batch);
    require(fg_fraction >= 0.0 && fg_fraction <= 1.0, who, ": fg_fraction must be in [0, 1], got ",
            fg_fraction);
}

/// Keeps a uniformly random `keep` of the `idx` (partial Fisher-Yates with `g`) and
/// returns the others, in place: idx[0, keep) kept, idx[keep, end) dropped.
inline void choose_subset(std::vector<std::int64_t>& idx, std::size_t keep, splitmix64& g) {
    const std::size_t n = idx.size();
    for (std::size_t k = 0; k < keep && k < n; ++k) {
        const std::size_t j = k + static_cast<std::size_t>(g.below(n - k));
        std::swap(idx[k], idx[j]);
    }
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

// ---------------------------------------------------------------------------------------
// RPN labels

/// @brief How a crowd region is compared with an anchor.
enum class overlap_measure {
    iou,              ///< intersection over union
    anchor_fraction   ///< intersection over the anchor's area (Detectron's crowd rule)
};

/// @brief RPN label rules; the defaults are SNIPER's (thresholds compared in the boxes'
/// element type, so an IoU of exactly 0.3 is not "> 0.3" in float either).
struct rpn_options {
    /// Negative (0) when the max IoU over valid gt is below this.
    double negative_below = 0.4;
    /// Positive (1) when the max IoU over valid gt is at least this.
    double positive_from = 0.5;
    /// Every valid gt's best anchors are positive (all anchors tied at its max IoU, when > 0).
    bool best_anchor_positive = true;
    /// Ignored (-1) when the IoU with any INVALID gt is above this (overrides positive).
    double ignore_invalid_above = 0.3;
    /// Ignored (-1) when the overlap with any CROWD gt is above this (overrides positive).
    double ignore_crowd_above = 0.3;
    overlap_measure crowd_measure = overlap_measure::iou;
    /// Sampling (assign_rpn): at most `batch` labelled anchors, at most
    /// floor(fg_fraction * batch) of them positive; 0 = no sampling.
    int batch = 256;
    double fg_fraction = 0.5;
    pixel_convention convention = pixel_convention::continuous;
    /// Threads for the overlap pass (0 = snip::default_threads()); work is split only in
    /// blocks of >= 2^19 anchor-gt pairs, so one chip's labels use one thread.
    unsigned threads = 0;

    /// SNIPER's rules with its inclusive (+1) overlaps.
    static rpn_options sniper() {
        rpn_options o;
        o.convention = pixel_convention::inclusive;
        return o;
    }

    /// @throws snip::error naming the first bad value (NaN or outside [0, 1] thresholds,
    /// negative_below > positive_from, batch < 0, fg_fraction outside [0, 1]).
    void validate() const {
        detail::check_unit_threshold("rpn_options", "negative_below", negative_below);
        detail::check_unit_threshold("rpn_options", "positive_from", positive_from);
        detail::check_unit_threshold("rpn_options", "ignore_invalid_above", ignore_invalid_above);
        detail::check_unit_threshold("rpn_options", "ignore_crowd_above", ignore_crowd_above);
        require(negative_below <= positive_from, "rpn_options: negative_below ", negative_below,
                " must not exceed positive_from ", positive_from);
        detail::check_sampling("rpn_options", batch, fg_fraction);
    }
};

/// @brief How many labels of each kind a labelling or sampling step left.
struct label_counts {
    std::size_t positive = 0, negative = 0, ignored = 0;
    friend constexpr bool operator==(const label_counts&, const label_counts&) = default;
};

/// @brief Reusable buffers of assign_rpn_labels (no allocation once sized for a chip).
template <class T>
struct rpn_workspace {
    /// Per parallel block: the IoU column of one gt over a tile, best IoU / argmax and
    /// ignore flags of the tile's anchors.
    struct block {
        std::vector<T> col, best;
        std::vector<std::int32_t> arg;
        std::vector<std::uint8_t> ignored;
    };
    detail::box_columns<T> anchors, valid, ignore;
    std::vector<std::uint8_t> ignore_is_crowd;
    std::vector<block> blocks;
    std::vector<T> tile_max;  ///< per tile and valid gt: best IoU within the tile
    std::vector<T> gt_max;    ///< per valid gt: best IoU over all anchors
};

/// @brief Labels anchors for the RPN, SNIPER's way. Rules, in the order they apply:
///  1. For each anchor: its max IoU over the VALID gt (0 when there is none) and
///     matched[i] = index (into `gt`) of the first valid gt reaching it, -1 when no gt is
///     valid. label = 0 if max < negative_below, else -1.
///  2. best anchor: for each valid gt whose best IoU over all anchors m is > 0, every
///     anchor whose IoU with it equals m exactly is 1 (all ties, as py-faster-rcnn's
///     `overlaps == gt_max_overlaps`; a gt no anchor touches marks nothing, where
///     py-faster-rcnn would mark every anchor with IoU 0). The anchor's matched gt stays
///     its argmax in 1, as in py-faster-rcnn.
///  3. label = 1 if max >= positive_from.
///  4. label = -1 if the IoU with any INVALID gt is > ignore_invalid_above, or the overlap
///     (opt.crowd_measure) with any CROWD gt is > ignore_crowd_above: overrides 1 and 0.
/// @param anchors N boxes, @param gt K boxes (same element type T, same image pixels).
/// @param states per-gt snip::gt_state (K entries; empty = all valid).
/// @param labels N outputs: 1 / 0 / -1. @param matched N outputs (or empty to skip).
/// @return the counts of each label.
template <detail::readable_boxes A, detail::readable_boxes G>
label_counts assign_rpn_labels(const A& anchors, const G& gt, std::span<const gt_state> states,
                               std::span<std::int8_t> labels, std::span<std::int32_t> matched,
                               const rpn_options& opt = {},
                               rpn_workspace<detail::box_value_t<A>>* ws = nullptr) {
    using T = detail::box_value_t<A>;
    static_assert(std::is_floating_point_v<T>, "assign_rpn_labels: boxes must hold floating-point values");
    static_assert(std::is_same_v<detail::box_value_t<G>, T>,
                  "assign_rpn_labels: anchors and gt must hold the same element type");
    opt.validate();
    const auto av = detail::const_boxes(anchors);
    const auto gv = detail::const_boxes(gt);
    const std::ptrdiff_t N = av.size(), K = gv.size();
    require(states.empty() || states.size() == static_cast<std::size_t>(K), "assign_rpn_labels: ",
            states.size(), " gt states for ", K, " gt boxes");
    require(labels.size() == static_cast<std::size_t>(N), "assign_rpn_labels: labels hold ",
            labels.size(), " entries for ", N, " anchors");
    require(matched.empty() || matched.size() == static_cast<std::size_t>(N),
            "assign_rpn_labels: matched holds ", matched.size(), " entries for ", N, " anchors");
    rpn_workspace<T> local;
    rpn_workspace<T>& w = ws ? *ws : local;
    const T e = detail::convention_extra<T>(opt.convention);

    w.valid.clear();
    w.ignore.clear();
    w.ignore_is_crowd.clear();
    for (std::ptrdiff_t g = 0; g < K; ++g) {
        const gt_state s = states.empty() ? gt_state::valid : states[static_cast<std::size_t>(g)];
        (s == gt_state::valid ? w.valid : w.ignore).push(gv[g], e, static_cast<std::int32_t>(g));
        if (s != gt_state::valid) w.ignore_is_crowd.push_back(s == gt_state::crowd ? 1 : 0);
    }
    if (N == 0) return {};
    const std::size_t KV = w.valid.size(), KI = w.ignore.size();
    const T neg = T(opt.negative_below), pos = T(opt.positive_from);
    const T thr_invalid = T(opt.ignore_invalid_above), thr_crowd = T(opt.ignore_crowd_above);
    const bool crowd_fraction = opt.crowd_measure == overlap_measure::anchor_fraction;
    constexpr std::int8_t ignored_by_region = -2;  // temporary: ignore overrides best-anchor

    // Anchors are processed in tiles of `tile`: for each gt, one vectorised IoU column over
    // the tile updates every anchor's best IoU / argmax and the tile's best IoU for that gt.
    constexpr std::ptrdiff_t tile = 256;
    const std::ptrdiff_t ntiles = (N + tile - 1) / tile;
    // Parallel blocks of >= 2^19 anchor-gt pairs (~0.3 ms): one SNIPER chip (21,504
    // anchors, 20 gt) stays on the calling thread, where a thread start would cost more
    // than it saves; full-image grids are split.
    const std::ptrdiff_t grain = tile * std::max<std::ptrdiff_t>(
        1, (std::ptrdiff_t(1) << 19) / (tile * std::max<std::ptrdiff_t>(1, static_cast<std::ptrdiff_t>(KV + KI))));
    const auto nblocks = static_cast<std::size_t>((N + grain - 1) / grain);
    auto& cols = w.anchors;
    for (auto* v : {&cols.x1, &cols.y1, &cols.x2, &cols.y2, &cols.area}) v->resize(static_cast<std::size_t>(N));
    w.tile_max.resize(static_cast<std::size_t>(ntiles) * KV);
    if (w.blocks.size() < nblocks) w.blocks.resize(nblocks);
    for (std::size_t b = 0; b < nblocks; ++b) {
        auto& blk = w.blocks[b];
        blk.col.resize(tile), blk.best.resize(tile), blk.arg.resize(tile), blk.ignored.resize(tile);
    }

    detail::parallel_for(
        N, grain,
        [&](std::ptrdiff_t b0, std::ptrdiff_t b1) {
            auto& blk = w.blocks[static_cast<std::size_t>(b0 / grain)];
            T* col = blk.col.data();
            T* best = blk.best.data();
            std::int32_t* arg = blk.arg.data();
            std::uint8_t* ign = blk.ignored.data();
            for (std::ptrdiff_t t0 = b0; t0 < b1; t0 += tile) {
                const auto n = static_cast<std::size_t>(std::min(tile, b1 - t0));
                const auto o = static_cast<std::size_t>(t0);
                for (std::size_t i = 0; i < n; ++i) {
                    const box<T> a = av[t0 + static_cast<std::ptrdiff_t>(i)];
                    cols.x1[o + i] = a.x1, cols.y1[o + i] = a.y1, cols.x2[o + i] = a.x2, cols.y2[o + i] = a.y2;
                    cols.area[o + i] = detail::extent_area(a, e);
                }
                const T *x1 = cols.x1.data() + o, *y1 = cols.y1.data() + o, *x2 = cols.x2.data() + o,
                        *y2 = cols.y2.data() + o, *ar = cols.area.data() + o;
                std::fill(best, best + n, T(0));
                std::fill(arg, arg + n, std::int32_t(0));
                T* tmax = w.tile_max.data() + static_cast<std::size_t>(t0 / tile) * KV;
                for (std::size_t j = 0; j < KV; ++j) {
                    const box<T> g{w.valid.x1[j], w.valid.y1[j], w.valid.x2[j], w.valid.y2[j]};
                    detail::iou_column(g, e, x1, y1, x2, y2, ar, n, col);
                    const auto jj = static_cast<std::int32_t>(j);
                    for (std::size_t i = 0; i < n; ++i) {  // first maximum wins, as argmax
                        const std::int32_t m = -static_cast<std::int32_t>(col[i] > best[i]);
                        arg[i] = (arg[i] & ~m) | (jj & m);
                        best[i] = detail::max_(best[i], col[i]);
                    }
                    tmax[j] = detail::max_of(col, n);
                }
                std::fill(ign, ign + n, std::uint8_t(0));
                for (std::size_t k = 0; k < KI; ++k) {
                    const box<T> r{w.ignore.x1[k], w.ignore.y1[k], w.ignore.x2[k], w.ignore.y2[k]};
                    const bool crowd = w.ignore_is_crowd[k] != 0;
                    if (crowd && crowd_fraction)
                        detail::fraction_column(r, e, x1, y1, x2, y2, ar, n, col);
                    else
                        detail::iou_column(r, e, x1, y1, x2, y2, ar, n, col);
                    const T thr = crowd ? thr_crowd : thr_invalid;
                    for (std::size_t i = 0; i < n; ++i) ign[i] |= static_cast<std::uint8_t>(col[i] > thr);
                }
                for (std::size_t i = 0; i < n; ++i) {
                    std::int8_t l = best[i] < neg ? std::int8_t(0) : std::int8_t(-1);
                    if (best[i] >= pos) l = 1;
                    labels[o + i] = ign[i] ? ignored_by_region : l;
                    if (!matched.empty())
                        matched[o + i] = KV ? w.valid.source[static_cast<std::size_t>(arg[i])] : -1;
                }
            }
        },
        opt.threads);

    if (opt.best_anchor_positive && KV) {
        // Each valid gt's best IoU over all anchors; only tiles reaching it are rescanned.
        w.gt_max.assign(KV, T(0));
        for (std::ptrdiff_t t = 0; t < ntiles; ++t)
            for (std::size_t j = 0; j < KV; ++j)
                w.gt_max[j] = detail::max_(w.gt_max[j], w.tile_max[static_cast<std::size_t>(t) * KV + j]);
        T* col = w.blocks[0].col.data();
        for (std::ptrdiff_t t = 0; t < ntiles; ++t) {
            const auto o = static_cast<std::size_t>(t * tile);
            const auto n = static_cast<std::size_t>(std::min(tile, N - t * tile));
            for (std::size_t j = 0; j < KV; ++j) {
                const T m = w.gt_max[j];
                if (!(m > T(0)) || w.tile_max[static_cast<std::size_t>(t) * KV + j] != m) continue;
                const box<T> g{w.valid.x1[j], w.valid.y1[j], w.valid.x2[j], w.valid.y2[j]};
                detail::iou_column(g, e, cols.x1.data() + o, cols.y1.data() + o, cols.x2.data() + o,
                                   cols.y2.data() + o, cols.area.data() + o, n, col);
                for (std::size_t i = 0; i < n; ++i)
                    if (col[i] == m && labels[o + i] != ignored_by_region) labels[o + i] = 1;
            }
        }
    }
    label_counts c;
    for (auto& l : labels) {
        if (l == ignored_by_region) l = -1;
        if (l == 1) ++c.positive;
        else if (l == 0) ++c.negative;
        else ++c.ignored;
    }
    return c;
}

/// @brief Subsamples labels in place, reproducibly from `seed`: when more than
/// floor(fg_fraction * batch) are 1, a uniformly random excess of them becomes -1; then
/// when more than batch - (positives left) are 0, a random excess of those becomes -1.
/// @return the counts after sampling.
inline label_counts sample_labels(std::span<std::int8_t> labels, int batch, double fg_fraction,
                                  std::uint64_t seed) {
    detail::check_sampling("sample_labels", batch, fg_fraction);
    std::vector<std::int64_t> fg, bg;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (labels[i] == 1) fg.push_back(static_cast<std::int64_t>(i));
        else if (labels[i] == 0) bg.push_back(static_cast<std::int64_t>(i));
    }
    const auto max_fg = static_cast<std::size_t>(std::floor(fg_fraction * double(batch)));
    if (fg.size() > max_fg) {
        splitmix64 g{mix(seed, 0x46475250ull)};
        detail::choose_subset(fg, max_fg, g);
        for (std::size_t k = max_fg; k < fg.size(); ++k) labels[static_cast<std::size_t>(fg[k])] = -1;
        fg.resize(max_fg);
    }
    const std::size_t max_bg = static_cast<std::size_t>(batch) - fg.size();
    if (bg.size() > max_bg) {
        splitmix64 g{mix(seed, 0x42475250ull)};
        detail::choose_subset(bg, max_bg, g);
        for (std::size_t k = max_bg; k < bg.size(); ++k) labels[static_cast<std::size_t>(bg[k])] = -1;
        bg.resize(max_bg);
    }
    label_counts c;
    c.positive = fg.size();
    c.negative = bg.size();
    c.ignored = labels.size() - c.positive - c.negative;
    return c;
}

/// @brief Labels, matched gt and counts of one chip's anchors.
struct rpn_assignment {
    std::vector<std::int8_t> labels;    ///< 1 / 0 / -1 per anchor
    std::vector<std::int32_t> matched;  ///< index into gt of the best valid gt, -1 if none
    label_counts counts;                ///< after sampling
};

/// @brief assign_rpn_labels, then sample_labels(opt.batch, opt.fg_fraction, seed) unless
/// opt.batch is 0. Same seed, same inputs: same labels, on every platform.
template <detail::readable_boxes A, detail::readable_boxes G>
rpn_assignment assign_rpn(const A& anchors, const G& gt, std::span<const gt_state> states,
                          const rpn_options& opt = {}, std::uint64_t seed = 0) {
    const auto n = static_cast<std::size_t>(detail::const_boxes(anchors).size());
    rpn_assignment r;
    r.labels.resize(n);
    r.matched.resize(n);
    r.counts = assign_rpn_labels(anchors, gt, states, std::span<std::int8_t>(r.labels),
                                 std::span<std::int32_t>(r.matched), opt);
    if (opt.batch > 0)
        r.counts = sample_labels(std::span<std::int8_t>(r.labels), opt.batch, opt.fg_fraction, seed);
    return r;
}

// ---------------------------------------------------------------------------------------
// RCNN proposal targets

/// @brief RCNN target rules; the defaults are SNIPER's (no sampling: every kept proposal
/// is used).
struct rcnn_options {
    /// Proposals are kept when sqrt((x2-x1)*(y2-y1)) / range_factor is in `range`
    /// (lo inclusive, hi exclusive; -1 open), as SNIPER's proposal filter (no +1 there).
    valid_range range{};
    /// Proposal pixels per unit of `range`: the chip's scale factor when the range is in
    /// original-image pixels, 1 when it is already in chip pixels.
    double range_factor = 1.0;
    /// Append the VALID gt boxes after the kept proposals.
    bool append_gt = true;
    /// Foreground when the max IoU with a labelling gt is > fg_iou (strictly).
    double fg_iou = 0.5;
    /// INVALID gt label proposals too (SNIPER matches every non-crowd gt of the chip);
    /// crowd gt never label.
    bool match_invalid_gt = true;
    /// Class-agnostic regression targets: (d - mean) / std, order dx, dy, dw, dh.
    double means[4] = {0, 0, 0, 0};
    double stds[4] = {0.1, 0.1, 0.2, 0.2};
    /// Sampling: 0 keeps every RoI; else at most `batch` RoIs, at most
    /// floor(fg_fraction * batch) foreground, the rest background.
    int batch = 0;
    double fg_fraction = 0.25;
    pixel_convention convention = pixel_convention::continuous;

    /// SNIPER's rules with inclusive (+1) overlaps and widths.
    static rcnn_options sniper() {
        rcnn_options o;
        o.convention = pixel_convention::inclusive;
        return o;
    }
    /// @throws snip::error naming the first bad value.
    void validate() const {
        range.validate("rcnn_options.range");
        require(std::isfinite(range_factor) && range_factor > 0.0,
                "rcnn_options: range_factor must be finite and > 0, got ", range_factor);
        detail::check_unit_threshold("rcnn_options", "fg_iou", fg_iou);
        detail::check_sampling("rcnn_options", batch, fg_fraction);
        const char* names[4] = {"dx", "dy", "dw", "dh"};
        for (int k = 0; k < 4; ++k) {
            require(std::isfinite(stds[k]) && stds[k] > 0.0, "rcnn_options: std of ", names[k],
                    " must be finite and > 0, got ", stds[k]);
            require(std::isfinite(means[k]), "rcnn_options: mean of ", names[k],
                    " must be finite, got ", means[k]);
        }
    }
    template <class T>
    box_coder<T> coder() const {
        box_coder<T> c;
        for (int k = 0; k < 4; ++k) c.means[k] = T(means[k]), c.stds[k] = T(stds[k]);
        c.convention = convention;
        return c;
    }
};

/// @brief The RoIs of one chip and their targets. Row r of every member belongs to rois[r].
template <class T>
struct rcnn_targets {
    std::vector<box<T>> rois;           ///< kept proposals, then appended gt (chip px)
    std::vector<std::int64_t> source;   ///< proposal index, or proposals.size() + g for gt g
    std::vector<std::int32_t> labels;   ///< class of the matched gt (>= 1), 0 = background
    std::vector<std::int32_t> matched;  ///< gt of max IoU among labelling gt, -1 if none
    std::vector<T> max_iou;             ///< that IoU
    std::vector<T> deltas;              ///< N x 4 row-major (dx, dy, dw, dh); 0 for background
    std::size_t foreground = 0;
};

/// @brief RCNN targets for the proposals of one chip (already decoded and clipped by the
/// caller, same pixels as `gt`):
///  1. proposals outside opt.range (see rcnn_options::range) are dropped; so are boxes with
///     no positive side under the convention;
///  2. with opt.append_gt, every VALID gt is appended as a RoI;
///  3. each RoI is matched to the labelling gt (valid, plus invalid when
///     opt.match_invalid_gt) of max IoU (first on ties): label = classes[g] if that IoU
///     > opt.fg_iou, else 0;
///  4. foreground RoIs get deltas box_coder(means, stds).encode(roi, gt[g]);
///  5. with opt.batch > 0, RoIs are sampled reproducibly from `seed` (input order kept).
/// @param states per-gt state (K entries or empty = all valid).
/// @param classes per-gt class ids >= 1 (K entries or empty = class 1 for all).
/// The count of RoIs depends on the data, so this returns vectors.
template <detail::readable_boxes P, detail::readable_boxes G>
rcnn_targets<detail::box_value_t<P>> rcnn_proposal_targets(
    const P& proposals, const G& gt, std::span<const gt_state> states,
    std::span<const std::int32_t> classes, const rcnn_options& opt = {}, std::uint64_t seed = 0) {
    using T = detail::box_value_t<P>;
    static_assert(std::is_floating_point_v<T>, "rcnn_proposal_targets: boxes must hold floating-point values");
    static_assert(std::is_same_v<detail::box_value_t<G>, T>,
                  "rcnn_proposal_targets: proposals and gt must hold the same element type");
    opt.validate();
    const auto pv = detail::const_boxes(proposals);
    const auto gv = detail::const_boxes(gt);
    const std::ptrdiff_t P_ = pv.size(), K = gv.size();
    require(states.empty() || states.size() == static_cast<std::size_t>(K), "rcnn_proposal_targets: ",
            states.size(), " gt states for ", K, " gt boxes");
    require(classes.empty() || classes.size() == static_cast<std::size_t>(K),
            "rcnn_proposal_targets: ", classes.size(), " gt classes for ", K, " gt boxes");
    auto state_of = [&](std::ptrdiff_t g) {
        return states.empty() ? gt_state::valid : states[static_cast<std::size_t>(g)];
    };
    const T e = detail::convention_extra<T>(opt.convention);
    detail::box_columns<T> lab;  // labelling gt
    for (std::ptrdiff_t g = 0; g < K; ++g) {
        const gt_state s = state_of(g);
        if (s == gt_state::valid || (s == gt_state::invalid && opt.match_invalid_gt)) {
            const std::int32_t c = classes.empty() ? 1 : classes[static_cast<std::size_t>(g)];
            require(c >= 1, "rcnn_proposal_targets: gt ", g, " has class ", c,
                    " (classes start at 1; 0 is background)");
            lab.push(gv[g], e, static_cast<std::int32_t>(g));
        }
    }

    rcnn_targets<T> r;
    for (std::ptrdiff_t i = 0; i < P_; ++i) {
        const box<T> b = pv[i];
        if (!(b.x2 - b.x1 + e > T(0) && b.y2 - b.y1 + e > T(0))) continue;
        const double w = double(b.x2) - double(b.x1), h = double(b.y2) - double(b.y1);
        if (!opt.range.contains(std::sqrt(std::max(0.0, w * h)) / opt.range_factor)) continue;
        r.rois.push_back(b);
        r.source.push_back(i);
    }
    if (opt.append_gt)
        for (std::ptrdiff_t g = 0; g < K; ++g)
            if (state_of(g) == gt_state::valid) {
                r.rois.push_back(gv[g]);
                r.source.push_back(P_ + g);
            }

    const std::size_t n = r.rois.size();
    r.labels.assign(n, 0);
    r.matched.assign(n, -1);
    r.max_iou.assign(n, T(0));
    r.deltas.assign(n * 4, T(0));
    const T fg = T(opt.fg_iou);
    const box_coder<T> coder = opt.coder<T>();
    std::vector<T> row(lab.size());
    for (std::size_t i = 0; i < n; ++i) {
        if (lab.size() == 0) break;
        detail::iou_row(r.rois[i], e, lab, row.data());
        std::size_t best = 0;
        for (std::size_t j = 1; j < row.size(); ++j)
            if (row[j] > row[best]) best = j;
        const std::int32_t g = lab.source[best];
        r.matched[i] = g;
        r.max_iou[i] = row[best];
        if (row[best] > fg) {
            r.labels[i] = classes.empty() ? 1 : classes[static_cast<std::size_t>(g)];
            const box_delta<T> d = coder.encode(r.rois[i], gv[g]);
            r.deltas[4 * i] = d.dx, r.deltas[4 * i + 1] = d.dy, r.deltas[4 * i + 2] = d.dw,
                         r.deltas[4 * i + 3] = d.dh;
        }
    }

    if (opt.batch > 0) {
        std::vector<std::int64_t> fgi, bgi;
        for (std::size_t i = 0; i < n; ++i)
            (r.labels[i] > 0 ? fgi : bgi).push_back(static_cast<std::int64_t>(i));
        const auto max_fg = std::min(fgi.size(), static_cast<std::size_t>(
                                                     std::floor(opt.fg_fraction * double(opt.batch))));
        splitmix64 g1{mix(seed, 0x46475243ull)};
        detail::choose_subset(fgi, max_fg, g1);
        fgi.resize(max_fg);
        const auto max_bg = std::min(bgi.size(), static_cast<std::size_t>(opt.batch) - max_fg);
        splitmix64 g2{mix(seed, 0x42475243ull)};
        detail::choose_subset(bgi, max_bg, g2);
        bgi.resize(max_bg);
        std::vector<std::int64_t> keep(fgi);
        keep.insert(keep.end(), bgi.begin(), bgi.end());
        std::sort(keep.begin(), keep.end());
        rcnn_targets<T> s;
        for (std::int64_t k : keep) {
            const auto i = static_cast<std::size_t>(k);
            s.rois.push_back(r.rois[i]);
            s.source.push_back(r.source[i]);
            s.labels.push_back(r.labels[i]);
            s.matched.push_back(r.matched[i]);
            s.max_iou.push_back(r.max_iou[i]);
            s.deltas.insert(s.deltas.end(), r.deltas.begin() + 4 * k, r.deltas.begin() + 4 * k + 4);
        }
        r = std::move(s);
    }
    for (auto l : r.labels) r.foreground += l > 0 ? 1 : 0;
    return r;
}

} // namespace snip
